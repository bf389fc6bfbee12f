"""--jobs N: one first pass for all workers, then N processes, each tracking its share of the
flows (shard.py), and the sha256 of the files in a process of its own.

The order matters on a machine with few cores. This process runs the C first pass once,
making every worker's plan (triage.first_pass), while the hashing process reads the files on
another core; only then are workers 1 to N-1 forked: they inherit the plans, and nothing of
this process's threads, for it has none. This process is worker 0. Each worker sends back its
report and findings through a pipe; the parts are merged as session.merge_shards says, into the
report one process makes, byte for byte (tests/accel/test_jobs.py).
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, ForkProcess
from typing import Any

from pcapdiag.accel.triage import Plan, first_pass
from pcapdiag.io.hashing import hash_files
from pcapdiag.io.reader import open_capture
from pcapdiag.rules.model import Rule

# Bytes of plans made ahead for the workers to inherit (two bitmaps, a bit a frame, for each
# worker): past this, as with a directory of many large captures, each worker plans the rest
# of the files itself, one at a time, so that memory does not grow with the number of files.
PLANS_BUDGET = 64 << 20


# work(shard, plans) -> a worker's part of the result: session.analyze_shard bound to one
# analysis (and, for worker 0, the progress display).
Work = Callable[[tuple[int, int], dict[str, list[Plan] | None]], Any]


def analyze_in_parallel(
    groups: Sequence[Sequence[str]],
    rules: Sequence[Rule],
    params: Mapping[str, Mapping[str, Any]],
    plan_ahead: bool,
    jobs: int,
    work: Work,
    work0: Work,
    hash_captures: bool = True,
) -> tuple[list[Any], dict[str, str | None]]:
    """`work` shared out over `jobs` processes, each calling it with its shard (k, jobs) and
    the plans made here for all of them (with `plan_ahead`: the first pass is wanted); this
    process is worker 0 and calls `work0`. Returns the workers' parts in order and the
    sha256 of every file."""
    ctx = multiprocessing.get_context("fork")
    sources = [src for group in groups for src in group]
    hasher = _Child(ctx, hash_files, sources if hash_captures else [])
    workers: list[_Child] = []
    try:
        plans: dict[str, list[Plan] | None] = {}
        size = 0
        for group in groups:
            if not plan_ahead or len(group) != 1 or size > PLANS_BUDGET:
                continue  # left to each worker when it comes to the file (api._Session._plan)
            plans[group[0]] = planned = _plan(group[0], rules, params, jobs)
            size += sum(len(p.bits) + len(p.own) for p in planned or ())
        workers = [_Child(ctx, _shard_worker, (work, (k, jobs), plans)) for k in range(1, jobs)]
        parts = [work0((0, jobs), plans)]
        parts += [w.result() for w in workers]
        hashes: dict[str, str | None] = hasher.result()
    finally:
        for child in (hasher, *workers):
            child.close()
    return parts, hashes


def _plan(
    source: str, rules: Sequence[Rule], params: Mapping[str, Mapping[str, Any]], jobs: int
) -> list[Plan] | None:
    """Every worker's plan for one file (None: the first pass does not apply). A file that
    cannot be opened is left to the workers, which report it as with one job."""
    try:
        reader = open_capture(source)
    except Exception:
        return None
    try:
        # The workers' flow tables have the defaults the pass applies here.
        return first_pass(reader, rules, params, jobs)
    finally:
        reader.close()


def _shard_worker(args: Any) -> Any:
    work, shard, plans = args
    return work(shard, plans)


class _Child:
    """A forked process computing `target(arg)`, its result (or exception) sent back through
    a pipe. Forked, so `arg` is inherited, not pickled; the result is pickled."""

    def __init__(self, ctx: ForkContext, target: Any, arg: Any) -> None:
        self._conn, theirs = ctx.Pipe(duplex=False)
        self._proc: ForkProcess = ctx.Process(target=_run, args=(theirs, target, arg), daemon=True)
        self._proc.start()
        theirs.close()

    def result(self) -> Any:
        """The target's return value; its exception is raised here."""
        try:
            ok, value = self._conn.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError(
                f"a worker process of --jobs ended without a result (exit code "
                f"{self._proc.exitcode})"
            ) from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._conn.close()
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()


def _run(conn: Connection, target: Any, arg: Any) -> None:
    try:
        result: tuple[bool, Any] = (True, target(arg))
    except BaseException as exc:  # sent to the parent, which raises it
        result = (False, exc)
    try:
        try:
            conn.send(result)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # does not pickle
            conn.send((False, RuntimeError(f"in a worker of --jobs: {exc!r}")))
    except OSError:
        pass  # the parent is gone (interrupted, killed): nobody to tell, and no traceback
    finally:
        conn.close()
