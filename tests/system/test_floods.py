"""Floods (bench/floods.py, small counts here): the report stays readable and right."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pcapdiag.api import analyze
from pcapdiag.findings.expect import check
from pcapdiag.render.text import to_json, to_text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from floods import write  # noqa: E402

SCHEMA = json.loads(
    resources.files("pcapdiag").joinpath("schemas/report-v1.schema.json").read_text()
)


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
    # 2,000 findings alike: the first 100 (by time) in full, the others counted in one group.
    assert report.finding_count == 2000 and len(report.findings) == 100
    assert [f.flow.server for f in report.findings] == [f"10.0.0.1:{p}" for p in range(1, 101)]
    assert {f.rule for f in report.findings} == {"PD-TCP-001"}
    (group,) = report.groups
    assert (group.count, group.listed, len(group.server_ports)) == (2000, 100, 2000)
    assert group.clients == {"10.0.0.66"}
    assert report.counts_by_errno() == {"ECONNREFUSED": 2000}
    text = to_text(report)
    # Not 2,000 blocks: the 20 services with the most failures (here all alike), the scan's
    # line, its one kind and its example.
    assert len(text.splitlines()) < 50
    assert "Services with failures: 2,000 of 2,000 services (the 20 with the most" in text
    assert "  ... and 1,980 more services with failures: 1,980 failed connections" in text
    assert (
        '  [1] 2,000 x client connect() -> ECONNREFUSED ("Connection refused") to 2,000 ports '
        "of 10.0.0.1 (PD-TCP-001)" in text
    )
    # A scan: one client, 2,000 ports, from the first SYN to the last RST (1,999 x 20 ms
    # + 5 ms = 39.985 s): 50 a second.
    assert group.kind == "scan"
    assert (
        "2,000 alike (scan, over 40 s, 50 a second): client connect() fails with "
        "ECONNREFUSED, client 10.0.0.66 to 10.0.0.1 (2,000 ports) (PD-TCP-001)" in text
    )
    assert "1 TCP connection" not in text and "2000 failed calls" in text


def test_every_finding_listed_on_request(floods, builtin_rules) -> None:
    report = analyze([str(floods["port-scan"])], builtin_rules, max_alike=None)
    assert len(report.findings) == 2000 and report.groups[0].listed == 2000


def test_syn_flood_is_one_line_and_claims_no_errno(floods, builtin_rules) -> None:
    # One SYN each and no retry: no connect() was seen giving up, so no ETIMEDOUT is claimed;
    # each is an unanswered attempt (PD-TCP-013), summarised as one line.
    # The last 100 SYNs (10 ms apart) came within the capture's last second: not judged.
    report = analyze([str(floods["syn-flood"])], builtin_rules)
    assert report.tcp_connections == 3000 and report.finding_count == 2900
    assert report.counts_by_rule() == {"PD-TCP-013": 2900}
    assert report.counts_by_errno() == {"none": 2900}
    (group,) = report.groups
    assert set(group.by_port) == {80} and len(group.clients or ()) == 2900
    text = to_text(report)
    assert "0 failed calls, 2900 other findings" in text
    # A flood: 2,900 sources, SYNs 10 ms apart, the first to the 2,900th 28.99 s.
    assert group.kind == "flood"
    assert (
        "2,900 alike (flood, over 29 s, 100 a second): Connection attempt unanswered (one "
        "SYN, no reply, no retry), no errno, 2,900 clients to 10.0.0.1:80 (PD-TCP-013)" in text
    )


def test_tiny_connections_are_healthy(floods, builtin_rules) -> None:
    report = analyze([str(floods["tiny"])], builtin_rules)
    assert report.tcp_connections == 1000 and report.findings == []


def test_reordered_overlapping_segments_are_one_healthy_connection(floods, builtin_rules):
    report = analyze([str(floods["reorder"])], builtin_rules, keep_flows=True)
    (flow,) = report.flows
    assert flow.packets == 3 + 3000 + 300 and report.findings == []


def test_flood_reports_are_the_same_with_2_jobs(floods, builtin_rules) -> None:
    # Each worker keeps its own first findings of a group; merged, they are the first overall.
    for kind in ("port-scan", "syn-flood"):
        one = to_json(analyze([str(floods[kind])], builtin_rules, max_alike=7))
        assert one == to_json(analyze([str(floods[kind])], builtin_rules, max_alike=7, jobs=2))


def test_flood_report_validates_and_counts(floods, builtin_rules) -> None:
    report = analyze([str(floods["port-scan"])], builtin_rules, max_alike=3)
    text = to_json(report)  # written in pieces: the same text as json.dumps of the whole
    assert text == json.dumps(report.to_dict(), indent=2, ensure_ascii=True) + "\n"
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["findings"] == 2000 and doc["summary"]["findings_listed"] == 3
    assert doc["summary"]["by_rule"] == {"PD-TCP-001": 2000}
    (group,) = doc["groups"]
    assert (group["count"], group["listed"], group["server_ports"], group["clients"]) == (
        2000,
        3,
        2000,
        1,
    )
    assert [f["flow"]["server"] for f in doc["findings"]] == [
        "10.0.0.1:1",
        "10.0.0.1:2",
        "10.0.0.1:3",
    ]
    assert len(doc["flows"]) == 3  # the failed flows of the findings listed


def test_expectations_count_findings_only_counted(floods, builtin_rules) -> None:
    report = analyze([str(floods["port-scan"])], builtin_rules, max_alike=3)
    spec = {"findings": [{"rule": "PD-TCP-001", "errno": "ECONNREFUSED", "count": 2000}]}
    assert check(report, {**spec, "exclusive": True}) == []
    spec["findings"][0]["count"] = 2001
    assert check(report, spec) == [
        "- missing (2000 of 2001 found): rule=PD-TCP-001 errno=ECONNREFUSED"
    ]
    # A finding only counted has no server of its own: it cannot be claimed by server.
    by_server = {"findings": [{"rule": "PD-TCP-001", "server": "10.0.0.1:5"}]}
    (problem,) = check(report, by_server)
    missing, near = problem.splitlines()
    assert missing == "- missing (0 of 1 found): rule=PD-TCP-001 server=10.0.0.1:5"
    # The nearest (expect.nearest): the same rule, the first listed finding's server.
    assert near.startswith("  nearest: rule=PD-TCP-001 ") and " server=10.0.0.1:1 " in near
    assert near.endswith(" (differs in server)")


def test_findings_of_two_captures_are_never_one_group(floods, builtin_rules, tmp_path) -> None:
    copy = tmp_path / "again.pcap"
    copy.write_bytes(floods["port-scan"].read_bytes())
    report = analyze([str(floods["port-scan"]), str(copy)], builtin_rules, max_alike=5)
    assert sorted((g.capture, g.count, g.listed) for g in report.groups) == sorted(
        [(str(floods["port-scan"]), 2000, 5), (str(copy), 2000, 5)]
    )
    assert report.finding_count == 4000 and len(report.findings) == 10
