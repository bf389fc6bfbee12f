"""--jobs N gives byte-for-byte the report --jobs 1 gives (flows sharded by 4-tuple)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.errors import CaptureError
from pcapdiag.render.text import to_json
from tests.support.paths import public_captures_dir

ROOT = Path(__file__).resolve().parents[2]
OURS = sorted(
    p
    for pattern in (
        "rules/*/*.pcap",
        "samples/*.pcap",
        "samples/recorded/*/client.pcap",
        "tests/captures/*.pcap",
    )
    for p in ROOT.glob(pattern)
)
PUBLIC_DIR = public_captures_dir()
PUBLIC = (
    sorted(p for p in PUBLIC_DIR.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz"))
    if PUBLIC_DIR.is_dir()
    else []
)


def _json(paths: list[Path], rules, jobs: int) -> str:
    try:
        return to_json(analyze([str(p) for p in paths], rules, jobs=jobs, keep_flows=True))
    except CaptureError as exc:
        return f"CaptureError: {exc}"


def test_every_capture_in_one_run_is_the_same_with_2_and_3_jobs(builtin_rules) -> None:
    # One run over all captures keeps the number of worker pools (and the test) small.
    paths = OURS + [p for p in PUBLIC if p.stat().st_size > 24]  # (the two empty files)
    one = _json(paths, builtin_rules, 1)
    assert one == _json(paths, builtin_rules, 2)
    assert one == _json(paths, builtin_rules, 3)


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name)
def test_each_public_capture_with_2_jobs(path: Path, builtin_rules) -> None:
    assert _json([path], builtin_rules, 1) == _json([path], builtin_rules, 2)


def test_jobs_are_really_used(builtin_rules) -> None:
    # The merged report must hold flows from more than one worker, or the test above proves
    # nothing: the demo's six flows do not all hash to one shard.
    from pcapdiag.accel.shard import shard_of
    from pcapdiag.decode.link import decode
    from pcapdiag.io.reader import open_capture

    shards = {shard_of(decode(f), 2) for f in open_capture(str(ROOT / "samples/demo.pcap"))}
    assert shards == {0, 1}


def test_broken_frames_are_counted_once_with_jobs(builtin_rules) -> None:
    # Damaged and fuzz-found inputs, among them frames that do not decode (truncated TCP
    # headers): worker 0 alone counts and lists them, so the report is still the same.
    broken = sorted(ROOT.glob("tests/data/damaged/*.pcap*")) + sorted(
        ROOT.glob("tests/data/fuzz/*.pcap*")
    )
    assert len(broken) > 5
    for path in broken:
        assert _json([path], builtin_rules, 1) == _json([path], builtin_rules, 2), path.name


def test_a_truncated_tcp_header_is_counted_with_2_jobs(builtin_rules, tmp_path: Path) -> None:
    # Ports present, TCP header cut short: undecodable, so worker 0's, whatever its ports say.
    import struct

    eth = bytes.fromhex("0200000000020200000000010800")
    frames = []
    for sport in range(1000, 1010):  # ports that hash to both workers
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, b"\n\0\0\1", b"\n\0\0\2"
        )
        frames.append(eth + ip + struct.pack("!HH", sport, 80))
    path = tmp_path / "cut.pcap"
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            fh.write(struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f)
    one = analyze([str(path)], builtin_rules, jobs=1)
    two = analyze([str(path)], builtin_rules, jobs=2)
    assert one.undecodable == two.undecodable == 10
    assert to_json(one) == to_json(two)


def test_a_capture_that_cannot_be_read_is_the_same_error_with_2_jobs(builtin_rules, tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all, not even close")
    messages = []
    for jobs in (1, 2):
        with pytest.raises(CaptureError) as exc:
            analyze([str(bad)], builtin_rules, jobs=jobs)
        messages.append(str(exc.value))
    assert messages[0] == messages[1]


def test_a_worker_error_reaches_the_caller(builtin_rules, monkeypatch) -> None:
    from pcapdiag.accel import parallel

    def fails(args):
        raise ValueError("the worker's own error")

    # Forked workers inherit the patched function.
    monkeypatch.setattr(parallel, "_shard_worker", fails)
    with pytest.raises(ValueError, match="the worker's own error"):
        analyze([str(ROOT / "samples/demo.pcap")], builtin_rules, jobs=2)


def test_a_worker_that_dies_is_reported(builtin_rules, monkeypatch) -> None:
    import os

    from pcapdiag.accel import parallel

    def dies(args):
        os._exit(3)  # as if killed: no result, no exception

    monkeypatch.setattr(parallel, "_shard_worker", dies)
    with pytest.raises(RuntimeError, match=r"ended without a result \(exit code 3\)"):
        analyze([str(ROOT / "samples/demo.pcap")], builtin_rules, jobs=2)


def test_a_worker_result_that_cannot_be_sent_is_reported(builtin_rules, monkeypatch) -> None:
    from pcapdiag.accel import parallel

    monkeypatch.setattr(parallel, "_shard_worker", lambda args: lambda: None)  # no pickle
    with pytest.raises(RuntimeError, match="in a worker of --jobs"):
        analyze([str(ROOT / "samples/demo.pcap")], builtin_rules, jobs=2)


def test_the_default_is_one_job_on_two_cpus_or_fewer(monkeypatch) -> None:
    import os

    from pcapdiag.api import default_jobs

    for cpus, expected in ((1, 1), (2, 1), (3, 3), (4, 4), (16, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)))
        assert default_jobs() == expected, cpus
