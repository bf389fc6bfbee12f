"""One analysis through the stages: frames from io, packets from decode (or the
accelerator's batches), flows from track, findings from rules, gathered into a Report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pcapdiag.decode.link import decode_record
from pcapdiag.decode.packets import (
    Datagram,
    Decoded,
    IcmpError,
    Neighbour,
    Other,
    Segment,
    Undecodable,
    format_endpoint,
)
from pcapdiag.findings import quality
from pcapdiag.findings.build import Head, build_finding, finding_head
from pcapdiag.findings.collect import DEFAULT_MAX_ALIKE, FindingCollector
from pcapdiag.findings.hosts import attribute
from pcapdiag.findings.model import (
    MAX_COUNTED_CLIENTS,
    CaptureInfo,
    Finding,
    FlowSummary,
    Report,
    ReportWarning,
    alike_key_of,
)
from pcapdiag.findings.plural import counted, word
from pcapdiag.findings.samples import ListingShort, Sample, count_in, issues_of, sample_of
from pcapdiag.io.hashing import _Hashing
from pcapdiag.io.reader import CaptureReader, Record, is_url, open_capture
from pcapdiag.io.records import Buffer
from pcapdiag.io.sources import probe_source
from pcapdiag.rules.engine import Match, Matcher, event_index, matchers
from pcapdiag.rules.model import Rule
from pcapdiag.selection import Selection, TimeWindow
from pcapdiag.settings import Settings
from pcapdiag.track.connection import looks_like_server_port
from pcapdiag.track.flows import (
    EvictOldest,
    FlowRecord,
    FlowTable,
    SkippedRun,
    neighbour_record,
)

# The accelerator is optional: without it (not installed, or built without a C compiler) every
# frame takes the general Python path, and the report is the same.
try:
    from pcapdiag.accel.fast_decode import decode_record as fast_decode_record
except ImportError:
    fast_decode_record = None
try:
    from pcapdiag.accel import batches, triage
except ImportError:
    batches = triage = None  # type: ignore[assignment]

# Live output (Analysis.on_finding): the flow table is swept at least this often in
# capture time, so that a quiet link's findings come out within about a second plus the
# grace a connection is held for after it ends.
LIVE_SWEEP_NS = 1_000_000_000

# A file is left unread by --since/--until only when its first and last timestamps lie this
# far outside the span: a capture's timestamps can run out of order by a little (several
# capture queues, a clock stepped by NTP), and a file skipped wrongly would lose findings.
SKIP_SLACK_NS = 60 * 1_000_000_000

# Warnings listed one by one before they are only counted (a flood of broken frames must not
# flood the report).
MAX_LISTED_WARNINGS = 50


@dataclass(frozen=True)
class Analysis:
    """Everything one analysis is asked to do (api.analyze documents each)."""

    sources: tuple[str, ...]
    rules: tuple[Rule, ...]
    platform: str = "auto"
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keep_flows: bool = False
    merge: bool = False
    # With merge: each directory's files are one rotation, several directories several
    # captures (io/sources.py by_directory), rather than all the files one.
    merge_by_dir: bool = False
    jobs: int = 1
    max_alike: int | None = DEFAULT_MAX_ALIKE
    settings: Settings = field(default_factory=Settings)
    ladders: bool = False
    # Keep every finished flow with its events in report.records (--join matches them).
    keep_records: bool = False
    # The hosts, ports, time span, rules and errnos looked at (all when empty).
    selection: Selection = field(default_factory=Selection)
    # Where relative paths among the sources are read from (None: this process's working
    # directory). A cluster's worker reads the client's files as the client names them.
    base_dir: str | None = None
    # The sha256 of each capture file in the report (a second pass over its bytes, on a
    # thread of its own); off, the report's sha256 are null.
    hash_captures: bool = True
    # Called with each finding listed in full as soon as its flow is decided (live output:
    # findings past a group's list are only counted, and are not given). One process only.
    on_finding: Callable[[Finding], None] | None = field(default=None, compare=False)

    def where(self, source: str) -> str:
        """Where to read `source` from: a relative path from base_dir, when there is one."""
        if self.base_dir is None or source == "-" or is_url(source) or os.path.isabs(source):
            return source
        return os.path.join(self.base_dir, source)

    @property
    def accelerated(self) -> bool:
        """Whether the accelerator's first pass may run (asked for, and built)."""
        return self.settings.accelerate and batches is not None and triage.available()


# The first pass's plans for every worker of --jobs, by file (None: the pass does not apply).
Plans = dict[str, "list[triage.Plan] | None"]


def analyze_shard(
    analysis: Analysis,
    groups: Sequence[Sequence[str]],
    progress: Callable[[int, int, int | None], None] | None = None,
    shard: tuple[int, int] | None = None,
    plans: Plans | None = None,
) -> tuple[Report, FindingCollector]:
    """What one process makes of the captures, in `groups` (each file alone, or one merged
    group): alone, or as worker `shard` = (k, n) of --jobs with the first pass's `plans` made
    for all workers (accel.parallel; a file not in `plans` is planned here). Alone, it
    hashes the files too."""
    report = Report(platform=analysis.platform)
    collector = FindingCollector(analysis.max_alike)
    try:
        for group in groups:
            _Session(tuple(group), analysis, report, collector, shard, progress, plans).run()
    except ListingShort:
        if not analysis.settings.shared_exemplars:
            raise  # each class's own exemplars always fill their groups' lists: a bug
        # The first pass's exemplars shared by classes alike but for their times did not
        # fill a group's list: again, with each class's own (rare: those classes then made
        # different findings, like SYNs released before and after a second of waiting).
        settings = replace(analysis.settings, shared_exemplars=False)
        return analyze_shard(replace(analysis, settings=settings), groups, progress, shard, plans)
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
        _add_flows(merged, part)
    return merged, collector


def _add_flows(merged: Report, part: Report) -> None:
    """What every part counts of its own flows, into `merged`."""
    merged.flows += part.flows
    merged.tcp_connections += part.tcp_connections
    merged.udp_flows += part.udp_flows
    merged.orphan_icmp += part.orphan_icmp
    merged.evicted_attempts += part.evicted_attempts
    merged.quality.merge(part.quality)
    merged.services.merge(part.services)
    _merge_by_label(merged.hosts, part.hosts)
    _merge_by_label(merged.neighbours, part.neighbours)


def combine_groups(
    parts: Sequence[tuple[Report, FindingCollector]],
) -> tuple[Report, FindingCollector]:
    """One report from parts that each analysed other groups of `analyze_shard` (one task of
    a cluster each), in the order of the groups: what one process going through the groups
    in turn adds up. Undecodable frames are listed up to MAX_LISTED_WARNINGS in all, as one
    process lists them; everything else of a group is its own (its capture label)."""
    merged, collector = parts[0]
    for part, theirs in parts[1:]:
        collector.merge(theirs)
        room = max(0, MAX_LISTED_WARNINGS - merged.undecodable)
        for w in part.warnings:
            if w.code == "undecodable-frame":
                if room == 0:
                    continue
                room -= 1
            merged.warnings.append(w)
        merged.captures += part.captures
        merged.skipped += part.skipped
        merged.undecodable += part.undecodable
        merged.other_frames += part.other_frames
        _add_flows(merged, part)
    return merged, collector


def _count_plain_services(report: Report, label: str, plan: triage.Plan) -> None:
    """The plain flows the first pass set aside, into the report's services: a connection
    seen mid-stream has its server guessed as the tracker guesses it."""
    services = report.services
    for kind, addr, port, first_addr, first_port, n in plan.services:
        proto = "udp" if kind == triage.SERVICE_UDP else "tcp"
        if kind == triage.SERVICE_GUESSED and looks_like_server_port(first_port, port):
            assert first_addr is not None
            addr, port = first_addr, first_port
        services.get(label, proto, format_endpoint(addr, port)).connections += n


def _merge_by_label(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Each capture's table (host baselines, neighbour runs) taken in from another part."""
    for label, table in theirs.items():
        if label in mine:
            mine[label].merge(table)
        else:
            mine[label] = table


@dataclass
class _Session:
    """One capture (or one merged group of files) through one flow table."""

    sources: tuple[str, ...]
    analysis: Analysis
    report: Report
    collector: FindingCollector
    shard: tuple[int, int] | None = None  # (this worker, workers) under --jobs
    progress: Callable[[int, int, int | None], None] | None = None
    # Under --jobs: the first pass's plans for every worker, made before the workers start
    # (accel.parallel); a file missing here is planned by each worker when it comes to it.
    plans: Plans | None = None
    table: FlowTable = field(init=False)
    # The failing connections the first pass counted (accel.triage.ShapeClass): their
    # exemplars' SYN frames -> the class, and what each exemplar made (findings/samples.py).
    _examples: dict[int, int] = field(init=False, default_factory=dict)
    _samples: dict[int, list[Sample]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.table = FlowTable(fast_path=self.analysis.settings.tracker_fast_path)

    @property
    def label(self) -> str:
        return " + ".join(self.sources)

    def run(self) -> None:
        by_proto = _by_proto(self.analysis, ("tcp", "udp"))
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
        wanted = self.analysis.hash_captures
        where = self.analysis.where
        hashing = _Hashing(self.sources, where) if self.shard is None and wanted else None
        offset = 0  # frames of the files before this one (--merge numbers them on)
        plan: triage.Plan | None = None
        selection = self.analysis.selection
        live = self.analysis.on_finding is not None
        next_live = 0
        window = TimeWindow(selection.since, selection.until)  # from the group's first frame
        try:
            for src in self.sources:
                if self._outside_window(src, readers):
                    report.skipped.append(src)
                    continue
                reader = open_capture(where(src))
                readers.append(reader)
                infos.append(self._info(reader, src))
                plan = self._plan(reader, src)
                stream: Iterator[Record | Segment | SkippedRun | EvictOldest]
                if plan is not None:  # each worker counts its own
                    for i, klass in enumerate(plan.counted):
                        self._examples.update(dict.fromkeys(klass.examples, i))
                    if plan.follows_cap:
                        # The pass followed the cap on unanswered attempts: the releases
                        # come with the stream (EvictOldest), counted ones as a number.
                        table.max_attempts = sys.maxsize
                        table.stats.evicted_attempts += plan.evicted
                    table.hosts.merge(plan.hosts)
                    report.tcp_connections += plan.plain
                    report.udp_flows += plan.plain_udp
                    _count_plain_services(report, self.label, plan)
                    q = report.quality
                    q.add(quality.STARTED_MID_FLOW, plan.midstream_frame, plan.plain_midstream)
                    q.add(quality.ONE_DIRECTION, plan.one_direction_frame, plan.plain_one_direction)
                    stream = batches.records(reader, plan, self.analysis.settings.fast_decode)
                else:
                    stream = reader.records()
                decode = self._decoder(offset)
                if self.analysis.selection.packets:
                    # With the pass, the frames out of the span are set aside already, and
                    # the span begins at the file's first frame, which Python may not read.
                    span = window if plan is None else None
                    decode = _selecting(decode, self.analysis.selection, span)
                for item in stream:
                    kind = type(item)  # once per item: this loop runs for every frame read
                    if kind is SkippedRun:
                        # Frames the accelerator set aside: they count toward the sweeps.
                        done = table.skip_run(item)
                        if done:
                            self._finished(done, by_proto)
                        continue
                    if kind is EvictOldest:
                        # The cap on unanswered attempts released one here (plan.evict).
                        self._finished([table.evict_oldest_attempt(item.ts_ns)], by_proto)
                        continue
                    if progress is not None:
                        seen += 1
                        frames = seen if plan is None else max(seen, reader.numbered)
                        if frames >= next_progress:
                            next_progress = frames + 0x4000
                            before = sum(r.position for r in readers[:-1])
                            # Under --jobs this worker holds only its share of the flows.
                            held = len(table.tcp) + len(table.udp) if self.shard is None else None
                            progress(frames, before + reader.position, held)
                    # A record to decode, or a segment the accelerator decoded.
                    pkt = decode(*item) if kind is Record else item
                    if pkt is None:
                        continue  # another worker's flow, or a frame the selection skips
                    if isinstance(pkt, Segment):
                        done = table.add_segment(pkt)
                    elif isinstance(pkt, Datagram):
                        done = table.add_datagram(pkt)
                    elif isinstance(pkt, IcmpError):
                        done = table.add_icmp(pkt)
                    elif isinstance(pkt, Neighbour):
                        # Still counted with the other frames (ARP, NDP), as before they
                        # were decoded: the report's counts do not change.
                        table.add_neighbour(pkt)
                        report.other_frames += 1
                        continue
                    elif isinstance(pkt, Undecodable):
                        report.undecodable += 1
                        if report.undecodable <= MAX_LISTED_WARNINGS:
                            report.warnings.append(
                                ReportWarning(
                                    pkt.frame,
                                    f"frame {pkt.frame}: {pkt.reason}",
                                    "undecodable-frame",
                                )
                            )
                        continue
                    else:
                        assert isinstance(pkt, Other)
                        report.other_frames += 1
                        if pkt.tcp_fragment:
                            # Never part of a run the first pass sets aside (it reads no
                            # fragment as a segment of a plain flow): counted alike with and
                            # without the accelerator.
                            report.quality.add(quality.TCP_FRAGMENTS, pkt.frame)
                        continue
                    if done:
                        self._finished(done, by_proto)
                    if live and pkt.ts_ns >= next_live:
                        # Live output: sweep at least once a second of capture time.
                        next_live = pkt.ts_ns + LIVE_SWEEP_NS
                        done = table.sweep_now(pkt.ts_ns)
                        if done:
                            self._finished(done, by_proto)
                offset += reader.numbered
        finally:
            for reader, info in zip(readers, infos, strict=True):
                reader.close()
                self._close_info(reader, info)
                if reader.sha256 is not None and wanted:
                    info.sha256 = reader.sha256  # hashed as it was fetched (io/remote.py)
                elif hashing is not None:
                    info.sha256 = hashing.result().get(info.path)
        last_ts = next((i.last_ts_ns for i in reversed(infos) if i.last_ts_ns is not None), None)
        self._finished(table.finish(last_ts), by_proto)
        if plan is not None:
            self._count_shapes(plan)
        # The ARP / NDP runs are judged once every worker's SYNs are in: finish_neighbours.
        table.neighbours.sources = self.sources
        table.neighbours.end_ts_ns = last_ts or 0
        _merge_by_label(report.neighbours, {self.label: table.neighbours})
        _merge_by_label(report.hosts, {self.label: table.hosts})
        report.captures += infos
        report.tcp_connections += table.stats.tcp_connections
        report.udp_flows += table.stats.udp_flows
        report.orphan_icmp += table.stats.orphan_icmp
        report.evicted_attempts += table.stats.evicted_attempts

    def _outside_window(self, source: str, readers: Sequence[CaptureReader]) -> bool:
        """Whether a file lies wholly outside --since/--until by its first and last
        timestamps (io/probe.py), by more than SKIP_SLACK_NS: then it is not read at all.
        Of a merged group, only a file after the first (by start) may be, when it starts
        after the span: the files before it keep their frame numbers."""
        selection = self.analysis.selection
        if selection.since is None and selection.until is None:
            return False
        probe = probe_source(self.analysis.where(source))
        if probe is None or probe.first_ts_ns is None:
            return False
        if len(self.sources) == 1:
            anchor = probe.first_ts_ns
        elif readers and readers[0].first_ts_ns is not None:
            anchor = readers[0].first_ts_ns  # relative bounds: from the group's first frame
        else:
            return False
        until = selection.until.resolve(anchor) if selection.until is not None else None
        if until is not None and probe.first_ts_ns > until + SKIP_SLACK_NS:
            return True
        since = selection.since.resolve(anchor) if selection.since is not None else None
        return (
            len(self.sources) == 1
            and since is not None
            and probe.last_ts_ns is not None
            and probe.last_ts_ns < since - SKIP_SLACK_NS
        )

    def _plan(self, reader: CaptureReader, source: str) -> triage.Plan | None:
        """The first pass's plan for this file and worker, if the pass applies (accel)."""
        if (
            not self.analysis.accelerated
            # Live output sweeps the table on its own schedule, which the pass's account of
            # the cap on unanswered attempts does not follow (accel/_triage.c: evict).
            or self.analysis.on_finding is not None
            or len(self.sources) != 1
            or self.analysis.keep_flows
            or self.analysis.keep_records
        ):
            return None
        k, n = self.shard or (0, 1)
        if self.plans is not None and source in self.plans:
            planned = self.plans[source]
            return planned[k] if planned else None
        analysis = self.analysis
        # Findings past a group's list are counted, not built: so may failing connections
        # of a common shape be (triage.ShapeClass), each class judged by its exemplars.
        alike = analysis.max_alike if analysis.settings.count_unlisted else None
        plans = triage.first_pass(
            reader,
            analysis.rules,
            analysis.params,
            n,
            self.table,
            alike,
            MAX_COUNTED_CLIENTS,
            analysis.settings.shared_exemplars,
            analysis.selection if analysis.selection.packets else None,
        )
        return plans[k] if plans else None

    def _decoder(self, offset: int) -> Callable[..., Decoded | None]:
        """What turns a record into a packet for this worker: the decoder itself in the
        common case (one process, one file), else a wrapper that numbers frames on across
        merged files and drops the packets of other workers' flows (None)."""
        if self.analysis.settings.fast_decode and fast_decode_record is not None:
            base = fast_decode_record
        else:
            base = decode_record
        shard = self.shard
        if shard is None and offset == 0:
            return base
        k, n = shard if shard is not None else (0, 1)
        if n > 1:
            from pcapdiag.accel.shard import shard_of  # only under --jobs

        neighbours = self.table.neighbours

        def decode_for_worker(
            buf: Buffer, start: int, stop: int, number: int, ts: int, link: int, orig: int
        ) -> Decoded | None:
            pkt = base(buf, start, stop, number + offset, ts, link, orig)
            # Most frames take the fast path (no copy, one unpack); a frame that decodes to
            # nothing of a flow (undecodable, ARP) goes to worker 0, which alone counts it.
            # Sharding the decoded packet, not raw header bytes, keeps that exact.
            if n == 1 or shard_of(pkt, n) == k:
                return pkt
            # Every worker follows the ARP and NDP runs, to know which of its own SYNs one
            # held up (track/neighbours.py); worker 0 alone counts the frames.
            if type(pkt) is Neighbour:
                neighbours.add(pkt)
            return None

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
                    f"would start): {d.message}; the {counted(info.frames, 'frame')} before "
                    f"it {word(info.frames, 'was', 'were')} analysed",
                    "damaged-capture",
                )
            )

    def _finished(self, records: Iterable[FlowRecord], by_proto: dict[str, list[Matcher]]) -> None:
        judge(
            records,
            by_proto,
            self.analysis,
            self.sources,
            self.report,
            self.collector,
            self._examples or None,
            self._samples,
            self._emit,
        )

    def _emit(self, finding: Finding) -> None:
        """A finding to analysis.on_finding, its origin as the host baselines seen so far
        tell it (the report's own is decided once the whole capture is read)."""
        assert self.analysis.on_finding is not None
        self.analysis.on_finding(attribute(finding, self.table.hosts))

    def _count_shapes(self, plan: triage.Plan) -> None:
        """Count in the failing connections the first pass set aside, each class as its
        exemplars, judged by now, say (findings/samples.py)."""
        for i, klass in enumerate(plan.counted):
            samples = self._samples.get(i, [])
            count_in(klass, samples, self.label, self.report, self.collector)


def judge(
    records: Iterable[FlowRecord],
    by_proto: dict[str, list[Matcher]],
    analysis: Analysis,
    sources: tuple[str, ...],
    report: Report,
    collector: FindingCollector,
    examples: Mapping[int, int] | None = None,
    samples: dict[int, list[Sample]] | None = None,
    emit: Callable[[Finding], None] | None = None,
) -> None:
    """The findings of finished flows into the collector, their issues into the report. A
    flow whose first frame is in `examples` (first frame -> its class in the first pass's
    plan) is an exemplar: what it made goes into `samples` too, by class."""
    if samples is None:
        samples = {}
    kept = report.records.setdefault(" + ".join(sources), []) if analysis.keep_records else None
    label = " + ".join(sources)
    services = report.services
    selection = analysis.selection
    for rec in records:
        matched = _diagnose(rec, by_proto.get(rec.proto, []), analysis.platform)
        if matched and selection.findings:
            matched = [
                (rule, m, head)
                for rule, m, head in matched
                if selection.keeps_finding(rule.id, rule.name, head.primary_errno())
            ]
        # A neighbour run (ARP, NDP) is no connection, but its failures are its target's.
        if rec.proto != "neighbour" or matched:
            service = services.get(label, rec.proto, rec.server)
            service.connections += rec.proto != "neighbour"
            if matched:
                times = [head.first_ts_ns for _r, _m, head in matched]
                calls = [head.failed_call() for _r, _m, head in matched]
                service.add_failures(1, calls, min(times), max(times))
        if kept is not None:
            # What the join needs of a flow without findings is its handshake (a clock
            # sample, where the view was taken): the rest of its events would only fill
            # memory (join/__init__.py).
            kept.append(rec if matched else rec.handshake_only())
        counts = report.quality
        issues = issues_of(rec, matched)
        for code, frame, n in issues:
            counts.add(code, frame, n)
        if examples is not None and rec.proto == "tcp" and rec.first_frame in examples:
            samples.setdefault(examples[rec.first_frame], []).append(
                sample_of(rec, matched, issues)
            )
        lean = None
        for rule, m, head in matched:
            # Its group (findings/model.py alike_key) and place in it (finding_order).
            if analysis.settings.count_unlisted:
                key = alike_key_of(
                    label,
                    rule.id,
                    head.side,
                    head.guess.name,
                    head.primary_errno(),
                    head.confidence.level,
                    rec.server,
                )
                order = (head.first_ts_ns, head.frames, rule.id)
                if collector.count_only(
                    key, order, head.first_ts_ns, head.last_ts_ns, rec.client, rec.server
                ):
                    continue
            if lean is None:
                # A finding keeps its flow's identity and frame list, not its events
                # (memory grows with the number of failures, so each one should be small).
                lean = rec.without_events()
            f = build_finding(
                rule,
                rec,
                m,
                capture=label,
                sources=sources,
                keep=lean,
                platform=analysis.platform,
                head=head,
            )
            collector.add(f)
            if emit is not None and analysis.on_finding is not None:
                emit(f)
        # Every flow is listed only on request; otherwise the failed flows are listed at
        # the end, those of the findings kept, so that memory stays bounded by the open
        # flows and the findings kept, not by the capture's size. An unanswered ARP / NDP
        # run is listed only when a rule found it failing: every flow means every TCP
        # connection and UDP flow.
        if analysis.keep_flows and (matched or rec.proto != "neighbour"):
            report.flows.append(FlowSummary.of(rec, failed=bool(matched)))


def finish_neighbours(analysis: Analysis, report: Report, collector: FindingCollector) -> None:
    """Judge each capture's ARP / NDP runs, once the workers' parts are merged (or the one
    process is done): a run's record needs every SYN of the capture (track/neighbours.py)."""
    by_proto = _by_proto(analysis, ("neighbour",))
    on = analysis.on_finding
    for label, table in report.neighbours.items():
        records = [neighbour_record(run) for run in table.finish()]
        hosts = report.hosts.get(label)
        emit = None if on is None else (lambda f, hosts=hosts: on(attribute(f, hosts)))
        judge(records, by_proto, analysis, table.sources, report, collector, emit=emit)
    report.neighbours.clear()


def _selecting(
    decode: Callable[..., Decoded | None], selection: Selection, window: TimeWindow | None
) -> Callable[..., Decoded | None]:
    """`decode` for the frames a selection looks at; None for the others (skipped, their
    numbers kept: selection.py). `window` None: the span is not tested here."""

    def decode_selected(
        buf: Buffer, start: int, stop: int, number: int, ts: int, link: int, orig: int
    ) -> Decoded | None:
        if window is not None and not window.keeps(ts):
            return None
        pkt = decode(buf, start, stop, number, ts, link, orig)
        return pkt if pkt is not None and selection.keeps(pkt) else None

    return decode_selected


def _by_proto(analysis: Analysis, protos: Sequence[str]) -> dict[str, list[Matcher]]:
    """The analysis's rules about each protocol, compiled with its parameters."""
    compiled = matchers(analysis.rules, analysis.params)
    return {p: [compiled[r.id] for r in analysis.rules if r.proto == p] for p in protos}


def _diagnose(
    flow: FlowRecord, rules: Sequence[Matcher], platform: str
) -> list[tuple[Rule, Match, Head]]:
    """Every rule's match in one flow with its finding's head (findings/build.py), minus
    those another finding on the same side overrides (decided from the matches, so that an
    overridden finding is never built)."""
    index = event_index(flow)
    present = index.keys()
    matched: list[tuple[Rule, Match]] = []
    for compiled in rules:
        rule = compiled.rule
        # A rule whose steps name an event the flow lacks cannot match (most rules for most
        # flows): that test here, without a call (match makes it too).
        if not rule.match.needs <= present:
            continue
        m = compiled.match(flow, index)
        if m is not None:
            matched.append((rule, m))
    if not matched:
        return []
    if len(matched) > 1:
        overridden = {(o, m.side) for rule, m in matched for o in rule.overrides}
        matched = [(rule, m) for rule, m in matched if (rule.id, m.side) not in overridden]
    return [(rule, m, finding_head(rule, flow, m, platform)) for rule, m in matched]
