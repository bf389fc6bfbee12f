"""PD-NET-001 as the report shows it: what the flows table lists, when the capture's end
leaves the outcome open, and the rule's parameters. Captures are the rule's own (built in
tests/support/build_captures.py) or built here packet by packet."""

from __future__ import annotations

from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.findings.quality import ENDED_BEFORE_OUTCOME
from tests.support.build_captures import _arp
from tests.support.scenario import Talk

RULE = Path(__file__).resolve().parents[2] / "rules" / "neighbour-unreachable"


def _ours(report):
    return [f for f in report.findings if f.rule == "PD-NET-001"]


def test_every_flow_lists_a_run_only_when_it_failed(builtin_rules) -> None:
    sweep = analyze([str(RULE / "arp-sweep.pcap")], builtin_rules, keep_flows=True)
    assert not _ours(sweep) and sweep.flows == []  # 20 unanswered runs, none listed
    failed = analyze([str(RULE / "ndp-unanswered.pcap")], builtin_rules, keep_flows=True)
    (flow,) = failed.flows
    assert (flow.proto, flow.client, flow.server, flow.failed) == (
        "neighbour",
        "[fd00::1]:0",
        "[fd00::99]:0",
        True,
    )


def test_a_sweep_is_a_parameter_away(builtin_rules) -> None:
    params = {"PD-NET-001": {"max_targets": 20}}
    report = analyze([str(RULE / "arp-sweep.pcap")], builtin_rules, params=params)
    assert len(_ours(report)) == 20


def _three_requests(tail_s: float | None) -> Talk:
    """Three unanswered requests 1 s apart; with `tail_s`, an unrelated datagram that long
    after the third keeps the capture going."""
    t = Talk(server="10.0.0.99")
    for dt in (0.001, 1.0, 1.0):
        _arp(t, t.client, t.server, dt=dt)
    if tail_s is not None:
        other = Talk(client="10.0.0.5", server="10.0.0.6", t=t.t + tail_s)
        other.udp("c", b"x")
        t.packets += other.packets
    return t


def test_a_capture_ending_before_the_kernel_gives_up_lowers_the_confidence(
    builtin_rules, tmp_path: Path
) -> None:
    early, late = tmp_path / "early.pcap", tmp_path / "late.pcap"
    _three_requests(None).write(early)
    _three_requests(1.5).write(late)
    (f,) = _ours(analyze([str(early)], builtin_rules))
    assert ENDED_BEFORE_OUTCOME in f.quality and f.confidence.level == "medium"
    assert any("0 ms after the last request" in r for r in f.confidence.reasons)
    (g,) = _ours(analyze([str(late)], builtin_rules))
    assert ENDED_BEFORE_OUTCOME not in g.quality
    assert not any("after the last request" in r for r in g.confidence.reasons)
    assert (g.primary().call, g.primary().errno, g.frames) == ("connect", "EHOSTUNREACH", (1, 2, 3))


def test_two_requests_are_not_enough(builtin_rules, tmp_path: Path) -> None:
    t = Talk(server="10.0.0.99")
    for dt in (0.001, 2.0):
        _arp(t, t.client, t.server, dt=dt)
    path = tmp_path / "two.pcap"
    t.write(path)
    assert not _ours(analyze([str(path)], builtin_rules))


def test_three_requests_in_a_burst_are_not_a_resolution_giving_up(
    builtin_rules, tmp_path: Path
) -> None:
    # 0.1 s apart: not Linux's retrans_time_ms pace; nothing says a kernel gave up.
    t = Talk(server="10.0.0.99")
    for dt in (0.001, 0.1, 0.1):
        _arp(t, t.client, t.server, dt=dt)
    path = tmp_path / "burst.pcap"
    t.write(path)
    assert not _ours(analyze([str(path)], builtin_rules))
