"""An ICMP error in the server's name: "port unreachable" from the server's own address answers
the client's SYN. Alone, the client's capture takes it for the server's host (its address);
with the server's capture beside it, either the server's host sent it (it shows it leave) or
a device on the way made it (the server's capture, running then, holds none).

Built packet by packet (a firewall forging ICMP errors in a host's name cannot be told from
the host by a recording on one machine's namespaces alone): connection 1 (port 40001), a
handshake both captures see, sets the server's clock (SKEW ahead) and places each capture
on its host; connection 2 (port 40002) is the SYN refused by ICMP; the server's capture runs
on for 5 s (another client's connection) so that it covers that time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from tests.support.scenario import Talk, write_merged

SKEW = 0.120
ONE_WAY = 0.002
TURN = 0.0001
T0 = 1_700_000_000.0


def _views(tmp_path: Path, server_sent_it: bool) -> list[str]:
    client = Talk(client_ttl=64, server_ttl=63, cport=40001, t=T0)
    client.tcp("c", "S", dt=0)
    client.tcp("s", "SA", dt=2 * ONE_WAY + TURN)
    client.tcp("c", "A", dt=TURN)
    server = Talk(client_ttl=63, server_ttl=64, cport=40001, t=T0 + ONE_WAY + SKEW)
    server.tcp("c", "S", dt=0)
    server.tcp("s", "SA", dt=TURN)
    server.tcp("c", "A", dt=2 * ONE_WAY + TURN)
    # Connection 2, a second later: the SYN, and port unreachable in the server's name.
    late_c = Talk(client_ttl=64, server_ttl=63, cport=40002, t=T0 + 1.0)
    syn = late_c.tcp("c", "S", dt=0)
    late_c.icmp_error(syn, router=late_c.server, icmp_type=3, code=3, dt=2 * ONE_WAY + TURN)
    late_s = Talk(client_ttl=63, server_ttl=64, cport=40002, t=T0 + 1.0 + ONE_WAY + SKEW)
    syn_s = late_s.tcp("c", "S", dt=0)
    if server_sent_it:
        late_s.icmp_error(syn_s, router=late_s.server, icmp_type=3, code=3, dt=TURN)
    tail = Talk(client="10.0.0.9", client_ttl=63, server_ttl=64, cport=50000, t=late_s.t + 5)
    tail.tcp("c", "S", dt=0)
    tail.tcp("s", "SA", dt=TURN)
    tail.tcp("c", "A", dt=0.01)
    paths = []
    for name, parts in (("client", [client, late_c]), ("server", [server, late_s, tail])):
        paths.append(write_merged(tmp_path / f"{name}.pcap", parts))
    return paths


@pytest.mark.parametrize(
    ("server_sent_it", "actor", "why"),
    [
        (False, "network", "shows none going out: the server never sent it"),
        (True, "peer", "shows it leave (frame 5)"),
    ],
)
def test_icmp_error_in_the_servers_name(
    server_sent_it: bool, actor: str, why: str, builtin_rules, tmp_path: Path
) -> None:
    views = _views(tmp_path, server_sent_it)
    alone = analyze(views[:1], builtin_rules)
    (f,) = [f for f in alone.findings if f.flow.client.endswith(":40002")]
    assert f.primary().errno == "ECONNREFUSED" and f.origin.actor == "peer"
    report = analyze(views, builtin_rules, join=True)
    assert report.join.clocks[1].how_sure != "none"
    (f,) = [
        f
        for f in report.findings
        if f.flow.client.endswith(":40002") and f.side == "client" and f.capture == views[0]
    ]
    assert f.primary().errno == "ECONNREFUSED"
    assert (f.origin.actor, f.origin.confidence) == (actor, "high"), f.origin.why
    assert why in f.origin.why
