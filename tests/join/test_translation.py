"""Views that name one connection differently: address translation between the capture
points, and a firewall that also rewrites the client's sequence numbers (sequence number
randomisation, as some firewalls do; no iptables target does it, so these captures are built
packet by packet). The recorded SNAT/DNAT scenario (samples/recorded/nat-data-timeout) is
held in tests/system/test_recorded_join.py.

The client's view: 10.0.0.1:40000 -> 192.0.2.10:443 (the service's public address). The
server's view: 10.1.0.5:61000 -> 10.1.0.20:8443, 2 ms later by the path and 40 ms later by
its clock; with the client's sequence numbers moved by REWRITE where the firewall rewrites
them.
"""

from __future__ import annotations

from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.join import translate
from pcapdiag.join.clock import Clock
from pcapdiag.join.match import Joined
from tests.support.scenario import Talk, write_merged

SKEW = 0.040
ONE_WAY = 0.002
REWRITE = 777_777
T0 = 1_700_000_000.0


def _pair(cport: int = 40000, nport: int = 61000, rewrite: int = REWRITE, t: float = T0):
    client = Talk(
        client="10.0.0.1", server="192.0.2.10", cport=cport, sport=443, cisn=1000,
        client_ttl=64, server_ttl=60, t=t,
    )  # fmt: skip
    server = Talk(
        client="10.1.0.5", server="10.1.0.20", cport=nport, sport=8443, cisn=1000 + rewrite,
        client_ttl=61, server_ttl=64, t=t + SKEW,
    )  # fmt: skip
    return client, server


def _both(client: Talk, server: Talk, frm: str, flags: str, data: bytes = b"", gap=0.01):
    """One packet crossing both points, sent `gap` after the last one passed its sender's
    view: it passes the receiver's view ONE_WAY later. The server's clock reads SKEW more."""
    sender, receiver = (client, server) if frm == "c" else (server, client)
    skew = {id(client): 0.0, id(server): SKEW}
    sent = sender.t - skew[id(sender)] + gap  # true time
    sender.tcp(frm, flags, data, dt=sent + skew[id(sender)] - sender.t)
    arrive = sent + ONE_WAY + skew[id(receiver)]
    receiver.tcp(frm, flags, data, dt=max(arrive - receiver.t, 0.0))


def _exchange(client: Talk, server: Talk) -> None:
    """Handshake, a request, a response, a second request, a second response, then the
    server resets the connection."""
    for frm, flags, data in (
        ("c", "S", b""),
        ("s", "SA", b""),
        ("c", "A", b""),
        ("c", "PA", b"q" * 120),
        ("s", "PA", b"r" * 300),
        ("c", "PA", b"q" * 50),
        ("s", "PA", b"r" * 1200),
        ("s", "RA", b""),
    ):
        _both(client, server, frm, flags, data)


def _write(tmp_path: Path, name: str, talks: list[Talk]) -> str:
    return write_merged(tmp_path / f"{name}.pcap", talks)


def test_rewritten_sequence_numbers_match_by_lengths_and_timing(builtin_rules, tmp_path) -> None:
    client, server = _pair()
    _exchange(client, server)
    views = [_write(tmp_path, "client", [client]), _write(tmp_path, "server", [server])]
    report = analyze(views, builtin_rules, join=True)
    assert (report.join.connections, report.join.translated) == (1, 1)
    # The matched handshake sets the server's clock: SKEW ahead, within the path's delay.
    clock = report.join.clocks[1]
    assert abs(clock.offset_ns - SKEW * 1e9) < 100_000, clock
    assert abs(clock.delay_ns - ONE_WAY * 1e9) < 100_000, clock
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    assert f.primary().errno == "ECONNRESET"
    (note,) = [n for n in f.notes if n.startswith("Address translation")]
    assert "10.1.0.5:61000 -> 10.1.0.20:8443" in note and "payload lengths and timing" in note
    # The RST is the server's own: frame 8 of both files, and the client's rewritten
    # packets are found in the server's view once their numbers are moved back.
    assert (views[1], 8) in f.evidence
    assert not [n for n in f.notes if "never reached" in n]
    assert "never sent it" not in f.origin.why


def test_two_candidates_alike_are_not_matched(builtin_rules, tmp_path) -> None:
    # Two connections with the same lengths 1 ms apart, through the same rewriting: either
    # could be either; nothing is joined and each view's findings stand alone.
    a = _pair(40000, 61000)
    b = _pair(40001, 61001, rewrite=REWRITE + 5, t=T0 + 0.001)
    for client, server in (a, b):
        _exchange(client, server)
    views = [
        _write(tmp_path, "client", [a[0], b[0]]),
        _write(tmp_path, "server", [a[1], b[1]]),
    ]
    report = analyze(views, builtin_rules, join=True)
    assert (report.join.connections, report.join.translated) == (0, 0)
    assert report.join.clocks[1].how_sure == "none"


def test_the_same_client_isn_with_another_server_isn_is_another_connection(
    builtin_rules, tmp_path
) -> None:
    # Translated but not rewritten, so the client's ISN is the same in both views, while
    # the server's differ: not one connection (and their payload 2 s apart does not fit).
    client, server = _pair(rewrite=0)
    server.sisn = server.nxt["s"] = 9999
    _exchange(client, server)
    for pkt in server.packets:
        pkt.time += 2.0
    views = [_write(tmp_path, "client", [client]), _write(tmp_path, "server", [server])]
    report = analyze(views, builtin_rules, join=True)
    assert report.join.connections == 0


def test_translated_isn_kept_matches_by_sequence_numbers(builtin_rules, tmp_path) -> None:
    client, server = _pair(rewrite=0)
    _exchange(client, server)
    views = [_write(tmp_path, "client", [client]), _write(tmp_path, "server", [server])]
    report = analyze(views, builtin_rules, join=True)
    assert (report.join.connections, report.join.translated) == (1, 1)
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    (note,) = [n for n in f.notes if n.startswith("Address translation")]
    assert "initial sequence numbers" in note


def test_unknown_rewrite_claims_no_loss(builtin_rules, tmp_path) -> None:
    # The server's view starts after the handshake and the server sends no payload: how far
    # the firewall moved the server's numbers is unknown (here: not at all, but the join
    # cannot know), so no packet is claimed lost or unsent on either side.
    client, server = _pair()
    for frm, flags, data in (
        ("c", "S", b""),
        ("s", "SA", b""),
        ("c", "A", b""),
        ("c", "PA", b"q" * 120),
        ("s", "A", b""),
        ("c", "PA", b"q" * 500),
        ("s", "A", b""),
        ("c", "PA", b"q" * 700),
        ("s", "RA", b""),
    ):
        _both(client, server, frm, flags, data)
    server.packets = server.packets[3:]  # its capture began after the handshake
    views = [_write(tmp_path, "client", [client]), _write(tmp_path, "server", [server])]
    report = analyze(views, builtin_rules, join=True)
    assert (report.join.connections, report.join.translated) == (1, 1)
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    assert [c for c, _ in f.evidence] == [views[0]] * len(f.frames)
    assert not [n for n in f.notes if "never reached" in n or "Round trip" in n]


class _Flow:
    """What the matching reads of a flow record: its roles (and its identity)."""

    roles = "known"


# The server's clock known within 1 ms of the client's (as a handshake both saw gives it).
CLOCKS = {
    "a": Clock("a", 0, 0, 0, 0, None, "reference"),
    "b": Clock("b", 0, 1_000_000, 0, 1, None, "medium"),
}


def _lone_flows(n: int, apart_ns: int) -> tuple[list[Joined], dict]:
    """n flows in each of views a and b, no two named alike, b's client sequence numbers
    moved by REWRITE: flow i starts apart_ns after flow i - 1 and its first request is
    100 + i % 10 bytes (every tenth alike in lengths), then 200 back and 50 more."""
    joined: list[Joined] = []
    sigs = {}
    for label, rewrite in (("a", 0), ("b", REWRITE)):
        for i in range(n):
            flow = _Flow()
            j = Joined("tcp", f"10.0.0.1:{i}", "10.0.0.2:80", {label: flow})  # type: ignore[dict-item]
            segs = (
                ("client", 1 + rewrite, 100 + i % 10),
                ("server", 1, 200),
                ("client", 101 + rewrite, 50),
            )
            sigs[(label, id(flow))] = translate.Signature(None, None, segs, T0_NS + i * apart_ns)
            joined.append(j)
    return joined, sigs


def test_many_flows_are_not_compared_pair_by_pair(monkeypatch) -> None:
    # 3,000 lone flows in each view, 10 ms apart, ISNs rewritten: the lengths stage looks
    # up each flow's candidates by its first lengths and time, so it tests a few thousand
    # pairs, not nine million.
    n = 3000
    joined, sigs = _lone_flows(n, 10_000_000)
    calls = {"fits": 0}
    real = translate._unique_pairs

    def counting(in_x, candidates, fits):
        def counted(a, b):
            calls["fits"] += 1
            return fits(a, b)

        return real(in_x, candidates, counted)

    monkeypatch.setattr(translate, "_unique_pairs", counting)
    out = translate.through_translation(joined, ("a", "b"), sigs, CLOCKS)
    # Flows alike in lengths come every 100 ms: each has its own and the others alike
    # within 0.5 s (100 to 500 ms away) as candidates, so none is unique and none is paired
    # (ambiguity joins nothing), after a few candidates each.
    assert calls["fits"] < 20 * n
    assert len(out) == 2 * n


def test_many_flows_pair_with_their_own_when_apart() -> None:
    # Flows alike in lengths 10 s apart: each has one candidate, its own.
    n = 2000
    joined, sigs = _lone_flows(n, 1_000_000_000)
    out = translate.through_translation(joined, ("a", "b"), sigs, CLOCKS)
    assert len(out) == n
    assert all(j.client == f"10.0.0.1:{i}" and len(j.flows) == 2 for i, j in enumerate(out))
    assert all(j.shifts["b"] == (REWRITE, 0) for j in out)


T0_NS = int(T0 * 1e9)
