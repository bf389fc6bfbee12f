"""The JSON contract `pcapdiag.report/v1`: the one place that says what the JSON report looks
like, object by object (schemas/report-v1.schema.json publishes it; `pcapdiag schema`
prints it). The schema version changes only when the format does, independently of the
package version.

The report model's `to_dict` methods call these functions; this module needs the model's
types only for their annotations, so it imports nothing of the model at run time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pcapdiag import __version__
from pcapdiag.errnos import PLATFORMS, errno_message, errno_number, is_defined

if TYPE_CHECKING:
    from pcapdiag.findings.model import (
        CaptureInfo,
        Effect,
        Finding,
        FindingGroup,
        FlowSummary,
        Report,
        ReportWarning,
    )

REPORT_SCHEMA = "pcapdiag.report/v1"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(ts_ns: int) -> str:
    """A capture timestamp as every report format writes it: ISO 8601 UTC with microseconds
    (the capture's own clock). A pcapng timestamp can lie outside what a calendar date holds
    (years 1 to 9999): it is clamped to that range, so a report is always written (the
    capture's odd clock shows as year 1 or 9999)."""
    try:
        dt = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    except OverflowError:
        dt = datetime.min.replace(tzinfo=UTC) if ts_ns < 0 else datetime.max.replace(tzinfo=UTC)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def errno_ref(platform: str, name: str | None) -> dict[str, Any] | None:
    """An errno as the report names it. A new dict each call: callers may add to it."""
    if name is None or not is_defined(platform, name):
        return None
    return {
        "name": name,
        "number": errno_number(platform, name),
        "message": errno_message(platform, name),
    }


def effect_dict(e: Effect, platform: str) -> dict[str, Any]:
    return {
        "call": e.call,
        "result": e.result,
        "errno": errno_ref(platform, e.errno),
        "then": e.then,
        "note": e.note,
    }


def finding_dict(f: Finding) -> dict[str, Any]:
    platform = f.platform.name
    prim = f.primary()
    return {
        "id": f.id,
        "capture": f.capture,
        "rule": f.rule,
        "rev": f.rev,
        "rule_name": f.rule_name,
        "severity": f.severity,
        "confidence": f.confidence.level,
        "confidence_reasons": list(f.confidence.reasons),
        "title": f.title,
        "flow": {
            "proto": f.flow.proto,
            "client": f.flow.client,
            "server": f.flow.server,
            "instance": f.flow.instance,
            "roles": f.flow.roles,
        },
        "side": f.side,
        "platform": {
            "name": platform,
            "inferred": f.platform.inferred,
            "decided": f.platform.decided,
            "why": f.platform.why,
        },
        "vantage": {"where": f.vantage.where, "why": f.vantage.why},
        "capture_quality": list(f.quality),
        "origin": {
            "actor": f.origin.actor,
            "confidence": f.origin.confidence,
            "why": f.origin.why,
        },
        "call": prim.call if prim else None,
        "errno": errno_ref(platform, prim.errno if prim else None),
        "errno_by_platform": {
            p: (
                {**(errno_ref(p, e.errno) or {}), "call": e.call}
                if (e := f.primary(p)) is not None and e.errno is not None
                else None
            )
            for p in PLATFORMS
        },
        "effects": [effect_dict(e, platform) for e in f.effects.get(platform, ())],
        "frames": list(f.frames),
        "evidence": [
            {"capture": c, "frame": n}
            for c, n in (f.evidence or tuple((f.capture, n) for n in f.frames))
        ],
        "first_time": iso_time(f.first_ts_ns),
        "last_time": iso_time(f.last_ts_ns),
        "cause": f.cause,
        "next_steps": f.next_steps,
        "notes": list(f.notes),
        "wireshark_filter": f.flow_filter,
        "evidence_filter": f.evidence_filter,
    }


def group_dict(g: FindingGroup) -> dict[str, Any]:
    platform = g.platform
    prim = g.primary.get(platform)
    return {
        "capture": g.capture,
        "rule": g.rule,
        "side": g.side,
        "platform": platform,
        "severity": g.severity,
        "confidence": g.confidence,
        "title": g.title,
        "call": prim.call if prim else None,
        "errno": errno_ref(platform, prim.errno if prim else None),
        "server": g.server,
        "server_ports": len(g.server_ports),
        "clients": len(g.clients) if g.clients is not None else None,
        "count": g.count,
        "listed": g.listed,
        "first_time": iso_time(g.first_ts_ns),
        "last_time": iso_time(g.last_ts_ns),
        "kind": g.kind,
        "span_s": round(g.span_ns / 1e9, 6),
        "rate_per_s": round(g.rate_per_s, 1) if g.rate_per_s is not None else None,
    }


def capture_dict(c: CaptureInfo) -> dict[str, Any]:
    return {
        "path": c.path,
        "size": c.size,
        "sha256": c.sha256,
        "format": c.format,
        "compressed": c.compressed,
        "linktypes": c.linktypes,
        "frames": c.frames,
        "first_time": iso_time(c.first_ts_ns) if c.first_ts_ns is not None else None,
        "last_time": iso_time(c.last_ts_ns) if c.last_ts_ns is not None else None,
        "damage": (
            {
                "offset": c.damage.offset,
                "frame": c.damage.frame,
                "message": c.damage.message,
            }
            if c.damage
            else None
        ),
    }


def flow_dict(s: FlowSummary) -> dict[str, Any]:
    return {
        "proto": s.proto,
        "client": s.client,
        "server": s.server,
        "instance": s.instance,
        "roles": s.roles,
        "first_frame": s.first_frame,
        "first_time": iso_time(s.first_ts_ns),
        "duration_s": round((s.last_ts_ns - s.first_ts_ns) / 1e9, 6),
        "packets": s.packets,
        "client_bytes": s.client_bytes,
        "server_bytes": s.server_bytes,
        "client_state": s.client_state,
        "server_state": s.server_state,
        "history": s.history,
        "end_reason": s.end_reason,
        "failed": s.failed,
    }


def join_dict(j: Any) -> dict[str, Any] | None:
    """What --join found (join.JoinSummary), or None for captures analysed alone: each
    view's clock against the first view's (offset: add it to a time of the first view to
    get this view's; join/clock.py says how each is estimated)."""
    if j is None:
        return None
    return {
        "connections": j.connections,
        "translated": j.translated,
        "clocks": [
            {
                "capture": c.capture,
                "offset_ms": round(c.offset_ns / 1e6, 3),
                "spread_ms": round(c.spread_ns / 1e6, 3),
                "delay_ms": round(c.delay_ns / 1e6, 3),
                "samples": c.samples,
                "drift_ppm": c.drift_ppm,
                "how_sure": c.how_sure,
            }
            for c in j.clocks
        ],
    }


def warning_dict(w: ReportWarning) -> dict[str, Any]:
    return {"code": w.code, "frame": w.frame, "count": w.count, "message": w.message}


def report_dict(r: Report, *, lists: bool = True) -> dict[str, Any]:
    """The whole document. Without `lists`, the findings, groups and flows are left as empty
    lists, in their places (render.text.iter_json writes them one by one)."""
    return {
        "schema": REPORT_SCHEMA,
        "tool": {"name": "pcapdiag", "version": __version__},
        "platform": r.platform,
        "captures": [capture_dict(c) for c in r.captures],
        "join": join_dict(r.join),
        "summary": {
            "frames": r.frames,
            "tcp_connections": r.tcp_connections,
            "udp_flows": r.udp_flows,
            "undecodable_frames": r.undecodable,
            "other_frames": r.other_frames,
            "orphan_icmp_errors": r.orphan_icmp,
            "findings": r.finding_count,
            "findings_listed": len(r.findings),
            "by_rule": r.counts_by_rule(),
            "by_errno": r.counts_by_errno(),
            "by_confidence": r.counts_by_confidence(),
        },
        "warnings": [warning_dict(w) for w in r.warnings],
        "findings": [finding_dict(f) for f in r.findings] if lists else [],
        "groups": [group_dict(g) for g in r.groups] if lists else [],
        "flows": [flow_dict(s) for s in r.flows] if lists else [],
    }
