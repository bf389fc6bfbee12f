"""The one place that wires the pipeline: capture -> decode -> flows -> rules -> report."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from .capture import open_capture
from .decode import decode
from .engine import evaluate
from .errnos import PLATFORMS
from .flows import FlowRecord, FlowTable
from .packets import Datagram, IcmpError, Other, Segment, Undecodable
from .report import CaptureInfo, Finding, FlowSummary, Report, ReportWarning, build_finding
from .rules import Rule

# Warnings listed one by one before they are only counted (a flood of broken frames must not
# flood the report).
MAX_LISTED_WARNINGS = 50


def analyze(
    sources: Sequence[str],
    rules: Sequence[Rule],
    *,
    platform: str = "linux",
    params: dict[str, dict[str, Any]] | None = None,
    keep_flows: bool = True,
) -> Report:
    """Analyse one or more captures (paths, or "-" for standard input) into one report.

    Raises CaptureError when a source cannot be read as a capture at all. A capture damaged
    part-way is analysed up to the damage, which is recorded in `report.captures[i].damage`.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    report = Report(platform=platform)
    for source in sources:
        _analyze_one(source, rules, report, params or {}, keep_flows)
    report.findings.sort(key=lambda f: (f.first_ts_ns, f.frames, f.rule))
    report.flows.sort(key=lambda s: (s.first_ts_ns, s.first_frame))
    return report


def _analyze_one(
    source: str,
    rules: Sequence[Rule],
    report: Report,
    params: dict[str, dict[str, Any]],
    keep_flows: bool,
) -> None:
    reader = open_capture(source)
    info = CaptureInfo(
        path=source,
        size=reader.size,
        sha256=_sha256(source),
        format=reader.format,
        compressed=reader.compressed,
        linktypes=list(reader.linktypes),
    )
    report.captures.append(info)
    table = FlowTable()
    by_proto = {proto: [r for r in rules if r.proto == proto] for proto in ("tcp", "udp")}

    def finished(records: Iterable[FlowRecord]) -> None:
        for rec in records:
            findings = _diagnose(rec, by_proto.get(rec.proto, []), params, source)
            report.findings.extend(findings)
            if keep_flows:
                report.flows.append(FlowSummary.of(rec, failed=bool(findings)))

    frames = 0
    first_ts = last_ts = None
    try:
        for frame in reader:
            frames += 1
            if first_ts is None:
                first_ts = frame.ts_ns
            last_ts = frame.ts_ns
            pkt = decode(frame)
            if isinstance(pkt, Segment):
                done = table.add_segment(pkt)
            elif isinstance(pkt, Datagram):
                done = table.add_datagram(pkt)
            elif isinstance(pkt, IcmpError):
                done = table.add_icmp(pkt)
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
                finished(done)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    finished(table.finish(last_ts))
    # pcapng custom blocks take a frame number in Wireshark without being packets: the reader
    # says how many numbers were used, which is Wireshark's frame count.
    frames = max(frames, getattr(reader, "numbered", frames))
    info.frames = frames
    info.first_ts_ns = first_ts
    info.last_ts_ns = last_ts
    info.damage = reader.damage
    if reader.damage is not None:
        d = reader.damage
        report.warnings.append(
            ReportWarning(
                d.frame,
                f"{source}: damaged at byte offset {d.offset} (where frame "
                f"{d.frame} would start): {d.message}; the {frames} frames "
                "before it were analysed",
            )
        )
    if report.undecodable > MAX_LISTED_WARNINGS:
        report.warnings.append(
            ReportWarning(
                None,
                f"{report.undecodable - MAX_LISTED_WARNINGS} more undecodable frames not listed",
            )
        )
    report.tcp_connections += table.stats.tcp_connections
    report.udp_flows += table.stats.udp_flows
    report.orphan_icmp += table.stats.orphan_icmp


def _diagnose(
    flow: FlowRecord, rules: Sequence[Rule], params: dict[str, dict[str, Any]], capture: str
) -> list[Finding]:
    """All findings for one flow, minus those another finding on the same side overrides."""
    matched: list[tuple[Rule, Finding]] = []
    for rule in rules:
        m = evaluate(rule, flow, params.get(rule.id))
        if m is not None:
            matched.append((rule, replace(build_finding(rule, flow, m), capture=capture)))
    if len(matched) < 2:
        return [f for _, f in matched]
    overridden = {(o, f.side) for rule, f in matched for o in rule.overrides}
    return [f for rule, f in matched if (rule.id, f.side) not in overridden]


def _sha256(source: str) -> str | None:
    if source == "-" or not os.path.isfile(source):
        return None
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
