"""Markdown, JUnit and --export: structure, content, and escaping of hostile strings."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pcapdiag.api import analyze, export_findings
from pcapdiag.io.reader import open_capture
from pcapdiag.render.junit import to_junit
from pcapdiag.render.markdown import to_markdown
from pcapdiag.render.text import to_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"
HOSTILE = "<script>alert(1)<b>\x1b[31m|`x`"  # no "/": it is a file name


@pytest.fixture
def hostile_capture(tmp_path: Path) -> Path:
    path = tmp_path / f"{HOSTILE}.pcap"
    shutil.copy(DEMO, path)
    return path


def _report(path: Path, rules, *, ladders: bool = False):
    return analyze([str(path)], rules, ladders=ladders)


def test_markdown_has_summary_table_and_evidence_tables(builtin_rules) -> None:
    report = _report(DEMO, builtin_rules, ladders=True)
    text = to_markdown(report)
    # The services, the kinds, then the example of each of the five rules.
    assert [ln for ln in text.splitlines() if ln.startswith("## ")] == [
        "## Services with failures: 5 of 5",
        "## Findings by rule, errno and server port: 5 kinds",
        "## 1. Connection refused (SYN answered by RST)",
        "## 2. Server reset the connection right after the handshake",
        "## 3. Connection rejected by an ICMP error",
        "## 4. UDP datagram rejected by an ICMP error (connected socket)",
        "## 5. Broken pipe (data sent to a peer that had closed)",
    ]
    # Nothing escaped that Markdown reads as plain text: "(" and "->" (test_markdown_escaping).
    assert (
        '| 1 | client send() -> EPIPE ("Broken pipe") | to 10.0.0.2:80 | PD-TCP-006 | section 5 |'
        in text
    )
    assert "| `10.0.0.2:80` | tcp | 2 | 1 | 2023-11-14T22:13:20.077299Z |" in text
    # The EPIPE finding's evidence table: FIN (28), data (30), RST (31) with the states.
    assert "| 31 | 0.257999 | server → client | RST | 42 |  | 0 | CLOSED | CLOSED |" in text
    assert "| 28 | 0.055999 | server → client | FIN ACK | 41 | 28 | 0 | CLOSE_WAIT |" in text


def test_junit_lists_each_failure(builtin_rules) -> None:
    root = ET.fromstring(to_junit(_report(DEMO, builtin_rules)))
    (suite,) = root.findall("testsuite")
    failures = suite.findall("testcase/failure")
    assert suite.get("failures") == "5" and len(failures) == 5
    assert {f.get("type") for f in failures} == {
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTUNREACH",
        "EPIPE",
    }


def test_junit_healthy_capture_is_one_passing_case(builtin_rules) -> None:
    root = ET.fromstring(
        to_junit(_report(ROOT / "tests/captures/ipv6-wraparound.pcap", builtin_rules))
    )
    (suite,) = root.findall("testsuite")
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == 1


def test_hostile_path_is_escaped_in_every_format(hostile_capture: Path, builtin_rules) -> None:
    report = _report(hostile_capture, builtin_rules, ladders=True)
    assert len(report.ladders) == len(report.findings)
    plain = to_text(report)
    assert "\x1b" not in plain and "\\x1b[31m" in plain  # shown, but cannot drive a terminal
    for text in (to_markdown(report), to_junit(report)):
        assert "\x1b" not in text
    assert "<script>" not in to_junit(report)
    ET.fromstring(to_junit(report))  # still well-formed XML
    # Markdown shows the path in a code span, literally (CommonMark 6.1): rendered, it is text.
    page = MarkdownIt("commonmark").enable("table").render(to_markdown(report))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;b&gt;" in page


def test_export_writes_each_failed_flow(tmp_path: Path, builtin_rules) -> None:
    report = _report(DEMO, builtin_rules)
    written = export_findings(report, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{f.id}.pcap" for f in report.findings)
    original = {fr.number: fr for fr in open_capture(str(DEMO))}
    for f in report.findings:
        frames = list(open_capture(str(tmp_path / "out" / f"{f.id}.pcap")))
        assert len(frames) == len(f.flow.frames)
        for new, number in zip(frames, f.flow.frames, strict=True):
            old = original[number]
            assert (new.data, new.ts_ns, new.orig_len) == (old.data, old.ts_ns, old.orig_len)
    assert "original frames 13, 14, 15" in (tmp_path / "out/README.txt").read_text()


def test_terminal_report_has_colour_but_no_raw_escape(hostile_capture: Path, capsys) -> None:
    from pcapdiag.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--color", "always", str(hostile_capture)])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "\x1b[1;31m" in out  # the severity "high" in bold red
    assert "\x1b[31m|" not in out  # the escape sequence from the file name is not live
    assert "\\x1b[31m" in out.replace("\n", "")


def test_text_report_is_plain_when_not_a_terminal(capsys) -> None:
    from pcapdiag.cli import main

    with pytest.raises(SystemExit):
        main(["analyze", str(DEMO)])  # capsys: stdout is not a TTY
    assert "\x1b" not in capsys.readouterr().out


def test_every_human_format_says_who_caused_it(builtin_rules) -> None:
    # samples/demo.pcap, port 40005: host prohibited from the router 10.0.1.254.
    from pcapdiag.render.html import to_html
    from pcapdiag.render.junit import to_junit

    report = _report(DEMO, builtin_rules)
    said = "network (high confidence): the ICMP error comes from 10.0.1.254"
    assert said in to_markdown(report)
    assert said in to_junit(report)
    assert said in to_html(report)
