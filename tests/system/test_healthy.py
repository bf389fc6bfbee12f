"""Healthy traffic gets no errno: every capture built as a healthy control, and every rule's
negative test capture, produces no finding that names an errno."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze

ROOT = Path(__file__).resolve().parents[2]
HEALTHY = [
    "rules/close-with-unread-data/orderly-close.pcap",
    "rules/write-after-peer-close/half-close.pcap",
    "rules/data-timeout/retransmissions-recover.pcap",
    "rules/keepalive-timeout/probes-answered.pcap",
    "tests/captures/rst-after-close.pcap",
    "tests/captures/ipv6-wraparound.pcap",
    "tests/captures/stale-ack-reuse.pcap",
]


@pytest.mark.parametrize("rel", HEALTHY)
def test_healthy_capture_has_no_finding(rel: str, builtin_rules) -> None:
    report = analyze([str(ROOT / rel)], builtin_rules)
    assert report.findings == []
    assert report.warnings == []
    assert all(not f.failed for f in report.flows)


def test_a_slow_connect_is_information_only(builtin_rules) -> None:
    # The first SYN lost, the second answered: connect() succeeds 1 s late. slow-connect says
    # so at severity info, and nothing fails.
    report = analyze([str(ROOT / "rules/syn-timeout/slow-connect.pcap")], builtin_rules)
    (f,) = report.findings
    assert (f.rule_name, f.severity, f.primary()) == ("slow-connect", "info", None)
    assert report.warnings == []


def test_orderly_close_ends_in_time_wait_and_closed(builtin_rules) -> None:
    report = analyze(
        [str(ROOT / "rules/close-with-unread-data/orderly-close.pcap")],
        builtin_rules,
        keep_flows=True,
    )
    (flow,) = report.flows
    # The server closed first (frame 8), so the server ends in TIME_WAIT (RFC 9293 figure 5).
    assert (flow.client_state, flow.server_state) == ("CLOSED", "TIME_WAIT")
    assert flow.history == "ShADadfF"  # server FIN (f) before client FIN (F)


def test_port_reuse_makes_two_connections(builtin_rules) -> None:
    report = analyze([str(ROOT / "tests/captures/port-reuse.pcap")], builtin_rules, keep_flows=True)
    assert [(f.instance, f.packets) for f in report.flows] == [(1, 10), (2, 2)]
    (finding,) = report.findings
    assert finding.rule == "PD-TCP-001" and finding.flow.instance == 2
    assert finding.frames == (11, 12)
