"""Live pipes: with a capture on standard input, each finding is out as soon as its flow is
decided (`tcpdump -w - | pcapdiag analyze -`), not when the input ends.

The captures are built packet by packet: a refused connection, then a packet a minute later
on another connection, so that capture time has passed the refused connection's grace (the
flow table holds a closed connection 10 s before it is judged) while standard input stays
open. The test reads the finding before it closes standard input."""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from floods import ACK, RST, SYN, frame  # noqa: E402

T0 = 1_700_000_000
CLIENT, SERVER, OTHER = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3])


def _record(t_us: int, data: bytes) -> bytes:
    return (
        struct.pack("<IIII", T0 + t_us // 1_000_000, t_us % 1_000_000, len(data), len(data)) + data
    )


HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
# Frame 1: SYN to 10.0.0.2:8080; frame 2: its RST|ACK 1 ms later (refused, PD-TCP-001);
# frame 3: a SYN to another host 60 s later.
FIRST = (
    HEADER
    + _record(0, frame(CLIENT, SERVER, 40000, 8080, 1000, 0, SYN))
    + _record(1000, frame(SERVER, CLIENT, 8080, 40000, 0, 1001, RST | ACK))
    + _record(60_000_000, frame(CLIENT, OTHER, 40001, 22, 5000, 0, SYN))
)


def _start(*options: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pcapdiag", "analyze", "-q", *options, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )


def _line_before_eof(proc: subprocess.Popen[bytes]) -> bytes:
    """The first line the process writes while its standard input is still open."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(FIRST)
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "nothing written while standard input stayed open"
    return proc.stdout.readline()


def test_jsonl_writes_each_finding_while_the_input_is_open() -> None:
    proc = _start("--format", "jsonl")
    try:
        line = _line_before_eof(proc)
        finding = json.loads(line)
        assert (finding["rule"], finding["frames"]) == ("PD-TCP-001", [1, 2])
        assert finding["flow"]["server"] == "10.0.0.2:8080"
        assert proc.poll() is None  # still reading
    finally:
        # communicate() closes standard input: the end of the capture.
        rest, err = proc.communicate(timeout=60)
    # The SYN of frame 3 is too recent to judge when the input ends: nothing more.
    assert rest == b"" and proc.returncode == 0, err


def test_text_prints_a_line_per_finding_then_the_report() -> None:
    proc = _start()
    try:
        line = _line_before_eof(proc).decode()
        assert line == (
            "2023-11-14T22:13:20.000000Z F-"
            + line.split(" F-", 1)[1].split(" ", 1)[0]
            + ' client 10.0.0.1:40000: connect() -> ECONNREFUSED ("Connection refused") '
            "(PD-TCP-001, frames 1, 2)\n"
        )
    finally:
        # communicate() closes standard input: the end of the capture.
        rest, err = proc.communicate(timeout=60)
    report = rest.decode()
    assert proc.returncode == 0, err
    assert report.startswith("-: pcap, 3 frames")
    assert "[1] HIGH  Connection refused (SYN answered by RST)" in report


def test_jsonl_of_a_file_is_the_report_findings(tmp_path) -> None:
    # Not only for standard input: the same findings as the JSON report's, one a line.
    demo = ROOT / "samples" / "demo.pcap"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "--format", "jsonl", str(demo)],
        capture_output=True,
        check=True,
        env=env,
        cwd=ROOT,
    ).stdout.splitlines()
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pcapdiag", "analyze", "--format", "json", str(demo)],
            capture_output=True,
            check=True,
            env=env,
            cwd=ROOT,
        ).stdout
    )
    got = sorted((json.loads(ln) for ln in lines), key=lambda f: f["id"])
    assert got == sorted(report["findings"], key=lambda f: f["id"])
    assert len(got) == 5
