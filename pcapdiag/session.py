"""One analysis through the stages: frames from io, packets from decode (or the
accelerator's batches), flows from track, findings from rules, gathered into a Report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pcapdiag.accel.fast_decode import decode_record
from pcapdiag.accel.shard import shard_of
from pcapdiag.accel.triage import Plan, first_pass
from pcapdiag.decode.packets import Datagram, Decoded, IcmpError, Other, Segment, Undecodable
from pcapdiag.findings.build import build_finding
from pcapdiag.findings.collect import FindingCollector
from pcapdiag.findings.model import CaptureInfo, Finding, FlowSummary, Report, ReportWarning
from pcapdiag.io.hashing import _Hashing
from pcapdiag.io.reader import open_capture
from pcapdiag.io.records import Buffer
from pcapdiag.rules.engine import evaluate, event_index
from pcapdiag.rules.model import Rule
from pcapdiag.track.flows import FlowRecord, FlowTable, Released

# Warnings listed one by one before they are only counted (a flood of broken frames must not
# flood the report).
MAX_LISTED_WARNINGS = 50


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


def failed_flows(findings: list[Finding]) -> list[FlowSummary]:
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
