"""Lone SYNs counted by the first pass without being read, and the flow table's cap on
unanswered attempts followed by the pass (_triage.c lone, evict; Plan.evict; EvictOldest):
the report is the same as when the tracker reads every SYN and applies its own cap.

Test data: SYN floods built here packet by packet (struct, deterministic), with the cap
lowered to 300 so that a few thousand SYNs overflow it many times, each varying what the
cap does: spoofed lone SYNs (counted), SYNs sent again and connections answered later
(read, and released by the cap at the frame the pass says), healthy connections and
refusals between them, attempts open when the capture ends, pcap and pcapng; and the cases
where the pass cannot know what the tracker's cap does (a client's RST on an attempt, ports
used again), where it steps aside."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import pcapdiag.accel.triage as triage
import pcapdiag.track.flows as flows
from pcapdiag.api import analyze
from pcapdiag.findings.model import MAX_COUNTED_CLIENTS
from pcapdiag.io.reader import open_capture
from pcapdiag.rules.model import Rule
from pcapdiag.settings import Settings
from tests.accel.test_refused import ACK, RST, SYN, _pcap, _segment
from tests.accel.test_triage import _to_pcapng

CAP = 300
FIN, PSH = 0x01, 0x08
SERVER = bytes([10, 7, 0, 1])
SERVER6 = bytes.fromhex("20010db8000700000000000000000001")


@pytest.fixture(autouse=True)
def _small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flows, "MAX_ATTEMPTS", CAP)


def flood(seed: int = 4, count: int = 4000, *, rst_from_client: bool = False, reuse: bool = False):
    """`count` events 2 ms apart (8 s): mostly spoofed SYNs to SERVER:80 (a tenth over IPv6
    to SERVER6), and every so often
    a SYN sent again after 0.2 s, a connection answered 0.4 s late, a healthy connection, a
    refusal; with `rst_from_client`, one client gives up on its attempt with a RST; with
    `reuse`, the ports of a refusal are used again within the linger time."""
    rng = random.Random(seed)
    frames: list[tuple[int, bytes]] = []
    refused_ports = (b"", 0)
    t0 = 1_000_000_000
    for i in range(count):
        t = t0 + i * 2_000
        src = bytes([172, 16 + (i >> 16) % 16, (i >> 8) & 255, i & 255])
        sport = 1024 + i % 60000
        isn = rng.getrandbits(32)
        kind = i % 50
        if kind == 7:  # a client that sends its SYN again after 0.2 s, never answered
            frames.append((t, _segment(src, SERVER, sport, 80, isn, 0, SYN, ttl=64)))
            frames.append((t + 200_000, _segment(src, SERVER, sport, 80, isn, 0, SYN, ttl=64)))
        elif kind == 13:  # answered, but late: 0.4 s
            s_isn = rng.getrandbits(32)
            frames.append((t, _segment(src, SERVER, sport, 80, isn, 0, SYN)))
            frames.append(
                (t + 400_000, _segment(SERVER, src, 80, sport, s_isn, isn + 1, SYN | ACK))
            )
            frames.append((t + 400_100, _segment(src, SERVER, sport, 80, isn + 1, s_isn + 1, ACK)))
        elif kind == 21:  # a healthy connection, closed
            s_isn = rng.getrandbits(32)
            c, s = isn, s_isn
            frames += [
                (t, _segment(src, SERVER, sport, 80, c, 0, SYN)),
                (t + 100, _segment(SERVER, src, 80, sport, s, c + 1, SYN | ACK)),
                (t + 200, _segment(src, SERVER, sport, 80, c + 1, s + 1, ACK)),
                (t + 300, _segment(src, SERVER, sport, 80, c + 1, s + 1, FIN | ACK)),
                (t + 400, _segment(SERVER, src, 80, sport, s + 1, c + 2, FIN | ACK)),
                (t + 500, _segment(src, SERVER, sport, 80, c + 2, s + 2, ACK)),
            ]
        elif kind == 33:  # refused
            frames.append((t, _segment(src, SERVER, sport, 8080, isn, 0, SYN)))
            frames.append(
                (t + 150, _segment(SERVER, src, 8080, sport, 0, isn + 1, RST | ACK, window=0))
            )
        else:  # spoofed: one SYN, never answered; a Windows TTL now and then, some IPv6
            ttl = 128 if i % 9 == 4 else 64
            opts = b"\x02\x04\x05\xb4" if i % 4 == 1 else b""
            to = SERVER
            if i % 10 == 6:
                src, to = (
                    bytes.fromhex("20010db8000100000000000000") + i.to_bytes(3, "big"),
                    SERVER6,
                )
            frames.append((t, _segment(src, to, sport, 80, isn, 0, SYN, ttl=ttl, options=opts)))
        if rst_from_client and i == 10:
            frames.append((t + 50, _segment(src, SERVER, sport, 80, isn + 1, 0, RST)))
        if kind == 33 and i < 50:
            refused_ports = (src, sport)
        if reuse and i == 1200:  # a new SYN on the ports of a refusal 2.3 s before
            src0, sport0 = refused_ports
            frames.append((t + 10, _segment(src0, SERVER, sport0, 8080, isn ^ 1, 0, SYN)))
    frames.sort(key=lambda f: f[0])
    return frames


def _report(path: Path, rules: list[Rule], accelerate: bool, **kw) -> str:
    report = analyze([str(path)], rules, settings=Settings(accelerate=accelerate), **kw)
    return json.dumps(report.to_dict(), sort_keys=True)


def _plan(path: Path, rules: list[Rule], max_alike: int) -> triage.Plan | None:
    reader = open_capture(str(path))
    try:
        plans = triage.first_pass(reader, rules, {}, 1, None, max_alike, MAX_COUNTED_CLIENTS)
    finally:
        reader.close()
    return plans[0] if plans else None


def _bits(b: bytes) -> int:
    return sum(bin(x).count("1") for x in b)


@pytest.fixture(scope="module")
def flood_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pcap(tmp_path_factory.mktemp("lone") / "flood.pcap", flood())


@pytest.mark.parametrize("max_alike", [1, 5])
def test_a_flood_counted_unseen_makes_the_same_report(flood_capture, builtin_rules, max_alike):
    plan = _plan(flood_capture, builtin_rules, max_alike)
    assert plan is not None and plan.follows_cap
    lone = [k for k in plan.counted if k.kind == triage.LONE]
    assert sum(k.count for k in lone) > 2500  # the spoofed SYNs, but their exemplars
    assert plan.evicted > 2000  # released by the cap unseen
    assert _bits(plan.evict) > 20  # and the SYNs sent again, released in Python's table
    kw = {"max_alike": max_alike}
    with_pass = _report(flood_capture, builtin_rules, True, **kw)
    assert with_pass == _report(flood_capture, builtin_rules, False, **kw)
    summary = json.loads(with_pass)["summary"]
    assert summary["by_rule"]["PD-TCP-024"] > 2500  # released early, unanswered


def test_the_same_flood_as_pcapng(flood_capture, tmp_path, builtin_rules):
    ng = tmp_path / "flood.pcapng"
    ng.write_bytes(_to_pcapng(flood_capture.read_bytes(), sections=2))
    kw = {"max_alike": 3}
    from_ng = _report(ng, builtin_rules, True, **kw)
    assert from_ng == _report(ng, builtin_rules, False, **kw)
    from_pcap = json.loads(_report(flood_capture, builtin_rules, True, **kw))
    assert json.loads(from_ng)["summary"] == from_pcap["summary"]


@pytest.mark.parametrize(
    "variant", [{"rst_from_client": True}, {"reuse": True}], ids=["client-rst", "reused-ports"]
)
def test_the_pass_steps_aside_when_the_cap_is_not_known(tmp_path, builtin_rules, variant):
    # A RST from a client ends its attempt at a sweep, ports used again may start a new
    # attempt: when the cap then releases one, which one it is the pass cannot tell.
    path = _pcap(tmp_path / "aside.pcap", flood(**variant))
    assert _plan(path, builtin_rules, 3) is None
    kw = {"max_alike": 3}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)


def test_with_arp_every_release_is_pythons(tmp_path, builtin_rules):
    # ARP about: nothing is counted unseen, and every release by the cap is told to
    # Python's table at its frame.
    arp = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x06" + bytes(28)
    frames = flood(count=1500)
    frames.insert(5, (frames[5][0], arp))
    path = _pcap(tmp_path / "arp.pcap", frames)
    plan = _plan(path, builtin_rules, 3)
    assert plan is not None and plan.counted == () and plan.evicted == 0
    assert _bits(plan.evict) > 1000
    kw = {"max_alike": 3}
    assert _report(path, builtin_rules, True, **kw) == _report(path, builtin_rules, False, **kw)
