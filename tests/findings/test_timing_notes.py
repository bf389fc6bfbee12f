"""What the reports say about the timing around a failure: the idle gap before it and the
well-known timeouts it is close to (rst-established, data-timeout, keepalive-race), and how a
full accept queue shows (accept-queue-overflow, rst-after-handshake). Captures are the rules'
own (tests/support/build_captures.py) or built here packet by packet."""

from __future__ import annotations

from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.findings.model import Finding
from tests.support.scenario import Talk

ROOT = Path(__file__).resolve().parents[2]
VENDORS = ("AWS", "Azure", "Google", "Cisco", "conntrack 5 days")


def _run(path: Path, builtin_rules) -> list[Finding]:
    return analyze([str(path)], builtin_rules).findings


def _idle_notes(f: Finding) -> list[str]:
    return [n for n in f.notes if "of silence" in n]


def _idle_rst(tmp_path: Path, builtin_rules, idle_s: float, rst_ttl: int) -> Finding:
    """One exchange, `idle_s` of silence, then the client's request meets a RST at once;
    the server's own packets arrive with TTL 50."""
    t = Talk(server_ttl=50)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "A")
    t.tcp("c", "PA", b"GET /later HTTP/1.1\r\n\r\n", dt=idle_s)
    t.server_ttl = rst_ttl
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.001)
    path = tmp_path / "idle.pcap"
    t.write(path)
    (f,) = _run(path, builtin_rules)
    assert f.rule == "PD-TCP-005"
    return f


def test_a_reset_names_the_nearest_timeout_at_or_below_the_gap(builtin_rules, tmp_path) -> None:
    for idle_s, nearest, not_named in (
        (90.0, "AWS ALB 60 s", "Azure"),
        (250.0, "Azure Load Balancer 4 min", "NLB"),
        (400.0, "AWS NLB 350 s", "Google"),
        (1500.0, "Google Cloud NAT 20 min", "Cisco"),
        (7200.0, "Cisco ASA 1 h", "5 days"),
    ):
        (note,) = _idle_notes(_idle_rst(tmp_path, builtin_rules, idle_s, 62))
        assert f"after {int(idle_s * 1000)} ms of silence" in note
        assert f"default idle timeout of {nearest}" in note and not_named not in note


def test_a_short_gap_names_no_vendor_timeout(builtin_rules, tmp_path) -> None:
    # 6 s, as in the conntrack-idle-rst recording (conntrack's timeout shortened to 3 s).
    (note,) = _idle_notes(_idle_rst(tmp_path, builtin_rules, 6.0, 62))
    assert "after 6000 ms of silence" in note and "shortened conntrack or NAT timeout" in note
    assert "nearest" not in note


def test_a_short_gap_before_the_peers_own_reset_is_not_blamed_on_a_device(
    builtin_rules, tmp_path
) -> None:
    assert not _idle_notes(_idle_rst(tmp_path, builtin_rules, 6.0, 50))


def test_the_rules_own_captures(builtin_rules) -> None:
    (f,) = _run(ROOT / "rules/rst-established/idle-rst.pcap", builtin_rules)
    (note,) = _idle_notes(f)
    assert "after 400000 ms of silence" in note and "AWS NLB 350 s" in note
    (f,) = _run(ROOT / "rules/rst-established/reset-mid-connection.pcap", builtin_rules)
    assert not _idle_notes(f)


def test_data_timeout_names_the_gap_before_the_lost_data(builtin_rules) -> None:
    (f,) = _run(ROOT / "rules/data-timeout/idle-then-silence.pcap", builtin_rules)
    (note,) = _idle_notes(f)
    assert "first the client sent after 6000 ms of silence" in note
    assert "shortened conntrack or NAT timeout" in note
    assert not any(v in note.split("(the usual ones")[0] for v in VENDORS)
    (f,) = _run(ROOT / "rules/data-timeout/retransmissions-then-silence.pcap", builtin_rules)
    assert not _idle_notes(f)


def test_data_timeout_after_a_long_idle_spell(builtin_rules, tmp_path) -> None:
    t = Talk(server_ttl=63)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "A")
    seq = t.nxt["c"]
    t.tcp("c", "PA", b"GET /later HTTP/1.1\r\n\r\n", dt=400.0)
    for dt in (0.2, 0.4, 0.8):
        t.tcp("c", "PA", b"GET /later HTTP/1.1\r\n\r\n", dt=dt, seq=seq)
    path = tmp_path / "silence.pcap"
    t.write(path)
    (f,) = _run(path, builtin_rules)
    (note,) = _idle_notes(f)
    assert "after 400000 ms of silence" in note and "AWS NLB 350 s" in note
    assert f.origin.actor == "unknown" and "400000 ms idle" in f.origin.why


def test_keepalive_race_names_the_idle_spell_and_the_servers_that_match(builtin_rules) -> None:
    for name in ("request-crosses-fin", "fin-crosses-request"):
        (f,) = _run(ROOT / f"rules/keepalive-race/{name}.pcap", builtin_rules)
        assert f.rule == "PD-TCP-021", name  # write-after-peer-close is overridden
        assert "after 5000 ms of silence" in f.cause
        assert any("5 s default of Apache httpd" in n for n in f.notes)
        assert not any("nginx's 75 s" in n for n in f.notes)
    (f,) = _run(ROOT / "rules/keepalive-race/write-after-fin.pcap", builtin_rules)
    assert f.rule == "PD-TCP-006"


def test_a_reset_without_ack_right_after_the_handshake_names_the_accept_queue(
    builtin_rules,
) -> None:
    (f,) = _run(ROOT / "rules/rst-after-handshake/abort-on-overflow.pcap", builtin_rules)
    assert f.rule == "PD-TCP-004"
    assert any("tcp_abort_on_overflow=1" in n for n in f.notes)
    (f,) = _run(ROOT / "rules/rst-after-handshake/server-rst.pcap", builtin_rules)
    assert not any("tcp_abort_on_overflow" in n for n in f.notes)


def test_an_overflowed_connection_is_one_finding(builtin_rules) -> None:
    # Not also a data timeout (ETIMEDOUT) or a reset after the handshake (ECONNRESET).
    (f,) = _run(ROOT / "rules/accept-queue-overflow/synack-after-request.pcap", builtin_rules)
    assert (f.rule, f.primary().errno, f.origin.actor) == ("PD-TCP-020", "ETIMEDOUT", "peer")
    (f,) = _run(ROOT / "rules/accept-queue-overflow/request-expired-rst.pcap", builtin_rules)
    assert (f.rule, f.primary().errno) == ("PD-TCP-020", "ECONNRESET")
    assert any("frame 15" in n for n in f.notes)
    assert not _run(ROOT / "rules/accept-queue-overflow/ack-lost-then-accepted.pcap", builtin_rules)


def test_an_overflow_seen_on_the_servers_host_is_the_servers(builtin_rules) -> None:
    # The backlog-overflow recording: on the server's host the ACK and the request are seen
    # arriving; on the client's they are only seen leaving (a doubt says so).
    rec = ROOT / "samples/recorded/backlog-overflow"
    (server,) = [f for f in _run(rec / "server.pcap", builtin_rules) if f.rule == "PD-TCP-020"]
    assert (server.origin.actor, server.origin.confidence) == ("peer", "high")
    (client,) = [f for f in _run(rec / "client.pcap", builtin_rules) if f.rule == "PD-TCP-020"]
    assert client.origin.confidence == "medium"
    assert any("passes the client's SYN" in r for r in client.confidence.reasons)
