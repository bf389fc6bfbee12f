"""Long fuzz run: `python fuzz/run.py --minutes M [--jobs J] [--seed S]`.

Each worker generates inputs with `harness.generate` (seeded, so a run can be repeated) and runs
every target on them (`harness.run_one`: capture reader, decoders, analysis, every renderer,
--export, and the CLI every `--cli-every` inputs), each input bounded to `--time-limit` seconds
and each worker's address space to `--memory-mb`. The first input of each new crash signature
(exception type and innermost pcapdiag line, or the property violated) is written to
`fuzz/crashes/<signature>-<sha>.{bin,txt}` (the .txt holds the traceback); at the end each new
signature is minimized (`harness.minimize`) into `<signature>-<sha>.min.bin`, and
`fuzz/crashes/summary.json` records the command, duration, executions and crashes.

A crash input is a capture file: `pcapdiag analyze fuzz/crashes/<name>.bin` reproduces it (or
`python -c "from fuzz.harness import run_one; run_one(open(P, 'rb').read())"`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import random
import re
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz import harness

CRASH_DIR = Path(__file__).resolve().parent / "crashes"


def _slug(sig: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", sig)[:80]


def _limit_memory(mb: int) -> None:
    if mb > 0:
        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def worker(index: int, args: argparse.Namespace, out: mp.Queue) -> None:  # type: ignore[type-arg]
    _limit_memory(args.memory_mb)
    rng = random.Random(args.seed * 1000 + index)
    harness.seeds()
    harness.rules()
    deadline = time.monotonic() + args.minutes * 60
    execs = 0
    seen: dict[str, int] = {}
    rss_limit_kb = args.rss_mb * 1024
    last_report = time.monotonic()
    gen_errors = 0
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    inflight = CRASH_DIR / f"inflight-{index}.bin"
    try:
        while time.monotonic() < deadline:
            try:
                data, _compressed = harness.generate(rng)
            except Exception:  # a bug of the generator, not of pcapdiag: skip the input
                gen_errors += 1
                if gen_errors <= 3:
                    traceback.print_exc()
                continue
            execs += 1
            # The input in flight, on disk: if native code (the C first pass) kills the
            # worker, this is what did it (reported at the end as "worker died").
            inflight.write_bytes(data)
            try:
                harness.run_one(data, cli=execs % args.cli_every == 0, limit=args.time_limit)
                maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                if maxrss > rss_limit_kb:
                    raise harness.PropertyViolation(f"memory: max RSS {maxrss // 1024} MB")
            except MemoryError as exc:
                _record(out, "MemoryError", data, exc, seen, index)
            except Exception as exc:  # every crash is recorded, the run goes on
                _record(out, harness.signature(exc), data, exc, seen, index)
            now = time.monotonic()
            if now - last_report > 30:
                out.put(("progress", index, execs, dict(seen)))
                last_report = now
    finally:
        out.put(("done", index, execs, dict(seen)))
    inflight.unlink(missing_ok=True)


def _record(
    out: mp.Queue,  # type: ignore[type-arg]
    sig: str,
    data: bytes,
    exc: BaseException,
    seen: dict[str, int],
    index: int,
) -> None:
    seen[sig] = seen.get(sig, 0) + 1
    if seen[sig] > 1:
        return
    digest = hashlib.sha256(data).hexdigest()[:12]
    name = f"{_slug(sig)}-{digest}"
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    (CRASH_DIR / f"{name}.bin").write_bytes(data)
    tb = "".join(traceback.format_exception(exc))
    (CRASH_DIR / f"{name}.txt").write_text(f"signature: {sig}\nworker: {index}\n\n{tb}")
    out.put(("crash", index, sig, name))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=harness.TIME_LIMIT_S)
    ap.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per worker")
    ap.add_argument("--rss-mb", type=int, default=1024, help="max RSS before it counts as a bug")
    ap.add_argument("--cli-every", type=int, default=20, help="run the CLI on every Nth input")
    ap.add_argument("--minimize-seconds", type=float, default=60.0)
    args = ap.parse_args(argv)

    started = time.time()
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=worker, args=(i, args, queue)) for i in range(args.jobs)]
    for p in procs:
        p.start()
    execs: dict[int, int] = {}
    counts: dict[int, dict[str, int]] = {}
    first: dict[str, str] = {}
    done = 0
    while done < len(procs):
        try:
            msg = queue.get(timeout=60)
        except Exception:
            if not any(p.is_alive() for p in procs):
                break
            continue
        kind = msg[0]
        if kind == "crash":
            _k, _i, sig, name = msg
            if sig not in first:
                first[sig] = name
                print(f"[{time.time() - started:7.0f}s] new crash {sig}: {name}", flush=True)
        else:
            _k, i, n, seen = msg
            execs[i] = n
            counts[i] = seen
            if kind == "done":
                done += 1
            total = sum(execs.values())
            print(
                f"[{time.time() - started:7.0f}s] {total} execs, {len(first)} crash signatures",
                flush=True,
            )
    for p in procs:
        p.join(timeout=30)
    for i, p in enumerate(procs):
        if p.exitcode:  # killed (a signal: negative) or failed outside Python's reach
            sig = f"WorkerDied[exitcode {p.exitcode}]"
            name = f"{_slug(sig)}-worker{i}"
            inflight = CRASH_DIR / f"inflight-{i}.bin"
            if inflight.exists():
                inflight.rename(CRASH_DIR / f"{name}.bin")
            first.setdefault(sig, name)
            counts.setdefault(i, {})[sig] = 1
            print(f"worker {i} died (exit code {p.exitcode}): input in {name}.bin", flush=True)
    duration = time.time() - started
    by_sig: dict[str, int] = {}
    for seen in counts.values():
        for sig, n in seen.items():
            by_sig[sig] = by_sig.get(sig, 0) + n
    minimized: dict[str, str] = {}
    for sig, name in first.items():
        if sig.startswith("WorkerDied"):
            continue  # reproducing it here would kill this process too
        data = (CRASH_DIR / f"{name}.bin").read_bytes()
        small = harness.minimize(data, sig, budget_s=args.minimize_seconds)
        (CRASH_DIR / f"{name}.min.bin").write_bytes(small)
        minimized[sig] = f"{name}.min.bin ({len(small)} bytes, from {len(data)})"
        print(f"minimized {sig}: {minimized[sig]}", flush=True)
    summary = {
        "command": "python fuzz/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(duration, 1),
        "executions": sum(execs.values()),
        "executions_per_s": round(sum(execs.values()) / max(duration, 1e-9), 1),
        "crashes": {
            sig: {"count": by_sig.get(sig, 0), "first": first[sig], "minimized": minimized.get(sig)}
            for sig in first
        },
    }
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    (CRASH_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 1 if first else 0


if __name__ == "__main__":
    sys.exit(main())
