"""The library's entry point: analyze() captures into one Report (session.py runs the stages
for each capture; accel.parallel shares them out under --jobs)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcapdiag import annotate, evidence
from pcapdiag.annotate import Annotation
from pcapdiag.errnos import PLATFORMS
from pcapdiag.findings import quality
from pcapdiag.findings.collect import DEFAULT_MAX_ALIKE, FindingCollector
from pcapdiag.findings.hosts import attribute
from pcapdiag.findings.model import Finding, Report, ReportWarning, finding_order
from pcapdiag.findings.platform import AUTO
from pcapdiag.findings.plural import counted, word
from pcapdiag.io.sources import by_directory, expand_sources, group_size, order_by_start
from pcapdiag.join import join_views
from pcapdiag.rules.model import Rule
from pcapdiag.selection import Selection
from pcapdiag.session import (
    MAX_LISTED_WARNINGS,
    SKIP_SLACK_NS,
    Analysis,
    Plans,
    analyze_shard,
    failed_flows,
    finish_neighbours,
    merge_shards,
)
from pcapdiag.settings import Settings
from pcapdiag.track import flows

if TYPE_CHECKING:
    from pcapdiag.cluster import ClusterTally

Progress = Callable[[int, int, int | None], None]

# Files left unread by --since/--until named in their warning; the rest are counted.
MAX_NAMED_SKIPPED = 5


def analyze(
    sources: Sequence[str],
    rules: Sequence[Rule],
    *,
    platform: str = "auto",
    params: dict[str, dict[str, Any]] | None = None,
    keep_flows: bool = False,
    merge: bool = False,
    merge_by_dir: bool = False,
    join: bool = False,
    jobs: int = 1,
    progress: Progress | None = None,
    max_alike: int | None = DEFAULT_MAX_ALIKE,
    settings: Settings | None = None,
    ladders: bool = False,
    selection: Selection | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    cluster: Cluster | None = None,
    hash_captures: bool = True,
) -> Report:
    """Analyse captures (paths, directories, glob patterns, URLs such as s3://bucket/prefix/,
    or "-" for standard input) into one report.

    Each capture is analysed on its own unless `merge` is set: then the files are taken as
    consecutive pieces of one capture (tcpdump -C / -G rotation), ordered by their first
    timestamp, so that connections spanning files are tracked as one; frame numbers then run
    on across files, as in `mergecap -a` of the files in that order. With `merge_by_dir`
    too, each directory's (or URL prefix's) files are one such capture, and several
    directories several captures: a fleet's hosts, each with its rotated files.

    With `join`, the files are views of the same connections from different points (one
    capture on each end, say): each is read on its own, then the connections are matched
    across them, each view's clock is set against the first's, and each failure is one
    finding, from the view on its side's host, with the evidence of every view (pcapdiag.join;
    one process, without the accelerator: it keeps every flow's events).

    `report.flows` lists the flows that failed, or every flow with `keep_flows`.

    `jobs` > 1 shards the flows over that many processes (by 4-tuple, see shard.py); the
    report is the same as with one. `progress(frames, bytes, open_flows)`, if given, is called
    every 16384 frames (by the first worker under --jobs, which reads the whole file but
    holds only its share of the flows: open_flows is then None).

    Findings alike (same rule, side, errno and server address: a SYN flood, a port scan)
    beyond `max_alike` are only counted, in `report.groups` (None lists every one).

    `platform` names the errnos of one platform for every finding, or with "auto" (the
    default) each finding's side's platform as its packets show it (findings/platform.py),
    Linux where they do not decide.

    `settings` choose how the analysis runs (the accelerator, fast paths), never what it
    finds: pcapdiag.settings.

    `ladders` fills `report.ladders` (drawn by Markdown and HTML) with the packets of each
    listed finding's flow, replayed: one more pass over each capture (evidence.py).

    `selection` limits the analysis to some hosts, ports, a span of capture time, rules or
    errnos (pcapdiag.selection); frame numbers stay those of the files.

    `on_finding(finding)`, if given, is called with each finding listed in full as soon as
    its flow is decided (live output; one process, whatever `jobs` says).

    `hash_captures` False leaves each capture's sha256 out (None): a pass over the bytes
    less, which on a fleet's captures costs about a third of the analysis's CPU.

    `cluster` runs the analysis as tasks of a Dask cluster (pcapdiag.cluster; not with
    `join`, standard input or `on_finding`): the same report, each capture fetched and
    analysed by a worker. A capture whose task fails is left out with a warning
    (`Report.failed_captures`) instead of ending the run.

    Raises CaptureError when a source cannot be read as a capture at all. A capture damaged
    part-way is analysed up to the damage, which is recorded in `report.captures[i].damage`.
    """
    analysis = Analysis(
        sources=tuple(sources),
        rules=tuple(rules),
        platform=platform,
        params=params or {},
        keep_flows=keep_flows,
        merge=merge and not join,
        merge_by_dir=merge_by_dir,
        jobs=1 if join else jobs,
        keep_records=join,
        max_alike=max_alike,
        settings=settings or Settings(),
        ladders=ladders,
        selection=selection or Selection(),
        on_finding=on_finding,
        hash_captures=hash_captures,
    )
    return run_analysis(analysis, progress, cluster)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where and how to run an analysis as Dask tasks: `spec` as --cluster takes it
    (local[:N], or a scheduler's address: pcapdiag.cluster.parse_cluster), `shares` of
    each capture's flows (None: as the cluster's size asks), and `progress` called as tasks
    end."""

    spec: str
    shares: int | None = None
    progress: Callable[[ClusterTally], None] | None = None


def run_analysis(
    analysis: Analysis, progress: Progress | None = None, cluster: Cluster | None = None
) -> Report:
    """analyze() for the arguments gathered in one Analysis."""
    if analysis.platform != AUTO and analysis.platform not in PLATFORMS:
        raise ValueError(f"unknown platform {analysis.platform!r}")
    if cluster is not None and (analysis.keep_records or analysis.on_finding is not None):
        raise ValueError("a cluster runs neither --join nor live output (on_finding)")
    if analysis.on_finding is not None:
        # Live: one process, and no second run (the first pass's shared exemplars may ask
        # for one: session.analyze_shard), so that each finding is given once.
        settings = replace(analysis.settings, shared_exemplars=False)
        analysis = replace(analysis, jobs=1, settings=settings)
    files = expand_sources(analysis.sources)
    if analysis.merge and analysis.merge_by_dir:
        groups = [order_by_start(g) if len(g) > 1 else g for g in by_directory(files)]
    elif analysis.merge and len(files) > 1:
        groups = [order_by_start(files)]
    else:
        groups = [[f] for f in files]
    # The objects made per packet and per flow hold no reference cycles, so the cyclic
    # garbage collector only costs time here (more as the heap grows); reference counting
    # frees everything.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return _run(analysis, progress, cluster, groups, files)
    finally:
        if gc_was_on:
            gc.enable()


def _run(
    analysis: Analysis,
    progress: Progress | None,
    cluster: Cluster | None,
    groups: list[list[str]],
    files: list[str],
) -> Report:
    """run_analysis with the cyclic collector off: the stages, then the report finished
    (a finishing pass over tens of thousands of findings with the collector on would pay
    for full collections over every object the analysis made)."""
    if cluster is not None:
        report, collector = _on_cluster(analysis, groups, cluster)
    elif (
        analysis.jobs > 1
        and not analysis.keep_records
        and "-" not in files
        and _parallel_available()
    ):
        report, collector = _in_parallel(analysis, groups, progress)
    else:
        report, collector = analyze_shard(analysis, groups, progress)
    finish_neighbours(analysis, report, collector)
    report.findings, report.groups = collector.result()
    report.findings = [attribute(f, report.hosts.get(f.capture)) for f in report.findings]
    if analysis.keep_records:
        labels = [" + ".join(g) for g in groups]
        join_views(report, labels, report.records, fast=analysis.accelerated)
        report.records = {}
    report.findings.sort(key=finding_order)
    report.groups.sort(key=lambda g: (g.first_ts_ns, g.capture, g.rule, g.side, g.server))
    if not analysis.keep_flows:
        report.flows = failed_flows(report.findings)
    if report.skipped:
        report.warnings.insert(0, _skipped_warning(report.skipped))
    if report.evicted_attempts:
        report.warnings.append(
            ReportWarning(
                None,
                f"{counted(report.evicted_attempts, 'unanswered connection attempt')} "
                f"{word(report.evicted_attempts, 'was', 'were')} diagnosed "
                f"before the capture's end: more than {flows.MAX_ATTEMPTS} were open at once "
                "(a SYN flood or a scan?); each is judged on what was seen until it was released "
                "(released within a second of its SYN: syn-unanswered-released, PD-TCP-024)",
                "attempts-released-early",
                report.evicted_attempts,
            )
        )
    for code, tally in report.quality.items():
        report.warnings.append(
            ReportWarning(tally.frame, quality.describe(code, tally), code, tally.count)
        )
    report.flows.sort(
        key=lambda s: (s.first_ts_ns, s.first_frame, s.proto, s.client, s.server, s.instance)
    )
    if report.undecodable > MAX_LISTED_WARNINGS:
        report.warnings.append(
            ReportWarning(
                None,
                f"{counted(report.undecodable - MAX_LISTED_WARNINGS, 'more undecodable frame')}"
                " not listed",
                "undecodable-frame",
                report.undecodable - MAX_LISTED_WARNINGS,
            )
        )
    if analysis.ladders:
        report.ladders = evidence.ladders(report.findings)
    return report


def _skipped_warning(skipped: list[str]) -> ReportWarning:
    """One warning for the files --since/--until left unread, the first few named."""
    shown = ", ".join(skipped[:MAX_NAMED_SKIPPED])
    if len(skipped) > MAX_NAMED_SKIPPED:
        shown += f" and {len(skipped) - MAX_NAMED_SKIPPED} more"
    n = len(skipped)
    return ReportWarning(
        None,
        f"{counted(n, 'capture file')} not read: by {word(n, 'its', 'their')} first and last "
        f"timestamps, wholly outside --since/--until (by more than "
        f"{SKIP_SLACK_NS // 1_000_000_000} s): {shown}",
        "captures-skipped",
        len(skipped),
    )


def default_jobs() -> int:
    """A sensible --jobs default: one worker per CPU this process may use, at most 4 (past
    that, every worker reading the whole file costs more than sharding the tracking saves);
    but one on two CPUs or fewer: there one process already keeps both busy (the hashing
    thread takes the second), and a second worker costs about as much as it saves (the
    measurements are in CHANGELOG.md)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(4, cpus)


def _parallel_available() -> bool:
    try:
        from pcapdiag.accel import parallel  # noqa: F401
    except ImportError:  # the accelerator is not installed: one process does it all
        return False
    return True


def _in_parallel(
    analysis: Analysis, groups: list[list[str]], progress: Progress | None
) -> tuple[Report, FindingCollector]:
    from pcapdiag.accel.parallel import analyze_in_parallel  # multiprocessing: only for --jobs

    def work(shard: tuple[int, int], plans: Plans) -> tuple[Report, FindingCollector]:
        return analyze_shard(analysis, groups, shard=shard, plans=plans)

    def work0(shard: tuple[int, int], plans: Plans) -> tuple[Report, FindingCollector]:
        return analyze_shard(analysis, groups, progress, shard=shard, plans=plans)

    plan_ahead = analysis.accelerated and not analysis.keep_flows and not analysis.selection.packets
    parts, hashes = analyze_in_parallel(
        groups,
        analysis.rules,
        analysis.params,
        plan_ahead,
        analysis.jobs,
        work,
        work0,
        analysis.hash_captures,
    )
    report, collector = merge_shards(parts)
    for info in report.captures:
        info.sha256 = hashes.get(info.path)
    return report, collector


def _on_cluster(
    analysis: Analysis, groups: list[list[str]], cluster: Cluster
) -> tuple[Report, FindingCollector]:
    from pcapdiag.cluster import parse_cluster, run_on_cluster

    if any(src == "-" for group in groups for src in group):
        raise ValueError("a cluster cannot read standard input: give files or URLs")
    sizes = [group_size(group) for group in groups]
    spec = parse_cluster(cluster.spec)
    return run_on_cluster(analysis, groups, spec, sizes, cluster.shares, cluster.progress)


def export_findings(report: Report, directory: Path) -> list[Path]:
    """Write the packets of each listed finding's flow to `directory`/<finding id>.pcap, with
    a README.txt that gives their original frame numbers; returns the pcap files written.
    Reads each capture once more (evidence.py): raises CaptureError when one cannot be read
    again (standard input cannot)."""
    from pcapdiag.render.pcap import write_findings  # dpkt: loaded only for an export

    return write_findings(report, evidence.finding_frames(report.findings), directory)


def annotate_capture(report: Report, out: Path) -> Annotation:
    """Write a copy of the report's capture to `out` as pcapng, every frame as it was (same
    number, timestamp, original length and link type), with a packet comment on each
    evidence frame of each listed finding (annotate.comment_text); findings only counted in
    a group (past `max_alike`) have no frames in the report, and no comments.

    Reads the capture once more: raises CaptureError when it cannot be read again (standard
    input cannot) or no longer has the frames the analysis counted, and ValueError for a
    report of several captures (their frame numbers are not one file's) or when `out` is
    the capture itself. A capture damaged part-way is copied up to the damage."""
    if len(report.captures) != 1:
        raise ValueError(
            f"a copy with comments is of one capture; this report has {len(report.captures)}"
        )
    info = report.captures[0]
    comments = annotate.frame_comments(report.findings)
    return annotate.write_annotated(info.path, comments, out, frames=info.frames)
