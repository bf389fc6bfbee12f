"""bench/generate.py writes what it claims: deterministic, exact frame counts, a capture tshark
reads cleanly (right checksums, no sequence gaps; payloads are random bytes, so tshark's
application dissectors may call them malformed), and failures pcapdiag finds with exactly the
injected errno (bench/check.py)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import check  # noqa: E402
import generate  # noqa: E402

SMALL = 5000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "small.pcap"
    generate.generate(path, SMALL, seed=11)
    return path


def _records(path: Path) -> int:
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, linktype) == (0xA1B2C3D4, 1)  # microsecond pcap, Ethernet
    off, n = 24, 0
    while off < len(data):
        _, _, caplen, length = struct.unpack_from("<IIII", data, off)
        assert caplen == length
        off += 16 + caplen
        n += 1
    assert off == len(data)
    return n


def test_same_seed_same_bytes(tmp_path: Path, small: Path) -> None:
    again = tmp_path / "again.pcap"
    generate.generate(again, SMALL, seed=11)
    assert again.read_bytes() == small.read_bytes()
    assert check.truth_path(again).read_text() == check.truth_path(small).read_text()
    other = tmp_path / "other.pcap"
    generate.generate(other, SMALL, seed=12)
    assert other.read_bytes() != small.read_bytes()


@pytest.mark.parametrize("frames", [1, 777, SMALL])
def test_exact_frame_count(tmp_path: Path, frames: int, small: Path) -> None:
    path = small if frames == SMALL else tmp_path / f"{frames}.pcap"
    if frames != SMALL:
        generate.generate(path, frames, seed=3)
    assert _records(path) == frames
    assert json.loads(check.truth_path(path).read_text())["frames"] == frames


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_it_cleanly(small: Path) -> None:
    res = subprocess.run(
        ["tshark", "-r", str(small), "-T", "fields", "-e", "frame.number",
         "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
         "-o", "udp.check_checksum:TRUE",
         "-Y", "ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0"
               " || tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment"
               " || tcp.analysis.out_of_order"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "Running as user" not in ln]
    assert errors == []
    assert res.stdout.split() == [], "frames with bad checksums or sequence problems"
    count = subprocess.run(
        ["tshark", "-r", str(small), "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert len(count.stdout.split()) == SMALL


def test_pcapdiag_finds_every_injected_failure(small: Path) -> None:
    truth = json.loads(check.truth_path(small).read_text())
    # Every failure kind is injected early, so even a small capture shows them all.
    assert {f["kind"] for f in truth["failures"]} == set(generate.FAIL_KINDS)
    verdict = check.check(small)
    assert verdict.ok, "\n".join(verdict.misses + verdict.false_errnos)
    assert verdict.notes == []
    assert verdict.found == len(truth["failures"])


def test_check_catches_a_wrong_errno_and_a_false_one(small: Path) -> None:
    truth = json.loads(check.truth_path(small).read_text())
    report = check.run_pcapdiag(small)
    bad = json.loads(json.dumps(truth))
    bad["failures"][0]["errno"] = "EWOULDBLOCK"
    dropped = bad["failures"].pop()
    v = check.compare(report, bad)
    assert len(v.misses) == 1 and v.misses[0].startswith("WRONG")
    assert len(v.false_errnos) == 1 and dropped["client"] in v.false_errnos[0]


def test_findings_only_counted_are_claimed_by_errno_side_and_server(tmp_path: Path) -> None:
    # With one finding listed per group, some failures are found only through the groups'
    # counts; the verdict is the same, and a count no failure claims is a false errno.
    path = tmp_path / "medium.pcap"
    generate.generate(path, 60_000, seed=12)
    truth = json.loads(check.truth_path(path).read_text())
    report = check.run_pcapdiag(path, ["--max-alike", "1"])
    assert report["summary"]["findings_listed"] < report["summary"]["findings"]
    v = check.compare(report, truth)
    assert v.ok and v.found == len(truth["failures"]) and v.counted > 0
    fewer = json.loads(json.dumps(truth))
    listed = {(f["flow"]["client"], f["side"]) for f in report["findings"]}
    dropped = next(f for f in fewer["failures"] if (f["client"], f["side"]) not in listed)
    fewer["failures"].remove(dropped)
    v = check.compare(report, fewer)
    assert len(v.false_errnos) == 1 and "counted in a group" in v.false_errnos[0]
    assert dropped["errno"] in v.false_errnos[0]
