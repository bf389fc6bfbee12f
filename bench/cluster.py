"""Benchmark `pcapdiag analyze --cluster`: scaling over worker processes, start-up cost, a
running scheduler against one local process, and the reports' identity with the local run.

    python bench/cluster.py [--files 64] [--frames 200000] [--big-frames 1000000] [--rounds 3]
        [--workdir DIR] [--format text|json] [--json OUT]

Captures: `--files` captures of `--frames` frames each (bench/generate.py, seeds 1..N) and one
of `--big-frames` frames (seed 1000), generated two at a time into --workdir (default
/tmp/pcapdiag-cluster-bench) as gen-<frames>-s<seed>.pcap with their truth files, as
bench/run.py names them; a capture already there with a truth file of the right frame count
is reused. A generator is written under a .part name and renamed when it has finished, so an
interrupted one is not taken for a capture.

Every command runs as a subprocess from bench/run.py's spawner (its `measure`), the commands of
a step alternating A B C A B C ... for --rounds rounds (default 3), after the bytecode of
pcapdiag is written (compileall), as bench/run.py does. For each run: wall time (perf_counter
around spawn and wait) and CPU time (user + sys, the delta of getrusage(RUSAGE_CHILDREN)
across the run: the command and every process of its tree it waited for, so the worker
processes of a `--cluster local:N` run count). Tables show medians; a ratio of two commands is
the median over the rounds of the ratio within each round (they ran at nearly the same moment).

1. Scaling set, all the --files captures in one command (`--quiet --format F -o REPORT`, F
   the default text report unless `--format json`: the JSON report lists every finding in
   full, 51,000 for 64 generated captures, and its rendering is work the client does alone):
   A `--jobs 1` (one process), B `--cluster local:1`, C `--cluster local:2`. The table gives
   wall s, CPU s, CPU/wall (above 1.0 with one worker: something besides the analysis keeps a
   second core busy, e.g. the client, the scheduler or a hashing thread), frames/s and MB/s
   (total frames and bytes of the files). Target: C's throughput at least 1.5x B's. B's
   throughput relative to A's is the cost of running as a task. The reports of A, B and C
   must be byte-identical: checked after every round (round 1's kept, later ones deleted).
   E and F are B and C with `--no-hash` (no sha256 of each file: with it, one worker's
   hashing thread already keeps part of the second core busy); target met by F/E too.
   Before each round every file is read once, so that no command pays for page cache the
   kernel reclaimed since the last round.
2. Start-up: `samples/demo.pcap` (a handful of frames) with `--cluster local:1`,
   `--cluster local:2` and `--jobs 1`; the start-up cost of local:N is its wall time minus
   `--jobs 1`'s (median of the rounds' differences). The reports must be identical too.
3. Running cluster: `dask scheduler` on a free loopback port and one `dask worker` (one
   process, one thread, without Dask's statistical profiler as docs/scaling.md advises;
   logs in the workdir) are started first and the scheduler waited on
   until the worker has joined. Then on the big capture: A `--jobs 1` and D
   `--cluster tcp://127.0.0.1:PORT`, and `tshark -r F -q -z expert` (when on PATH) in the same
   rounds. D's worker and scheduler are not children of the command, so their CPU (utime +
   stime from /proc, over their process trees) is measured across the run and added to D's;
   it includes their idle heartbeats. Target: D's wall time at most 1.15x A's. The reports of
   A and D must be identical. The scheduler and the worker are stopped at the end, whatever
   happens (their process groups, by PID).

Exit code 0 when every report is identical to its `--jobs 1` counterpart, 1 when one differs
or is missing (the speed targets are printed, not enforced), 2 when a capture cannot be
generated or the cluster cannot be started. `--json OUT` writes every median, ratio and
verdict.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import check  # noqa: E402
import run as bench_run  # noqa: E402
from run import Sample  # noqa: E402

DEFAULT_WORKDIR = Path("/tmp/pcapdiag-cluster-bench")
BIG_SEED = 1000
SCALING_TARGET = 1.5  # C's throughput over B's, at least
RUNNING_TARGET = 1.15  # D's wall time over A's, at most
DEMO = ROOT / "samples" / "demo.pcap"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- captures ---------------------------------------------------------------------------


def capture_path(work: Path, frames: int, seed: int) -> Path:
    return work / f"gen-{frames}-s{seed}.pcap"


def _complete(path: Path, frames: int) -> bool:
    tp = check.truth_path(path)
    if not (path.exists() and tp.exists()):
        return False
    try:
        return json.loads(tp.read_text()).get("frames") == frames
    except (OSError, ValueError):
        return False


@dataclass
class _GenJob:
    frames: int
    seed: int
    path: Path
    part: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    start: float = 0.0


def ensure_captures(work: Path, wanted: list[tuple[int, int]], parallel: int = 2) -> list[Path]:
    """The captures (frames, seed) in `work`, generating the missing ones `parallel` at a
    time (each bench/generate.py in its own process); in the order asked."""
    paths = [capture_path(work, n, s) for n, s in wanted]
    todo: list[_GenJob] = []
    for (frames, seed), path in zip(wanted, paths, strict=True):
        if _complete(path, frames):
            continue
        part = path.with_name(path.name.removesuffix(".pcap") + ".part.pcap")
        todo.append(_GenJob(frames, seed, path, part, work / f"generate-s{seed}.log"))
    reused = len(wanted) - len(todo)
    if reused:
        print(f"reusing {reused} capture(s) in {work}", file=sys.stderr)
    if not todo:
        return paths
    # The largest first: it then runs beside the small ones instead of alone at the end.
    todo.sort(key=lambda j: -j.frames)
    print(f"generating {len(todo)} capture(s), {parallel} at a time...", file=sys.stderr)
    pending = list(todo)
    running: list[_GenJob] = []
    t0 = time.perf_counter()
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                cmd = [sys.executable, str(HERE / "generate.py"), "--frames", str(job.frames)]
                cmd += ["--out", str(job.part), "--seed", str(job.seed)]
                with open(job.log, "wb") as log:
                    job.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                job.start = time.perf_counter()
                running.append(job)
            time.sleep(0.2)
            for job in list(running):
                assert job.proc is not None
                code = job.proc.poll()
                if code is None:
                    continue
                running.remove(job)
                if code != 0 or not _complete(job.part, job.frames):
                    tail = job.log.read_text(errors="replace").strip()[-1500:]
                    raise SystemExit(
                        f"error: bench/generate.py --frames {job.frames} --seed {job.seed} "
                        f"--out {job.part} failed (exit code {code}); log {job.log}:\n{tail}"
                    )
                job.part.replace(job.path)
                # The truth file last: its presence marks a finished capture.
                check.truth_path(job.part).replace(check.truth_path(job.path))
                print(
                    f"  generated {job.path.name} ({job.frames:,} frames) in "
                    f"{time.perf_counter() - job.start:.1f} s",
                    file=sys.stderr,
                )
    finally:
        for job in running:
            if job.proc is not None and job.proc.poll() is None:
                job.proc.kill()
                job.proc.wait()
    print(f"generation took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return paths


def frames_of(path: Path) -> int:
    return int(json.loads(check.truth_path(path).read_text())["frames"])


# --- timing -----------------------------------------------------------------------------


def pcapdiag(mode: list[str], captures: list[Path], report: Path, fmt: str = "json") -> list[str]:
    cmd = [sys.executable, "-m", "pcapdiag", "analyze", "--quiet", "--format", fmt]
    return [*cmd, "-o", str(report), *mode, *(str(c) for c in captures)]


def timed(name: str, rnd: int, cmd: list[str], work: Path) -> Sample:
    """One run through bench/run.py's measure; a failure is said loudly (a report it did not
    write then fails the identity check)."""
    if "-o" in cmd:  # a report left by an earlier run must not pass for this one's
        Path(cmd[cmd.index("-o") + 1]).unlink(missing_ok=True)
    err = work / f"stderr-{_slug(name)}.txt"
    s = bench_run.measure(name, rnd, cmd, subprocess.DEVNULL, err)
    if s.exit_code != 0:
        tail = err.read_text(errors="replace").strip()[-800:]
        print(f"WARNING: {name} exited {s.exit_code}: {tail}", file=sys.stderr)
    print(
        f"  round {rnd} {name:<24} wall {s.wall_s:8.2f} s  CPU {s.cpu_s:8.2f} s",
        file=sys.stderr,
    )
    return s


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def medians(samples: list[Sample]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(s.tool for s in samples):
        mine = [s for s in samples if s.tool == name]
        out[name] = {
            k: statistics.median(getattr(s, k) for s in mine)
            for k in ("wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb")
        }
        out[name]["rounds"] = len(mine)
    return out


def paired(samples: list[Sample], a: str, b: str, diff: bool = False) -> float | None:
    """Median over the rounds of wall(a) / wall(b) (or wall(a) - wall(b))."""
    wall = {(s.tool, s.round): s.wall_s for s in samples}
    rounds = sorted({s.round for s in samples})
    vals = [
        (wall[a, r] - wall[b, r]) if diff else wall[a, r] / wall[b, r]
        for r in rounds
        if (a, r) in wall and (b, r) in wall
    ]
    return statistics.median(vals) if vals else None


@dataclass
class Identity:
    """Whether each round's reports are byte-identical to the reference's of that round."""

    what: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)

    def compare(
        self, rnd: int, reference: tuple[str, Path], others: list[tuple[str, Path]]
    ) -> bool:
        ref_name, ref = reference
        ok = True
        for name, path in [reference, *others]:
            if not path.exists():
                self.problems.append(f"round {rnd}: {name} wrote no report ({path})")
                ok = False
        for name, path in others:
            if ref.exists() and path.exists() and not filecmp.cmp(ref, path, shallow=False):
                self.problems.append(
                    f"round {rnd}: {name}'s report {path} differs from {ref_name}'s {ref}"
                )
                ok = False
        self.ok = self.ok and ok
        return ok

    def verdict(self) -> str:
        if self.ok:
            return f"{self.what}: reports byte-identical: OK"
        lines = [f"!!! {self.what}: REPORTS DIFFER OR ARE MISSING: FAIL !!!"]
        return "\n".join(lines + [f"!!!   {p}" for p in self.problems])


def pass_fail(met: bool) -> str:
    return "PASS" if met else "FAIL"


# --- step 1: scaling set ----------------------------------------------------------------

SCALING = (
    ("A --jobs 1", ["--jobs", "1"]),
    ("B --cluster local:1", ["--cluster", "local:1"]),
    ("C --cluster local:2", ["--cluster", "local:2"]),
    # The same without the sha256 of each file: with it, one worker's hashing thread already
    # keeps part of the second core busy (B's CPU/wall above 1).
    ("E local:1 --no-hash", ["--cluster", "local:1", "--no-hash"]),
    ("F local:2 --no-hash", ["--cluster", "local:2", "--no-hash"]),
)


def warm(files: list[Path]) -> None:
    """Read every file once, so that each round's first command does not pay for pages the
    kernel dropped since the last round (this machine's DAMON reclaims cold page cache)."""
    buf = bytearray(16 << 20)
    for f in files:
        with f.open("rb") as fh:
            while fh.readinto(buf):
                pass


def scaling_set(files: list[Path], rounds: int, work: Path, fmt: str) -> dict[str, Any]:
    frames = sum(frames_of(f) for f in files)
    size = sum(f.stat().st_size for f in files)
    print(
        f"\n== scaling set: {len(files)} files, {frames:,} frames, {size / 1e6:,.1f} MB ==",
        file=sys.stderr,
    )
    reports = work / "reports"
    samples: list[Sample] = []
    ident = Identity("scaling set (A, B, C)")
    ident_bare = Identity("scaling set without sha256 (E, F)")
    for rnd in range(1, rounds + 1):
        warm(files)
        paths: list[tuple[str, Path]] = []
        for name, mode in SCALING:
            report = reports / f"scaling-{name[0]}-{rnd}.{fmt}"
            samples.append(timed(name, rnd, pcapdiag(mode, files, report, fmt), work))
            paths.append((name, report))
        same = ident.compare(rnd, paths[0], paths[1:3])
        same = ident_bare.compare(rnd, paths[3], paths[4:]) and same
        if rnd == 1 or not same:
            print(ident.verdict(), file=sys.stderr)
            print(ident_bare.verdict(), file=sys.stderr)
        else:
            for _, p in paths:
                p.unlink(missing_ok=True)
    med = medians(samples)
    for m in med.values():
        m["cpu_per_wall"] = m["cpu_s"] / m["wall_s"]
        m["frames_per_s"] = frames / m["wall_s"]
        m["mb_per_s"] = size / 1e6 / m["wall_s"]
    a, b, c, e, f = (name for name, _ in SCALING)
    scale = paired(samples, b, c)  # wall B / wall C = throughput C / throughput B
    scale_bare = paired(samples, e, f)
    b_vs_a = paired(samples, a, b)  # throughput B / throughput A
    res: dict[str, Any] = {
        "files": len(files),
        "format": fmt,
        "frames": frames,
        "bytes": size,
        "rounds": rounds,
        "medians": med,
        "c_over_b_throughput": scale,
        "b_over_a_throughput": b_vs_a,
        "scaling_target": SCALING_TARGET,
        "scaling_met": scale is not None and scale >= SCALING_TARGET,
        "f_over_e_throughput": scale_bare,
        "scaling_met_without_hash": scale_bare is not None and scale_bare >= SCALING_TARGET,
        "identical": ident.ok and ident_bare.ok,
        "identity_problems": ident.problems + ident_bare.problems,
    }
    print(
        f"\nScaling set: {len(files)} files, {frames:,} frames, {size / 1e6:,.1f} MB, "
        f"--format {fmt}; medians of {rounds} round(s)"
    )
    print(
        f"{'command':<22} {'wall s':>8} {'CPU s':>8} {'CPU/wall':>9} {'frames/s':>11} {'MB/s':>8}"
    )
    for name, m in med.items():
        print(
            f"{name:<22} {m['wall_s']:8.2f} {m['cpu_s']:8.2f} {m['cpu_per_wall']:9.2f} "
            f"{m['frames_per_s']:11,.0f} {m['mb_per_s']:8.2f}"
        )
    if scale is not None:
        print(
            f"scaling: C/B throughput x{scale:.2f} (median of the rounds' B/C wall ratios; "
            f"target >= {SCALING_TARGET}): {pass_fail(res['scaling_met'])}"
        )
    if scale_bare is not None:
        print(
            f"scaling without sha256: F/E throughput x{scale_bare:.2f} (target >= "
            f"{SCALING_TARGET}): {pass_fail(res['scaling_met_without_hash'])}"
        )
    if b_vs_a is not None:
        print(
            f"B vs A: local:1's throughput x{b_vs_a:.2f} that of --jobs 1 "
            f"(B takes x{1 / b_vs_a:.2f} A's wall time)"
        )
    print(ident.verdict())
    print(ident_bare.verdict())
    return res


# --- step 2: start-up -------------------------------------------------------------------

STARTUP = (
    ("local:1", ["--cluster", "local:1"]),
    ("local:2", ["--cluster", "local:2"]),
    ("--jobs 1", ["--jobs", "1"]),
)


def startup(rounds: int, work: Path) -> dict[str, Any]:
    print(f"\n== start-up on {DEMO.name} ==", file=sys.stderr)
    reports = work / "reports"
    samples: list[Sample] = []
    ident = Identity("start-up (local:1, local:2 vs --jobs 1)")
    for rnd in range(1, rounds + 1):
        paths: dict[str, Path] = {}
        for name, mode in STARTUP:
            paths[name] = reports / f"startup-{_slug(name)}-{rnd}.json"
            samples.append(timed(name, rnd, pcapdiag(mode, [DEMO], paths[name]), work))
        ident.compare(
            rnd, ("--jobs 1", paths["--jobs 1"]), [(n, paths[n]) for n in ("local:1", "local:2")]
        )
    med = medians(samples)
    cost = {n: paired(samples, n, "--jobs 1", diff=True) for n in ("local:1", "local:2")}
    print(f"\nStart-up on {DEMO.relative_to(ROOT)}: medians of {rounds} round(s)")
    print(f"{'command':<22} {'wall s':>8} {'CPU s':>8} {'start-up s':>11}")
    for name, m in med.items():
        extra = cost.get(name)
        col = f"{extra:+11.2f}" if extra is not None else f"{'-':>11}"
        print(f"{name:<22} {m['wall_s']:8.2f} {m['cpu_s']:8.2f} {col}")
    print("start-up s: wall time minus --jobs 1's in the same round, median of the rounds")
    print(ident.verdict())
    return {
        "capture": str(DEMO.relative_to(ROOT)),
        "rounds": rounds,
        "medians": med,
        "startup_s": cost,
        "identical": ident.ok,
        "identity_problems": ident.problems,
    }


# --- step 3: a running cluster, and tshark ----------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu_s(roots: list[int]) -> float:
    """utime + stime of the live processes of the trees under `roots` (from /proc)."""
    table = bench_run.proc_table()
    return sum(table[p][1] for p in bench_run.tree_of(set(roots), table)) / CLK_TCK


@contextmanager
def running_cluster(work: Path) -> Iterator[tuple[str, list[int]]]:
    """A `dask scheduler` on a free loopback port and one `dask worker` (one process, one
    thread), each in its own process group (a Ctrl-C at the terminal does not reach them: they
    are stopped here, after the command that uses them). Yields the address and the PIDs."""
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        raise SystemExit(f"error: no dask command beside {sys.executable} ({dask})")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        with open(work / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=None if env is None else {**os.environ, **env},
            )
        procs.append((name, proc))

    def logs() -> str:
        return "\n".join(
            f"--- {work / (n + '.log')}:\n"
            + (work / f"{n}.log").read_text(errors="replace").strip()[-1000:]
            for n, _ in procs
        )

    try:
        start(
            "scheduler",
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        )
        space = str(work / "dask-worker-space")
        one = ["--nworkers", "1", "--nthreads", "1", "--no-dashboard"]
        # As docs/scaling.md advises for workers that run pcapdiag: without Dask's
        # statistical profiler (it samples each task's stack every 10 ms).
        start(
            "worker",
            [str(dask), "worker", addr, *one, "--local-directory", space],
            {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"},
        )
        # Wait for the worker from a separate process: no Client lingers in this one.
        code = (
            "import sys\nfrom distributed import Client\n"
            "with Client(sys.argv[1], timeout=60) as c:\n"
            "    c.wait_for_workers(1, timeout=90)\n"
            "    print(len(c.scheduler_info()['workers']))\n"
        )
        t0 = time.perf_counter()
        try:
            res = subprocess.run(
                [sys.executable, "-c", code, addr],
                capture_output=True,
                text=True,
                timeout=180,
                cwd=ROOT,
                check=False,
            )
            up = res.returncode == 0 and res.stdout.strip() == "1"
            why = (res.stderr.strip()[-800:] or res.stdout.strip()) if not up else ""
        except subprocess.TimeoutExpired:
            up, why = False, "timed out"
        dead = [n for n, p in procs if p.poll() is not None]
        if not up or dead:
            raise SystemExit(
                f"error: the cluster at {addr} did not come up with one worker"
                f"{' (exited: ' + ', '.join(dead) + ')' if dead else ''}: {why}\n{logs()}"
            )
        print(
            f"scheduler {addr} (pid {procs[0][1].pid}) and one worker (pid {procs[1][1].pid}) "
            f"up in {time.perf_counter() - t0:.1f} s; logs in {work}",
            file=sys.stderr,
        )
        yield addr, [p.pid for _, p in procs]
    finally:
        for name, proc in reversed(procs):  # the worker first, then the scheduler
            _stop(name, proc)


def _stop(name: str, proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group it leads (the worker's nanny has a child), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        print(f"WARNING: the {name} (pid {proc.pid}) did not stop", file=sys.stderr)
    # Children it left behind in its group (the nanny's worker process).
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=5)
    print(f"stopped the {name} (pid {proc.pid})", file=sys.stderr)


def running(big: Path, rounds: int, work: Path) -> dict[str, Any]:
    frames = frames_of(big)
    size = big.stat().st_size
    print(
        f"\n== running cluster: {big.name}, {frames:,} frames, {size / 1e6:,.1f} MB ==",
        file=sys.stderr,
    )
    tshark = shutil.which("tshark")
    if tshark is None:
        print("tshark is not on PATH: the peer comparison is skipped", file=sys.stderr)
    reports = work / "reports"
    samples: list[Sample] = []
    cluster_cpu: list[float] = []
    ident = Identity("running cluster (D vs A)")
    a_name, d_name, t_name = "A --jobs 1", "D --cluster tcp://", "tshark -z expert"
    with running_cluster(work) as (addr, pids):
        for rnd in range(1, rounds + 1):
            ra = reports / f"running-A-{rnd}.json"
            rd = reports / f"running-D-{rnd}.json"
            samples.append(timed(a_name, rnd, pcapdiag(["--jobs", "1"], [big], ra), work))
            before = tree_cpu_s(pids)
            s = timed(d_name, rnd, pcapdiag(["--cluster", addr], [big], rd), work)
            extra = tree_cpu_s(pids) - before
            cluster_cpu.append(extra)
            print(f"  round {rnd} D: + scheduler and worker CPU {extra:.2f} s", file=sys.stderr)
            samples.append(replace(s, cpu_s=s.cpu_s + extra))
            if tshark is not None:
                cmd = [tshark, "-r", str(big), "-q", "-z", "expert"]
                samples.append(timed(t_name, rnd, cmd, work))
            same = ident.compare(rnd, (a_name, ra), [(d_name, rd)])
            if rnd == 1 or not same:
                print(ident.verdict(), file=sys.stderr)
            if rnd > 1 and same:
                ra.unlink(missing_ok=True)
                rd.unlink(missing_ok=True)
    med = medians(samples)
    for m in med.values():
        m["frames_per_s"] = frames / m["wall_s"]
        m["mb_per_s"] = size / 1e6 / m["wall_s"]
    med[d_name]["cluster_cpu_s"] = statistics.median(cluster_cpu)
    d_over_a = paired(samples, d_name, a_name)
    peer: dict[str, float | None] = {}
    if tshark is not None:
        peer = {
            "A/tshark": paired(samples, a_name, t_name),
            "D/tshark": paired(samples, d_name, t_name),
        }
    res: dict[str, Any] = {
        "capture": str(big),
        "frames": frames,
        "bytes": size,
        "rounds": rounds,
        "medians": med,
        "d_over_a_wall": d_over_a,
        "running_target": RUNNING_TARGET,
        "running_met": d_over_a is not None and d_over_a <= RUNNING_TARGET,
        "tshark": tshark,
        "peer_wall_ratios": peer,
        "identical": ident.ok,
        "identity_problems": ident.problems,
    }
    print(
        f"\nRunning cluster (scheduler + 1 worker, 1 thread) on {big.name}: {frames:,} frames, "
        f"{size / 1e6:,.1f} MB; medians of {rounds} round(s)"
    )
    print(f"{'command':<22} {'wall s':>8} {'CPU s':>8} {'frames/s':>11} {'MB/s':>8}")
    for name, m in med.items():
        print(
            f"{name:<22} {m['wall_s']:8.2f} {m['cpu_s']:8.2f} {m['frames_per_s']:11,.0f} "
            f"{m['mb_per_s']:8.2f}"
        )
    print(
        f"D's CPU includes the scheduler's and the worker's: {med[d_name]['cluster_cpu_s']:.2f} s "
        "(median)"
    )
    if d_over_a is not None:
        print(
            f"running cluster: D/A wall x{d_over_a:.2f} (median of the rounds' ratios; target "
            f"<= {RUNNING_TARGET}): {pass_fail(res['running_met'])}"
        )
    if tshark is None:
        print("tshark: not on PATH, peer comparison skipped")
    else:
        for k, v in peer.items():
            if v is not None:
                print(f"pcapdiag/tshark wall, {k[0]}: x{v:.2f}")
    print(ident.verdict())
    return res


# --- main -------------------------------------------------------------------------------


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    bench_run._SPAWNER = bench_run.Spawner()  # first, while this process is small
    signal.signal(signal.SIGTERM, _sigterm)  # so that the finally blocks stop the cluster
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=64, help="captures in the scaling set")
    ap.add_argument("--frames", type=int, default=200_000, help="frames of each of them")
    ap.add_argument(
        "--big-frames", type=int, default=1_000_000, help="frames of the running-cluster capture"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the scaling set's report format (text, the default report: its rendering is "
        "small; json lists every finding, which the client renders alone)",
    )
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--json", type=Path, help="write the numbers and verdicts to this file")
    args = ap.parse_args(argv)
    if args.files < 1 or args.frames < 1 or args.big_frames < 1 or args.rounds < 1:
        ap.error("--files, --frames, --big-frames and --rounds must be at least 1")
    work: Path = args.workdir.resolve()
    (work / "reports").mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "command": shlex.join(["python", "bench/cluster.py", *(argv or sys.argv[1:])]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "describe": bench_run.git_describe(),
        "machine": bench_run.machine(),
        "loadavg_start": os.getloadavg(),
        "workdir": str(work),
    }
    print(
        f"pcapdiag at {doc['describe']}; {doc['machine']['cpus_usable']} usable CPUs; load "
        f"average {doc['loadavg_start'][0]:.2f}; workdir {work}"
    )
    wanted = [(args.frames, seed) for seed in range(1, args.files + 1)]
    wanted.append((args.big_frames, BIG_SEED))
    caps = ensure_captures(work, wanted)
    files, big = caps[:-1], caps[-1]
    bench_run.compile_bytecode(sys.executable)
    doc["scaling"] = scaling_set(files, args.rounds, work, args.format)
    doc["startup"] = startup(args.rounds, work)
    doc["running"] = running(big, args.rounds, work)
    doc["loadavg_end"] = os.getloadavg()
    ok = all(doc[k]["identical"] for k in ("scaling", "startup", "running"))
    doc["ok"] = ok
    print(f"\nload average at the end {doc['loadavg_end'][0]:.2f}")
    print(
        "correctness: every report identical to --jobs 1's: OK"
        if ok
        else "!!! correctness: FAIL: a report differs from --jobs 1's or is missing (above) !!!"
    )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")
        print(f"numbers written to {args.json}")
    return 0 if ok else 1


def _jsonable(obj: object) -> Any:
    if isinstance(obj, Sample):
        return asdict(obj)
    raise TypeError(f"not JSON: {type(obj).__name__}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (the cluster, if started, was stopped)", file=sys.stderr)
        sys.exit(130)
