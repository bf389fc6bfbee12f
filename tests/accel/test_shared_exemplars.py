"""Exemplars shared by the classes of one base class (_triage.c shapes_decide; Settings
.shared_exemplars): the first pass reads the first max_alike over classes that differ only in
their times, and a few of each class; when a group's list then needs a connection it counted
unread (findings/samples.py ListingShort), the analysis runs again with each class's own.
Either way the report is the one the tracker makes reading every frame.

Test data: the outage and SYN flood built packet by packet in test_refused.py and
test_lone.py. The outage's refusals near its end are held open by the capture's end (classes
of their own, the same findings): shared, they cost no exemplars of their own. The flood
followed by 3 s of quiet leaves its last attempts open and older than a second when the
capture ends: their classes share a base class with the SYNs the cap released early, but make
other findings (PD-TCP-013, not PD-TCP-024), and their group's list is short on the first
run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pcapdiag.session as session
import pcapdiag.track.flows as flows
from bench import floods
from pcapdiag.api import analyze
from pcapdiag.rules.model import Rule
from pcapdiag.settings import Settings
from tests.accel import test_lone, test_refused
from tests.accel.test_refused import ACK, RST, SYN, _pcap, _segment


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings of each analysis run again by analyze_shard (it calls itself)."""
    seen: list[Settings] = []
    original = session.analyze_shard

    def again(analysis, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(analysis.settings)
        return original(analysis, *args, **kwargs)

    monkeypatch.setattr(session, "analyze_shard", again)
    return seen


def _report(path: Path, rules: list[Rule], settings: Settings, max_alike: int) -> str:
    report = analyze([str(path)], rules, settings=settings, max_alike=max_alike)
    return json.dumps(report.to_dict(), sort_keys=True)


def _counted(path: Path, rules: list[Rule], max_alike: int, shared: bool) -> int:
    plan = test_refused._plan(path, rules, max_alike, shared=shared)
    return sum(k.count for k in plan.counted)


@pytest.mark.parametrize("source", ["varied", "benchmark"])
def test_an_outage_reads_fewer_exemplars_and_runs_once(tmp_path, builtin_rules, runs, source):
    path = tmp_path / "outage.pcap"
    if source == "varied":
        _pcap(path, test_refused.outage(count=3000))
    else:  # the benchmark's outage: 200 servers, 20 s of refusals
        floods.write(path, "outage", 20_000)
    count = 3000 if source == "varied" else 20_000
    # Refusals read (not counted): fewer with shared exemplars (the varied outage has a
    # class for each of many variants, and few held at its end: not much fewer there).
    shared = count - _counted(path, builtin_rules, 30, shared=True)
    unshared = count - _counted(path, builtin_rules, 30, shared=False)
    assert shared < (0.99 if source == "varied" else 0.75) * unshared, (shared, unshared)
    plain = _report(path, builtin_rules, Settings(accelerate=False), 30)
    assert _report(path, builtin_rules, Settings(), 30) == plain
    assert runs == []  # no group's list was short
    assert _report(path, builtin_rules, Settings(shared_exemplars=False), 30) == plain


@pytest.fixture
def flood_then_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(flows, "MAX_ATTEMPTS", test_lone.CAP)
    frames = test_lone.flood()
    last = frames[-1][0]
    # 3 s later, one refusal between two other hosts: the capture's end.
    a, b = bytes([10, 8, 0, 2]), bytes([10, 8, 0, 1])
    frames.append((last + 3_000_000, _segment(a, b, 5000, 99, 1, 0, SYN)))
    frames.append((last + 3_000_100, _segment(b, a, 99, 5000, 0, 2, RST | ACK)))
    return _pcap(tmp_path / "flood-quiet.pcap", frames)


@pytest.mark.parametrize("max_alike", [5, 30])
def test_a_short_list_makes_the_analysis_run_again(
    flood_then_quiet, builtin_rules, runs, max_alike
):
    plain = _report(flood_then_quiet, builtin_rules, Settings(accelerate=False), max_alike)
    by_rule = json.loads(plain)["summary"]["by_rule"]
    assert by_rule["PD-TCP-024"] > 3000 and by_rule["PD-TCP-013"] > 250
    assert _report(flood_then_quiet, builtin_rules, Settings(), max_alike) == plain
    assert [s.shared_exemplars for s in runs] == [False]  # once more, unshared


def test_a_list_short_without_sharing_is_an_error(flood_then_quiet, builtin_rules, monkeypatch):
    # Each class's own first max_alike always fill their groups' lists: were one short, the
    # first pass would be wrong, and the analysis says so rather than run forever.
    from pcapdiag.findings.collect import FindingCollector
    from pcapdiag.findings.samples import ListingShort

    monkeypatch.setattr(FindingCollector, "lists_before", lambda *_: False)
    with pytest.raises(ListingShort):
        analyze(
            [str(flood_then_quiet)],
            builtin_rules,
            settings=Settings(shared_exemplars=False),
            max_alike=5,
        )
