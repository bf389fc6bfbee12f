"""The one place that wires the pipeline: capture -> decode -> flows -> rules -> report."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pcapdiag import evidence
from pcapdiag.errnos import PLATFORMS
from pcapdiag.findings.collect import DEFAULT_MAX_ALIKE, FindingCollector
from pcapdiag.findings.model import Report, ReportWarning, finding_order
from pcapdiag.io.sources import expand_sources, order_by_start
from pcapdiag.rules.model import Rule
from pcapdiag.session import MAX_LISTED_WARNINGS, analyze_shard, failed_flows, merge_shards
from pcapdiag.track import flows


def analyze(
    sources: Sequence[str],
    rules: Sequence[Rule],
    *,
    platform: str = "linux",
    params: dict[str, dict[str, Any]] | None = None,
    keep_flows: bool = False,
    merge: bool = False,
    jobs: int = 1,
    progress: Callable[[int, int, int | None], None] | None = None,
    max_alike: int | None = DEFAULT_MAX_ALIKE,
    ladders: bool = False,
) -> Report:
    """Analyse captures (paths, directories, or "-" for standard input) into one report.

    Each capture is analysed on its own unless `merge` is set: then the files are taken as
    consecutive pieces of one capture (tcpdump -C / -G rotation), ordered by their first
    timestamp, so that connections spanning files are tracked as one; frame numbers then run
    on across files, as in `mergecap -a` of the files in that order.

    `report.flows` lists the flows that failed, or every flow with `keep_flows`.

    `jobs` > 1 shards the flows over that many processes (by 4-tuple, see shard.py); the
    report is the same as with one. `progress(frames, bytes, open_flows)`, if given, is called
    every 16384 frames (by the first worker under --jobs, which reads the whole file but
    holds only its share of the flows: open_flows is then None).

    Findings alike (same rule, side, errno and server address: a SYN flood, a port scan)
    beyond `max_alike` are only counted, in `report.groups` (None lists every one).

    `ladders` fills `report.ladders` (drawn by Markdown and HTML) with the packets of each
    listed finding's flow, replayed: one more pass over each capture (evidence.py).

    Raises CaptureError when a source cannot be read as a capture at all. A capture damaged
    part-way is analysed up to the damage, which is recorded in `report.captures[i].damage`.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    files = expand_sources(sources)
    groups = [order_by_start(files)] if merge and len(files) > 1 else [[f] for f in files]
    args = (groups, rules, platform, params or {}, keep_flows, max_alike)
    # The objects made per packet and per flow hold no reference cycles, so the cyclic
    # garbage collector only costs time here (a quarter of the run on a 1M-frame capture,
    # growing with the heap); reference counting frees everything.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        if jobs > 1 and "-" not in files:
            report, collector = _in_parallel(args, jobs, progress)
        else:
            report, collector = analyze_shard(args, progress)
    finally:
        if gc_was_on:
            gc.enable()
    report.findings, report.groups = collector.result()
    report.findings.sort(key=finding_order)
    report.groups.sort(key=lambda g: (g.first_ts_ns, g.capture, g.rule, g.side, g.server))
    if not keep_flows:
        report.flows = failed_flows(report.findings)
    if report.evicted_attempts:
        report.warnings.append(
            ReportWarning(
                None,
                f"{report.evicted_attempts} unanswered connection attempts were diagnosed "
                f"before the capture's end: more than {flows.MAX_ATTEMPTS} were open at once "
                "(a SYN flood or a scan?); each is judged on what was seen until it was released",
            )
        )
    report.flows.sort(
        key=lambda s: (s.first_ts_ns, s.first_frame, s.proto, s.client, s.server, s.instance)
    )
    if report.undecodable > MAX_LISTED_WARNINGS:
        report.warnings.append(
            ReportWarning(
                None,
                f"{report.undecodable - MAX_LISTED_WARNINGS} more undecodable frames not listed",
            )
        )
    if ladders:
        report.ladders = evidence.ladders(report.findings)
    return report


def default_jobs() -> int:
    """A sensible --jobs default: one worker per CPU this process may use, at most 4 (past
    that, every worker reading the whole file costs more than sharding the tracking saves);
    but one on two CPUs or fewer. There one process already keeps both busy (the hashing
    thread takes the second), and measured on a 2-core machine (README, Performance) two
    workers gained 4% on a pcap and lost 5% on a pcapng, for a third more CPU time."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(4, cpus)


def _in_parallel(
    args: tuple[Any, ...], jobs: int, progress: Callable[[int, int, int | None], None] | None
) -> tuple[Report, FindingCollector]:
    from pcapdiag.accel.parallel import analyze_in_parallel  # multiprocessing: only for --jobs

    def work(shard: tuple[int, int], plans: dict[str, Any]) -> tuple[Report, FindingCollector]:
        return analyze_shard(args, shard=shard, plans=plans)

    def work0(shard: tuple[int, int], plans: dict[str, Any]) -> tuple[Report, FindingCollector]:
        return analyze_shard(args, progress, shard=shard, plans=plans)

    parts, hashes = analyze_in_parallel(args, jobs, work, work0)
    report, collector = merge_shards(parts)
    for info in report.captures:
        info.sha256 = hashes.get(info.path)
    return report, collector


def export_findings(report: Report, directory: Path) -> list[Path]:
    """Write the packets of each listed finding's flow to `directory`/<finding id>.pcap, with
    a README.txt that gives their original frame numbers; returns the pcap files written.
    Reads each capture once more (evidence.py): raises CaptureError when one cannot be read
    again (standard input cannot)."""
    from pcapdiag.render.pcap import write_findings  # dpkt: loaded only for an export

    return write_findings(report, evidence.finding_frames(report.findings), directory)
