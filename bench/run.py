"""Benchmark pcapdiag against tshark and tcptrace on one capture, and check pcapdiag's answer.

    python bench/run.py CAPTURE.pcap [CAPTURE2.pcap ...] [--rounds K] [--json OUT]
        [--baseline PYTHON] [--write-docs docs/performance.md]
    python bench/run.py --frames N [--seed S] [--rounds K] [--json OUT] [--workdir DIR]
    python bench/run.py --scaling [--workdir DIR] [--json OUT]
    python bench/run.py ... --write-docs docs/performance.md

Each tool runs as a subprocess, alternating A B C A B C ... for K rounds (default 3):

- `python -m pcapdiag analyze --format json F -o REPORT` (and `--jobs 2` when
  `pcapdiag analyze --help` lists `--jobs`),
- `tshark -r F -q -z expert`,
- `tcptrace -n -l F`.

With `--baseline PYTHON`, the pcapdiag that another interpreter runs (a venv of an earlier
commit, say) is timed with one job in the same rounds, and a target compares the two builds.
Several captures are timed one after the other, each with its own table.

Before the rounds, the bytecode of each pcapdiag timed is written (compileall), as an install
writes it: a source checkout run with PYTHONDONTWRITEBYTECODE would compile every module on
every run.

For each run: wall time (perf_counter around spawn and wait), CPU time (user + sys, the delta
of getrusage(RUSAGE_CHILDREN) across the run, so it includes the tool's own children) and
peak RSS (ru_maxrss of the rusage os.wait4 returns for that child: the largest single process
of its tree, not the sum). The table shows medians, the ratios pcapdiag/tshark and
pcapdiag/tcptrace, and frames/s. The JSON report of the first timed pcapdiag run is then
compared with the generator's truth (bench/check.py) and the verdict printed with the numbers,
so speed cannot come from skipping work. A capture without a truth file is timed only.

`--scaling` generates (or reuses, in --workdir) 1M- and 5M-frame captures, runs pcapdiag on
each (one process, --jobs 1) in --rounds alternating rounds, checks both reports and prints
the ratio of the median times 5M/1M and the peak RSS of each.

`--floods N` generates (bench/floods.py, or reuses in --workdir) captures of about N frames
and N/5 of each kind: a SYN flood over minutes and one packed into 20 s, a port scan, an
outage (SYNs of many clients refused by many servers), an unreachable subnet (the same
SYNs answered by ICMP host unreachable from a router), tiny connections, and one
connection of out-of-order, overlapping segments; runs pcapdiag (one job),
`tshark -q -z expert` and tcptrace on each, checks each report's counts against what the
flood must give (floods.expected) and the peak RSS against the memory bound
(MEMORY_BOUND_MB, the same as for the 5M-frame capture), prints the ratios to the peers,
whether a flood's targets are met (half tshark's time, under tcptrace's, within the bound),
and the time ratio N : N/5.

`--write-docs FILE` puts the run's results into FILE between the lines RESULTS_BEGIN and
RESULTS_END (docs/performance.md has them): the date, the commit, the machine and tools, the
table of medians, the targets and the correctness verdicts (and the scaling and flood lines
when those ran). Everything outside the markers is left as it was; nothing is written when a
report was wrong.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import check  # noqa: E402
import floods as flood_gen  # noqa: E402
import generate  # noqa: E402

# Peak RSS pcapdiag must stay under: on the 5M-frame capture and on every flood.
MEMORY_BOUND_MB = 300
# The flood captures held to the flood targets (--floods).
FLOOD_TARGETS = ("syn-flood", "syn-flood-short", "port-scan", "outage", "unreachable")


@dataclass
class Sample:
    tool: str
    round: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # ru_maxrss from wait4: the largest single process of the tree
    tree_rss_mb: float  # sampled sum of RSS over the process tree (workers included)
    exit_code: int


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime in clock ticks) of every live process, from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # After the command's ")": state (field 3), ppid (4) ... utime (14), stime (15).
        fields = stat[stat.rindex(b")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def tree_of(roots: set[int], table: dict[int, tuple[int, int]]) -> set[int]:
    """The live processes of `table` that are in `roots` or descend from one."""
    tree = roots & table.keys()
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _ticks) in table.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over `root` and its descendants (shared pages counted in each)."""
    total = 0
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    for pid in tree_of({root}, proc_table()) | {root}:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * page_kb
        except (OSError, IndexError, ValueError):
            continue
    return total


class TreeSampler(threading.Thread):
    """Polls the RSS of a process tree every `interval` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))


class Spawner:
    """Runs the timed commands from a small process forked when the benchmark starts, before
    it reads any report. Linux carries a parent's peak RSS into its child's ru_maxrss (fork
    copies the memory map, and exec keeps the larger of the old map's peak and the new one:
    fs/exec.c exec_mmap(), setmax_mm_hiwater_rss()), so a tool started by a benchmark that
    has grown to hundreds of MB reading a flood's JSON report would report at least that.
    Started from the spawner, a tool's peak is its own (at least the spawner's ~20 MB)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_spawner_loop, args=(child,), daemon=True)
        self._proc.start()

    def run(self, tool: str, rnd: int, cmd: list[str], err: Path) -> Sample:
        self._conn.send((tool, rnd, cmd, str(err)))
        return Sample(**self._conn.recv())


def _spawner_loop(conn: Any) -> None:
    while True:
        try:
            tool, rnd, cmd, err = conn.recv()
        except EOFError:
            return
        conn.send(asdict(_measure_here(tool, rnd, cmd, subprocess.DEVNULL, Path(err))))


_SPAWNER: Spawner | None = None


def measure(tool: str, rnd: int, cmd: list[str], stdout: IO[bytes] | int, err: Path) -> Sample:
    """Run cmd once: wall time, CPU (the delta of RUSAGE_CHILDREN, so the tool's own children
    count), peak RSS of the largest process (wait4's ru_maxrss) and the sampled peak of the
    sum over its process tree. From the spawner when it runs (see Spawner)."""
    if _SPAWNER is not None and stdout == subprocess.DEVNULL:
        return _SPAWNER.run(tool, rnd, cmd, err)
    return _measure_here(tool, rnd, cmd, stdout, err)


def _measure_here(
    tool: str, rnd: int, cmd: list[str], stdout: IO[bytes] | int, err: Path
) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(err, "wb") as errf:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=errf, cwd=ROOT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = usage.ru_maxrss / 1024
    tree = max(sampler.peak_kb / 1024, peak)
    return Sample(tool, rnd, wall, cpu, peak, tree, proc.returncode)


def pcapdiag_has_jobs() -> bool:
    res = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return "--jobs" in res.stdout


def git_commit() -> str:
    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=False)
        return res.stdout.strip()

    commit = git("log", "-1", "--format=%h") or "unknown"
    dirty = git("status", "--porcelain", "--", "pcapdiag", "rules")
    return commit + (" + uncommitted changes in pcapdiag/ or rules/" if dirty else "")


def tools(
    capture: Path, work: Path, rnd: int, jobs: bool, baseline: str | None = None
) -> list[tuple[str, list[str]]]:
    """(name, command); pcapdiag variants write their report to work/<variant>-<round>.json.
    `baseline`: another Python with another build of pcapdiag (an earlier commit's), timed
    with one job beside this one."""
    py = [sys.executable, "-m", "pcapdiag", "analyze", "--format", "json"]
    variants: list[tuple[str, list[str]]] = [("pcapdiag", [])]
    if jobs:
        # The default worker count depends on the machine, so name both ends explicitly too.
        variants += [("pcapdiag --jobs 1", ["--jobs", "1"]), ("pcapdiag --jobs 2", ["--jobs", "2"])]
    out = [
        (name, [*py, *flags, str(capture), "-o", str(work / f"{_slug(name)}-{rnd}.json")])
        for name, flags in variants
    ]
    if baseline is not None:
        name = "baseline --jobs 1"
        # -P: the tools run from the repository, whose pcapdiag would come first on sys.path.
        cmd = [baseline, "-P", "-m", "pcapdiag", "analyze", "--format", "json", "--jobs", "1"]
        out.append((name, [*cmd, str(capture), "-o", str(work / f"{_slug(name)}-{rnd}.json")]))
    tshark = shutil.which("tshark") or "/usr/bin/tshark"
    out.append(("tshark -z expert", [tshark, "-r", str(capture), "-q", "-z", "expert"]))
    tcptrace = shutil.which("tcptrace")
    if tcptrace:
        out.append(("tcptrace -n -l", [tcptrace, "-n", "-l", str(capture)]))
    else:
        print("warning: tcptrace not installed; not timed", file=sys.stderr)
    return out


def _slug(name: str) -> str:
    return name.replace(" --jobs ", "-j").replace(" ", "-")


def frames_in(capture: Path) -> int:
    tp = check.truth_path(capture)
    if tp.exists():
        return int(json.loads(tp.read_text())["frames"])
    res = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    return 0


def compile_bytecode(python: str) -> None:
    """Write the bytecode of the pcapdiag that `python` imports, as an install does: with
    PYTHONDONTWRITEBYTECODE set (or a fresh checkout), every timed run of a source tree
    would otherwise compile its hundred modules again (0.08 s a run, measured)."""
    code = "import compileall, pathlib, pcapdiag; "
    code += "compileall.compile_dir(pathlib.Path(pcapdiag.__file__).parent, quiet=1)"
    subprocess.run([python, "-P", "-c", code], check=False, capture_output=True)


def bench(capture: Path, rounds: int, work: Path, baseline: str | None = None) -> dict[str, Any]:
    frames = frames_in(capture)
    jobs = pcapdiag_has_jobs()
    compile_bytecode(sys.executable)
    if baseline is not None:
        compile_bytecode(baseline)
    samples: list[Sample] = []
    for rnd in range(1, rounds + 1):
        for name, cmd in tools(capture, work, rnd, jobs, baseline):
            if "-o" in cmd:  # a report left by an earlier run must not pass for this one's
                Path(cmd[cmd.index("-o") + 1]).unlink(missing_ok=True)
            s = measure(name, rnd, cmd, subprocess.DEVNULL, work / "stderr.txt")
            ours = name.startswith(("pcapdiag", "baseline"))
            if s.exit_code not in (0, 1) or (not ours and s.exit_code):
                err = (work / "stderr.txt").read_text(errors="replace").strip()[-500:]
                print(f"warning: {name} exited {s.exit_code}: {err}", file=sys.stderr)
            samples.append(s)
            print(
                f"  round {rnd} {name:<18} wall {s.wall_s:8.2f} s  CPU {s.cpu_s:8.2f} s  "
                f"peak RSS {s.peak_rss_mb:8.1f} MB  tree RSS {s.tree_rss_mb:8.1f} MB",
                file=sys.stderr,
            )
    medians: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(s.tool for s in samples):
        mine = [s for s in samples if s.tool == name]
        m = {
            k: statistics.median(getattr(s, k) for s in mine)
            for k in ("wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb")
        }
        m["frames_per_s"] = frames / m["wall_s"]
        medians[name] = m
    ratios: dict[str, dict[str, float]] = {}
    pd = medians["pcapdiag"]
    for other in ("tshark -z expert", "tcptrace -n -l"):
        if other in medians:
            o = medians[other]
            ratios[f"pcapdiag/{other.split()[0]}"] = {
                k: pd[k] / o[k] for k in ("wall_s", "cpu_s", "tree_rss_mb") if o[k] > 0
            }
    targets = _targets(samples)
    # The reports of the timed runs (round 1 of every pcapdiag variant) against the truth.
    verdicts: dict[str, Any] = {}
    if check.truth_path(capture).exists():
        for name in medians:
            report = work / f"{_slug(name)}-1.json"
            if not name.startswith(("pcapdiag", "baseline")):
                continue
            if not report.exists():
                code = next(s.exit_code for s in samples if s.tool == name)
                summary = f"no report written (exit code {code})"
                print(f"{name}: {summary}", file=sys.stderr)
                verdicts[name] = {"ok": False, "summary": summary}
                continue
            v = check.check(capture, json.loads(report.read_text()))
            print(f"{name}:", file=sys.stderr)
            check.print_verdict(v, limit=20, out=sys.stderr)
            verdicts[name] = {
                "ok": v.ok and not v.notes,
                "summary": v.summary(),
                "misses": v.misses[:100],
                "false_errnos": v.false_errnos[:100],
                "notes": v.notes[:100],
            }
    return {
        "capture": str(capture),
        "capture_bytes": capture.stat().st_size,
        "frames": frames,
        "rounds": rounds,
        "samples": [asdict(s) for s in samples],
        "medians": medians,
        "ratios": ratios,
        "targets": targets,
        "correctness": verdicts,
    }


# The performance targets on the 1M-frame capture: (what, tool A, tool B, A's wall time / B's at
# least (>=) or at most (<=) this).
TARGETS = (
    (
        "one process at least 4x faster than tshark",
        "tshark -z expert",
        "pcapdiag --jobs 1",
        ">=",
        4.0,
    ),
    ("one process no slower than tcptrace", "pcapdiag --jobs 1", "tcptrace -n -l", "<=", 1.0),
    (
        "--jobs 2 at least 1.6x faster than --jobs 1",
        "pcapdiag --jobs 1",
        "pcapdiag --jobs 2",
        ">=",
        1.6,
    ),
    # With --baseline: this build against another (a change meant to cost no speed).
    (
        "one process within 5% of the baseline build's time",
        "pcapdiag --jobs 1",
        "baseline --jobs 1",
        "<=",
        1.05,
    ),
)


def _targets(samples: list[Sample]) -> list[dict[str, Any]]:
    """Each target's ratio: the median over rounds of A's wall time over B's in the same
    round (the tools alternate, so a pair ran at nearly the same moment: a machine whose
    speed drifts moves both)."""
    wall = {(s.tool, s.round): s.wall_s for s in samples}
    rounds = sorted({s.round for s in samples})
    out = []
    for what, a, b, op, bound in TARGETS:
        pairs = [wall[a, r] / wall[b, r] for r in rounds if (a, r) in wall and (b, r) in wall]
        if not pairs:
            continue
        ratio = statistics.median(pairs)
        met = ratio >= bound if op == ">=" else ratio <= bound
        out.append(
            {"target": what, "ratio": ratio, "a": a, "b": b, "op": op, "bound": bound, "met": met}
        )
    return out


def print_table(res: dict[str, Any]) -> None:
    print(
        f"capture {res['capture']}: {res['frames']:,} frames, "
        f"{res['capture_bytes'] / 1e6:,.0f} MB; medians of {res['rounds']} rounds"
    )
    print(
        f"{'tool':<20} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'tree RSS MB':>12} "
        f"{'frames/s':>10}"
    )
    for name, m in res["medians"].items():
        print(
            f"{name:<20} {m['wall_s']:8.2f} {m['cpu_s']:8.2f} {m['peak_rss_mb']:12.1f} "
            f"{m['tree_rss_mb']:12.1f} {m['frames_per_s']:10,.0f}"
        )
    print(
        "peak RSS: largest single process (wait4 ru_maxrss); tree RSS: sum over the process "
        "and its workers, sampled every 0.25 s"
    )
    for name, r in res["ratios"].items():
        print(
            f"{name}: wall {r.get('wall_s', 0):.2f}x, CPU {r.get('cpu_s', 0):.2f}x, "
            f"RSS {r.get('tree_rss_mb', 0):.2f}x"
        )
    for t in res.get("targets", ()):
        print(
            f"target: {t['target']}: {t['a']} / {t['b']} wall, median of the rounds' ratios "
            f"{t['ratio']:.2f} (needs {t['op']} {t['bound']}): {'met' if t['met'] else 'NOT met'}"
        )
    if not res["correctness"]:
        print("correctness: not checked (no truth file beside the capture)")
    for name, c in res["correctness"].items():
        print(f"correctness ({name}, round 1 report vs truth): {c['summary']}")


def ensure_capture(workdir: Path, frames: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate the capture into workdir, or reuse one generated there before."""
    path = workdir / f"gen-{frames}-s{seed}.pcap"
    tp = check.truth_path(path)
    if path.exists() and tp.exists() and json.loads(tp.read_text()).get("frames") == frames:
        print(f"reusing {path}", file=sys.stderr)
        return path, {"reused": True}
    start = time.perf_counter()
    cpu0 = time.process_time()
    generate.generate(path, frames, seed)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    info = {
        "frames": frames,
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": frames / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(
        f"generated {path}: {frames:,} frames in {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({frames / wall:,.0f} frames/s)",
        file=sys.stderr,
    )
    return path, info


def scaling(workdir: Path, seed: int, sizes: list[int], rounds: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": {}}
    caps = {n: ensure_capture(workdir, n, seed) for n in sizes}
    samples: dict[int, list[Sample]] = {n: [] for n in sizes}
    # One process: the target is about how the work grows, not how it is shared out. The
    # sizes alternate round by round, and each figure is a median, as for the main table.
    for rnd in range(1, rounds + 1):
        for n in sizes:
            cap, _gen = caps[n]
            report = workdir / f"scaling-{n}.json"
            cmd = [sys.executable, "-m", "pcapdiag", "analyze", "--jobs", "1", "--format", "json"]
            cmd += [str(cap), "-o", str(report)]
            s = measure("pcapdiag", rnd, cmd, subprocess.DEVNULL, workdir / "stderr.txt")
            samples[n].append(s)
            print(
                f"  round {rnd} pcapdiag on {n:,} frames: wall {s.wall_s:.2f} s, CPU "
                f"{s.cpu_s:.2f} s, peak RSS {s.peak_rss_mb:.0f} MB",
                file=sys.stderr,
            )
    for n in sizes:
        cap, gen = caps[n]
        v = check.check(cap, json.loads((workdir / f"scaling-{n}.json").read_text()))
        med = {
            k: statistics.median(getattr(x, k) for x in samples[n])
            for k in ("wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb")
        }
        out["sizes"][str(n)] = {
            **med,
            "rounds": rounds,
            "generator": gen,
            "correctness": v.summary(),
        }
        print(
            f"pcapdiag on {n:,} frames (median of {rounds}): wall {med['wall_s']:.2f} s, CPU "
            f"{med['cpu_s']:.2f} s, peak RSS {med['peak_rss_mb']:.0f} MB (tree "
            f"{med['tree_rss_mb']:.0f} MB), {n / med['wall_s']:,.0f} frames/s; {v.summary()}"
        )
    a, b = (out["sizes"][str(n)] for n in (sizes[0], sizes[-1]))
    out["wall_ratio"] = b["wall_s"] / a["wall_s"]
    out["cpu_ratio"] = b["cpu_s"] / a["cpu_s"]
    print(
        f"scaling {sizes[-1]:,}/{sizes[0]:,} frames (x{sizes[-1] / sizes[0]:g}): wall time "
        f"x{out['wall_ratio']:.2f}, CPU x{out['cpu_ratio']:.2f}; peak RSS "
        f"{a['peak_rss_mb']:.0f} MB -> {b['peak_rss_mb']:.0f} MB (tree {a['tree_rss_mb']:.0f} MB "
        f"-> {b['tree_rss_mb']:.0f} MB)"
    )
    return out


def flood_runs(workdir: Path, count: int) -> dict[str, Any]:
    """Each flood capture at about N/5 and N frames, through pcapdiag, `tshark -q -z expert` and
    `tcptrace -n -l` in turn (one round each: the peers take minutes on some), with the
    counts pcapdiag must give (floods.expected) and the targets of a flood: at least 2x
    faster than tshark, faster than tcptrace, within MEMORY_BOUND_MB."""
    out: dict[str, Any] = {"count": count, "bound_mb": MEMORY_BOUND_MB, "kinds": {}}
    tcptrace = shutil.which("tcptrace")
    tshark = shutil.which("tshark")
    ok = True
    for kind in flood_gen.KINDS:
        res: dict[str, Any] = {}
        for n in (flood_gen.count_for(kind, count // 5), flood_gen.count_for(kind, count)):
            cap = workdir / f"flood-{kind}-{n}.pcap"
            if not cap.exists():
                flood_gen.write(cap, kind, n)
            report = workdir / f"flood-{kind}-{n}.json"
            cmd = [sys.executable, "-m", "pcapdiag", "analyze", "--jobs", "1", "--format", "json"]
            s = measure(
                "pcapdiag",
                1,
                [*cmd, str(cap), "-o", str(report)],
                subprocess.DEVNULL,
                workdir / "stderr.txt",
            )
            summary = json.loads(report.read_text())["summary"]
            want = flood_gen.expected(kind, n)
            right = all(summary[k] == v for k, v in want.items())
            row: dict[str, Any] = {
                "frames": summary["frames"],
                "pcapdiag": asdict(s),
                "counts_right": right,
                "findings": summary["findings"],
                "findings_listed": summary["findings_listed"],
                "within_bound": s.peak_rss_mb <= MEMORY_BOUND_MB,
            }
            versus = []
            peers = [
                ("tshark", [tshark, "-r", str(cap), "-q", "-z", "expert"] if tshark else None),
                # tcptrace's time grows with the square of the reordered segments (116 s for
                # 200,000 here): it is timed on the smaller reorder capture only.
                (
                    "tcptrace",
                    [tcptrace, "-n", "-l", str(cap)]
                    if tcptrace and not (kind == "reorder" and n > 250_000)
                    else None,
                ),
            ]
            for name, peer_cmd in peers:
                if peer_cmd is None:
                    continue
                t = measure(name, 1, peer_cmd, subprocess.DEVNULL, workdir / "stderr.txt")
                row[name] = asdict(t)
                versus.append(
                    f"{name} {t.wall_s:.1f} s, {t.peak_rss_mb:.0f} MB "
                    f"(pcapdiag/{name} x{s.wall_s / t.wall_s:.2f})"
                )
            # The targets of a flood, a scan or an outage (not of healthy or reordered
            # traffic): half tshark's time, under tcptrace's, within the memory bound.
            if kind in FLOOD_TARGETS and "tshark" in row and "tcptrace" in row:
                row["targets_met"] = (
                    s.wall_s * 2 <= row["tshark"]["wall_s"]
                    and s.wall_s < row["tcptrace"]["wall_s"]
                    and row["within_bound"]
                )
            res[str(n)] = row
            ok = ok and right and row["within_bound"]
            print(
                f"{kind:<15} {n:>9,} ({summary['frames']:>9,} frames): pcapdiag {s.wall_s:6.1f} s, "
                f"peak RSS {s.peak_rss_mb:4.0f} MB "
                f"({'within' if row['within_bound'] else 'OVER'} {MEMORY_BOUND_MB} MB), "
                f"{summary['findings']:,} findings ({summary['findings_listed']} listed), "
                f"counts {'right' if right else 'WRONG: ' + json.dumps(want)}"
                + "".join(f"; {v}" for v in versus)
                + (
                    f"; targets {'met' if row['targets_met'] else 'NOT met'}"
                    if "targets_met" in row
                    else ""
                )
            )
        small, large = flood_gen.count_for(kind, count // 5), flood_gen.count_for(kind, count)
        a, b = res[str(small)], res[str(large)]
        res["wall_ratio"] = b["pcapdiag"]["wall_s"] / a["pcapdiag"]["wall_s"]
        print(f"{kind:<15} time x{res['wall_ratio']:.2f} for x5 the size")
        out["kinds"][kind] = res
    out["ok"] = ok
    return out


# The lines around the part of a document --write-docs rewrites (see docs/performance.md).
RESULTS_BEGIN = "<!-- bench/run.py results: begin -->"
RESULTS_END = "<!-- bench/run.py results: end -->"


def _first_line(cmd: list[str]) -> str:
    """The first line a tool prints about itself, or "not installed"."""
    if shutil.which(cmd[0]) is None:
        return "not installed"
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = (res.stdout + res.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def machine() -> dict[str, Any]:
    """What the numbers depend on besides pcapdiag: the CPUs, memory, system and the versions
    of the tools timed against it."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])  # MemTotal comes first
        mem_gib = round(kb / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    system = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    tshark = _first_line(["tshark", "--version"])
    tcptrace = _first_line(["tcptrace", "-v"])
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": mem_gib,
        "system": system,
        "python": platform.python_version(),
        # "TShark (Wireshark) 4.0.17 (Git ...)." and "Version: Ostermann's tcptrace -- version
        # 6.6.7 -- <date>": the version is the word after the name.
        "tshark": _version_after(tshark, "TShark (Wireshark)"),
        "tcptrace": _version_after(tcptrace, "version"),
    }


def _version_after(line: str, word: str) -> str:
    _, found, tail = line.partition(word)
    return tail.split()[0] if found and tail.split() else line


def baseline_describe(python: str) -> str:
    """Which pcapdiag `python` runs: its source directory and, in a git checkout, the commit."""
    where = subprocess.run(
        [python, "-P", "-c", "import pcapdiag, os; print(os.path.dirname(pcapdiag.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not where:
        return f"{python} (pcapdiag not importable)"
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        cwd=where,
        check=False,
    ).stdout.strip()
    return f"{where} at commit `{described}`" if described else where


def git_describe() -> str:
    res = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return res.stdout.strip() or "unknown"


def results_markdown(doc: dict[str, Any]) -> str:
    """The run as Markdown for --write-docs: when, where, then the same numbers print_table,
    scaling and flood_runs print."""
    m = doc["machine"]
    mem = f", {m['memory_gib']} GiB" if m["memory_gib"] else ""
    out = [
        f"Written by `{doc['command']}` on {doc['date']}, at commit `{doc['describe']}`.",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpus_usable']} usable){mem}, {m['system']}, "
        f"Python {m['python']}, tshark {m['tshark']}, tcptrace {m['tcptrace']}; load average "
        f"{doc['loadavg_start'][0]:.2f} at the start, {doc['loadavg_end'][0]:.2f} at the end.",
    ]
    if doc.get("baseline"):
        out += ["", f"Baseline build (`baseline --jobs 1` below): pcapdiag from {doc['baseline']}."]
    for res in doc.get("benches", []):
        out += [
            "",
            f"Capture `{Path(res['capture']).name}`: {res['frames']:,} frames, "
            f"{res['capture_bytes'] / 1e6:,.1f} MB; medians of {res['rounds']} round(s).",
            "",
            "| command | wall s | CPU s | peak RSS MB | tree RSS MB | frames/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, med in res["medians"].items():
            out.append(
                f"| {name} | {med['wall_s']:.2f} | {med['cpu_s']:.2f} | {med['peak_rss_mb']:.0f} "
                f"| {med['tree_rss_mb']:.0f} | {med['frames_per_s']:,.0f} |"
            )
        out += ["", "```"]
        out += [
            f"target: {t['target']}: {t['a']} / {t['b']} wall, median of the rounds' ratios "
            f"{t['ratio']:.2f} (needs {t['op']} {t['bound']}): {'met' if t['met'] else 'NOT met'}"
            for t in res["targets"]
        ]
        out += [f"correctness ({n}): {c['summary']}" for n, c in res["correctness"].items()]
        if not res["correctness"]:
            out.append("correctness: not checked (no truth file beside the capture)")
        out.append("```")
    sc = doc.get("scaling")
    if sc is not None:
        sizes = sorted(sc["sizes"], key=int)
        a, b = sc["sizes"][sizes[0]], sc["sizes"][sizes[-1]]
        out += [
            "",
            f"Scaling, one process: {int(sizes[-1]):,} frames took x{sc['wall_ratio']:.2f} the "
            f"wall time of {int(sizes[0]):,} (x{int(sizes[-1]) / int(sizes[0]):g} the frames); "
            f"peak RSS {a['peak_rss_mb']:.0f} MB -> {b['peak_rss_mb']:.0f} MB.",
        ]
    fl = doc.get("floods")
    if fl is not None:
        n = fl["count"]
        out += [
            "",
            f"Floods at N = {n:,} (one job; memory bound {fl['bound_mb']} MB):",
            "",
            "| flood | frames | pcapdiag wall s | peak RSS MB | vs tshark | vs tcptrace "
            "| time N vs N/5 | counts | targets |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for kind, r in fl["kinds"].items():
            row = r[str(flood_gen.count_for(kind, n))]
            mine = row["pcapdiag"]["wall_s"]

            def ratio(peer: str, row: dict[str, Any] = row, mine: float = mine) -> str:
                return f"x{mine / row[peer]['wall_s']:.2f}" if peer in row else "-"

            met = row.get("targets_met")
            out.append(
                f"| {kind} | {row['frames']:,} | {mine:.1f} | "
                f"{row['pcapdiag']['peak_rss_mb']:.0f} | {ratio('tshark')} | "
                f"{ratio('tcptrace')} | x{r['wall_ratio']:.2f} | "
                f"{'right' if row['counts_right'] else 'WRONG'} | "
                f"{'-' if met is None else 'met' if met else 'not met'} |"
            )
    return "\n".join(out) + "\n"


def _around_results(path: Path) -> tuple[str, str]:
    """The text of `path` before RESULTS_BEGIN and from RESULTS_END on."""
    text = path.read_text()
    head, begin, rest = text.partition(RESULTS_BEGIN)
    _, end, tail = rest.partition(RESULTS_END)
    if not begin or not end:
        raise SystemExit(f"{path}: no section between {RESULTS_BEGIN} and {RESULTS_END}")
    return head, tail


def write_docs(path: Path, section: str) -> None:
    """Replace what lies between RESULTS_BEGIN and RESULTS_END in `path` with `section`."""
    head, tail = _around_results(path)
    path.write_text(f"{head}{RESULTS_BEGIN}\n{section}{RESULTS_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    global _SPAWNER
    _SPAWNER = Spawner()  # first, while this process is small
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", nargs="*", type=Path, help="captures to time (each in turn)")
    ap.add_argument("--frames", type=int, help="generate a capture of N frames to benchmark")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    ap.add_argument("--scaling", action="store_true", help="pcapdiag on 1M and 5M frames")
    ap.add_argument("--scaling-sizes", default="1000000,5000000", help=argparse.SUPPRESS)
    ap.add_argument(
        "--floods", type=int, metavar="N", help="the flood captures at about N and N/5 frames"
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="keep generated captures and reports here (default: a temp dir)",
    )
    ap.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also time the pcapdiag that this Python runs (e.g. an earlier commit's venv)",
    )
    ap.add_argument(
        "--write-docs",
        type=Path,
        metavar="FILE",
        help="put the results into FILE's marked section (docs/performance.md)",
    )
    args = ap.parse_args(argv)
    if args.write_docs is not None:
        _around_results(args.write_docs)  # no markers: say so now, not after the run
    if not (args.scaling or args.floods) and bool(args.capture) == (args.frames is not None):
        ap.error("give a CAPTURE or --frames N (or --scaling, --floods N)")
    tmp = None
    if args.workdir:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="pcapdiag-bench-")
        work = Path(tmp.name)
    doc: dict[str, Any] = {
        "command": shlex.join(["python", "bench/run.py", *(argv or sys.argv[1:])]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "describe": git_describe(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": machine(),
        "loadavg_start": os.getloadavg(),
    }
    print(f"pcapdiag at {doc['commit']}; load average {doc['loadavg_start'][0]:.2f}")
    if args.baseline:
        doc["baseline"] = baseline_describe(args.baseline)
        print(f"baseline: {doc['baseline']}")
    try:
        ok = True
        captures = list(args.capture)
        if args.frames:
            capture, doc["generator"] = ensure_capture(work, args.frames, args.seed)
            captures.append(capture)
        doc["benches"] = []
        for capture in captures:
            res = bench(capture.resolve(), args.rounds, work, args.baseline)
            print_table(res)
            doc["benches"].append(res)
            ok = ok and all(c["ok"] for c in res["correctness"].values())
        if args.scaling:
            sizes = [int(x) for x in args.scaling_sizes.split(",")]
            doc["scaling"] = scaling(work, args.seed, sizes, args.rounds)
        if args.floods:
            doc["floods"] = flood_runs(work, args.floods)
            ok = ok and doc["floods"]["ok"]
        doc["loadavg_end"] = os.getloadavg()
        print(f"load average at the end {doc['loadavg_end'][0]:.2f}")
        if args.json:
            args.json.write_text(json.dumps(doc, indent=1) + "\n")
        if args.write_docs is not None and ok:
            write_docs(args.write_docs, results_markdown(doc))
            print(f"results written into {args.write_docs}")
        elif args.write_docs is not None:  # numbers of a wrong answer would mislead
            print(f"results not written into {args.write_docs}: a check failed")
        return 0 if ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
