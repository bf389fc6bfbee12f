"""The one place that wires the pipeline: capture -> decode -> flows -> rules -> report."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import flows
from .capture import open_capture
from .collect import DEFAULT_MAX_ALIKE, FindingCollector
from .decode_fast import decode_record
from .engine import evaluate, event_index
from .errnos import PLATFORMS
from .flows import FlowRecord, FlowTable, Released
from .frames import Buffer
from .packets import Datagram, Decoded, IcmpError, Other, Segment, Undecodable
from .report import (
    CaptureInfo,
    Finding,
    FlowSummary,
    Report,
    ReportWarning,
    build_finding,
    finding_order,
)
from .rules import Rule
from .shard import shard_of
from .sources import expand_sources, order_by_start
from .triage import Plan, first_pass

# Warnings listed one by one before they are only counted (a flood of broken frames must not
# flood the report).
MAX_LISTED_WARNINGS = 50


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
            from .parallel import analyze_in_parallel  # multiprocessing: only for --jobs

            report, collector = analyze_in_parallel(args, jobs, progress)
        else:
            report, collector = analyze_shard(args, progress)
    finally:
        if gc_was_on:
            gc.enable()
    report.findings, report.groups = collector.result()
    report.findings.sort(key=finding_order)
    report.groups.sort(key=lambda g: (g.first_ts_ns, g.capture, g.rule, g.side, g.server))
    if not keep_flows:
        report.flows = _failed_flows(report.findings)
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


def analyze_shard(
    args: tuple[Any, ...],
    progress: Callable[[int, int, int | None], None] | None = None,
    shard: tuple[int, int] | None = None,
    plans: dict[str, list[Plan] | None] | None = None,
) -> tuple[Report, FindingCollector]:
    """What one process makes of the captures (`args` as analyze() builds them): alone, or
    as worker `shard` = (k, n) of --jobs with the first pass's `plans` made for all workers
    (parallel.py; a file not in `plans` is planned here). Alone, it hashes the files too."""
    groups, rules, platform, params, keep_flows, max_alike = args
    report = Report(platform=platform)
    collector = FindingCollector(platform, max_alike)
    for group in groups:
        _Session(
            tuple(group), rules, report, collector, params, keep_flows, shard, progress, plans
        ).run()
    return report, collector


def _failed_flows(findings: list[Finding]) -> list[FlowSummary]:
    """The flows of the findings listed, once each."""
    seen: dict[tuple[object, ...], FlowSummary] = {}
    for f in findings:
        r = f.flow
        key = (r.proto, r.client, r.server, r.instance, r.first_frame, f.capture)
        if key not in seen:
            seen[key] = FlowSummary.of(r, failed=True)
    return list(seen.values())


def merge_shards(
    parts: list[tuple[Report, FindingCollector]],
) -> tuple[Report, FindingCollector]:
    """One report from the workers'. Worker 0 alone counted the frames that belong to no flow
    and wrote the warnings; capture metadata is the same in every worker."""
    merged, collector = parts[0]
    for part, theirs in parts[1:]:
        collector.merge(theirs)
        merged.flows += part.flows
        merged.tcp_connections += part.tcp_connections
        merged.udp_flows += part.udp_flows
        merged.orphan_icmp += part.orphan_icmp
        merged.evicted_attempts += part.evicted_attempts
    return merged, collector


@dataclass
class _Session:
    """One capture (or one merged group of files) through one flow table."""

    sources: tuple[str, ...]
    rules: Sequence[Rule]
    report: Report
    collector: FindingCollector
    params: dict[str, dict[str, Any]]
    keep_flows: bool
    shard: tuple[int, int] | None = None  # (this worker, workers) under --jobs
    progress: Callable[[int, int, int | None], None] | None = None
    # Under --jobs: the first pass's plans for every worker, made before the workers start
    # (parallel.py); a file missing here is planned by each worker when it comes to it.
    plans: dict[str, list[Plan] | None] | None = None
    table: FlowTable = field(default_factory=FlowTable)

    @property
    def label(self) -> str:
        return " + ".join(self.sources)

    def run(self) -> None:
        by_proto = {p: [r for r in self.rules if r.proto == p] for p in ("tcp", "udp")}
        readers: list[Any] = []
        infos: list[CaptureInfo] = []
        table = self.table
        report = self.report
        progress = self.progress
        seen = 0
        next_progress = 0x4000
        done: Sequence[FlowRecord]
        # sha256 of each file, computed on another thread while the frames are analysed:
        # hashlib releases the GIL on large buffers, so this uses a second core instead of
        # adding a second pass over the file. Under --jobs, a process of its own hashes
        # (parallel.py).
        hashing = _Hashing(self.sources) if self.shard is None else None
        offset = 0  # frames of the files before this one (--merge numbers them on)
        try:
            for src in self.sources:
                reader = open_capture(src)
                readers.append(reader)
                infos.append(self._info(reader, src))
                plan = self._plan(reader, src)
                if plan is not None:  # each worker counts its own
                    report.tcp_connections += plan.plain
                    report.udp_flows += plan.plain_udp
                for pkt in reader.records(self._decoder(offset), plan):
                    if progress is not None:
                        seen += 1
                        frames = seen if plan is None else max(seen, reader.numbered)
                        if frames >= next_progress:
                            next_progress = frames + 0x4000
                            before = sum(r.position for r in readers[:-1])
                            # Under --jobs this worker holds only its share of the flows.
                            held = len(table.tcp) + len(table.udp) if self.shard is None else None
                            progress(frames, before + reader.position, held)
                    if pkt is None:
                        continue  # another worker's flow
                    if isinstance(pkt, Segment):
                        done = table.add_segment(pkt)
                    elif isinstance(pkt, Datagram):
                        done = table.add_datagram(pkt)
                    elif isinstance(pkt, IcmpError):
                        done = table.add_icmp(pkt)
                    elif isinstance(pkt, Released):
                        # A sweep fell in a run of skipped frames (FlowTable.skip_run).
                        done = pkt.records
                    elif isinstance(pkt, Undecodable):
                        report.undecodable += 1
                        if report.undecodable <= MAX_LISTED_WARNINGS:
                            report.warnings.append(
                                ReportWarning(pkt.frame, f"frame {pkt.frame}: {pkt.reason}")
                            )
                        continue
                    else:
                        assert isinstance(pkt, Other)
                        report.other_frames += 1
                        continue
                    if done:
                        self._finished(done, by_proto)
                offset += reader.numbered
        finally:
            for reader, info in zip(readers, infos, strict=True):
                reader.close()
                self._close_info(reader, info)
                if hashing is not None:
                    info.sha256 = hashing.result().get(info.path)
        last_ts = next((i.last_ts_ns for i in reversed(infos) if i.last_ts_ns is not None), None)
        self._finished(table.finish(last_ts), by_proto)
        report.captures += infos
        report.tcp_connections += table.stats.tcp_connections
        report.udp_flows += table.stats.udp_flows
        report.orphan_icmp += table.stats.orphan_icmp
        report.evicted_attempts += table.stats.evicted_attempts

    def _plan(self, reader: Any, source: str) -> Plan | None:
        """The first pass's plan for this file and worker, if the pass applies (triage.py)."""
        if len(self.sources) != 1 or self.keep_flows:
            return None
        k, n = self.shard or (0, 1)
        if self.plans is not None and source in self.plans:
            planned = self.plans[source]
            return replace(planned[k], table=self.table) if planned else None
        plans = first_pass(reader, self.table, self.rules, self.params, n)
        return plans[k] if plans else None

    def _decoder(self, offset: int) -> Callable[..., Decoded | None]:
        """What turns a record into a packet for this worker: decode_record itself in the
        common case (one process, one file), else a wrapper that numbers frames on across
        merged files and drops the packets of other workers' flows (None)."""
        shard = self.shard
        if shard is None and offset == 0:
            return decode_record
        k, n = shard if shard is not None else (0, 1)

        def decode_for_worker(
            buf: Buffer, start: int, stop: int, number: int, ts: int, link: int, orig: int
        ) -> Decoded | None:
            pkt = decode_record(buf, start, stop, number + offset, ts, link, orig)
            # Most frames take decode_record's fast path (no copy, one unpack); a frame that
            # decodes to nothing of a flow (undecodable, ARP) goes to worker 0, which alone
            # counts it. Sharding the decoded packet, not raw header bytes, keeps that exact.
            return pkt if n == 1 or shard_of(pkt, n) == k else None

        return decode_for_worker

    def _info(self, reader: Any, source: str) -> CaptureInfo:
        return CaptureInfo(
            path=source,
            size=reader.size,
            sha256=None,  # filled in by the hashing thread (see run)
            format=reader.format,
            compressed=reader.compressed,
            linktypes=[],
        )

    def _close_info(self, reader: Any, info: CaptureInfo) -> None:
        """Fill what is known only once a reader has been read to its end."""
        info.first_ts_ns = reader.first_ts_ns
        info.last_ts_ns = reader.last_ts_ns
        info.linktypes = list(reader.linktypes)
        info.frames = reader.numbered
        info.damage = reader.damage
        if reader.damage is not None:
            d = reader.damage
            self.report.warnings.append(
                ReportWarning(
                    d.frame,
                    f"{info.path}: damaged at byte offset {d.offset} (where frame {d.frame} "
                    f"would start): {d.message}; the {info.frames} frames before it were "
                    "analysed",
                )
            )

    def _finished(self, records: Iterable[FlowRecord], by_proto: dict[str, list[Rule]]) -> None:
        for rec in records:
            findings = _diagnose(rec, by_proto.get(rec.proto, []), self.params, self.sources)
            for f in findings:
                self.collector.add(f)
            # Every flow is listed only on request; otherwise the failed flows are listed at
            # the end, those of the findings kept, so that memory stays bounded by the open
            # flows and the findings kept, not by the capture's size.
            if self.keep_flows:
                self.report.flows.append(FlowSummary.of(rec, failed=bool(findings)))


def _diagnose(
    flow: FlowRecord,
    rules: Sequence[Rule],
    params: dict[str, dict[str, Any]],
    sources: tuple[str, ...],
) -> list[Finding]:
    """All findings for one flow, minus those another finding on the same side overrides."""
    matched: list[tuple[Rule, Finding]] = []
    label = " + ".join(sources)
    index = event_index(flow)
    # A finding keeps its flow's identity and frame list, not its events (memory grows with
    # the number of failures, so each one should be small).
    lean: FlowRecord | None = None
    for rule in rules:
        m = evaluate(rule, flow, params.get(rule.id), index)
        if m is not None:
            if lean is None:
                lean = replace(flow, events=())
            finding = build_finding(rule, flow, m, capture=label, sources=sources, keep=lean)
            matched.append((rule, finding))
    if len(matched) < 2:
        return [f for _, f in matched]
    overridden = {(o, f.side) for rule, f in matched for o in rule.overrides}
    return [f for rule, f in matched if (rule.id, f.side) not in overridden]


def hash_files(sources: Iterable[str]) -> dict[str, str | None]:
    """The sha256 of each capture file; None for standard input, what is not a file, or a
    file that cannot be read (its reader reports why)."""
    hashes: dict[str, str | None] = {}
    for src in sources:
        try:
            hashes[src] = file_sha256(src)
        except OSError:
            hashes[src] = None
    return hashes


class _Hashing:
    """hash_files(sources) on a thread of its own; result() waits for it."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._sources = tuple(sources)
        self._hashes: dict[str, str | None] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._hashes = hash_files(self._sources)

    def result(self) -> dict[str, str | None]:
        self._thread.join()
        return self._hashes


def file_sha256(source: str) -> str | None:
    """The sha256 of a capture file (hex), None for standard input or what is not a file."""
    if source == "-" or not os.path.isfile(source):
        return None
    h = hashlib.sha256()
    # Large reads into one buffer: the hashing thread takes the GIL once per read, and each
    # time may wait a switch interval (5 ms) for the analysis to let it go. With 1 MB reads
    # that made the hash finish after the analysis (0.2 s late on a 550 MB file).
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    with open(source, "rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


_HASH_CHUNK = 16 << 20
