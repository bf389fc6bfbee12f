"""SYNs answered by an ICMP or ICMPv6 error counted by the first pass without being read
(_triage.c icmp_shape, icmp_answered; triage.ICMP): the report is the same as when the tracker
reads every one of them.

Test data: an outage of unreachable hosts built here packet by packet (struct,
deterministic), varying one thing at a time, which no recording does: the error's kind
(host unreachable and admin prohibited from routers, port unreachable from the server itself,
TTL exceeded, ICMPv6 address unreachable and admin prohibited) and kinds the tracker ignores in
SYN_SENT (fragmentation needed, an unknown unreachable code, ICMPv6 packet too big), errors
quoting another sequence number or too little of the SYN to read it, errors after a second or
more of silence, errors sent twice, errors with IP options, SYNs sent again after the error
(BSD and macOS do), Windows TTLs, SYNs never answered, attempts in the capture's last
seconds."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

import pcapdiag.accel.triage as triage
import pcapdiag.track.flows as flows
from bench import floods
from pcapdiag.findings.model import MAX_COUNTED_CLIENTS
from pcapdiag.io.reader import open_capture
from tests.accel import test_lone
from tests.accel.test_refused import _MAC, SYN, _pcap, _plan, _report, _segment
from tests.accel.test_triage import _rule

ROUTERS = {
    4: (bytes([10, 20, 0, 254]), bytes([10, 21, 0, 254])),
    6: (bytes.fromhex("20010db8" + "00" * 11 + "fe"),),
}
SERVERS = {
    4: [bytes([10, 20, 0, 1]), bytes([10, 20, 0, 2]), bytes([10, 21, 0, 3])],
    6: [bytes.fromhex("20010db8" + "00" * 11 + "01")],
}
# (family, type, code): aborting a connect, and ignored by the tracker in SYN_SENT.
ABORTING = [(4, 3, 1), (4, 3, 13), (4, 3, 3), (4, 11, 0), (6, 1, 3), (6, 1, 1)]
IGNORED = [(4, 3, 4), (4, 3, 99), (6, 2, 0)]


def _icmp(
    reporter: bytes,
    to: bytes,
    syn: bytes,
    icmp_type: int,
    code: int,
    *,
    quote: int = 8,
    options: bool = False,
) -> bytes:
    """An ICMP (IPv4 `reporter`) or ICMPv6 error quoting the IP header of frame `syn` and
    `quote` bytes of its TCP header."""
    if len(reporter) == 4:
        body = syn[14 : 14 + 20 + quote]
        icmp = struct.pack("!BBHI", icmp_type, code, 0, 0) + body
        opts = b"\x01\x01\x01\x00" if options else b""
        ip = struct.pack(
            "!BBHHHBBH", 0x45 + len(opts) // 4, 0, 20 + len(opts) + len(icmp), 0, 0, 61, 1, 0
        )
        return _MAC + b"\x08\x00" + ip + reporter + to + opts + icmp
    body = syn[14 : 14 + 40 + quote]
    icmp = struct.pack("!BBHI", icmp_type, code, 0, 1280 if icmp_type == 2 else 0) + body
    ip = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 61)
    return _MAC + b"\x86\xdd" + ip + reporter + to + icmp


def unreachable(seed: int = 5, count: int = 1500, clean: bool = False) -> list[tuple[int, bytes]]:
    """`count` attempts 20 ms apart (30 s), most answered by an ICMP error, each varying in
    one of the ways the module's docstring lists; `clean`: only errors that abort a connect,
    each quoting its SYN as sent, once, and nothing after them."""
    rng = random.Random(seed)
    frames: list[tuple[int, bytes]] = []
    for i in range(count):
        t = 1_000_000_000 + i * 20_000
        family = 6 if i % 7 == 3 else 4
        server = SERVERS[family][i % len(SERVERS[family])]
        if family == 4:
            client = bytes([10, 8, rng.randrange(0, 4), rng.randrange(1, 250)])
        else:
            client = bytes.fromhex("20010db8" + "00" * 10 + f"{rng.randrange(0x100, 0x160):04x}")
        sport, dport = 20000 + i % 40000, (80, 443)[rng.randrange(2)]
        isn = rng.getrandbits(32)
        windows = i % 11 == 5
        syn = _segment(client, server, sport, dport, isn, 0, SYN, ttl=128 if windows else 64)
        frames.append((t, syn))
        if i % 43 == 8:
            continue  # never answered
        kinds = [k for k in ABORTING if k[0] == family]
        _fam, icmp_type, code = kinds[rng.randrange(len(kinds))]
        if i % 31 == 4 and not clean:
            _fam, icmp_type, code = next(k for k in IGNORED[i % 3 :] + IGNORED if k[0] == family)
        reporter = ROUTERS[family][i % len(ROUTERS[family])]
        if (icmp_type, code) in ((3, 3), (1, 4)) or i % 19 == 3:
            reporter = server  # port unreachable, or a host saying it of itself
        delay = rng.randrange(300, 3000)  # microseconds
        if i % 37 == 6:
            delay = 1_500_000  # after a second and a half of silence
        elif i % 59 == 7:
            delay = 4_000_000
        quote, seq_off, options = 8, 0, False
        if clean:
            pass
        elif i % 53 == 10:
            seq_off = 7  # quotes another sequence number: not accepted
        elif i % 61 == 11:
            quote = 4  # too little of the TCP header to read the sequence number
        elif i % 67 == 12 and family == 4:
            options = True
        quoted = syn
        if seq_off:
            quoted = _segment(client, server, sport, dport, isn + seq_off, 0, SYN, ttl=64)
        err = _icmp(reporter, client, quoted, icmp_type, code, quote=quote, options=options)
        frames.append((t + delay, err))
        if i % 29 == 2 and not clean:
            frames.append((t + delay + 50, err))  # the error twice
        if i % 23 == 9 and not clean:  # BSD and macOS send their SYN again after the error
            frames.append((t + delay + 1_000_000, syn))
    frames.sort(key=lambda f: f[0])
    return frames


@pytest.fixture(scope="module")
def outage_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pcap(tmp_path_factory.mktemp("unreachable") / "unreachable.pcap", unreachable())


@pytest.mark.parametrize("max_alike", [1, 4, 30])
@pytest.mark.parametrize("platform", ["auto", "windows", "macos"])
def test_counted_errors_make_the_same_report(outage_capture, builtin_rules, max_alike, platform):
    plan = _plan(outage_capture, builtin_rules, max_alike)
    answered = [k for k in plan.counted if k.kind == triage.ICMP]
    # Most are counted unseen (a class per server, kind, reporter, client platform...),
    # fewer with a longer list (30 exemplars of each of its dozens of base classes).
    assert sum(k.count for k in answered) > (500 if max_alike < 30 else 250)
    assert {k.answer_ts_ns is not None for k in answered} == {True}
    kw = {"max_alike": max_alike, "platform": platform}
    with_pass = _report(outage_capture, builtin_rules, True, **kw)
    assert with_pass == _report(outage_capture, builtin_rules, False, **kw)
    if platform == "auto":  # Linux: the kinds' errnos (Windows sends its SYN again)
        by_errno = json.loads(with_pass)["summary"]["by_errno"]
        assert {"EHOSTUNREACH", "ECONNREFUSED"} <= set(by_errno), by_errno


def test_what_the_tracker_reads_otherwise_is_read(tmp_path, builtin_rules):
    # Only errors of the kinds that abort a connect, quoting the SYN's own sequence number
    # in an IP packet without options, are counted: a capture of nothing else counts none.
    frames = [f for f in unreachable(count=600)]
    plan_all = _plan(_pcap(tmp_path / "all.pcap", frames), builtin_rules, 1)
    counted = sum(k.count for k in plan_all.counted if k.kind == triage.ICMP)
    odd: list[tuple[int, bytes]] = []
    rng = random.Random(9)
    for i in range(300):
        t = 1_000_000_000 + i * 20_000
        client, server = bytes([10, 8, 1, 1 + i % 200]), SERVERS[4][0]
        isn = rng.getrandbits(32)
        syn = _segment(client, server, 30000 + i, 80, isn, 0, SYN)
        odd.append((t, syn))
        variant = i % 4
        if variant == 0:
            err = _icmp(ROUTERS[4][0], client, syn, 3, 4)  # ignored in SYN_SENT
        elif variant == 1:
            quoted = _segment(client, server, 30000 + i, 80, isn + 1000, 0, SYN)
            err = _icmp(ROUTERS[4][0], client, quoted, 3, 1)  # another sequence number
        elif variant == 2:
            err = _icmp(ROUTERS[4][0], client, syn, 3, 1, quote=4)  # no sequence number
        else:
            err = _icmp(ROUTERS[4][0], client, syn, 3, 1, options=True)
        odd.append((t + 500, err))
    path = _pcap(tmp_path / "odd.pcap", odd)
    assert counted > 200
    assert not [k for k in _plan(path, builtin_rules, 1).counted if k.kind == triage.ICMP]
    kw = {"max_alike": 1}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


def test_a_rule_on_the_end_splits_classes(tmp_path, builtin_rules):
    # The tracker holds a connection an ICMP error ended for its full grace (10 s: BSD and
    # macOS send their SYN again), and a rule may read when it ended: those of the capture's
    # last 10 s end with it, the others 10 s after their error.
    path = _pcap(tmp_path / "short.pcap", unreachable(count=1000))  # 20 s
    late_end = _rule(
        "X-LATE-END",
        [
            {"event": "syn", "from": "client"},
            {"event": "icmp_error"},
            {"event": "end", "not_within": {"after": "s1", "ms": 9000}},
        ],
    )
    # And whether the error came from the server's host itself (from_peer) or a router.
    from_host = _rule(
        "X-FROM-HOST",
        [
            {"event": "syn", "from": "client"},
            {"event": "icmp_error", "where": {"field": "from_peer", "eq": True}},
        ],
    )
    rules = [*builtin_rules, late_end, from_host]
    plan = _plan(path, rules, 2)
    assert sum(k.count for k in plan.counted if k.kind == triage.ICMP) > 200
    kw = {"max_alike": 2}
    with_pass = _report(path, rules, True, **kw)
    assert with_pass == _report(path, rules, False, **kw)
    by_rule = json.loads(with_pass)["summary"]["by_rule"]
    assert by_rule["X-LATE-END"] > 400 and by_rule["X-FROM-HOST"] > 100


def test_errors_then_a_flood_past_the_cap(tmp_path, builtin_rules, monkeypatch):
    # An attempt an ICMP error ended leaves the tracker's attempts only at a sweep after its
    # grace: once one is counted, the pass cannot tell which attempt the cap releases, and
    # steps aside when the cap must release one (a SYN flood after the errors, over a cap
    # lowered to 300).
    monkeypatch.setattr(flows, "MAX_ATTEMPTS", test_lone.CAP)
    frames = unreachable(count=500, clean=True)  # 10 s: nothing else ends an attempt
    frames += [(t + 20_000_000, f) for t, f in test_lone.flood(count=2000)]
    path = _pcap(tmp_path / "then-flood.pcap", frames)
    reader = open_capture(str(path))
    try:
        assert triage.first_pass(reader, builtin_rules, {}, 1, None, 3, MAX_COUNTED_CLIENTS) is None
    finally:
        reader.close()
    kw = {"max_alike": 3}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


def test_an_error_of_the_other_family_is_read(tmp_path, builtin_rules):
    # An ICMPv6 error quoting an IPv4 SYN (a translator's, or crafted): the tracker reads it
    # with the ICMPv6 kinds; the pass, which would read its sender and kind as IPv4's, leaves
    # it to Python.
    # And an ICMP error quoting an IPv6 SYN, fragmentation needed: ignored in SYN_SENT as
    # ICMP, but read as ICMPv6 type 3 (hop limit exceeded) it would abort the connect.
    frames: list[tuple[int, bytes]] = []
    router6, to6 = ROUTERS[6][0], bytes.fromhex("20010db8" + "00" * 10 + "0200")
    router4, to4 = ROUTERS[4][0], bytes([10, 8, 2, 250])
    for i in range(400):
        t = 1_000_000_000 + i * 20_000
        if i % 2:
            client = bytes.fromhex("20010db8" + "00" * 10 + f"{0x300 + i:04x}")
            syn = _segment(client, SERVERS[6][0], 40000 + i, 80, 1000 * i, 0, SYN)
            icmp = struct.pack("!BBHI", 3, 4, 0, 1280) + syn[14 : 14 + 48]
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(icmp), 0, 0, 61, 1, 0)
            err = _MAC + b"\x08\x00" + ip + router4 + to4 + icmp
        else:
            client = bytes([10, 8, 2, 1 + i % 200])
            syn = _segment(client, SERVERS[4][0], 40000 + i, 80, 1000 * i, 0, SYN)
            icmp = struct.pack("!BBHI", 1, 3, 0, 0) + syn[14 : 14 + 28]
            ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 61)
            err = _MAC + b"\x86\xdd" + ip6 + router6 + to6 + icmp
        frames.append((t, syn))
        frames.append((t + 700, err))
    path = _pcap(tmp_path / "cross.pcap", frames)
    assert not [k for k in _plan(path, builtin_rules, 1).counted if k.kind == triage.ICMP]
    kw = {"max_alike": 1}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


def test_the_benchmark_capture(tmp_path, builtin_rules):
    # bench/floods.py's unreachable subnet: 200 servers behind one router, every SYN answered
    # by ICMP host unreachable. Its counts are what the benchmark checks.
    path = tmp_path / "unreachable.pcap"
    floods.write(path, "unreachable", 6000)
    plan = _plan(path, builtin_rules, 5)
    assert sum(k.count for k in plan.counted if k.kind == triage.ICMP) > 4000
    kw = {"max_alike": 5}
    with_pass = _report(path, builtin_rules, True, **kw)
    assert with_pass == _report(path, builtin_rules, False, **kw)
    summary = json.loads(with_pass)["summary"]
    expected = floods.expected("unreachable", 6000)
    assert (summary["by_rule"], summary["by_errno"]) == (expected["by_rule"], expected["by_errno"])
