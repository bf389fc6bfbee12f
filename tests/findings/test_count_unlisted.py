"""A finding its group can no longer list (--max-alike earlier ones already kept) is only
counted, never built (findings/collect.py count_only): the report is the same, byte for
byte, as when every finding is built and the collector drops the surplus. Held on captures
with large groups: a SYN flood (rules/syn-unanswered-released: 20,000 alike), a port scan
and an outage (bench/floods.py, 3,000 each), the project's captures with --max-alike 1 (most
groups then count), and the public synscan capture when present."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.findings.collect import FindingCollector
from pcapdiag.settings import Settings
from tests.support.paths import public_captures_dir

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import floods  # noqa: E402

SAMPLES = [
    *sorted((ROOT / "samples" / "recorded").glob("*/client.pcap"))[:12],
    ROOT / "samples" / "demo.pcap",
]


def _both(paths: list[str], rules, **kw) -> tuple[dict, dict]:
    fast = analyze(paths, rules, settings=Settings(count_unlisted=True), **kw).to_dict()
    slow = analyze(paths, rules, settings=Settings(count_unlisted=False), **kw).to_dict()
    return fast, slow


@pytest.mark.parametrize("kind", ["port-scan", "outage", "unreachable", "syn-flood"])
def test_floods_report_the_same(kind: str, builtin_rules, tmp_path: Path) -> None:
    cap = tmp_path / f"{kind}.pcap"
    floods.write(cap, kind, 3000)
    fast, slow = _both([str(cap)], builtin_rules, max_alike=5)
    assert fast == slow
    # Some only counted (the outage's 200 groups of 15 list 5 each): the shortcut was taken.
    assert fast["summary"]["findings_listed"] < fast["summary"]["findings"]


def test_the_flood_rule_capture_reports_the_same(builtin_rules) -> None:
    cap = ROOT / "rules" / "syn-unanswered-released" / "flood.pcap.gz"
    fast, slow = _both([str(cap)], builtin_rules)
    assert fast == slow
    assert fast["summary"]["findings"] == 20_001 and len(fast["findings"]) == 101


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name)
def test_small_groups_report_the_same(path: Path, builtin_rules) -> None:
    fast, slow = _both([str(path)], builtin_rules, max_alike=1)
    assert fast == slow


def test_public_synscan_reports_the_same(builtin_rules) -> None:
    cap = public_captures_dir() / "chrissanders-packets" / "synscan.pcapng"
    if not cap.exists():
        pytest.skip(f"{cap} not present (public captures)")
    fast, slow = _both([str(cap)], builtin_rules)
    assert fast == slow


def test_count_only_needs_a_full_group() -> None:
    # Before a group has kept max_alike findings nothing is counted without being built.
    c = FindingCollector(max_alike=2)
    assert not c.count_only(("k",), (1, (1,), "R"), 1, 1, "a:1", "b:2")
