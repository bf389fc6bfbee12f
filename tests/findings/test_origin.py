"""Who caused a failure (findings[].origin): the rules' origins, decided from the evidence the
capture holds (the RST's TTL against its claimed sender's, the ICMP error's reporter), and
`unknown` with the reason when it holds none. Captures are built packet by packet; each case
says what its packets carry."""

from __future__ import annotations

from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.findings.model import Finding
from tests.support.build_captures import stalled
from tests.support.scenario import Talk

ROOT = Path(__file__).resolve().parents[2]


def _findings(t: Talk, tmp_path: Path, builtin_rules) -> list[Finding]:
    path = tmp_path / "origin.pcap"
    t.write(path)
    return analyze([str(path)], builtin_rules).findings


def _reset_mid_connection(rst_ttl: int, rst_id: int | None = None) -> Talk:
    """Captured on the client's host (its TTL 64); the server is 14 routers away (its packets
    arrive with 50). After one request and response, a RST in the server's name arrives
    with `rst_ttl`, and IP ID `rst_id` (None: the next of the IDs, which count with the
    frames on both sides, as one host-wide counter would)."""
    t = Talk(client_ttl=64, server_ttl=50)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "PA", b"GET /next HTTP/1.1\r\n\r\n")
    t.server_ttl = rst_ttl
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, ip_id=rst_id)
    return t


def test_a_rst_sent_closer_than_the_server_is_the_network(builtin_rules, tmp_path: Path) -> None:
    # TTL 62: two routers away, where the server's packets cross fourteen (a firewall's RST).
    (f,) = _findings(_reset_mid_connection(62), tmp_path, builtin_rules)
    assert f.primary().errno == "ECONNRESET"
    assert (f.origin.actor, f.origin.confidence) == ("network", "medium")
    assert "TTL 62, 12 more than the server's own packets" in f.origin.why


def test_a_rst_with_the_servers_ttl_and_ip_id_is_the_peer(builtin_rules, tmp_path: Path) -> None:
    # TTL 50 as the server's packets, IP ID 7 after the server's 6 (frame 6): its host made it.
    (f,) = _findings(_reset_mid_connection(50), tmp_path, builtin_rules)
    assert (f.origin.actor, f.origin.confidence) == ("peer", "high")
    assert "IP ID (7) fits theirs" in f.origin.why


def test_a_rst_with_the_servers_ttl_but_ip_id_zero_is_the_peer_at_most(
    builtin_rules, tmp_path: Path
) -> None:
    # The server's TTL, but IP ID 0 where its packets count: not its socket's RST. Its kernel
    # without the socket, or a device as far away: peer, no more than medium, and a note.
    (f,) = _findings(_reset_mid_connection(50, rst_id=0), tmp_path, builtin_rules)
    assert (f.origin.actor, f.origin.confidence) == ("peer", "medium")
    assert [n for n in f.notes if "IP ID is 0" in n]


def test_a_rst_closer_than_the_server_with_ip_id_zero_is_the_network(
    builtin_rules, tmp_path: Path
) -> None:
    # Two routers away, and IP ID 0 (iptables REJECT --reject-with tcp-reset writes 0): the
    # issue's firewall, decided at high confidence.
    (f,) = _findings(_reset_mid_connection(62, rst_id=0), tmp_path, builtin_rules)
    assert (f.origin.actor, f.origin.confidence) == ("network", "high")
    assert "IP ID (0) does not follow theirs" in f.origin.why


def test_a_lone_rst_cannot_be_placed(builtin_rules, tmp_path: Path) -> None:
    # A SYN answered by RST|ACK: the server's only packet, nothing to compare its TTL with.
    t = Talk(server_ttl=50)
    t.tcp("c", "S")
    t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
    (f,) = _findings(t, tmp_path, builtin_rules)
    assert f.primary().errno == "ECONNREFUSED"
    assert f.origin.actor == "unknown" and "only packet" in f.origin.why


def test_icmp_errors_name_their_reporter(builtin_rules) -> None:
    # samples/demo.pcap: host prohibited from the router 10.0.1.254 (client port 40005), port
    # unreachable from the DNS server itself (UDP 50000).
    found = analyze([str(ROOT / "samples" / "demo.pcap")], builtin_rules).findings
    by_port = {f.flow.client.rpartition(":")[2]: f for f in found}
    assert by_port["40005"].origin.actor == "network"
    assert "10.0.1.254" in by_port["40005"].origin.why
    assert by_port["50000"].origin.actor == "peer"


def test_silence_is_unknown(builtin_rules) -> None:
    (f,) = analyze([str(ROOT / "rules" / "syn-timeout" / "six-syns.pcap")], builtin_rules).findings
    assert f.origin.actor == "unknown" and "silence" in f.origin.why


def test_a_rst_after_an_idle_gap_names_the_gap_and_the_usual_timeouts(
    builtin_rules, tmp_path: Path
) -> None:
    # Request and response, then 400 s of silence (past AWS NLB's 350 s), then the client's
    # next request meets a RST at once, sent two hops away: a stateful device had forgotten
    # the flow. The gap that matters is the one before the request.
    t = Talk(client_ttl=64, server_ttl=50)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "A")
    t.tcp("c", "PA", b"GET /later HTTP/1.1\r\n\r\n", dt=400.0)
    t.server_ttl = 62
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.001)
    (f,) = _findings(t, tmp_path, builtin_rules)
    assert f.origin.actor == "network"
    (note,) = [n for n in f.notes if "of silence" in n]
    assert "after 400000 ms of silence" in note and "AWS NLB 350 s" in note


def test_a_rst_without_an_idle_gap_says_nothing_of_timeouts(builtin_rules, tmp_path) -> None:
    (f,) = _findings(_reset_mid_connection(62), tmp_path, builtin_rules)
    assert not [n for n in f.notes if "of silence" in n]


def test_idle_ms_counts_the_silence_before_the_rst(builtin_rules, tmp_path: Path) -> None:
    # The same flow, with the RST itself coming 400 s after the last packet (the client's
    # data went unanswered and the device reset the flow when it expired it).
    t = Talk(client_ttl=64, server_ttl=50)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "A")
    t.server_ttl = 62
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=400.0)
    (f,) = _findings(t, tmp_path, builtin_rules)
    (note,) = [n for n in f.notes if "of silence" in n]
    assert "after 400000 ms of silence" in note and "AWS NLB 350 s" in note


def _unacknowledged(client_ttl: int, server_ttl: int) -> Talk:
    """A request acknowledged, then the next one retransmitted five times into silence."""
    t = Talk(client_ttl=client_ttl, server_ttl=server_ttl)
    stalled(t, 5)
    return t


def test_silence_captured_on_the_silent_hosts_own_host_is_the_peer(
    builtin_rules, tmp_path: Path
) -> None:
    # Captured on the server's host (its packets leave with 64, the client's arrive with 50):
    # the retransmissions reached that host and it never acknowledged them.
    (f,) = _findings(_unacknowledged(50, 64), tmp_path, builtin_rules)
    assert f.primary().errno == "ETIMEDOUT"
    assert (f.origin.actor, f.origin.confidence) == ("peer", "medium")
    assert "taken on the server's host" in f.origin.why


def test_silence_captured_on_the_senders_host_stays_unknown(builtin_rules, tmp_path) -> None:
    (f,) = _findings(_unacknowledged(64, 50), tmp_path, builtin_rules)
    assert f.origin.actor == "unknown"


def test_a_rst_its_claimed_sender_ignores_was_forged(builtin_rules, tmp_path: Path) -> None:
    # An injector that copies the server's TTL (50): the TTL cannot tell. But the server's
    # own response (frame 8) arrives after the RST (7), as if nothing had been sent in its
    # name; a socket that sent a RST sends nothing more (Linux tcp_send_active_reset(), then
    # tcp_done()).
    t = _reset_mid_connection(50)
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n", dt=0.005)
    (f,) = _findings(t, tmp_path, builtin_rules)
    assert f.primary().errno == "ECONNRESET"
    assert (f.origin.actor, f.origin.confidence) == ("network", "high")
    assert "went on sending after this RST" in f.origin.why and "(frame 8)" in f.origin.why


def test_a_bare_rst_after_the_rst_is_not_going_on(builtin_rules, tmp_path: Path) -> None:
    # The server's host answering the client's next segment with another RST is what a
    # host whose socket is gone does: no forgery follows from it.
    t = _reset_mid_connection(50)
    t.tcp("c", "PA", b"more", dt=0.005)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0)
    found = _findings(t, tmp_path, builtin_rules)
    assert found and all(f.origin.actor == "peer" for f in found)


def _reset_with_timestamps_in_use(rst_stamp: bool) -> Talk:
    """Both SYNs offer timestamps (Linux's layout); after a request and its response the
    server's RST arrives with or without them."""
    linux = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None), ("WScale", 7)]
    t = Talk(client_ttl=64, server_ttl=50, syn_options=linux)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n", options=[("Timestamp", (101, 200))])
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n", options=[("Timestamp", (201, 101))])
    t.tcp("c", "A", options=[("Timestamp", (102, 201))])
    stamp = [("Timestamp", (201, 101))] if rst_stamp else []
    t.tcp("s", "RA", seq=t.nxt["s"], options=stamp)
    return t


def test_a_reset_without_the_connections_timestamps_was_made_without_a_socket(
    builtin_rules, tmp_path: Path
) -> None:
    (f,) = _findings(_reset_with_timestamps_in_use(False), tmp_path, builtin_rules)
    assert f.rule_name == "rst-established"
    assert [n for n in f.notes if "carries no TCP timestamps" in n]


def test_a_reset_with_the_connections_timestamps_says_nothing_of_it(
    builtin_rules, tmp_path: Path
) -> None:
    (f,) = _findings(_reset_with_timestamps_in_use(True), tmp_path, builtin_rules)
    assert not [n for n in f.notes if "timestamps" in n]
