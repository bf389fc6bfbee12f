"""Findings alike take a shape when they have one: a scan (one client, many of a server's
ports), a flood (attempts from many clients, unanswered), an outage (many clients' calls
failing with an errno); the report gives each group's span and rate, and `--fail-on` sees
the shapes. Captures built packet by packet here (each says why), and the flood of the rule
syn-unanswered-released (rules/syn-unanswered-released/flood.pcap.gz: 20,001 SYNs 10 us
apart from spoofed sources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcapdiag.api import analyze
from pcapdiag.cli import cli
from tests.support.scenario import Talk, write_merged

ROOT = Path(__file__).resolve().parents[2]
FLOOD = ROOT / "rules" / "syn-unanswered-released" / "flood.pcap.gz"


def _refused(tmp_path: Path, name: str, pairs: list[tuple[str, int, int]]) -> str:
    """One SYN answered by RST|ACK per (client, client port, server port), 10 ms apart."""
    talks = []
    for i, (client, cport, sport) in enumerate(pairs):
        t = Talk(
            client=client, server="10.0.5.1", cport=cport, sport=sport, t=1_700_000_000 + i / 100
        )
        t.tcp("c", "S", dt=0)
        t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
        talks.append(t)
    return write_merged(tmp_path / f"{name}.pcap", talks)


def test_a_port_scan_is_a_scan(builtin_rules, tmp_path: Path) -> None:
    # One client probing 12 ports of one server, each refused (a connect() scan).
    cap = _refused(tmp_path, "scan", [("10.0.6.6", 40000 + i, 20 + i) for i in range(12)])
    (g,) = analyze([cap], builtin_rules).groups
    assert (g.rule, g.count, g.kind) == ("PD-TCP-001", 12, "scan")
    # From the first SYN to the last RST (1 ms after its SYN): 0.111 s.
    assert g.span_ns == 111_000_000 and round(g.rate_per_s, 1) == 108.1


def test_many_clients_refused_is_an_outage(builtin_rules, tmp_path: Path) -> None:
    # Twelve clients refused on the same port: the service is down for everyone.
    cap = _refused(tmp_path, "outage", [(f"10.0.7.{i + 1}", 40000, 8080) for i in range(12)])
    (g,) = analyze([cap], builtin_rules).groups
    assert (g.count, g.errno(), g.kind) == (12, "ECONNREFUSED", "outage")


def test_few_alike_take_no_shape(builtin_rules, tmp_path: Path) -> None:
    # Three clients refused, three ports of one client: findings alike, nothing more.
    cap = _refused(tmp_path, "few", [(f"10.0.8.{i + 1}", 40000, 8080) for i in range(3)])
    (g,) = analyze([cap], builtin_rules).groups
    assert g.kind is None and "alike:" in g.describe()


def test_a_flood_is_a_flood_and_fails(builtin_rules) -> None:
    report = analyze([str(FLOOD)], builtin_rules)
    by_rule = {g.rule: g for g in report.groups}
    g = by_rule["PD-TCP-013"]  # frames 2 to 20,001: open when the capture ended
    assert (g.count, g.kind) == (20_000, "flood")
    # 20,000 SYNs in 0.19999 s.
    assert g.span_ns == 199_990_000 and int(g.rate_per_s) == 100_005
    assert g.describe().startswith("20,000 alike (flood, over 0.2 s, 100,005 a second): ")
    # The first attempt was released early (frame 1): its own finding, PD-TCP-024.
    assert [f.frames for f in report.findings if f.rule == "PD-TCP-024"] == [(1,)]


@pytest.mark.parametrize(("shape", "code"), [("flood", 1), ("scan", 0), ("outage", 0)])
def test_fail_on_a_shape(shape: str, code: int) -> None:
    res = CliRunner().invoke(cli, ["analyze", str(FLOOD), "--quiet", "--fail-on", shape])
    assert res.exit_code == code, res.output


def test_json_groups_carry_the_shape(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["analyze", str(FLOOD), "--format", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    (g,) = [g for g in json.loads(out.read_text())["groups"] if g["rule"] == "PD-TCP-013"]
    assert (g["kind"], g["span_s"], g["rate_per_s"]) == ("flood", 0.19999, 100005.0)


def test_an_unknown_shape_is_a_usage_error() -> None:
    res = CliRunner().invoke(cli, ["analyze", str(FLOOD), "--fail-on", "tsunami"])
    assert res.exit_code == 2 and "flood, scan, outage" in res.output
