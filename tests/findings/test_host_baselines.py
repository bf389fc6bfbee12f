"""A RST that is its claimed sender's only packet on its connection, attributed by that host's
TTL on the capture's other connections (track/hosts.py, findings/hosts.py). The case is a SYN
refused by a firewall on the way (`iptables -j REJECT --reject-with tcp-reset` answers in
the server's name with its own initial TTL): captured on the client's host, the server's
SYN-ACKs on another connection arrive with TTL 50 (fourteen routers), the RST with 62 (two).
Captures are built packet by packet for that reason; the recorded scenario reject-tcp-reset
holds the same to a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import wrpcap

from pcapdiag.api import analyze
from pcapdiag.settings import Settings
from pcapdiag.track.hosts import MAX_HOSTS, HostBaselines
from tests.support.scenario import Talk


def _capture(tmp_path: Path, rst_ttl: int, healthy_first: bool = True) -> Path:
    """A healthy connection to port 80 of the server (TTL 50) and a SYN to port 81 answered
    by a RST|ACK with `rst_ttl`, in that order or the other."""
    ok = Talk(server_ttl=50, sport=80, cport=40000)
    ok.handshake()
    ok.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    ok.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    ok.tcp("s", "FA")
    ok.tcp("c", "FA")
    ok.tcp("s", "A")
    refused = Talk(server_ttl=rst_ttl, sport=81, cport=40001)
    refused.t = ok.t + 1 if healthy_first else ok.t - 10
    refused.tcp("c", "S")
    refused.tcp("s", "RA", seq=0, ack=refused.cisn + 1)
    path = tmp_path / "two.pcap"
    wrpcap(str(path), sorted(ok.packets + refused.packets, key=lambda p: float(p.time)))
    return path


def _refused(path: Path, builtin_rules, **kw):
    report = analyze([str(path)], builtin_rules, **kw)
    (f,) = [f for f in report.findings if f.primary() and f.primary().errno == "ECONNREFUSED"]
    return f


@pytest.mark.parametrize("healthy_first", [True, False])
def test_a_refusing_rst_closer_than_the_server_is_the_network(
    builtin_rules, tmp_path: Path, healthy_first: bool
) -> None:
    f = _refused(_capture(tmp_path, 62, healthy_first), builtin_rules)
    assert (f.origin.actor, f.origin.confidence) == ("network", "medium")
    # The healthy connection's SYN-ACK is frame 2 when it comes first, else frame 4.
    frame = 2 if healthy_first else 4
    assert (
        f"TTL 62, the server's own handshake packets on other connections with 50 (frame {frame})"
        in f.origin.why
    )


def test_a_refusing_rst_with_the_servers_ttl_is_the_peer(builtin_rules, tmp_path: Path) -> None:
    f = _refused(_capture(tmp_path, 50), builtin_rules)
    assert (f.origin.actor, f.origin.confidence) == ("peer", "medium")


def test_a_rst_further_than_the_server_stays_unknown(builtin_rules, tmp_path: Path) -> None:
    # TTL 40 is ten routers beyond the server: nothing on the path sends like that.
    f = _refused(_capture(tmp_path, 40), builtin_rules)
    assert f.origin.actor == "unknown"


@pytest.mark.parametrize(
    "kw",
    [
        {"settings": Settings(accelerate=False, fast_decode=False)},
        {"jobs": 2},
    ],
    ids=["pure-python", "two-workers"],
)
def test_every_path_attributes_alike(builtin_rules, tmp_path: Path, kw) -> None:
    f = _refused(_capture(tmp_path, 62), builtin_rules, **kw)
    assert f.origin.actor == "network"


def test_the_first_pass_and_the_tracker_note_the_same_hosts(builtin_rules, tmp_path: Path) -> None:
    path = _capture(tmp_path, 62)
    fast = analyze([str(path)], builtin_rules)
    slow = analyze([str(path)], builtin_rules, settings=Settings(accelerate=False))
    label = str(path)
    assert fast.hosts[label].first == slow.hosts[label].first
    # 10.0.0.1's SYN is frame 1 (TTL 64); 10.0.0.2's SYN-ACK frame 2 (TTL 50).
    assert slow.hosts[label].first == {
        bytes([10, 0, 0, 1]): (1, 64),
        bytes([10, 0, 0, 2]): (2, 50),
    }


def test_the_table_keeps_the_earliest_frame_whatever_the_order() -> None:
    a, b = HostBaselines(), HostBaselines()
    a.note(b"\x01", 7, 60)
    b.note(b"\x01", 3, 61)
    a.merge(b)
    assert a.baseline(b"\x01") == (3, 61)


def test_past_its_size_the_table_gives_no_baseline_at_all() -> None:
    t = HostBaselines()
    for i in range(MAX_HOSTS):
        t.note(i.to_bytes(4, "big"), i + 1, 64)
    assert t.baseline((0).to_bytes(4, "big")) == (1, 64)
    t.note(b"\xff\xff\xff\xff", MAX_HOSTS + 1, 64)
    assert t.overflow and t.baseline((0).to_bytes(4, "big")) is None
    first = HostBaselines()
    first.merge(None)  # the C pass gave up: it saw more hosts than it holds
    assert first.baseline(b"\x01") is None
