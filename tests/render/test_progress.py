"""Progress reporting: the core's callback, and silence when stderr is not a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_progress_callback_counts_frames(tmp_path: Path, builtin_rules) -> None:
    # 40,000 frames: the demo's 31 frames repeated (record bodies copied as they are).
    demo = (ROOT / "samples/demo.pcap").read_bytes()
    header, body = demo[:24], demo[24:]
    big = tmp_path / "big.pcap"
    big.write_bytes(header + body * 1291)  # 1291 * 31 = 40,021 frames
    calls: list[tuple[int, int, int]] = []
    report = analyze([str(big)], builtin_rules, progress=lambda *a: calls.append(a))
    assert report.frames == 40_021
    assert [c[0] for c in calls] == [16384, 32768]
    assert calls[1][1] > calls[0][1] > 16384 * 16  # bytes read so far grow
    assert all(c[2] >= 0 for c in calls)


def test_no_progress_output_when_stderr_is_not_a_terminal(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", str(ROOT / "samples/demo.pcap")])
    assert capsys.readouterr().err == ""


def test_progress_with_2_jobs_comes_from_the_first_worker(tmp_path: Path, builtin_rules) -> None:
    # It reads the whole file (the others' frames skipped) but holds only its share of the
    # flows: frames and bytes as with one job, no count of open flows.
    demo = (ROOT / "samples/demo.pcap").read_bytes()
    big = tmp_path / "big.pcap"
    big.write_bytes(demo[:24] + demo[24:] * 1291)
    calls: list[tuple[int, int, int | None]] = []
    report = analyze([str(big)], builtin_rules, jobs=2, progress=lambda *a: calls.append(a))
    assert report.frames == 40_021
    assert [c[0] for c in calls] == [16384, 32768]
    assert calls[1][1] > calls[0][1] > 16384 * 16
    assert all(c[2] is None for c in calls)


def test_the_progress_line_on_a_terminal(monkeypatch) -> None:
    import io
    import sys
    import threading

    from pcapdiag.render.progress import progress_display

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    threads = threading.active_count()
    with progress_display(1_000_000, enabled=True) as update:
        assert update is not None
        update(16384, 250_000, 1234)
        update(32768, 500_000, None)
        # No refresh thread: --jobs forks while the bar is shown.
        assert threading.active_count() == threads
    shown = term.getvalue()
    assert "32,768 frames" in shown and "open flows" in shown
