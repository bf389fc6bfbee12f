"""What a human report shows first (render/overview.py): the failing services, the most
failed first, then the findings by rule, errno and server port with an example of each rule;
every finding in full only on request, its advice once per kind."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.render import overview
from pcapdiag.render.html import to_html
from pcapdiag.render.markdown import to_markdown
from pcapdiag.render.text import to_text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from floods import write  # noqa: E402


@pytest.fixture(scope="module")
def outage(tmp_path_factory, builtin_rules):
    # bench/floods.py's outage, 16,000 refusals: 200 servers (10.3.0.1-200) x 40 ports
    # (8000-8039), two each; attempt i goes to server 1 + i % 200, port 8000 + (i // 200) % 40.
    path = tmp_path_factory.mktemp("overview") / "outage.pcap"
    write(path, "outage", 16_000)
    return analyze([str(path)], builtin_rules, max_alike=10)


def test_outage_kinds_by_port_across_servers(outage) -> None:
    kinds = overview.kinds(outage)
    # One kind a port: 200 servers x 2 refusals = 400 findings each.
    assert sorted(k.port for k in kinds) == list(range(8000, 8040))
    assert {(k.rule, k.side, k.errno, k.count, len(k.servers)) for k in kinds} == {
        ("PD-TCP-001", "client", "ECONNREFUSED", 400, 200)
    }
    assert sum(k.count for k in kinds) == outage.finding_count == 16_000
    # Each server lists its first 10 refusals by time, attempts i = h + 200 p for ports
    # 8000-8009: the other ports' kinds have no example of their own, and come last.
    listed = [k.port for k in kinds if k.listed]
    assert sorted(listed) == list(range(8000, 8010)) and kinds[: len(listed)] == [
        k for k in kinds if k.listed
    ]
    assert all(len(k.listed) == 200 for k in kinds if k.listed)


def test_outage_text_report_is_short_and_counts_every_service(outage) -> None:
    text = to_text(outage)
    lines = text.splitlines()
    assert len(lines) < 100, len(lines)
    assert (
        "Services with failures: 8,000 of 8,000 services (the 20 with the most failed "
        "connections; --top N for more)" in lines
    )
    assert "  ... and 7,980 more services with failures: 15,960 failed connections" in lines
    assert (
        "Findings by rule, errno and server port (40 kinds, the 20 most numerous shown): an "
        "example of each rule below; --all-findings for every finding" in lines
    )
    assert "  ... and 20 more kinds: 8,000 findings (--top N for more)" in lines
    # One outage a server (80 refusals of 80 or so clients, 40 ports): the first 20 shown.
    assert "  ... and 180 more: 14,400 findings (--top N for more)" in lines
    # The ports whose refusals no server lists still say what failed there.
    assert (
        '  [-] 400 x client connect() -> ECONNREFUSED ("Connection refused") to port 8010 of '
        "200 servers (PD-TCP-001, example [1])" in lines
    )
    # One rule: one example in full.
    assert len([ln for ln in lines if re.match(r"\[\d+\] HIGH ", ln)]) == 1
    # Every service of the table failed twice, at connect().
    rows = [ln for ln in lines if re.match(r"  10\.3\.0\.\d+:80\d\d ", ln)]
    assert len(rows) == 20 and all(ln.endswith("client connect() ECONNREFUSED x2") for ln in rows)


def test_top_lists_more_and_zero_lists_all(outage) -> None:
    lines = to_text(outage, top=50).splitlines()
    assert sum(1 for ln in lines if re.match(r"  10\.3\.0\.\d+:80\d\d ", ln)) == 50
    lines = to_text(outage, top=None).splitlines()
    assert sum(1 for ln in lines if re.match(r"  10\.3\.0\.\d+:80\d\d ", ln)) == 8000
    assert not any("more services with failures" in ln for ln in lines)
    assert sum(1 for ln in lines if re.match(r"  \[(\d+|-)\] 400 x ", ln)) == 40


def test_all_findings_gives_each_in_full_and_its_advice_once_per_kind(outage) -> None:
    text = to_text(outage, all_findings=True)
    blocks = re.findall(r"^\[\d+\] HIGH ", text, flags=re.M)
    assert len(blocks) == len(outage.findings) == 2000  # 200 servers x 10 listed
    # The advice comes with the first finding of each kind that lists any (10 ports).
    assert text.count("\n    next: ") == 10
    # Kinds of only counted findings say so.
    assert text.count("  ... and 400 more alike, only counted") == 30
    assert text.count("  ... and 200 more alike, only counted") == 10


def test_markdown_and_html_open_with_the_same_tables(outage) -> None:
    md = to_markdown(outage)
    assert (
        "## Services with failures: 8,000 of 8,000 (the 20 with the most failed connections)" in md
    )
    assert "## Findings by rule, errno and server port: 40 kinds (the 20 most numerous)" in md
    assert len(re.findall(r"^## \d+\. ", md, flags=re.M)) == 1
    assert (
        len(re.findall(r"^## \d+\. ", to_markdown(outage, all_findings=True), flags=re.M)) == 2000
    )

    class Count(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.articles = 0
            self.rows = 0

        def handle_starttag(self, tag, attrs):
            classes = dict(attrs).get("class") or ""
            self.articles += tag == "article" and "finding" in classes.split()
            self.rows += tag == "tr"

    page = Count()
    page.feed(to_html(outage))
    # 20 services and 20 kinds, each table with its header row; one finding in full.
    assert (page.articles, page.rows) == (1, 42)
    assert "<h2>Floods, scans and outages</h2>" in to_html(outage)
    page = Count()
    page.feed(to_html(outage, top=None, all_findings=True))
    assert (page.articles, page.rows) == (2000, 8000 + 40 + 2)


def test_generated_capture_report_fits_and_counts_every_failing_service(
    tmp_path, builtin_rules
) -> None:
    # bench/generate.py's realistic capture (100,000 frames, hundreds of failures of every
    # kind): the text report stays under 200 lines, and the failing services it counts are
    # every service a finding names, as a report listing every finding shows them.
    path = tmp_path / "gen.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench/generate.py"), "--frames", "100000", "--out", str(path)],
        check=True,
        capture_output=True,
    )
    report = analyze([str(path)], builtin_rules)
    lines = to_text(report).splitlines()
    assert len(lines) < 200
    every = analyze([str(path)], builtin_rules, max_alike=None)
    named = {(f.capture, f.flow.proto, f.flow.server) for f in every.findings}
    failing = {(s.capture, s.proto, s.server) for s in report.services.failing()}
    assert failing == named
    head = next(ln for ln in lines if ln.startswith("Services with failures: "))
    assert head.startswith(f"Services with failures: {len(named):,} of ")
    shown = [ln for ln in lines if re.match(r"  \S+:\d+ +(tcp|udp) ", ln)]
    rest = next(ln for ln in lines if "more services with failures" in ln)
    assert len(shown) == 20
    assert rest.startswith(f"  ... and {len(named) - 20:,} more services with failures: ")
