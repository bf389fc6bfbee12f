"""Damaged captures (tests/data/damaged/, made from samples/demo.pcap by make.py there): the CLI
exits 4 and names the byte offset and frame number of the damage on one line of stderr, with no
traceback, and still reports the findings of the frames before the damage.

The expectations are written down from samples/demo.expect.yaml (which finding has which
frames) and from where make.py puts the damage (offsets in make.py's docstring):

  PD-TCP-001 [1, 2]  PD-TCP-004 [22, 23]  PD-TCP-002 [24, 25]  PD-UDP-001 [26, 27]
  PD-TCP-006 [28, 30, 31]

A finding is reported when all of its frames come before the damage (the connection it is about
ends with the capture at the damage; no other finding may appear in its place).
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.cli import main

ROOT = Path(__file__).resolve().parents[2]
DAMAGED = ROOT / "tests" / "data" / "damaged"

REFUSED = ("PD-TCP-001", (1, 2))
RST_AFTER_HANDSHAKE = ("PD-TCP-004", (22, 23))
HOST_UNREACHABLE = ("PD-TCP-002", (24, 25))
UDP_REFUSED = ("PD-UDP-001", (26, 27))
EPIPE = ("PD-TCP-006", (28, 30, 31))
ALL_FIVE = (REFUSED, RST_AFTER_HANDSHAKE, HOST_UNREACHABLE, UDP_REFUSED, EPIPE)


@dataclass(frozen=True)
class Case:
    file: str
    exit_code: int
    message: str  # fragment of the damage message (or of the error, for exit 3)
    offset: int | None  # byte offset of the damage
    frame: int | None  # the frame number the bad record would have had
    frames_read: int | None  # frames delivered before the damage
    findings: tuple[tuple[str, tuple[int, ...]], ...]  # (rule, frames), exactly these


CASES = [
    # Not readable at all: 10 of the 24 bytes of the file header.
    Case("global-header-truncated.pcap", 3, "file header cut short", None, None, None, ()),
    # Record 21 starts at 1630; its header is cut after 8 bytes.
    Case(
        "record-header-truncated.pcap",
        4,
        "file cut short inside a record header",
        1630,
        21,
        20,
        (REFUSED,),
    ),
    # Record 24 starts at 1852; its data is cut after 30 of 66 bytes.
    Case(
        "packet-data-truncated.pcap",
        4,
        "file cut short inside packet data",
        1852,
        24,
        23,
        (REFUSED, RST_AFTER_HANDSHAKE),
    ),
    # Text after the last record (2479): read as a record header it claims 1112686919 bytes.
    Case(
        "garbage-appended.pcap",
        4,
        "record claims 1112686919 captured bytes, more than the 262144 limit",
        2479,
        32,
        31,
        ALL_FIVE,
    ),
    # An unknown block type is skipped: nothing damaged, demo.pcap's frames and findings.
    Case("pcapng-unknown-block.pcapng", 0, "", None, None, 31, ALL_FIVE),
    # SHB 28 + IDB 20, then EPBs of 32 + data padded to 4: frame 21's position is 2016, where
    # the second section's SHB (bad byte-order magic) is inserted.
    Case(
        "pcapng-bad-bom-second-section.pcapng",
        4,
        "section header block with an invalid byte-order magic",
        2016,
        21,
        20,
        (REFUSED,),
    ),
    Case(
        "pcapng-undefined-interface.pcapng",
        4,
        "packet block refers to interface 3, which is not defined",
        2392,
        25,
        24,
        (REFUSED, RST_AFTER_HANDSHAKE),
    ),
    # Frame 29 (part of the EPIPE connection, 28-31) has a block length of 0xFFFFFFFC.
    Case(
        "pcapng-block-length-overflow.pcapng",
        4,
        "block length 4294967292 is implausibly large",
        2776,
        29,
        28,
        (REFUSED, RST_AFTER_HANDSHAKE, HOST_UNREACHABLE, UDP_REFUSED),
    ),
    Case(
        "pcapng-block-past-end.pcapng",
        4,
        "file cut short inside a block (block runs past the end)",
        2864,
        30,
        29,
        (REFUSED, RST_AFTER_HANDSHAKE, HOST_UNREACHABLE, UDP_REFUSED),
    ),
]


def _make_module():
    spec = importlib.util.spec_from_file_location("damaged_make", DAMAGED / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_every_case_has_a_file_and_every_file_a_case() -> None:
    files = {p.name for p in DAMAGED.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert files == {c.file for c in CASES}


def test_files_are_what_make_py_writes(tmp_path: Path) -> None:
    make = _make_module()
    assert make.main(["make.py", str(tmp_path)]) == 0
    for case in CASES:
        assert (tmp_path / case.file).read_bytes() == (DAMAGED / case.file).read_bytes(), case.file


def test_offsets_in_the_table_are_where_make_py_put_the_damage() -> None:
    make = _make_module()
    assert make.record_offset(21) == 1630 and make.record_offset(24) == 1852
    assert len(make.DEMO.read_bytes()) == 2479
    for name, frame in (
        ("pcapng-undefined-interface.pcapng", 25),
        ("pcapng-block-past-end.pcapng", 30),
    ):
        offset = make.pcapng_offset(make.demo_pcapng(), frame)
        (case,) = [c for c in CASES if c.file == name]
        assert (case.offset, case.frame) == (offset, frame)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_cli_exit_code_and_one_line_naming_offset_and_frame(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "analyze", str(DAMAGED / case.file))
    assert code == case.exit_code, (out, err)
    assert "Traceback" not in out + err
    if case.exit_code == 3:
        assert err.startswith("pcapdiag: ") and case.message in err
        assert err.count("\n") == 1
        return
    if case.exit_code == 0:
        assert err == "" and "DAMAGED" not in out
        return
    lines = [ln for ln in err.splitlines() if "damaged" in ln]
    assert len(lines) == 1, err
    (line,) = lines
    assert f"damaged at byte {case.offset} (frame {case.frame})" in line
    assert case.message in line
    assert str(DAMAGED / case.file) in line
    # the text report says it too
    assert f"DAMAGED at byte {case.offset} (frame {case.frame} would start there)" in out


@pytest.mark.parametrize("case", [c for c in CASES if c.exit_code != 3], ids=lambda c: c.file)
def test_findings_before_the_damage_are_reported(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run_cli(capsys, "analyze", "--format", "json", str(DAMAGED / case.file))
    assert code == case.exit_code
    report = json.loads(out)
    (cap,) = report["captures"]
    assert cap["frames"] == case.frames_read
    if case.offset is None:
        assert cap["damage"] is None
    else:
        assert cap["damage"]["offset"] == case.offset
        assert cap["damage"]["frame"] == case.frame
        assert case.message in cap["damage"]["message"]
        assert case.offset < (DAMAGED / case.file).stat().st_size
    got = sorted((f["rule"], tuple(f["frames"])) for f in report["findings"])
    assert got == sorted(case.findings)
    # the refused connection of frames 1-2 is there whatever the damage
    refused = [f for f in report["findings"] if f["frames"] == [1, 2]]
    assert refused and refused[0]["errno"]["name"] == "ECONNREFUSED"
    assert refused[0]["flow"]["client"] == "10.0.0.1:40001"


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit", "html"])
def test_every_format_names_the_damage(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[2]  # packet data cut in frame 24
    code, out, err = run_cli(capsys, "analyze", "--format", fmt, str(DAMAGED / case.file))
    assert code == 4 and "Traceback" not in err
    assert str(case.offset) in out and re.search(rf"\b{case.frame}\b", out)


def test_library_reports_damage_without_raising(builtin_rules) -> None:
    for case in CASES:
        if case.exit_code != 4:
            continue
        report = analyze([str(DAMAGED / case.file)], builtin_rules)
        (cap,) = report.captures
        assert cap.damage is not None
        assert (cap.damage.offset, cap.damage.frame) == (case.offset, case.frame)
        assert cap.frames == case.frames_read == cap.damage.frame - 1
        assert any(w.frame == case.frame and str(case.offset) in w.message for w in report.warnings)
