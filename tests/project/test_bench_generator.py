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


# -- --steady-state --------------------------------------------------------------------------

STEADY = 20_000


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "steady.pcap"
    generate.generate(path, STEADY, seed=13, steady=True)
    return path


def _tcp_segments(path: Path):
    """(frame number, (src, sport, dst, dport), flags, TCP header length) of each TCP segment
    (the generator writes IPv4 without options, IPv6 without extension headers)."""
    data = path.read_bytes()
    off, n = 24, 0
    while off < len(data):
        _, _, caplen, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        n += 1
        eth = 18 if frame[12:14] == b"\x81\x00" else 14
        etype = frame[eth - 2 : eth]
        if etype == b"\x08\x00" and frame[eth + 9] == 6:
            src, dst, tcp = frame[eth + 12 : eth + 16], frame[eth + 16 : eth + 20], eth + 20
        elif etype == b"\x86\xdd" and frame[eth + 6] == 6:
            src, dst, tcp = frame[eth + 8 : eth + 24], frame[eth + 24 : eth + 40], eth + 40
        else:
            continue
        sport, dport = struct.unpack_from("!HH", frame, tcp)
        yield n, (src, sport, dst, dport), frame[tcp + 13], (frame[tcp + 12] >> 4) * 4


def test_steady_state_begins_in_the_middle(steady: Path) -> None:
    """Most TCP frames belong to connections whose SYN the capture never shows (they began
    before it); a third of the connections carry no timestamps; exact frame count; the same
    bytes from the same seed."""
    assert _records(steady) == STEADY
    first: dict[tuple[bytes, ...], int] = {}  # connection -> flags of its first segment
    frames: dict[tuple[bytes, ...], int] = {}
    stamped: dict[tuple[bytes, ...], bool] = {}
    for _, (src, sp, dst, dp), flags, hlen in _tcp_segments(steady):
        key = tuple(sorted([(src, sp), (dst, dp)]))
        first.setdefault(key, flags)
        frames[key] = frames.get(key, 0) + 1
        if not flags & generate.SYN and flags & generate.ACK and not flags & generate.RST:
            stamped.setdefault(key, hlen == 32)  # 20 bytes + the timestamps option
    midstream = [k for k, flags in first.items() if not flags & generate.SYN]
    assert len(midstream) > 50
    assert sum(frames[k] for k in midstream) > 0.6 * sum(frames.values())
    assert 0.2 < 1 - sum(stamped.values()) / len(stamped) < 0.45  # about a third without
    again = steady.with_name("again.pcap")
    generate.generate(again, STEADY, seed=13, steady=True)
    assert again.read_bytes() == steady.read_bytes()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_steady_state_has_spurious_retransmissions_and_good_checksums(steady: Path) -> None:
    def count(display_filter: str) -> int:
        res = subprocess.run(
            ["tshark", "-r", str(steady), "-T", "fields", "-e", "frame.number",
             "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
             "-o", "udp.check_checksum:TRUE", "-Y", display_filter],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return len(res.stdout.split())

    bad = "ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0"
    assert count(bad) == 0
    assert count("tcp.analysis.out_of_order") == 0
    # Data sent again that the receiver had already acknowledged (Wireshark: "spurious").
    assert count("tcp.analysis.spurious_retransmission") > 20


def test_steady_state_failures_are_found(steady: Path) -> None:
    """The injected failures, those of connections opened before the capture included (their
    roles guessed from the ports), are found with their errno, and nothing else is."""
    truth = json.loads(check.truth_path(steady).read_text())
    assert truth["steady_state"]["long_lived"] > 50
    assert {f["kind"] for f in truth["failures"]} == set(generate.FAIL_KINDS)
    syns = {
        (src, sp, dst, dp)
        for _, (src, sp, dst, dp), flags, _ in _tcp_segments(steady)
        if flags & generate.SYN and not flags & generate.ACK
    }
    unseen = {
        f["kind"]
        for f in truth["failures"]
        if f["proto"] == "tcp" and not any(generate._ep(s, p) == f["client"] for s, p, _, _ in syns)
    }
    assert unseen == set(generate.MIDSTREAM_FAIL_KINDS)  # each one, on connections seen mid-stream
    verdict = check.check(steady)
    assert verdict.ok, "\n".join(verdict.misses + verdict.false_errnos)
    assert verdict.notes == [] and verdict.found == len(truth["failures"])
