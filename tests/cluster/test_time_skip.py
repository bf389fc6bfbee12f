"""--since/--until leave unread the files wholly outside the span (by their first and last
timestamps, io/probe.py): a fleet's query reads only the files it needs, and says which it
did not read.

The captures are samples/demo.pcap (31 frames over 0.28 s, its findings held to the
expectation file beside it) shifted in time, written frame for frame with dpkt: hour 0,
hour 1 and hour 2 of a day of rotated files."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from pcapdiag.api import Cluster, analyze
from pcapdiag.io.reader import open_capture
from pcapdiag.render.text import iter_json, to_text
from pcapdiag.selection import Selection, TimeBound

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"
HOUR = 3600 * 10**9
T0 = 1_700_000_000_001_000_000  # demo.pcap's first frame


def _shifted(path: Path, by_ns: int) -> Path:
    with path.open("wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=1, nano=True)
        for fr in open_capture(str(DEMO)):
            sec, ns = divmod(fr.ts_ns + by_ns, 1_000_000_000)
            fh.write(w._pack_hdr(sec, ns, len(fr.data), fr.orig_len) + fr.data)
    return path


@pytest.fixture
def day(tmp_path: Path) -> list[Path]:
    return [_shifted(tmp_path / f"hour{h}.pcap", h * HOUR) for h in range(3)]


def _between(lo: int | None, hi: int | None) -> Selection:
    return Selection(
        since=None if lo is None else TimeBound(at_ns=lo),
        until=None if hi is None else TimeBound(at_ns=hi),
    )


def test_only_the_file_in_the_span_is_read(day: list[Path], builtin_rules) -> None:
    span = _between(T0 + HOUR - 60 * 10**9, T0 + HOUR + 60 * 10**9)
    report = analyze([str(p) for p in day], builtin_rules, selection=span)
    alone = analyze([str(day[1])], builtin_rules)
    assert [c.path for c in report.captures] == [str(day[1])]
    assert report.skipped == [str(day[0]), str(day[2])]
    [warning] = [w for w in report.warnings if w.code == "captures-skipped"]
    assert warning.count == 2
    assert warning.message == (
        f"2 capture files not read: by their first and last timestamps, wholly outside "
        f"--since/--until (by more than 60 s): {day[0]}, {day[2]}"
    )
    assert [f.id for f in report.findings] == [f.id for f in alone.findings]
    assert report.findings


def test_a_file_within_the_slack_is_read(day: list[Path], builtin_rules) -> None:
    # hour 0 ends 30 s before the span starts: closer than the 60 s a file's timestamps may
    # run out of order, so it is read (and its frames, all before the span, left out).
    last = T0 + 279_299_000
    report = analyze([str(day[0])], builtin_rules, selection=_between(last + 30 * 10**9, None))
    assert report.skipped == [] and [c.path for c in report.captures] == [str(day[0])]
    assert report.findings == [] and report.captures[0].frames == 31
    later = analyze([str(day[0])], builtin_rules, selection=_between(last + 61 * 10**9, None))
    assert later.skipped == [str(day[0])] and later.captures == []


def test_relative_bounds_never_skip_the_file_they_start_from(
    day: list[Path], builtin_rules
) -> None:
    span = Selection(until=TimeBound(offset_ns=100_000_000))  # the first 0.1 s of each file
    report = analyze([str(p) for p in day], builtin_rules, selection=span)
    assert report.skipped == [] and len(report.captures) == 3


def test_a_merged_rotation_skips_only_its_files_after_the_span(
    day: list[Path], builtin_rules
) -> None:
    # The first file is read whatever the span (frame numbers run on from it); a file
    # starting after the span is not, nor are the ones after it.
    span = _between(None, T0 + 30 * 60 * 10**9)  # until half past hour 0
    merged = analyze([str(p) for p in reversed(day)], builtin_rules, merge=True, selection=span)
    assert [c.path for c in merged.captures] == [str(day[0])]
    assert merged.skipped == [str(day[1]), str(day[2])]
    whole = analyze([str(p) for p in day], builtin_rules, merge=True, selection=span)
    assert "".join(iter_json(whole)) == "".join(iter_json(merged))
    assert merged.findings and merged.findings[0].capture == " + ".join(str(p) for p in day)
    before = _between(T0 + 2 * HOUR - 10**9, None)  # since: the first file is read anyway
    late = analyze([str(p) for p in day], builtin_rules, merge=True, selection=before)
    assert late.skipped == [] and [c.frames for c in late.captures] == [31, 31, 31]


def test_gzip_files_are_read_to_be_judged(day: list[Path], builtin_rules, tmp_path) -> None:
    import gzip

    gz = tmp_path / "hour0.pcap.gz"
    gz.write_bytes(gzip.compress(day[0].read_bytes()))
    report = analyze([str(gz)], builtin_rules, selection=_between(T0 + HOUR, None))
    assert report.skipped == [] and report.captures[0].frames == 31 and not report.findings


def test_the_cluster_skips_alike(day: list[Path], builtin_rules, scheduler: str) -> None:
    span = _between(T0 + 2 * HOUR - 10**9, None)
    files = [str(p) for p in day]
    local = analyze(files, builtin_rules, selection=span)
    remote = analyze(files, builtin_rules, selection=span, cluster=Cluster(scheduler))
    assert remote.skipped == files[:2]
    assert "".join(iter_json(local)) == "".join(iter_json(remote))
    assert to_text(local) == to_text(remote)
