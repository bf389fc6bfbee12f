"""SYNs that reached the server's host and were never answered: only a capture on the server's
host shows that the server, not the path, kept silent. Built packet by packet: the same
three SYNs (1 s, then 2 s apart, as Linux retransmits) seen on the client's host (its TTL
64, the server's unseen) and 2 ms later on the server's host (arriving with TTL 63), whose
clock runs 250 ms ahead; one earlier connection, answered, gives the two views a handshake
to set the clocks by. And the same with the SYNs missing on the server's host: lost on the
path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from tests.support.scenario import Talk, write_merged

SKEW = 0.250  # the server host's clock, ahead of the client host's
ONE_WAY = 0.002


TURN = 0.0001  # the server's kernel answering a SYN


def _views(tmp_path: Path, arrive: bool) -> list[str]:
    start = 1_700_000_000.0
    # Connection 1 (port 40001), answered: the client's view, then the server's, each packet
    # at the time it passes that point (the server's clock SKEW ahead).
    client = Talk(client_ttl=64, server_ttl=63, cport=40001, t=start)
    client.tcp("c", "S", dt=0)
    client.tcp("s", "SA", dt=2 * ONE_WAY + TURN)
    client.tcp("c", "A", dt=TURN)
    server = Talk(client_ttl=63, server_ttl=64, cport=40001, t=start + ONE_WAY + SKEW)
    server.tcp("c", "S", dt=0)
    server.tcp("s", "SA", dt=TURN)
    server.tcp("c", "A", dt=2 * ONE_WAY + TURN)
    # Connection 2 (port 40002) a second later: three SYNs (1 s, then 2 s apart), unanswered.
    late = [
        Talk(client_ttl=64, server_ttl=63, cport=40002, t=start + 1.0),
        Talk(client_ttl=63, server_ttl=64, cport=40002, t=start + 1.0 + ONE_WAY + SKEW),
    ]
    for t in late:
        t.tcp("c", "S", dt=0)
        t.tcp("c", "S", dt=1.0, advance=False)
        t.tcp("c", "S", dt=2.0, advance=False)
    # The server's host goes on capturing after the last SYN (another client refused 5 s
    # later), so that its capture ran through the SYNs.
    tail = Talk(client="10.0.0.9", client_ttl=63, server_ttl=64, cport=50000, t=late[1].t + 5)
    tail.tcp("c", "S", dt=0)
    tail.tcp("s", "RA", seq=0, ack=tail.cisn + 1, dt=TURN)
    paths = []
    for name, parts in (
        ("client", [client, late[0]]),
        ("server", [server, *([late[1]] if arrive else []), tail]),
    ):
        paths.append(write_merged(tmp_path / f"{name}.pcap", parts))
    return paths


@pytest.mark.parametrize(
    ("arrive", "actor", "why"),
    [
        (True, "peer", "the server's host received every packet the client sent"),
        (False, "network", "packets never reached the server's host"),
    ],
)
def test_unanswered_syns_two_views(
    arrive: bool, actor: str, why: str, builtin_rules, tmp_path: Path
) -> None:
    views = _views(tmp_path, arrive)
    report = analyze(views, builtin_rules, join=True)
    clock = report.join.clocks[1]
    assert abs(clock.offset_ns - SKEW * 1e9) < 100_000, clock
    assert abs(clock.delay_ns - ONE_WAY * 1e9) < 100_000, clock
    (f,) = [
        f for f in report.findings if f.flow.client.endswith(":40002") and f.primary() is not None
    ]
    assert f.primary().errno == "ETIMEDOUT" and f.capture == views[0]
    assert (f.origin.actor, f.origin.confidence) == (actor, "high"), f.origin.why
    assert why in f.origin.why
