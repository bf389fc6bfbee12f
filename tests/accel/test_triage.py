"""The C first pass (pcapdiag/_triage.c, triage.py) only sets aside connections that the
Python tracker would have found nothing in, and the report is the same with it as without.

Test data: the project's own captures and the public ones, a benchmark capture from
bench/generate.py (thousands of interleaved connections, every kind of failure the rules
know, more than one sweep period), and small captures built here packet by packet, each for
one way a connection must not be taken as plain."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

import pcapdiag.accel.triage as triage
from pcapdiag.accel.blind import blind_to_plain
from pcapdiag.accel.fast_decode import decode_record
from pcapdiag.api import analyze
from pcapdiag.decode.packets import Datagram, IcmpError, Segment
from pcapdiag.errors import CaptureError
from pcapdiag.io.reader import open_capture
from pcapdiag.rules.convert import pattern_of
from pcapdiag.rules.engine import evaluate
from pcapdiag.rules.loader import load_rules
from pcapdiag.rules.model import Outcome, Rule, SideSpec
from pcapdiag.settings import Settings
from pcapdiag.track import plain
from pcapdiag.track.flows import FlowTable
from tests.accel.test_fast_path import OURS, PUBLIC

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import generate  # noqa: E402


def test_the_extension_is_built() -> None:
    # CI builds the wheel with a compiler; without one the pass is silently off, which must
    # not go unnoticed here (every other test below would compare Python with itself).
    assert triage.available()


@pytest.fixture(scope="module")
def bench_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("triage") / "bench.pcap"
    generate.generate(path, 40_000, seed=5)
    return path


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fifteen minutes of traffic in 150,000 frames: past the sweep period of both passes,
    connections closed for longer than the linger time are released while the capture goes
    on (a 40,000-frame minute never gets there)."""
    path = tmp_path_factory.mktemp("triage") / "long.pcap"
    generate.generate(path, 150_000, seed=6, duration_s=900)
    return path


@pytest.fixture(scope="module")
def steady_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture that begins in steady state (generate.py --steady-state): most of its frames
    belong to connections that were open before it started (no SYN seen), a third of them
    without timestamps, with spurious retransmissions and delayed ACKs."""
    path = tmp_path_factory.mktemp("triage") / "steady.pcap"
    generate.generate(path, 60_000, seed=8, steady=True)
    return path


def _report(paths: list[Path], rules: list[Rule], enabled: bool, monkeypatch, **kw) -> str:
    """The report with the first pass (`enabled`) or without it."""
    try:
        report = analyze(
            [str(p) for p in paths], rules, settings=Settings(accelerate=enabled), **kw
        )
    except CaptureError as exc:
        return f"CaptureError: {exc}"
    return json.dumps(report.to_dict(), sort_keys=True)


def _decoded(reader):
    """Every record of `reader` decoded, as the session decodes them without the pass."""
    for record in reader.records():
        yield decode_record(*record)


def _plan(path: Path, rules: list[Rule], table: FlowTable | None = None) -> triage.Plan | None:
    reader = open_capture(str(path))
    try:
        plans = triage.first_pass(reader, rules, {}, 1, table)
        return plans[0] if plans else None
    finally:
        reader.close()


@pytest.mark.parametrize("path", OURS + PUBLIC, ids=lambda p: str(p.name))
def test_same_report_with_and_without_the_first_pass(path: Path, builtin_rules, monkeypatch):
    with_pass = _report([path], builtin_rules, True, monkeypatch)
    with_pass_2_jobs = _report([path], builtin_rules, True, monkeypatch, jobs=2)
    without = _report([path], builtin_rules, False, monkeypatch)
    assert with_pass == without
    assert with_pass_2_jobs == without


@pytest.mark.parametrize("capture", ["bench_capture", "long_capture", "steady_capture"])
def test_same_report_on_a_benchmark_capture(capture, builtin_rules, monkeypatch, request):
    path = request.getfixturevalue(capture)
    plan = _plan(path, builtin_rules)
    assert plan is not None and plan.plain > 500  # the pass ran and set much aside
    without = _report([path], builtin_rules, False, monkeypatch, jobs=1)
    for jobs in (1, 2):
        assert _report([path], builtin_rules, True, monkeypatch, jobs=jobs) == without


def _answered(events) -> bool:
    """Each retransmission and keepalive is followed by its answer (plain.REPAIRED_BY) from
    its receiver."""
    for i, ev in enumerate(events):
        answer = plain.REPAIRED_BY.get(ev.name)
        if answer is not None and not any(
            later.name == answer and later.sender is ev.receiver for later in events[i + 1 :]
        ):
            return False
    return True


@pytest.mark.parametrize("capture", ["bench_capture", "long_capture", "steady_capture"])
def test_plain_connections_are_what_the_tracker_finds_plain(capture, builtin_rules, request):
    """Every connection the pass marks, seen by the Python tracker with all its frames: only
    the events, end states and reasons plain.PLAIN_* and REPAIRED_* allow (each repair
    answered), or for a connection seen mid-stream (roles guessed: no SYN captured)
    plain.MIDSTREAM_*, and no rule matches. And a connection is marked whole or not at all."""
    bench_capture = request.getfixturevalue(capture)
    plan = _plan(bench_capture, builtin_rules)
    assert plan is not None
    bits = plan.bits

    def marked(n: int) -> bool:
        i = n - 1
        return i < len(bits) * 8 and bool(bits[i >> 3] >> (i & 7) & 1)

    table = FlowTable()
    records = []
    reader = open_capture(str(bench_capture))
    for pkt in _decoded(reader):
        if isinstance(pkt, Segment):
            records += table.add_segment(pkt)
        elif isinstance(pkt, Datagram):
            records += table.add_datagram(pkt)
        elif isinstance(pkt, IcmpError):
            records += table.add_icmp(pkt)
    records += table.finish(reader.last_ts_ns)
    n_plain = {"tcp": 0, "udp": 0}
    repaired = midstream = unseen = 0
    for rec in records:
        flags = {marked(f) for f in rec.frames}
        assert len(flags) == 1, f"{rec.client} {rec.server}: marked in part"
        if flags != {True}:
            continue
        n_plain[rec.proto] += 1
        if rec.proto == "udp":
            events, ends = plain.PLAIN_UDP_EVENTS, plain.PLAIN_UDP_END
        elif rec.roles == "guessed":
            events, ends = plain.MIDSTREAM_REPAIRED_EVENTS, plain.MIDSTREAM_END
            midstream += 1
        else:
            events, ends = plain.REPAIRED_EVENTS, plain.PLAIN_END
        names = {ev.name for ev in rec.events}
        assert names <= events
        anomalies = {ev.kind for ev in rec.events if ev.name == "anomaly"}
        assert anomalies <= set(plain.MIDSTREAM_ANOMALIES)
        unseen += bool(anomalies)
        assert _answered(rec.events)
        repaired += bool(names & plain.REPAIRED_BY.keys())
        end = rec.events[-1]
        assert end.client_state in ends["client_state"]
        assert end.server_state in ends["server_state"]
        assert end.reason in ends["reason"]
        assert all(evaluate(r, rec) is None for r in builtin_rules)
    assert n_plain == {"tcp": plan.plain, "udp": plan.plain_udp}
    assert plan.plain_udp > 50
    assert repaired > 50  # retransmissions repaired, keepalives answered
    assert sum(marked(n) for n in range(1, plan.records + 1)) > plan.records // 2
    if capture == "steady_capture":  # most connections began before it did
        assert midstream > 200 and unseen > 0


# -- captures built here ---------------------------------------------------------------------

_MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def _ip4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, s, d) + (
        payload
    )


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIHHHH", sport, dport, seq, ack, 0x5000 | flags, 64000, 0, 0) + data


def _eth(ip: bytes, ethertype: int = 0x0800) -> bytes:
    return _MAC + struct.pack("!H", ethertype) + ip


def _pcap(path: Path, frames: list[tuple[float, bytes]]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, f in frames:
        sec = int(t)
        out.append(struct.pack("<IIII", sec, round((t - sec) * 1e6), len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


C, S = "10.0.0.1", "10.0.0.2"


def _connection(t: float, sport: int, isn_c: int = 1000, isn_s: int = 5000):
    """A plain connection from C:sport to S:80: handshake, a request, a response, FINs."""
    a, b = isn_c, isn_s
    return [
        (t, _eth(_ip4(C, S, 6, _tcp(sport, 80, a, 0, 0x02)))),
        (t + 0.01, _eth(_ip4(S, C, 6, _tcp(80, sport, b, a + 1, 0x12)))),
        (t + 0.02, _eth(_ip4(C, S, 6, _tcp(sport, 80, a + 1, b + 1, 0x10)))),
        (t + 0.03, _eth(_ip4(C, S, 6, _tcp(sport, 80, a + 1, b + 1, 0x18, b"GET /")))),
        (t + 0.04, _eth(_ip4(S, C, 6, _tcp(80, sport, b + 1, a + 6, 0x18, b"200 OK")))),
        (t + 0.05, _eth(_ip4(C, S, 6, _tcp(sport, 80, a + 6, b + 7, 0x11)))),
        (t + 0.06, _eth(_ip4(S, C, 6, _tcp(80, sport, b + 7, a + 7, 0x11)))),
        (t + 0.07, _eth(_ip4(C, S, 6, _tcp(sport, 80, a + 7, b + 8, 0x10)))),
    ]


def test_a_plain_connection_is_set_aside(tmp_path, builtin_rules) -> None:
    plan = _plan(_pcap(tmp_path / "one.pcap", _connection(100.0, 40000)), builtin_rules)
    assert plan is not None and plan.plain == 1 and plan.records == 8
    assert plan.bits[0] == 0xFF


def test_ports_reused_within_the_linger_time(tmp_path, builtin_rules, monkeypatch) -> None:
    # Python numbers the second connection on the same ports 2 (flows.py): the first must go
    # through the tracker too. 200 s later (past the linger time) both are plain.
    near = _connection(100.0, 40000) + _connection(130.0, 40000, 9000, 7000)
    plan = _plan(_pcap(tmp_path / "near.pcap", near), builtin_rules)
    assert plan is not None and plan.plain == 0
    far = _connection(100.0, 40000) + _connection(300.0, 40000, 9000, 7000)
    plan = _plan(_pcap(tmp_path / "far.pcap", far), builtin_rules)
    assert plan is not None and plan.plain == 2
    for name in ("near.pcap", "far.pcap"):
        path = tmp_path / name
        assert _report([path], builtin_rules, True, monkeypatch) == _report(
            [path], builtin_rules, False, monkeypatch
        )


def test_an_icmp_error_about_a_connection(tmp_path, builtin_rules, monkeypatch) -> None:
    frames = _connection(100.0, 40000)
    quoted = _ip4(C, S, 6, _tcp(40000, 80, 1001, 5001, 0x18, b"GET /"))[:28]
    icmp = _ip4("10.0.0.254", C, 1, bytes([3, 1, 0, 0, 0, 0, 0, 0]) + quoted)
    frames.insert(5, (100.045, _eth(icmp)))
    path = _pcap(tmp_path / "icmp.pcap", frames)
    plan = _plan(path, builtin_rules)
    assert plan is not None and plan.plain == 0
    assert _report([path], builtin_rules, True, monkeypatch) == _report(
        [path], builtin_rules, False, monkeypatch
    )


def _repaired(tmp_path: Path, name: str, frames, rules, monkeypatch) -> int:
    """Connections the pass sets aside in `frames`; the report must not change."""
    path = _pcap(tmp_path / name, frames)
    plan = _plan(path, rules)
    assert plan is not None
    assert _report([path], rules, True, monkeypatch) == _report([path], rules, False, monkeypatch)
    return plan.plain


def test_retransmissions(tmp_path, builtin_rules, monkeypatch) -> None:
    # The request sent again before the response acknowledges it: the tracker's retransmission
    # then `recovered`; no rule can match (data-timeout needs no `recovered`): set aside.
    frames = _connection(100.0, 40000)
    frames.insert(4, (100.035, frames[3][1]))
    assert _repaired(tmp_path, "recovered.pcap", frames, builtin_rules, monkeypatch) == 1
    # Sent again after the response acknowledged it (spurious): the server's FIN then
    # acknowledges the client's FIN, past snd_una, and that is the `recovered`: set aside.
    late = _connection(100.0, 40000)
    late.insert(5, (100.045, late[3][1]))
    assert _repaired(tmp_path, "late.pcap", late, builtin_rules, monkeypatch) == 1
    # The same with the capture ending before the FINs: no ACK past snd_una after it.
    assert _repaired(tmp_path, "late-open.pcap", late[:6], builtin_rules, monkeypatch) == 0
    # Never acknowledged, and the capture ends: data-timeout's business (3 retransmissions).
    silent = _connection(100.0, 40000)[:4]
    silent += [(100.2 * k, silent[3][1]) for k in (1, 2, 3)]
    assert _repaired(tmp_path, "silent.pcap", silent, builtin_rules, monkeypatch) == 0
    # Part old, part new data (seq below snd_nxt, end above): not a repair this pass knows.
    a, b, p = 1000, 5000, 40000
    overlap = _connection(100.0, p)
    overlap[3] = (100.03, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 1, b + 1, 0x18, b"GET"))))
    overlap.insert(4, (100.035, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 2, b + 1, 0x18, b"ET /")))))
    assert _repaired(tmp_path, "overlap.pcap", overlap, builtin_rules, monkeypatch) == 0
    # A FIN sent again: left to the tracker.
    fin = _connection(100.0, p)
    fin.insert(6, (100.055, fin[5][1]))
    assert _repaired(tmp_path, "fin.pcap", fin, builtin_rules, monkeypatch) == 0


def test_keepalives(tmp_path, builtin_rules, monkeypatch) -> None:
    a, b, p = 1000, 5000, 40000
    conn = _connection(100.0, p)
    # After the exchange (the client has sent a + 6, everything acknowledged), a probe at
    # snd_nxt - 1 with no data, and one with the one garbage byte Linux may send.
    probe = (130.0, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 5, b + 7, 0x10))))
    probe1 = (160.0, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 5, b + 7, 0x10, b"x"))))
    answer = (130.01, _eth(_ip4(S, C, 6, _tcp(80, p, b + 7, a + 6, 0x10))))
    answer1 = (160.01, _eth(_ip4(S, C, 6, _tcp(80, p, b + 7, a + 6, 0x10))))
    answered = [*conn[:5], probe, answer, probe1, answer1, *[(t + 100, f) for t, f in conn[5:]]]
    assert _repaired(tmp_path, "answered.pcap", answered, builtin_rules, monkeypatch) == 1
    # Unanswered probes, then the capture ends: keepalive-timeout's business.
    unanswered = [*conn[:5], probe, (160.0, probe[1]), (190.0, probe[1])]
    assert _repaired(tmp_path, "unanswered.pcap", unanswered, builtin_rules, monkeypatch) == 0
    # A probe while data is still unacknowledged is not a keepalive (snd_una < snd_nxt).
    early = [*conn[:4], (100.035, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 5, b + 1, 0x10)))), *conn[4:]]
    assert _repaired(tmp_path, "early.pcap", early, builtin_rules, monkeypatch) == 0


def test_gre_turns_the_pass_off(tmp_path, builtin_rules) -> None:
    # Python decapsulates GRE (decode_ip._gre): a TCP segment inside is beyond the C pass.
    inner = _ip4(C, S, 6, _tcp(40001, 80, 1, 0, 0x02))
    gre = _eth(_ip4("192.0.2.1", "192.0.2.2", 47, struct.pack("!HH", 0, 0x0800) + inner))
    frames = [*_connection(100.0, 40000), (101.0, gre)]
    assert _plan(_pcap(tmp_path / "gre.pcap", frames), builtin_rules) is None


def test_too_many_unanswered_attempts_turn_the_pass_off(tmp_path, builtin_rules) -> None:
    syns = [(100.0 + i, _eth(_ip4(C, S, 6, _tcp(41000 + i, 80, 7, 0, 0x02)))) for i in range(5)]
    path = _pcap(tmp_path / "syns.pcap", _connection(90.0, 40000) + syns)
    assert _plan(path, builtin_rules, FlowTable(max_attempts=3)) is None
    plan = _plan(path, builtin_rules, FlowTable(max_attempts=10))
    assert plan is not None and plan.plain == 1


def _rule(rid: str, sequence: list[dict], absent: tuple[dict, ...] = ()) -> Rule:
    """A custom rule with this match (steps written without `as` are bound as s0, s1...)."""
    steps = [{"as": f"s{i}", **step} for i, step in enumerate(sequence)]
    return Rule(
        id=rid,
        rev=1,
        name=rid.lower(),
        title="a custom rule",
        severity="low",
        status="test",
        proto="tcp",
        path=ROOT,
        description="a custom rule",
        references=(),
        match=pattern_of({"sequence": steps, "absent": list(absent)}),
        outcome=Outcome(side=SideSpec("client"), effects={}, cause="a cause", evidence=()),
    )


def test_a_rule_about_healthy_connections_turns_the_pass_off(builtin_rules) -> None:
    assert blind_to_plain(builtin_rules, {})
    syn_timeout = next(r for r in builtin_rules if r.name == "syn-timeout")
    assert blind_to_plain([syn_timeout], {})  # its end is in SYN_SENT: never plain
    closed = _rule("X-1", [{"event": "handshake"}, {"event": "fin"}])
    assert not blind_to_plain([closed], {})
    still_open = [{"event": "end", "where": {"field": "client_state", "eq": "ESTABLISHED"}}]
    assert not blind_to_plain([_rule("X-2", still_open)], {})
    reset = [{"event": "handshake"}, {"event": "rst"}]
    assert blind_to_plain([_rule("X-3", reset)], {})


_SLOW_RULE = """\
schema: pcapdiag.rule/v1
id: PD-TEST-004
rev: 1
name: slow-repair
title: Data sent again, then acknowledged
status: test
severity: low
description: A test rule about healthy connections that repaired a loss.
references: [RFC 6298]
proto: tcp
match:
  sequence:
    - {as: first, event: retransmission}
    - {as: healed, event: recovered, from: {receiver_of: first}}
outcome:
  side: {sender_of: first}
  effects: {linux: [], freebsd: [], macos: [], windows: []}
  cause: The {side} sent data again at frame {first.frame}.
  next_steps: None.
  evidence: [first, healed]
tests:
  - name: the request sent again, then answered
    capture: both.pcap
    why: built packet by packet in the test below
    expect: [{side: client, call: null, errno: null, frames: [5, 6]}]
  - name: a plain connection
    capture: plain.pcap
    why: built packet by packet in the test below
    expect: []
"""


def test_a_rule_about_repairs_keeps_repaired_connections_with_the_tracker(
    tmp_path, builtin_rules, monkeypatch
) -> None:
    # The built-in rules that bind a retransmission or keepalive need its answer absent.
    assert blind_to_plain(builtin_rules, {}, repaired=True)
    # A rule that reports recovered retransmissions sees repaired connections: they go to
    # the tracker, plain ones are still set aside.
    frames = _connection(100.0, 40000)
    frames.insert(4, (100.035, frames[3][1]))
    rules = tmp_path / "rules"
    rules.mkdir()
    path = _pcap(rules / "both.pcap", frames + _connection(101.0, 40001))
    _pcap(rules / "plain.pcap", _connection(101.0, 40001))
    (rules / "slow.yaml").write_text(_SLOW_RULE)
    (slow,) = load_rules([rules], builtin=False)
    assert blind_to_plain([slow], {}) and not blind_to_plain([slow], {}, repaired=True)
    plan = _plan(path, [slow])
    assert plan is not None and plan.plain == 1
    with_pass = _report([path], [slow], True, monkeypatch)
    assert with_pass == _report([path], [slow], False, monkeypatch)
    assert "PD-TEST-004" in with_pass
    # An answer forbidden only from one side, or only with some fields, proves nothing.
    for absent in (
        {"event": "recovered", "from": "client", "between": ["r", "end"]},
        {"event": "recovered", "between": ["r", "end"], "where": {"field": "frame", "gt": 9}},
        {"event": "recovered", "between": ["start", "end"]},
        {"event": "keepalive_ack", "between": ["r", "end"]},
    ):
        rule = _rule("X-5", [{"as": "r", "event": "retransmission"}], (absent,))
        assert not blind_to_plain([rule], {}, repaired=True), absent
    rule = _rule(
        "X-6",
        [{"as": "k", "event": "keepalive"}],
        ({"event": "keepalive_ack", "from": {"receiver_of": "k"}, "between": ["k", "end"]},),
    )
    assert blind_to_plain([rule], {}, repaired=True)


@pytest.mark.parametrize("workers", [2, 3])
def test_the_c_pass_shards_as_shard_py_does(bench_capture, builtin_rules, workers) -> None:
    """Under --jobs each worker skips the TCP and UDP frames of the others' flows: exactly
    those that shard.shard_of gives to another worker."""
    from pcapdiag.accel.shard import shard_of

    reader = open_capture(str(bench_capture))
    plans = triage.first_pass(reader, builtin_rules, {}, workers)
    reader.close()
    assert plans is not None and len(plans) == workers
    for k, plan in enumerate(plans):
        others = 0
        reader = open_capture(str(bench_capture))
        for pkt in _decoded(reader):
            if not isinstance(pkt, Segment | Datagram):
                continue
            i = pkt.frame - 1
            skipped = bool(plan.bits[i >> 3] >> (i & 7) & 1) if i < len(plan.bits) * 8 else False
            own = bool(plan.own[i >> 3] >> (i & 7) & 1) if i < len(plan.own) * 8 else False
            theirs = shard_of(pkt, workers) != k
            assert (skipped and not own) == theirs
            others += theirs
        assert others > 1000
    # One pass for all workers sets aside exactly what it does for one: each plain
    # connection counted by one worker, its frames its own.
    alone = _plan(bench_capture, builtin_rules)
    assert alone is not None
    assert sum(p.plain for p in plans) == alone.plain
    assert sum(p.plain_udp for p in plans) == alone.plain_udp
    owned = [int.from_bytes(p.own, "little") for p in plans]
    assert sum(owned) == int.from_bytes(alone.own, "little")  # disjoint, and all of them


def test_server_data_before_the_handshake_completes(tmp_path, builtin_rules) -> None:
    # The response comes before the client's ACK of the SYN-ACK: not how a server in
    # SYN-RECEIVED behaves (the client's ACK was lost in capture, or worse), left to Python.
    a, b, p = 1000, 5000, 40000
    frames = [
        (100.00, _eth(_ip4(C, S, 6, _tcp(p, 80, a, 0, 0x02)))),
        (100.01, _eth(_ip4(S, C, 6, _tcp(80, p, b, a + 1, 0x12)))),
        (100.02, _eth(_ip4(S, C, 6, _tcp(80, p, b + 1, a + 1, 0x18, b"hello")))),
        (100.03, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 1, b + 6, 0x10)))),
        (100.05, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 1, b + 6, 0x11)))),
        (100.06, _eth(_ip4(S, C, 6, _tcp(80, p, b + 6, a + 2, 0x11)))),
        (100.07, _eth(_ip4(C, S, 6, _tcp(p, 80, a + 2, b + 7, 0x10)))),
    ]
    plan = _plan(_pcap(tmp_path / "early.pcap", frames), builtin_rules)
    assert plan is not None and plan.plain == 0


def test_settings_turn_the_pass_off(tmp_path, builtin_rules, monkeypatch) -> None:
    path = _pcap(tmp_path / "one.pcap", _connection(100.0, 40000))
    assert _plan(path, builtin_rules) is not None
    calls: list[object] = []
    real = triage.first_pass

    def counting(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(triage, "first_pass", counting)
    analyze([str(path)], builtin_rules, settings=Settings(accelerate=False))
    assert calls == []
    analyze([str(path)], builtin_rules)
    assert len(calls) == 1


def _udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def test_udp_flows(tmp_path, builtin_rules, monkeypatch) -> None:
    query = [
        (100.0, _eth(_ip4(C, S, 17, _udp(5353, 53, b"q")))),
        (100.1, _eth(_ip4(S, C, 17, _udp(53, 5353, b"answer")))),
    ]
    # Answered: plain. The same ports again after more than five minutes of silence: a second
    # flow for flows.py (UDP_IDLE_NS), plain too.
    later = [(t + 400.0, f) for t, f in query]
    plan = _plan(_pcap(tmp_path / "dns.pcap", query + later), builtin_rules)
    assert plan is not None and (plan.plain, plan.plain_udp) == (0, 2)
    # Refused: the ICMP error names the flow, which goes to Python (rule PD-UDP-001).
    quoted = _ip4(C, S, 17, _udp(5353, 53, b"q"))[:28]
    icmp = _eth(_ip4(S, C, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted))
    refused = [query[0], (100.1, icmp)]
    path = _pcap(tmp_path / "refused.pcap", refused + later)
    plan = _plan(path, builtin_rules)
    # And so does the later flow on the same ports (see the next test).
    assert plan is not None and plan.plain_udp == 0
    with_pass = _report([path], builtin_rules, True, monkeypatch)
    assert with_pass == _report([path], builtin_rules, False, monkeypatch)
    assert "ECONNREFUSED" in with_pass


def test_ports_of_a_flow_python_judges_stay_with_python(tmp_path, builtin_rules, monkeypatch):
    """When the next flow on the same ports starts, its first packet closes the previous
    one in flows.py, at that packet's time. If the previous flow went to Python, the next one
    must too, however long after: set aside, Python would close the previous flow later, at a
    sweep or at the end of the capture, with another end time or reason. (Found by the
    fuzzer: UDP refused, the same ports again with a time far ahead, then time going back.)"""
    quoted = _ip4(C, S, 17, _udp(5353, 53, b"q"))[:28]
    udp = [
        (100.0, _eth(_ip4(C, S, 17, _udp(5353, 53, b"q")))),
        (100.1, _eth(_ip4(S, C, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted))),
        (900.0, _eth(_ip4(C, S, 17, _udp(5353, 53, b"q")))),
        (100.2, _eth(_ip4(S, C, 17, _udp(1, 2, b"other")))),
    ]
    # A lone SYN (Python judges it), then a plain connection on the same ports three hours
    # later, and the capture ends: a few packets, no sweep in between.
    tcp = [(100.0, _eth(_ip4(C, S, 6, _tcp(40000, 80, 7, 0, 0x02))))]
    tcp += _connection(100.0 + 3 * 3600, 40000)
    for name, frames, n_plain in (("udp.pcap", udp, 1), ("tcp.pcap", tcp, 0)):
        path = _pcap(tmp_path / name, frames)
        with_pass = _report([path], builtin_rules, True, monkeypatch)
        plan = _plan(path, builtin_rules)
        assert plan is not None and plan.plain + plan.plain_udp == n_plain  # only "other"
        assert with_pass == _report([path], builtin_rules, False, monkeypatch), name


def test_files_past_the_plans_budget_are_planned_by_each_worker(
    bench_capture, tmp_path, builtin_rules, monkeypatch
) -> None:
    # Two captures in one run: the first planned ahead for the workers, the second (past the
    # budget) by each worker itself; the report is the same as one process makes.
    from pcapdiag.accel import parallel

    second = tmp_path / "second.pcap"
    second.write_bytes(_pcap(tmp_path / "x.pcap", _connection(100.0, 40000)).read_bytes())
    planned: list[str] = []
    real = parallel._plan

    def counting(source, *args):
        planned.append(source)
        return real(source, *args)

    monkeypatch.setattr(parallel, "_plan", counting)
    monkeypatch.setattr(parallel, "PLANS_BUDGET", 0)
    paths = [bench_capture, second]
    two = _report(paths, builtin_rules, True, monkeypatch, jobs=2)
    assert planned == [str(bench_capture)]
    assert two == _report(paths, builtin_rules, True, monkeypatch, jobs=1)
    assert two == _report(paths, builtin_rules, False, monkeypatch, jobs=1)


# -- pcapng -----------------------------------------------------------------------------------

DATA = sorted(p for p in (ROOT / "tests/data").rglob("*") if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.name)
def test_same_report_on_damaged_and_fuzzed_inputs(path: Path, builtin_rules, monkeypatch):
    # The pass stops before the damage, as the reader does; what it planned must agree.
    assert _report([path], builtin_rules, True, monkeypatch) == _report(
        [path], builtin_rules, False, monkeypatch
    )


def _pcap_records(data: bytes):
    """(seconds, microseconds, captured bytes, original length) of each record."""
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, caplen, orig = struct.unpack_from("<IIII", data, pos)
        yield sec, usec, data[pos + 16 : pos + 16 + caplen], orig
        pos += 16 + caplen


def _block(btype: int, body: bytes, e: str) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _to_pcapng(
    data: bytes, *, big=False, ns=False, offset_s=0, sections=1, custom_every=0
) -> bytes:
    """The pcap `data` as pcapng, written here block by block (pcapng draft sections 4.1-4.3):
    an SHB and an Ethernet IDB per section (microseconds, or nanoseconds with if_tsresol 9;
    if_tsoffset `offset_s`), every record an EPB; with several sections the records are split
    between them, each section in the byte order given. With `custom_every`, a custom block
    (type 0x00000BAD, which Wireshark numbers as a frame) after every that many records."""
    e = ">" if big else "<"
    opts = b""
    if ns:
        opts += struct.pack(e + "HH", 9, 1) + b"\x09\0\0\0"
    if offset_s:
        opts += struct.pack(e + "HHq", 14, 8, offset_s)
    if opts:
        opts += struct.pack(e + "HH", 0, 0)
    head = _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)
    head += _block(1, struct.pack(e + "HHI", 1, 0, 0) + opts, e)
    records = list(_pcap_records(data))
    cut = len(records) // sections + 1
    out = []
    for k, (sec, usec, frame, orig) in enumerate(records):
        if k % cut == 0:
            out.append(head)
        units = (sec - offset_s) * (10**9 if ns else 10**6) + usec * (1000 if ns else 1)
        epb = struct.pack(e + "IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(frame), orig)
        out.append(_block(6, epb + frame, e))
        if custom_every and k % custom_every == custom_every - 1:
            out.append(_block(0x00000BAD, struct.pack(e + "I", 32473) + b"note", e))
    return b"".join(out)


@pytest.mark.parametrize(
    "variant",
    [{}, {"ns": True}, {"offset_s": 1_600_000_000}, {"big": True}, {"sections": 3}],
    ids=["us", "ns", "offset", "big-endian", "3-sections"],
)
def test_pcapng_is_planned_as_the_same_pcap(variant, bench_capture, tmp_path, builtin_rules):
    ng = tmp_path / "bench.pcapng"
    ng.write_bytes(_to_pcapng(bench_capture.read_bytes(), **variant))
    for workers in (1, 2):
        reader = open_capture(str(bench_capture))
        from_pcap = triage.first_pass(reader, builtin_rules, {}, workers)
        reader.close()
        reader = open_capture(str(ng))
        from_ng = triage.first_pass(reader, builtin_rules, {}, workers)
        reader.close()
        assert from_pcap is not None and from_ng is not None
        for a, b in zip(from_pcap, from_ng, strict=True):
            assert (a.bits, a.own, a.plain, a.plain_udp, a.records) == (
                b.bits,
                b.own,
                b.plain,
                b.plain_udp,
                b.records,
            )


@pytest.mark.parametrize(
    "variant",
    [{"ns": True, "sections": 2}, {"big": True, "sections": 3}, {"offset_s": 1_600_000_000}],
    ids=["ns-2-sections", "big-endian-3-sections", "offset"],
)
def test_a_pcapng_report_is_the_same_with_and_without_the_pass(
    variant, bench_capture, tmp_path, builtin_rules, monkeypatch
) -> None:
    # The second pass reads packet blocks in C batches (_triage.ng_batch) and hands every
    # section and interface header back to the Python reader.
    ng = tmp_path / "bench.pcapng"
    ng.write_bytes(_to_pcapng(bench_capture.read_bytes(), **variant))
    without = _report([ng], builtin_rules, False, monkeypatch)
    assert _report([ng], builtin_rules, True, monkeypatch) == without
    assert _report([ng], builtin_rules, True, monkeypatch, jobs=2) == without
    # And it says what the pcap says (frame numbers, times and findings alike).
    pcap = json.loads(_report([bench_capture], builtin_rules, True, monkeypatch))
    assert json.loads(without)["findings"] == [_as_from(f, str(ng)) for f in pcap["findings"]]


def _as_from(finding: dict, capture: str) -> dict:
    """A JSON finding as the same file under another name would give it."""
    evidence = [{**e, "capture": capture} for e in finding["evidence"]]
    return {**finding, "capture": capture, "evidence": evidence}


def test_pcapng_blocks_numbered_as_frames(bench_capture, tmp_path, builtin_rules, monkeypatch):
    # Custom blocks take a frame number each (as in Wireshark): the batches count them too.
    ng = tmp_path / "custom.pcapng"
    ng.write_bytes(_to_pcapng(bench_capture.read_bytes(), custom_every=997))
    plan = _plan(ng, builtin_rules)
    assert plan is not None and plan.records == 40_000 + 40_000 // 997
    without = _report([ng], builtin_rules, False, monkeypatch)
    assert _report([ng], builtin_rules, True, monkeypatch) == without
    assert json.loads(without)["captures"][0]["frames"] == plan.records


def test_the_pass_steps_aside_for_pcapng_it_does_not_read(tmp_path, builtin_rules) -> None:
    conn = _pcap(tmp_path / "c.pcap", _connection(100.0, 40000)).read_bytes()
    ng = _to_pcapng(conn)
    assert _plan(_write(tmp_path / "ok.pcapng", ng), builtin_rules) is not None
    # An interface of another link type (raw IP), anywhere in the file.
    raw_idb = _block(1, struct.pack("<HHI", 101, 0, 0), "<")
    assert _plan(_write(tmp_path / "raw.pcapng", ng + raw_idb), builtin_rules) is None
    # A Simple Packet Block (no interface, no timestamp).
    spb = _block(3, struct.pack("<I", 60) + bytes(60), "<")
    assert _plan(_write(tmp_path / "spb.pcapng", ng + spb), builtin_rules) is None
    # A resolution whose divisor is beyond 64 bits (2^-100 s).
    e = "<"
    fine = _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e) + _block(
        1, struct.pack(e + "HHI", 1, 0, 0) + struct.pack(e + "HH", 9, 1) + b"\xe4\0\0\0", e
    )
    head = 28 + 20  # the SHB and the IDB _to_pcapng wrote, replaced
    assert _plan(_write(tmp_path / "fine.pcapng", fine + ng[head:]), builtin_rules) is None
    assert _plan(_write(tmp_path / "plain.pcapng", ng[:head] + ng[head:]), builtin_rules)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_long_pcapng_gives_the_same_report(long_capture, tmp_path, builtin_rules, monkeypatch):
    # Fifteen minutes, 150,000 frames: the flow table's sweeps fall inside the C batches'
    # runs of skipped frames, and must fall after the segments before them.
    ng = tmp_path / "long.pcapng"
    ng.write_bytes(_to_pcapng(long_capture.read_bytes(), ns=True))
    without = _report([ng], builtin_rules, False, monkeypatch)
    assert _report([ng], builtin_rules, True, monkeypatch) == without
    pcap = json.loads(_report([long_capture], builtin_rules, True, monkeypatch))
    assert json.loads(without)["findings"] == [_as_from(f, str(ng)) for f in pcap["findings"]]


# -- connections seen mid-stream ----------------------------------------------------------------


def _mid(t: float, frm: str, seq: int, ack: int, flags: int, data: bytes = b"", win: int = 64000):
    """A segment of the connection C:40000 - S:80, sent by `frm` (C or S)."""
    ports = (40000, 80) if frm == C else (80, 40000)
    tcp = struct.pack("!HHIIHHHH", *ports, seq, ack, 0x5000 | flags, win, 0, 0) + data
    return (t, _eth(_ip4(frm, S if frm == C else C, 6, tcp)))


A, B = 1000, 5000  # where the client's and the server's sequence numbers are when it starts


def _midstream(t: float = 100.0):
    """A connection that began before the capture did (no SYN): a request, its response, the
    client's ACK, then both FINs and the last ACK."""
    return [
        _mid(t, C, A, B, 0x18, b"GET /"),
        _mid(t + 0.01, S, B, A + 5, 0x18, b"200 OK"),
        _mid(t + 0.02, C, A + 5, B + 6, 0x10),
        _mid(t + 0.03, C, A + 5, B + 6, 0x11),
        _mid(t + 0.04, S, B + 6, A + 6, 0x11),
        _mid(t + 0.05, C, A + 6, B + 7, 0x10),
    ]


def test_connections_seen_mid_stream_are_set_aside(tmp_path, builtin_rules, monkeypatch) -> None:
    """What the tracker makes of a connection whose SYN the capture missed, when nothing in it
    is for a rule: set aside, and the report is the same."""
    conn = _midstream()
    cases = {
        "closed": conn,
        "open-at-the-end": conn[:3],
        # The capture starts with data in flight: the server acknowledges client data sent
        # before it (ack-of-unseen-data), twice, before the client is seen sending.
        "ack-of-unseen-data": [_mid(99.8, S, B, A - 700, 0x10), _mid(99.9, S, B, A, 0x10), *conn],
        # The client first acknowledges older server data; the server's next data lies beyond
        # that ACK (its segments in between went by before the capture started).
        "gap-before-first-data": [
            _mid(99.9, C, A, B - 900, 0x10),
            _mid(100.0, S, B, A, 0x18, b"200 OK"),
            _mid(100.01, C, A, B + 6, 0x11),
            _mid(100.02, S, B + 6, A + 1, 0x11),
            _mid(100.03, C, A + 1, B + 7, 0x10),
        ],
        # The response sent again after the client acknowledged it (its ACK was on its way);
        # the client's ACK of the server's FIN comes later, past snd_una: `recovered`.
        "spurious-retransmission": [*conn[:3], (100.025, conn[1][1]), *conn[3:]],
        # A keepalive probe at snd_nxt - 1, answered.
        "keepalive-answered": [
            *conn[:3],
            _mid(130.0, C, A + 4, B + 6, 0x10),
            _mid(130.01, S, B + 6, A + 5, 0x10),
            *[(t + 60, f) for t, f in conn[3:]],
        ],
        # The first segment a FIN: the connection closes as it is seen.
        "fin-first": [
            _mid(100.0, S, B, A, 0x11),
            _mid(100.01, C, A, B + 1, 0x11),
            _mid(100.02, S, B + 1, A + 1, 0x10),
        ],
    }
    for name, frames in cases.items():
        assert _repaired(tmp_path, f"{name}.pcap", frames, builtin_rules, monkeypatch) == 1, name
        # What the tracker makes of it: within plain.MIDSTREAM_*, as the name says.
        (rec,) = _tracked(tmp_path / f"{name}.pcap")
        names = [ev.name for ev in rec.events]
        assert rec.roles == "guessed" and set(names) <= plain.MIDSTREAM_REPAIRED_EVENTS, name
        kinds = {ev.kind for ev in rec.events if ev.name == "anomaly"}
        assert kinds == ({"ack-of-unseen-data"} if name == "ack-of-unseen-data" else set()), name
        assert _answered(rec.events) and rec.end_reason in plain.MIDSTREAM_END["reason"]
        repairs = {"spurious-retransmission": "retransmission", "keepalive-answered": "keepalive"}
        assert (repairs.get(name) in names) == (name in repairs), name


def _tracked(path: Path) -> list:
    """The flow records the Python tracker makes of a capture, with all its frames."""
    table = FlowTable()
    reader = open_capture(str(path))
    records = []
    for pkt in _decoded(reader):
        if isinstance(pkt, Segment):
            records += table.add_segment(pkt)
        elif isinstance(pkt, IcmpError):
            records += table.add_icmp(pkt)
    records += table.finish(reader.last_ts_ns)
    reader.close()
    return records


def test_what_keeps_a_mid_stream_connection_with_the_tracker(
    tmp_path, builtin_rules, monkeypatch
) -> None:
    """Each way a connection seen mid-stream must go through the tracker: something a rule
    may look at, or something this pass does not follow as the tracker does. The report is
    the same with the pass and without."""
    conn = _midstream()
    quoted = _ip4(C, S, 6, struct.pack("!HHII", 40000, 80, A, B))
    icmp = _eth(_ip4("10.0.0.254", C, 1, bytes([3, 1, 0, 0, 0, 0, 0, 0]) + quoted))
    cases = {
        # An ACK beyond what the server was seen sending, after it sent data: capture loss.
        "ack-of-lost-data": [*conn[:2], _mid(100.02, C, A + 5, B + 100, 0x10)],
        # Client data past a hole after its first data (previous-segment-not-captured).
        "gap-after-data": [*conn[:2], _mid(100.02, C, A + 10, B + 6, 0x18, b"more")],
        # Data part sent before, part new.
        "overlap": [*conn[:2], _mid(100.02, C, A + 3, B + 6, 0x18, b"T /x")],
        # The request sent again, never acknowledged past it: the capture ends.
        "unanswered-retransmission": [conn[0], (100.2, conn[0][1])],
        # A keepalive probe nobody answers.
        "unanswered-keepalive": [*conn[:3], _mid(130.0, C, A + 4, B + 6, 0x10)],
        "rst": [*conn[:2], _mid(100.02, C, A + 5, B + 6, 0x14)],
        "zero-window": [*conn[:2], _mid(100.02, C, A + 5, B + 6, 0x10, win=0), *conn[3:]],
        "fin-sent-again": [*conn[:4], (100.035, conn[3][1]), *conn[4:]],
        "data-after-own-fin": [*conn[:4], _mid(100.035, C, A + 6, B + 6, 0x18, b"late")],
        "first-segment-without-ack": [_mid(100.0, C, A, 0, 0x08, b"GET /"), *conn[1:]],
        "urgent-data": [_mid(100.0, C, A, B, 0x38, b"GET /"), *conn[1:]],
        "icmp-error-about-it": [*conn[:2], (100.015, icmp), *conn[2:]],
        # A new connection on the same ports while this one is open.
        "syn-on-its-ports": [*conn[:3], _mid(100.5, C, 90000, 0, 0x02)],
        # A segment ten seconds after both ends closed: late for the tracker, not plain here.
        "segment-after-close": [*conn, _mid(110.5, C, A + 6, B + 7, 0x10)],
    }
    for name, frames in cases.items():
        assert _repaired(tmp_path, f"{name}.pcap", frames, builtin_rules, monkeypatch) == 0, name


def test_a_rule_about_mid_stream_anomalies_keeps_them_with_the_tracker(
    tmp_path, builtin_rules, monkeypatch
) -> None:
    assert blind_to_plain(builtin_rules, {}, midstream=True)
    assert blind_to_plain(builtin_rules, {}, repaired=True, midstream=True)
    unseen = {"event": "anomaly", "where": {"field": "kind", "eq": "ack-of-unseen-data"}}
    lost_rst = {"event": "anomaly", "where": {"field": "kind", "eq": "rst-not-received"}}
    open_ = {"event": "end", "where": {"field": "server_state", "eq": "ESTABLISHED"}}
    syn_received = {"event": "end", "where": {"field": "server_state", "eq": "SYN_RECEIVED"}}
    # An anomaly a plain connection seen mid-stream may have, one it never has; an end it
    # may have, one it never has (both its ends start ESTABLISHED).
    assert blind_to_plain([_rule("X-7", [unseen])], {})
    assert not blind_to_plain([_rule("X-7", [unseen])], {}, midstream=True)
    assert blind_to_plain([_rule("X-8", [lost_rst])], {}, midstream=True)
    assert not blind_to_plain([_rule("X-9", [open_])], {}, midstream=True)
    assert blind_to_plain([_rule("X-10", [syn_received])], {}, midstream=True)
    assert not blind_to_plain([_rule("X-10", [syn_received])], {})
    # A rule about that anomaly: the pass still sets aside the connection it sees open, and
    # leaves the one seen mid-stream to the tracker.
    rule = _rule("X-7", [unseen])
    unseen_first = [_mid(99.8, S, B, A - 700, 0x10), _mid(99.9, S, B, A, 0x10), *_midstream()]
    frames = sorted([*_connection(100.0, 40001), *unseen_first], key=lambda f: f[0])
    path = _pcap(tmp_path / "both.pcap", frames)
    plan = _plan(path, [rule])
    assert plan is not None and plan.plain == 1
    assert _report([path], [rule], True, monkeypatch) == _report([path], [rule], False, monkeypatch)


def _arp_request(sender: str, target: str) -> bytes:
    """A broadcast ARP request (RFC 826) for `target`."""
    s = bytes(int(x) for x in sender.split("."))
    d = bytes(int(x) for x in target.split("."))
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _MAC[6:], s, bytes(6), d)
    return b"\xff" * 6 + _MAC[6:] + struct.pack("!H", 0x0806) + body


def test_arp_runs_with_plain_connections(tmp_path, builtin_rules, monkeypatch) -> None:
    # C asks three times for 10.0.0.99 (unanswered: PD-NET-001) while it opens a plain
    # connection to S, which the pass sets aside, SYN and SYN-ACK alike, and a SYN to
    # 10.0.0.99 that stays with the tracker. The ARP frames go to Python as records, the pass
    # still applies, and the run's attempt comes out the same with it, without it and with
    # two workers (the SYN to 10.0.0.99 is worker 1's: shard.py).
    frames = _connection(100.0, 40000)
    frames += [(100.5 + i, _arp_request(C, "10.0.0.99")) for i in range(3)]
    frames.append((100.4, _eth(_ip4(C, "10.0.0.99", 6, _tcp(40001, 8080, 77, 0, 0x02)))))
    frames.sort(key=lambda f: f[0])
    path = _pcap(tmp_path / "arp.pcap", frames)
    plan = _plan(path, builtin_rules)
    assert plan is not None and plan.plain == 1
    without = _report([path], builtin_rules, False, monkeypatch)
    assert _report([path], builtin_rules, True, monkeypatch) == without
    assert _report([path], builtin_rules, True, monkeypatch, jobs=2) == without
    found = [f for f in json.loads(without)["findings"] if f["rule"] == "PD-NET-001"]
    assert len(found) == 1 and found[0]["origin"]["actor"] == "peer"
