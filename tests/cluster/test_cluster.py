"""--cluster: the same report as a local run, from tasks on real worker processes.

Each comparison is against the local run of the same captures (the reference the issue
sets: byte for byte), on captures whose findings other tests hold to the kernel's answers."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pcapdiag.api import Cluster, analyze
from pcapdiag.cli import main
from pcapdiag.cluster import ClusterTally
from pcapdiag.cluster.run import SHARE_MIN_BYTES, share_out
from pcapdiag.findings.model import Report
from pcapdiag.render.text import iter_json, to_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples" / "demo.pcap"
RECORDED = sorted((ROOT / "samples" / "recorded").glob("*/*.pcap"))
DAMAGED = ROOT / "tests" / "data" / "damaged"


def _same(a: Report, b: Report) -> None:
    assert "".join(iter_json(a)) == "".join(iter_json(b))
    assert to_text(a, show_flows=True) == to_text(b, show_flows=True)


def _generated(tmp_path: Path, frames: int, seed: int) -> Path:
    """A capture of many connections and every failure the generator makes (bench/)."""
    out = tmp_path / f"gen-{frames}-{seed}.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "generate.py"),
            "--frames",
            str(frames),
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def test_recorded_captures_give_the_local_report(scheduler: str, builtin_rules) -> None:
    files = [str(p) for p in [DEMO, *RECORDED]]
    local = analyze(files, builtin_rules, keep_flows=True)
    remote = analyze(files, builtin_rules, keep_flows=True, cluster=Cluster(scheduler))
    assert len(remote.captures) == len(files) and remote.findings
    _same(local, remote)


def test_damaged_and_compressed_captures_give_the_local_report(
    scheduler: str, builtin_rules, tmp_path: Path
) -> None:
    gz = tmp_path / "demo.pcap.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes()))
    files = [str(gz), *sorted(str(p) for p in DAMAGED.glob("*.pcap*") if "header" not in p.name)]
    local = analyze(files, builtin_rules)
    remote = analyze(files, builtin_rules, cluster=Cluster(scheduler))
    assert remote.damaged  # each damage is reported as a local run reports it
    _same(local, remote)


def test_shares_of_one_capture_give_the_local_report(
    scheduler: str, builtin_rules, tmp_path: Path
) -> None:
    # Several captures cut into shares (by 4-tuple): findings alike counted past 2 in a
    # group, so that each group's list is made of several workers' findings.
    files = [str(_generated(tmp_path, 20000, seed)) for seed in (3, 4)]
    local = analyze(files, builtin_rules, max_alike=2)
    for shares in (2, 3):
        remote = analyze(files, builtin_rules, max_alike=2, cluster=Cluster(scheduler, shares))
        _same(local, remote)
    assert local.groups and local.finding_count > 100


def test_a_merged_rotation_is_one_chain(scheduler: str, builtin_rules, tmp_path: Path) -> None:
    # demo.pcap cut in two as tcpdump -C would: the EPIPE connection spans both pieces.
    from tests.system.test_merge import _split

    first, second = _split(tmp_path, 20)
    local = analyze([str(second), str(first)], builtin_rules, merge=True)
    remote = analyze(
        [str(second), str(first)], builtin_rules, merge=True, cluster=Cluster(scheduler)
    )
    _same(local, remote)
    epipe = next(f for f in remote.findings if f.rule == "PD-TCP-006")
    assert epipe.frames == (28, 30, 31)


def test_undecodable_frames_are_listed_up_to_the_cap_across_captures(
    scheduler: str, builtin_rules, tmp_path: Path
) -> None:
    # Three captures of 30 frames each that no decoder reads (IPv4 headers cut at 10 bytes):
    # one process lists the first 50 of the 90 and counts the rest; so must the parts added.
    files = []
    for i in range(3):
        path = tmp_path / f"cut-{i}.pcap"
        with path.open("wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            frame = b"\x02" * 12 + b"\x08\x00" + b"\x45\x00\x00\x28" + b"\x00" * 6
            for n in range(30):
                fh.write(struct.pack("<IIII", 1_700_000_000 + n, 0, len(frame), len(frame)))
                fh.write(frame)
        files.append(str(path))
    local = analyze(files, builtin_rules)
    remote = analyze(files, builtin_rules, cluster=Cluster(scheduler))
    assert local.undecodable == 90
    listed = [w for w in remote.warnings if w.code == "undecodable-frame" and w.frame is not None]
    assert len(listed) == 50
    _same(local, remote)


def test_a_failed_capture_leaves_the_others_reported(
    scheduler: str, builtin_rules, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_bytes(b"this is not a capture at all")
    good = [str(DEMO), str(RECORDED[0])]
    remote = analyze([good[0], str(bad), good[1]], builtin_rules, cluster=Cluster(scheduler))
    local = analyze(good, builtin_rules)
    [failed] = remote.failed_captures
    assert str(bad) in failed.message and "not a pcap or pcapng file" in failed.message
    assert "worker tcp://127.0.0.1:" in failed.message
    assert [c.path for c in remote.captures] == good
    assert [f.id for f in remote.findings] == [f.id for f in local.findings]


def test_progress_counts_every_capture(scheduler: str, builtin_rules) -> None:
    files = [str(p) for p in RECORDED[:6]]
    seen: list[ClusterTally] = []
    report = analyze(files, builtin_rules, cluster=Cluster(scheduler, None, seen.append))
    assert [t.files_done for t in seen] == list(range(1, 7))
    last = seen[-1]
    assert (last.files_total, last.frames, last.workers) == (6, report.frames, 2)
    assert last.bytes == sum(p.stat().st_size for p in RECORDED[:6])


def test_share_out() -> None:
    big, small = SHARE_MIN_BYTES, SHARE_MIN_BYTES - 1
    assert share_out([big, small], 8, None) == [4, 1]  # small captures are not cut
    assert share_out([big] * 8, 8, None) == [1] * 8  # a capture a worker already
    assert share_out([None, big], 2, 3) == [3, 3]  # asked for
    assert share_out([big], 1, None) == [1]


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_cli_over_a_running_scheduler(scheduler: str, capsys, tmp_path: Path) -> None:
    code, local, _ = _run(capsys, "analyze", "--format", "json", DEMO, RECORDED[1])
    assert code == 0
    code, remote, err = _run(
        capsys, "analyze", "--cluster", scheduler, "--format", "json", DEMO, RECORDED[1]
    )
    assert (code, err) == (0, "")
    assert remote == local


def test_cli_partial_run_exits_6(scheduler: str, capsys, tmp_path: Path) -> None:
    bad = tmp_path / "empty.pcap"
    bad.write_bytes(b"")
    code, out, err = _run(capsys, "analyze", "--cluster", scheduler, DEMO, bad)
    assert code == 6
    assert f"{bad}: not analysed, failed on worker tcp://127.0.0.1:" in err
    assert "empty file" in err
    assert "PD-TCP-006" in out  # demo.pcap's findings are in the report


def test_cli_starts_a_local_cluster(capsys, tmp_path: Path) -> None:
    local_out = tmp_path / "local.json"
    remote_out = tmp_path / "remote.json"
    assert _run(capsys, "analyze", "--format", "json", "-o", local_out, DEMO)[0] == 0
    code, _, err = _run(
        capsys, "analyze", "--cluster", "local:1", "--format", "json", "-o", remote_out, DEMO
    )
    assert (code, err) == (0, "")
    assert remote_out.read_bytes() == local_out.read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster", "local:0"], "local:N needs a number of workers"),
        (["--cluster", "local:two"], "local:N needs a number of workers"),
        (["--cluster", "tcp://"], "not a scheduler address"),
        (["--cluster", "local:1", "--join"], "--cluster and --join"),
        (["--cluster", "local:1", "--format", "jsonl"], "--cluster and --format jsonl"),
    ],
)
def test_cli_refuses_what_a_cluster_cannot_do(capsys, argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, "analyze", *argv, DEMO)
    assert code == 2 and message in err and out == ""


def test_cli_refuses_standard_input(capsys) -> None:
    code, _out, err = _run(capsys, "analyze", "--cluster", "local:1", "-")
    assert code == 2 and "standard input" in err


def test_cli_no_scheduler_exits_7(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcapdiag.cluster import address

    monkeypatch.setattr(address, "CONNECT_TIMEOUT_S", 2)
    with __import__("socket").socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = _run(capsys, "analyze", "--cluster", f"tcp://127.0.0.1:{port}", DEMO)
    assert code == 7 and out == ""
    assert f"--cluster tcp://127.0.0.1:{port}: no scheduler answers" in err
    assert "Traceback" not in err


def test_without_dask_the_cluster_says_how_to_install_it(
    builtin_rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from pcapdiag.cluster import ClusterError

    real_import = builtins.__import__

    def no_distributed(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(ClusterError, match=r"pip install 'pcapdiag\[cluster\]'"):
        analyze([str(DEMO)], builtin_rules, cluster=Cluster("local:1"))


def test_workers_running_another_pcapdiag_are_refused(
    scheduler: str, builtin_rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's parts are pickled by its own classes: another version's would be read
    # wrong, so the run stops before any task (the identity of this process is changed
    # here; the workers compute theirs).
    from pcapdiag.cluster import ClusterError, tasks

    real = tasks.code_identity()
    monkeypatch.setattr(tasks, "_IDENTITY", "0.0.0+000000000000")  # this process's only
    with pytest.raises(ClusterError) as exc:
        analyze([str(DEMO)], builtin_rules, cluster=Cluster(scheduler))
    assert str(exc.value).startswith("2 workers (tcp://127.0.0.1:")
    assert f"run pcapdiag {real}, this process 0.0.0+000000000000" in str(exc.value)


def test_no_hash_leaves_only_the_sha256_out(scheduler: str, builtin_rules) -> None:
    files = [str(DEMO), str(RECORDED[2])]
    hashed = analyze(files, builtin_rules)
    for cluster in (None, Cluster(scheduler), Cluster(scheduler, 2)):
        bare = analyze(files, builtin_rules, cluster=cluster, hash_captures=False)
        assert [c.sha256 for c in bare.captures] == [None, None]
        for c in bare.captures:
            c.sha256 = next(h.sha256 for h in hashed.captures if h.path == c.path)
        _same(hashed, bare)
    jobs = analyze(files, builtin_rules, jobs=2, hash_captures=False)
    assert [c.sha256 for c in jobs.captures] == [None, None]


def test_relative_paths_are_the_clients(
    scheduler: str, builtin_rules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers were started in another directory: a path relative to this process's
    # is read from here, and keeps its name in the report.
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "demo.pcap").write_bytes(DEMO.read_bytes())
    monkeypatch.chdir(tmp_path)
    local = analyze(["day/demo.pcap"], builtin_rules)
    remote = analyze(["day/demo.pcap"], builtin_rules, cluster=Cluster(scheduler, 2))
    assert not remote.failed_captures and remote.captures[0].path == "day/demo.pcap"
    assert remote.captures[0].sha256 == local.captures[0].sha256 is not None
    _same(local, remote)


def test_merge_by_dir_on_the_cluster(scheduler: str, builtin_rules, tmp_path: Path) -> None:
    # A host a directory of rotated pieces: each host one task chain, the local report.
    from tests.system.test_merge import _split

    files = []
    for host in ("host-a", "host-b", "host-c"):
        (tmp_path / host).mkdir()
        files += [str(p) for p in reversed(_split(tmp_path / host, 20))]
    local = analyze(files, builtin_rules, merge=True, merge_by_dir=True)
    remote = analyze(
        files, builtin_rules, merge=True, merge_by_dir=True, cluster=Cluster(scheduler)
    )
    assert len({f.capture for f in remote.findings}) == 3
    _same(local, remote)
