"""The client's side of a --cluster run: tasks submitted, parts gathered as they come (with
progress), failures turned into warnings, and the parts added up into one report."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pcapdiag.cluster.address import ClusterError, ClusterSpec, connect, worker_threads
from pcapdiag.cluster.tasks import Part, analyze_task, code_identity
from pcapdiag.findings.collect import FindingCollector
from pcapdiag.findings.model import CAPTURE_FAILED, Report, ReportWarning
from pcapdiag.findings.plural import counted, word
from pcapdiag.session import Analysis, combine_groups, merge_shards

# A capture smaller than this is one task whatever the cluster's size: every share reads the
# whole capture, which only pays when the tracking it shares out is large.
SHARE_MIN_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class ClusterTally:
    """Where a run stands: captures (files) done of all, frames and bytes read so far."""

    files_done: int
    files_total: int
    frames: int
    bytes: int
    workers: int


def run_on_cluster(
    analysis: Analysis,
    groups: Sequence[Sequence[str]],
    spec: ClusterSpec,
    sizes: Sequence[int | None],
    shares: int | None = None,
    progress: Callable[[ClusterTally], None] | None = None,
) -> tuple[Report, FindingCollector]:
    """analyze_shard of every group, as tasks on the cluster `spec`, added up in the groups'
    order. `sizes`: each group's bytes (None: unknown). `shares`: how many shares of its
    flows each capture is cut into (None: as many as keep the workers busy, for captures of
    SHARE_MIN_BYTES or more)."""
    # Relative paths are the client's: a worker reads them from the client's directory.
    analysis = replace(analysis, base_dir=os.getcwd())
    with connect(spec) as client:
        check_workers(client)
        threads = worker_threads(client)
        cuts = share_out(sizes, threads, shares)
        # The rules and options go to every worker once, not with each task (one task
        # takes them with it: a round trip less).
        shipped = client.scatter(analysis, broadcast=True) if sum(cuts) > 1 else analysis
        run = uuid.uuid4().hex[:8]
        shards = [(g, k) for g, n in enumerate(cuts) for k in range(n)]
        futures = [
            client.submit(
                analyze_task,
                shipped,
                g,
                list(groups[g]),
                (k, cuts[g]),
                key=f"pcapdiag-{run}-capture{g}-share{k}of{cuts[g]}",
                pure=False,
            )
            for g, k in shards
        ]
        parts = _gather(client, futures, shards, groups, cuts, sizes, threads, progress)
    by_group: list[list[Part]] = [[] for _ in groups]
    for part in parts:
        by_group[part.group].append(part)
    done = [_group_part(analysis, groups[g], sorted(p, key=_share)) for g, p in enumerate(by_group)]
    return combine_groups(done)


def check_workers(client: Any) -> None:
    """Every worker runs this pcapdiag (code_identity), or ClusterError says which do not."""
    try:
        theirs: dict[str, str] = client.run(code_identity)
    except Exception as exc:  # the function cannot even be loaded there
        raise ClusterError(
            f"the workers cannot run this pcapdiag ({_lost(exc)}): install the same pcapdiag "
            "on the workers"
        ) from None
    mine = code_identity()
    other = sorted(addr for addr, identity in theirs.items() if identity != mine)
    if other:
        raise ClusterError(
            f"{counted(len(other), 'worker')} ({', '.join(other[:3])}) "
            f"{word(len(other), 'runs', 'run')} pcapdiag {theirs[other[0]]}, this process "
            f"{mine}: install the same pcapdiag on the workers"
        )


def share_out(sizes: Sequence[int | None], threads: int, shares: int | None) -> list[int]:
    """How many shares each capture is cut into: `shares` for every one when asked; else one,
    but when there are fewer captures than worker threads, the big ones are cut so that
    every thread has work."""
    if shares is not None:
        return [shares] * len(sizes)
    per = max(1, threads // max(1, len(sizes)))
    return [per if (size or 0) >= SHARE_MIN_BYTES else 1 for size in sizes]


def _share(part: Part) -> int:
    return part.shard[0]


def _gather(
    client: object,
    futures: list[object],
    shards: list[tuple[int, int]],
    groups: Sequence[Sequence[str]],
    cuts: Sequence[int],
    sizes: Sequence[int | None],
    threads: int,
    progress: Callable[[ClusterTally], None] | None,
) -> list[Part]:
    """Every task's part as it comes (`shards`: each future's capture and share); a task the
    cluster lost (its worker died, say) is a part with its error."""
    from distributed import as_completed

    tally = ClusterTally(0, sum(len(g) for g in groups), 0, 0, threads)
    left = list(cuts)
    parts: list[Part] = []
    frames = [0] * len(groups)  # each capture's, from its share 0
    shard_of = dict(zip((f.key for f in futures), shards, strict=True))  # type: ignore[attr-defined]
    for future in as_completed(futures):
        g, k = shard_of[future.key]  # type: ignore[attr-defined]
        try:
            part: Part = future.result()  # type: ignore[attr-defined]
        except Exception as exc:  # the task never returned: KilledWorker, a lost connection
            part = Part(g, (k, cuts[g]), "the cluster", error=_lost(exc))
        parts.append(part)
        if k == 0 and part.report is not None:
            frames[g] = part.report.frames
        left[g] -= 1
        if left[g] == 0:
            tally = replace(
                tally,
                files_done=tally.files_done + len(groups[g]),
                bytes=tally.bytes + (sizes[g] or 0),
                frames=tally.frames + frames[g],
            )
        if progress is not None:
            progress(tally)
    return parts


def _lost(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _group_part(
    analysis: Analysis, group: Sequence[str], parts: list[Part]
) -> tuple[Report, FindingCollector]:
    """The report of one capture from its shares; when one failed, a report with only the
    failure's warning (the capture's findings are then not in the run's report)."""
    failed = next((p for p in parts if p.error is not None or p.report is None), None)
    if failed is None:
        return merge_shards([(p.report, p.collector) for p in parts])  # type: ignore[misc]
    label = " + ".join(group)
    where = failed.worker if failed.worker == "the cluster" else f"worker {failed.worker}"
    report = Report(platform=analysis.platform)
    report.warnings.append(
        ReportWarning(
            None,
            f"{label}: not analysed, failed on {where}: {failed.error}; its findings are not "
            "in this report",
            CAPTURE_FAILED,
        )
    )
    return report, FindingCollector(analysis.max_alike)
