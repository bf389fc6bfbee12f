"""The health of each service (findings/services.py): connections and failed calls by the
server's address and port, counted wherever the report counts connections (the flows Python
judges, the plain ones and the failing classes the accelerator's first pass sets aside), so
that every path gives the same table and its connections add up to the report's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.io.reader import open_capture
from pcapdiag.settings import NO_ACCEL, Settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from floods import ACK, FIN, PSH, SYN, frame, write  # noqa: E402

T0 = 1_700_000_000
NS = 1_000_000_000


def _table(report):
    return {
        key: (
            s.connections,
            s.failed,
            s.others,
            dict(s.calls),
            s.first_failure_ns,
            s.last_failure_ns,
        )
        for key, s in report.services.by.items()
    }


def test_demo_services_as_its_findings_say(builtin_rules) -> None:
    # samples/demo.pcap (README): five failing connections, one to each service, and one
    # healthy connection to 10.0.0.2:80 before the one that ends in EPIPE.
    report = analyze([str(ROOT / "samples/demo.pcap")], builtin_rules)
    cap = str(ROOT / "samples/demo.pcap")
    got = {(proto, server): v[:4] for (c, proto, server), v in _table(report).items() if c == cap}
    assert got == {
        ("tcp", "10.0.0.2:8080"): (1, 1, 0, {("client", "connect", "ECONNREFUSED"): 1}),
        ("tcp", "10.0.0.2:443"): (1, 1, 0, {("client", "recv", "ECONNRESET"): 1}),
        ("tcp", "10.0.7.7:5432"): (1, 1, 0, {("client", "connect", "EHOSTUNREACH"): 1}),
        ("udp", "10.0.0.53:53"): (1, 1, 0, {("client", "recv", "ECONNREFUSED"): 1}),
        ("tcp", "10.0.0.2:80"): (2, 1, 0, {("client", "send", "EPIPE"): 1}),
    }
    assert report.services.connections == report.tcp_connections + report.udp_flows == 6


@pytest.fixture(scope="module")
def outage(tmp_path_factory) -> Path:
    # bench/floods.py's outage: attempt i from a client to server 10.3.0.(1 + i % 200) port
    # 8000 + (i // 200) % 40, SYN at T0 + i * 100 us, RST|ACK 100 us later. 16,000 attempts:
    # each of the 8,000 services gets two, attempts i and i + 8,000.
    path = tmp_path_factory.mktemp("services") / "outage.pcap"
    write(path, "outage", 16_000)
    return path


@pytest.mark.parametrize("settings", [Settings(), NO_ACCEL], ids=["accel", "python"])
def test_outage_counts_every_service_whether_read_or_counted(outage, builtin_rules, settings):
    # With --max-alike 10 each server lists 10 of its 80 refusals: with the accelerator the
    # other 70 are counted by class, port by port (ShapeClass.shares), never read.
    report = analyze([str(outage)], builtin_rules, max_alike=10, settings=settings)
    table = _table(report)
    assert len(table) == 8000
    assert report.services.connections == report.tcp_connections == 16_000
    refused = {("client", "connect", "ECONNREFUSED"): 2}
    for (_cap, proto, server), (conns, failed, others, calls, first, last) in table.items():
        assert (proto, conns, failed, others, calls) == ("tcp", 2, 2, 0, refused)
        host, port = server.rsplit(":", 1)
        h, p = int(host.rsplit(".", 1)[1]) - 1, int(port) - 8000
        i = h + 200 * p  # the first attempt to it; the second is i + 8,000
        # A refusal's finding starts at its SYN (evidence: SYN, RST).
        assert (first, last) == (T0 * NS + i * 100_000, T0 * NS + (i + 8000) * 100_000)


def test_outage_services_are_the_same_under_jobs(outage, builtin_rules) -> None:
    one = analyze([str(outage)], builtin_rules, max_alike=10)
    two = analyze([str(outage)], builtin_rules, max_alike=10, jobs=2)
    assert _table(one) == _table(two)


def _udp(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """Ethernet + IPv4 + UDP with 12 bytes of payload (checksums 0, as bench/floods.py)."""
    import struct

    udp = struct.pack("!HHHH", sport, dport, 8 + 12, 0) + bytes(12)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
    return bytes.fromhex("0200000000020200000000010800") + ip + udp


def _midstream(path: Path) -> None:
    """Two connections the capture joins mid-stream (no SYN), both closed in order, one
    first seen from its server (port 443), one from its client; a DNS query and answer; and
    a connection with its handshake.
    The tracker guesses a mid-stream server from the ports (the lower, below 32768)."""
    a, b = bytes([10, 0, 0, 5]), bytes([10, 0, 0, 6])
    recs: list[tuple[int, bytes]] = []
    # Seen first from the server 10.0.0.6:443.
    s, c = 5000, 9000
    recs += [
        (0, frame(b, a, 443, 50000, s, c, PSH | ACK, 100)),
        (1000, frame(a, b, 50000, 443, c, s + 100, ACK)),
        (2000, frame(a, b, 50000, 443, c, s + 100, FIN | ACK)),
        (3000, frame(b, a, 443, 50000, s + 100, c + 1, FIN | ACK)),
        (4000, frame(a, b, 50000, 443, c + 1, s + 101, ACK)),
    ]
    # Seen first from the client 10.0.0.5:50001 of 10.0.0.6:443.
    recs += [
        (10_000, frame(a, b, 50001, 443, c, s, PSH | ACK, 10)),
        (11_000, frame(b, a, 443, 50001, s, c + 10, ACK)),
        (12_000, frame(a, b, 50001, 443, c + 10, s, FIN | ACK)),
        (13_000, frame(b, a, 443, 50001, s, c + 11, FIN | ACK)),
        (14_000, frame(a, b, 50001, 443, c + 11, s + 1, ACK)),
    ]
    # A DNS query and its answer: a plain UDP flow, its client the first sender.
    recs += [
        (15_000, _udp(a, b, 50003, 53)),
        (16_000, _udp(b, a, 53, 50003)),
    ]
    # With its handshake, to 10.0.0.6:22.
    recs += [
        (20_000, frame(a, b, 50002, 22, c, 0, SYN)),
        (21_000, frame(b, a, 22, 50002, s, c + 1, SYN | ACK)),
        (22_000, frame(a, b, 50002, 22, c + 1, s + 1, ACK)),
        (23_000, frame(a, b, 50002, 22, c + 1, s + 1, FIN | ACK)),
        (24_000, frame(b, a, 22, 50002, s + 1, c + 2, FIN | ACK)),
        (25_000, frame(a, b, 50002, 22, c + 2, s + 2, ACK)),
    ]
    import struct

    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t_us, data in recs:
            fh.write(
                struct.pack("<IIII", T0 + t_us // 1_000_000, t_us % 1_000_000, len(data), len(data))
            )
            fh.write(data)


def test_plain_connections_count_for_their_server(tmp_path, builtin_rules) -> None:
    path = tmp_path / "midstream.pcap"
    _midstream(path)
    triage = pytest.importorskip("pcapdiag.accel.triage")
    if not triage.available():
        pytest.skip("the accelerator is not built")
    with open_capture(str(path)) as reader:
        (plan,) = triage.first_pass(reader, builtin_rules, {}, 1, None)
    # The pass set all three aside, the mid-stream ones named by both ends for Python to
    # guess the server of (first sender first: 10.0.0.6:443, then 10.0.0.5:50001).
    assert (plan.plain, plan.plain_udp) == (3, 1)
    assert sorted(plan.services) == [
        (triage.SERVICE_KNOWN, bytes([10, 0, 0, 6]), 22, None, 0, 1),
        (triage.SERVICE_GUESSED, bytes([10, 0, 0, 5]), 50000, bytes([10, 0, 0, 6]), 443, 1),
        (triage.SERVICE_GUESSED, bytes([10, 0, 0, 6]), 443, bytes([10, 0, 0, 5]), 50001, 1),
        (triage.SERVICE_UDP, bytes([10, 0, 0, 6]), 53, None, 0, 1),
    ]
    tables = []
    for settings in (Settings(), NO_ACCEL):
        report = analyze([str(path)], builtin_rules, settings=settings)
        assert report.findings == []
        tables.append({(p, s): v[:3] for (_c, p, s), v in _table(report).items()})
    assert (
        tables[0]
        == tables[1]
        == {
            ("tcp", "10.0.0.6:443"): (2, 0, 0),
            ("tcp", "10.0.0.6:22"): (1, 0, 0),
            ("udp", "10.0.0.6:53"): (1, 0, 0),
        }
    )
