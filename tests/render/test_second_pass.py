"""The second pass (pcapdiag/evidence.py): ladder rows and --export frames read once per
capture for all its findings, handed to renderers that only draw and write."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pcapdiag import evidence
from pcapdiag.api import analyze, export_findings
from pcapdiag.errors import CaptureError
from pcapdiag.findings.ladder import ladder_rows
from pcapdiag.io.reader import open_capture
from pcapdiag.io.records import Frame
from pcapdiag.render.html import to_html
from pcapdiag.render.markdown import to_markdown
from pcapdiag.render.text import iter_json

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"  # five findings on five flows
REFUSED = ROOT / "rules/syn-refused/refused.pcap"  # two frames, one finding


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The sources of every pass the second pass starts over a capture."""
    seen: list[tuple[str, ...]] = []
    real = evidence.merged_frames

    def counting(sources: tuple[str, ...]) -> Iterator[Frame]:
        seen.append(sources)
        return real(sources)

    monkeypatch.setattr(evidence, "merged_frames", counting)
    return seen


def test_one_pass_per_capture_for_all_its_findings(passes, builtin_rules) -> None:
    report = analyze([str(DEMO), str(REFUSED)], builtin_rules, ladders=True)
    assert len(report.findings) == 6
    assert sorted(passes) == [(str(REFUSED),), (str(DEMO),)]
    assert set(report.ladders) == {f.id for f in report.findings}
    passes.clear()
    frames = evidence.finding_frames(report.findings)
    assert len(passes) == 2
    for f in report.findings:
        assert [fr.number for fr in frames[f.id]] == list(f.flow.frames)
        assert [r.frame for r in report.ladders[f.id]] == list(f.flow.frames)


def test_no_pass_unless_asked(passes, builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules)
    assert passes == [] and report.ladders == {}


def test_ladders_stay_out_of_the_json_document(builtin_rules) -> None:
    plain = analyze([str(DEMO)], builtin_rules)
    drawn = analyze([str(DEMO)], builtin_rules, ladders=True)
    assert drawn.ladders
    assert drawn.to_dict() == plain.to_dict()
    assert "".join(iter_json(drawn)) == "".join(iter_json(plain))
    assert "ladder" not in json.dumps(drawn.to_dict())


def test_rows_are_the_flow_replayed(builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules, ladders=True)
    frames = {fr.number: fr for fr in open_capture(str(DEMO))}
    for f in report.findings:
        assert report.ladders[f.id] == ladder_rows(frames[n] for n in f.flow.frames)


def test_merged_captures_number_on_across_files(builtin_rules) -> None:
    alone = analyze([str(DEMO)], builtin_rules, ladders=True)
    merged = analyze([str(REFUSED), str(DEMO)], builtin_rules, merge=True, ladders=True)
    assert len(merged.findings) == 6 and len(merged.ladders) == 6
    # refused.pcap starts earlier, so demo.pcap's frames come after its two
    by_flow = {tuple(r.frame - 2 for r in rows) for rows in merged.ladders.values()}
    for rows in alone.ladders.values():
        assert tuple(r.frame for r in rows) in by_flow


def test_standard_input_has_no_rows_and_cannot_be_exported(tmp_path: Path, builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules)
    report.findings = [replace(f, capture="-", sources=("-",)) for f in report.findings]
    assert evidence.ladders(report.findings) == {}
    assert "standard input cannot be read twice" in to_html(report)
    with pytest.raises(CaptureError, match="standard input cannot be read twice"):
        export_findings(report, tmp_path / "out")


def test_a_capture_gone_gives_no_rows(tmp_path: Path, builtin_rules) -> None:
    cap = tmp_path / "demo.pcap"
    shutil.copy(DEMO, cap)
    report = analyze([str(cap)], builtin_rules)
    cap.unlink()
    assert evidence.ladders(report.findings) == {}
    page = to_html(report)
    assert page.count("No ladder diagram: the packets are not available.") == 5
    assert "| frame | time |" not in to_markdown(report)
    with pytest.raises(CaptureError, match="file not found"):
        export_findings(report, tmp_path / "out")


def test_a_pass_cut_short_keeps_the_flows_read_before(monkeypatch, builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules, ladders=True)
    cut = 15

    def failing(sources: tuple[str, ...]) -> Iterator[Frame]:
        for frame in open_capture(sources[0]):
            if frame.number > cut:
                raise OSError("gone")
            yield frame

    monkeypatch.setattr(evidence, "merged_frames", failing)
    rows = evidence.ladders(report.findings)
    done = {f.id for f in report.findings if max(f.flow.frames) <= cut}
    assert done and len(done) < len(report.findings)
    assert rows == {k: v for k, v in report.ladders.items() if k in done}
