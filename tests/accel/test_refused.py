"""Refused connections counted by the first pass without being read (_triage.c refused,
triage.RefusedClass, findings/samples.py): the report is the same as when the tracker reads
every one of them.

Test data: an outage built here packet by packet (struct, deterministic), because what makes
two refused connections alike or not must be varied one thing at a time, which no recording
does: the RST's TTL, the client's platform, SYN options with changing timestamps, SYN
checksums right and wrong (offload), IPv6, ports used again within the linger time, SYNs at
one instant, a timestamp going back, attempts in the capture's last seconds, RSTs that
acknowledge something else. And the benchmark captures of tests/accel/test_triage.py, with a
list short enough that their refused connections are counted."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

import pcapdiag.accel.triage as triage
from pcapdiag.api import analyze
from pcapdiag.errors import CaptureError
from pcapdiag.findings.model import MAX_COUNTED_CLIENTS
from pcapdiag.io.reader import open_capture
from pcapdiag.rules.model import Rule
from pcapdiag.settings import Settings
from tests.accel.test_fast_path import OURS, PUBLIC
from tests.accel.test_triage import _rule, bench_capture, long_capture  # noqa: F401

_MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
SYN, RST, ACK = 0x02, 0x04, 0x10


def _sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _segment(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    *,
    ttl: int = 64,
    window: int = 64240,
    options: bytes = b"",
    ip_id: int = 0,
    good_sum: bool = True,
) -> bytes:
    """Ethernet, IPv4 or IPv6 (by the address length), TCP with `options` (padded)."""
    options += b"\x01" * (-len(options) % 4)
    hl = 5 + len(options) // 4
    tcp = struct.pack("!HHIIHHHH", sport, dport, seq, ack, hl << 12 | flags, window, 0, 0)
    tcp += options
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
    checksum = (~_sum(pseudo + tcp) & 0xFFFF) if good_sum else 0
    tcp = tcp[:16] + struct.pack("!H", checksum) + tcp[18:]
    if len(src) == 4:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, ttl, 6, 0)
        return _MAC + b"\x08\x00" + ip + src + dst + tcp
    ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, ttl)
    return _MAC + b"\x86\xdd" + ip + src + dst + tcp


def _pcap(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t_us, f in frames:
        out.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


_ARP = _MAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(20)


def _icmp_unreachable(router: bytes, to: bytes, quoted: bytes) -> bytes:
    """An ICMP port unreachable from `router` quoting the IPv4 packet of frame `quoted`."""
    body = quoted[14 : 14 + 28]  # its IP header and the first 8 bytes of TCP
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + body
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0) + router + to
    return _MAC + b"\x08\x00" + ip + icmp


def outage(
    seed: int = 3, count: int = 1500, arp: bool = False, late: bool = False
) -> list[tuple[int, bytes]]:
    """`count` connection attempts over 30 s to three servers (one of them IPv6), most
    refused, each varying in one of the ways listed in the module's docstring."""
    rng = random.Random(seed)
    servers = [
        bytes([10, 9, 0, 1]),
        bytes([10, 9, 0, 2]),
        bytes.fromhex("20010db8" + "00" * 11 + "01"),
    ]
    frames: list[tuple[int, bytes]] = []
    used: list[tuple[bytes, int, bytes, int]] = []
    for i in range(count):
        t = 1_000_000_000 + i * 20_000  # 20 ms apart: 30 s
        if i % 97 == 5:
            t = frames[-1][0]  # at the same instant as the one before
        server = servers[i % 3]
        v6 = len(server) == 16
        client = (
            bytes.fromhex("20010db8" + "00" * 10 + f"{rng.randrange(1, 60):04x}")
            if v6
            else bytes([10, 8, rng.randrange(0, 4), rng.randrange(1, 250)])
        )
        sport, dport = 30000 + i % 35000, (80, 443, 8080)[rng.randrange(3)]
        if i % 53 == 7 and used:  # the ports of an earlier attempt, within the linger time
            client, sport, server, dport = used[rng.randrange(len(used))]
            v6 = len(server) == 16
        used.append((client, sport, server, dport))
        isn = rng.getrandbits(32)
        windows = i % 11 == 3
        syn_opts = b""
        if i % 5 == 1:  # MSS, SACK permitted, timestamps with a TSval of its own
            tsval = rng.getrandbits(32)
            syn_opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", tsval, 0)
        frames.append(
            (
                t,
                _segment(
                    client,
                    server,
                    sport,
                    dport,
                    isn,
                    0,
                    SYN,
                    ttl=128 if windows else 64,
                    options=syn_opts,
                    ip_id=rng.getrandbits(16),
                    good_sum=i % 7 != 2,
                ),
            )
        )
        if i % 41 == 9:
            continue  # never answered
        ack = isn + 1 if i % 67 != 4 else isn + 9  # or a RST acknowledging something else
        rst_ttl = 60 if i % 4 == 0 else 64  # two hops closer than the server: a firewall
        rtt = rng.randrange(100, 400) if i % 13 else 900  # a round trip that varies
        frames.append(
            (
                t + rtt,
                _segment(server, client, dport, sport, 0, ack, RST | ACK, ttl=rst_ttl, window=0),
            )
        )
        if windows and i % 3 == 0:  # Windows tries again after the RST, 0.5 s later
            frames.append(
                (t + 500_000, _segment(client, server, sport, dport, isn, 0, SYN, ttl=128))
            )
        if arp and i == count // 2:
            frames.append((t + 300, _ARP))
        if late and i % 97 == 11 and not v6:
            rst = frames[-1][1]
            frames.append((t + 40_000_000, rst))  # the RST again 40 s later: a straggler
        if late and i % 89 == 13 and not v6:
            syn = next(f for f in reversed(frames) if f[1][47] == SYN)[1]
            router = bytes([10, 9, 9, 9])
            frames.append((t + 1_000_000, _icmp_unreachable(router, client, syn)))
    frames[-40], frames[-41] = frames[-41], frames[-40]  # a timestamp going back
    if late:
        frames.sort(key=lambda f: f[0])
    return frames


def _report(path: Path, rules: list[Rule], accelerate: bool, **kw) -> str:
    report = analyze([str(path)], rules, settings=Settings(accelerate=accelerate), **kw)
    return json.dumps(report.to_dict(), sort_keys=True)


def _plan(path: Path, rules: list[Rule], max_alike: int, shared: bool = True) -> triage.Plan:
    reader = open_capture(str(path))
    try:
        plans = triage.first_pass(
            reader, rules, {}, 1, None, max_alike, MAX_COUNTED_CLIENTS, shared
        )
    finally:
        reader.close()
    assert plans is not None
    return plans[0]


@pytest.fixture(scope="module")
def outage_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pcap(tmp_path_factory.mktemp("refused") / "outage.pcap", outage())


@pytest.mark.parametrize("max_alike", [1, 4, 30])
@pytest.mark.parametrize("platform", ["auto", "windows"])
def test_counted_refusals_make_the_same_report(outage_capture, builtin_rules, max_alike, platform):
    plan = _plan(outage_capture, builtin_rules, max_alike)
    counted = sum(k.count for k in plan.counted)
    # Most are counted unseen (a class per server, RST TTL, client platform, options...).
    assert counted > 400, counted
    # Exemplars shared by the classes of one base class: a few of each...
    for klass in plan.counted:
        assert len(klass.examples) >= min(max_alike, 2)
    # ... where each class's own would be its first max_alike (the second run's).
    unshared = _plan(outage_capture, builtin_rules, max_alike, shared=False)
    for klass in unshared.counted:
        assert len(klass.examples) >= max_alike
    kw = {"max_alike": max_alike, "platform": platform}
    assert _report(outage_capture, builtin_rules, True, **kw) == _report(
        outage_capture, builtin_rules, False, **kw
    )


def test_classes_split_what_the_rules_tell_apart(outage_capture, builtin_rules):
    plan = _plan(outage_capture, builtin_rules, 4)
    report = analyze([str(outage_capture)], builtin_rules, max_alike=4)
    # The RST's TTL says who sent it (a firewall two hops closer, or the server's host):
    # findings of the two are never counted together.
    groups = {(g.server, g.confidence) for g in report.groups}
    assert len(groups) >= 4
    # Each class counts connections to one server only.
    assert all(k.ports and k.count for k in plan.counted)
    assert len(plan.counted) >= 6


def test_a_capture_with_arp_counts_nothing_unseen(tmp_path, builtin_rules):
    # The tracker's neighbour table notes every SYN and its answer: with ARP about, each
    # refused connection is read (the same report, at the old speed).
    path = _pcap(tmp_path / "arp.pcap", outage(arp=True))
    assert _plan(path, builtin_rules, 4).counted == ()
    assert _report(path, builtin_rules, True, max_alike=4) == _report(
        path, builtin_rules, False, max_alike=4
    )


def test_attempts_still_held_when_the_capture_ends(tmp_path, builtin_rules):
    # The tracker holds a refused connection 3 s after its RST: one still held when the
    # capture ends ends with the capture, later for some of it than for the rest. Counted
    # in classes of their own (their end's distance from the RST is a time rules read:
    # the Windows doubt's elapsed.rst.end).
    frames = outage(count=300)  # 6 s
    path = _pcap(tmp_path / "short.pcap", frames)
    plan = _plan(path, builtin_rules, 1)
    end = frames[-1][0] * 1000
    held = [k for k in plan.counted if k.end_ts_ns == (end, end)]
    assert held and all(k.answer_ts_ns and k.answer_ts_ns[0] >= end - 3 * 10**9 for k in held)
    for platform in ("auto", "windows"):
        kw = {"max_alike": 1, "platform": platform}
        assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


def test_without_a_list_nothing_is_counted_unseen(outage_capture, builtin_rules):
    assert _plan(outage_capture, builtin_rules, 0).counted == ()
    report = analyze([str(outage_capture)], builtin_rules, max_alike=None)
    listed = sum(1 for f in report.findings if f.rule == "PD-TCP-001")
    assert listed > 1000


@pytest.mark.parametrize("capture", ["bench_capture", "long_capture"])
def test_the_benchmark_captures_with_a_short_list(capture, builtin_rules, request):
    # Every kind of failure the rules know, interleaved with healthy traffic: refused
    # connections are recognised among them (one or two to each of many servers, so each is
    # its class's exemplar: nothing to count, and the report must not change for that).
    path = request.getfixturevalue(capture)
    kw = {"max_alike": 1}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


@pytest.mark.parametrize(
    "step",
    [
        {"event": "rst", "from": "server", "within": {"after": "s0", "ms": 1}},
        {"event": "rst", "from": "server", "where": {"field": "idle_ms", "ge": 1}},
    ],
    ids=["within", "idle_ms"],
)
def test_a_rule_on_the_round_trip_splits_classes(tmp_path, builtin_rules, step):
    # A custom rule telling refusals within 1 ms from slower ones (by `within`, by the RST's
    # idle_ms): the round trips of 0.1 to 0.4 ms and 0.9 ms here all fall on one side, so a
    # slower answer is given to every fifth: they must not be counted with the others.
    frames = outage(count=900)
    slow = []
    for i, (t, f) in enumerate(frames):
        if f[12:14] == b"\x08\x00" and f[47] == RST | ACK and i % 5 == 0:
            t += 2_000  # 2 ms later
        slow.append((t, f))
    path = _pcap(tmp_path / "slow.pcap", slow)
    rules = [*builtin_rules, _rule("X-SLOW", [{"event": "syn", "from": "client"}, step])]
    plan = _plan(path, rules, 2)
    assert sum(k.count for k in plan.counted) > 200
    kw = {"max_alike": 2}
    assert _report(path, rules, True, **kw) == _report(path, rules, False, **kw)


@pytest.mark.parametrize("path", OURS + PUBLIC, ids=lambda p: str(p.name))
def test_every_capture_with_one_finding_listed_alike(path: Path, builtin_rules) -> None:
    # The recordings and the public captures (nmap's scans among them) with the shortest
    # list: whatever the pass counts unseen in them, the report must not change.
    kw = {"max_alike": 1}
    try:
        with_pass = _report(path, builtin_rules, True, **kw)
    except CaptureError as exc:
        with_pass = f"CaptureError: {exc}"
    try:
        without = _report(path, builtin_rules, False, **kw)
    except CaptureError as exc:
        without = f"CaptureError: {exc}"
    assert with_pass == without


def test_refusals_kept_past_a_sweep(tmp_path, builtin_rules):
    # 40,000 attempts over 800 s: sweeps move refused connections out of the pass's flow
    # table into Tombs; their ports used again, a RST sent again 40 s later (the tracker
    # drops it as a straggler) and ICMP errors about them 1 s later (the tracker still holds
    # them: some are moved by the sweep in between) must still make them,
    # and what follows on their ports, Python's.
    path = _pcap(tmp_path / "long.pcap", outage(count=40_000, late=True))
    plan = _plan(path, builtin_rules, 3)
    assert sum(k.count for k in plan.counted) > 30_000
    kw = {"max_alike": 3}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)
