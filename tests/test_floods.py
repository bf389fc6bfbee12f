"""Floods (bench/floods.py, small counts here): the report stays readable and right."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.render import to_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from floods import write  # noqa: E402


@pytest.fixture(scope="module")
def floods(tmp_path_factory):
    d = tmp_path_factory.mktemp("floods")
    out = {}
    for kind, count in (
        ("syn-flood", 3000),
        ("port-scan", 2000),
        ("tiny", 1000),
        ("reorder", 3000),
    ):
        out[kind] = d / f"{kind}.pcap"
        write(out[kind], kind, count)
    return out


def test_port_scan_is_summarised(floods, builtin_rules) -> None:
    report = analyze([str(floods["port-scan"])], builtin_rules)
    assert len(report.findings) == 2000
    assert {f.rule for f in report.findings} == {"PD-TCP-001"}
    text = to_text(report)
    assert len(text.splitlines()) < 40  # not 2,000 blocks
    assert "2,000 alike: client 10.0.0.66:40000: connect() -> ECONNREFUSED" in text
    assert "... and 1,998 more findings alike" in text


def test_syn_flood_single_syns_are_not_timeouts(floods, builtin_rules) -> None:
    # One SYN each and no retry: no connect() was seen giving up, so no ETIMEDOUT is claimed.
    report = analyze([str(floods["syn-flood"])], builtin_rules)
    assert report.tcp_connections == 3000 and report.findings == []


def test_tiny_connections_are_healthy(floods, builtin_rules) -> None:
    report = analyze([str(floods["tiny"])], builtin_rules)
    assert report.tcp_connections == 1000 and report.findings == []


def test_reordered_overlapping_segments_are_one_healthy_connection(floods, builtin_rules):
    report = analyze([str(floods["reorder"])], builtin_rules, keep_flows=True)
    (flow,) = report.flows
    assert flow.packets == 3 + 3000 + 300 and report.findings == []
