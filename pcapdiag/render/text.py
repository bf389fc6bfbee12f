"""Renderers: a Report to text or JSON. They return strings; the CLI does the writing.

Nothing from the capture is printed raw: addresses are formatted from parsed bytes, and every
other string that could come from a file (paths, rule text) goes through `clean` so that
control characters cannot drive the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.model import (
    OUTCOME_WORDS,
    Finding,
    Report,
)
from pcapdiag.findings.plural import counted
from pcapdiag.findings.services import Service
from pcapdiag.render import jsontext, overview
from pcapdiag.render.flows import flows_text
from pcapdiag.render.overview import errno_text

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F] if c != 0x0A}
_CONTROL.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


def clean(text: str) -> str:
    """Escape C0/C1 control characters (ESC sequences, carriage returns) in text for a
    terminal; newlines are kept."""
    return text.translate(_CONTROL)


def to_json(report: Report) -> str:
    return "".join(iter_json(report))


# The long lists of a report, written item by item (see iter_json).
_STREAMED = ("findings", "groups", "flows")


def iter_json(report: Report) -> Iterator[str]:
    """The JSON report in pieces, exactly the text of json.dumps(report.to_dict(), indent=2)
    and a newline: the findings, groups and flows are turned into JSON one at a time, so
    that writing a report of many thousands of findings does not hold all of them as dicts
    and as one string at once."""
    head = report.to_dict(lists=False)
    items = list(head.items())
    yield "{"
    for n, (key, value) in enumerate(items):
        yield ("\n  " if n == 0 else ",\n  ") + json.dumps(key) + ": "
        if key not in _STREAMED:
            yield _nested(value, 1)
            continue
        source = _stream_source(report, key)
        first = True
        for obj in source:
            yield ("[\n    " if first else ",\n    ") + _nested(obj, 2)
            first = False
        yield "[]" if first else "\n  ]"
    yield "\n}\n"


def _nested(value: object, depth: int) -> str:
    """json.dumps(value, indent=2) as it appears `depth` levels deep in the document."""
    return jsontext.dumps(value, depth)


def _stream_source(report: Report, key: str) -> Iterator[dict[str, object]]:
    if key == "findings":
        return (f.to_dict() for f in report.findings)
    if key == "groups":
        return (g.to_dict() for g in report.groups)
    return (s.to_dict() for s in report.flows)


def headline(f: Finding) -> str:
    """One line: whose application saw what (and how sure that is, when not high)."""
    endpoint = f.flow.client if f.side == "client" else f.flow.server
    prim = f.primary()
    sure = "" if f.confidence.level == "high" else f" [{f.confidence.level} confidence]"
    if prim is None or prim.errno is None:
        return f"{f.side} {endpoint}: no errno ({clean(f.title)}){sure}"
    return f"{f.side} {endpoint}: {prim.call}() -> {errno_text(f.platform.name, prim.errno)}{sure}"


def live_line(f: Finding) -> str:
    """A finding in one line as soon as it is decided (standard input's text report):
    `22:13:20.001000Z F-db48d0064718 client 10.0.0.1:40001: connect() -> ECONNREFUSED
    ("Connection refused") (PD-TCP-001, frames 1, 2)`."""
    frames = ", ".join(str(n) for n in f.frames[:6]) + (", ..." if len(f.frames) > 6 else "")
    return f"{iso_time(f.first_ts_ns)} {f.id} {headline(f)} ({f.rule}" + (
        f", frame{'s' if len(f.frames) > 1 else ''} {frames})" if f.frames else ")"
    )


def platforms_said(report: Report) -> str:
    """Whose errnos the report names, in a few words."""
    if report.platform != "auto":
        return f"errnos for {report.platform}"
    names = sorted({f.platform.name for f in report.findings} | {g.platform for g in report.groups})
    if not names:
        return "errnos for each host's platform, as its packets show it"
    return f"errnos for each host's platform as its packets show it: {', '.join(names)}"


def head_lines(report: Report) -> list[str]:
    """The captures, the counts by errno, where the capture was taken, the clocks."""
    out: list[str] = []
    for cap in report.captures:
        span = ""
        if cap.first_ts_ns is not None and cap.last_ts_ns is not None:
            span = f", {iso_time(cap.first_ts_ns)} to {iso_time(cap.last_ts_ns)}"
        out.append(f"{clean(cap.path)}: {cap.format}, {counted(cap.frames, 'frame')}{span}")
        if cap.damage is not None:
            d = cap.damage
            out.append(
                f"  DAMAGED at byte {d.offset} (frame {d.frame} would start there): "
                f"{clean(d.message)}; the {counted(cap.frames, 'frame')} before it "
                f"{'was' if cap.frames == 1 else 'were'} analysed"
            )
    failures = report.failed_calls()
    others = report.finding_count - failures
    out.append(
        f"{counted(report.tcp_connections, 'TCP connection')}, "
        f"{counted(report.udp_flows, 'UDP flow')}; "
        f"{counted(failures, 'failed call')}, {counted(others, 'other finding')} "
        f"({platforms_said(report)})"
    )
    if failures:
        counts = report.counts_by_errno()
        out.append(
            "  by errno: " + ", ".join(f"{k} x{v}" for k, v in counts.items() if k != "none")
        )
    unconfirmed = report.unconfirmed_calls()
    if unconfirmed:
        out.append(
            f"  {counted(unconfirmed, 'possible failed call')} at low confidence, not counted "
            "(see each finding's confidence)"
        )
    where = vantage_said(report)
    if where:
        out.append(f"  {where}")
    out += joined_clocks(report)
    if report.undecodable:
        out.append(f"  {counted(report.undecodable, 'frame')} could not be decoded (see warnings)")
    return out


def services_lines(report: Report, top: int | None) -> list[str]:
    """The health table: each failing service's connections, failed ones, when and what."""
    rows = overview.service_rows(report, top)
    if not rows.shown:
        return []
    which = (
        ""
        if not rows.rest
        else f" (the {len(rows.shown):,} with the most failed connections; --top N for more)"
    )
    services = counted(rows.total, "service", sep=",")
    out = ["", f"Services with failures: {rows.failing:,} of {services}{which}"]
    table = [tuple(c for c, _j in SERVICE_COLUMNS), *service_cells(report, rows.shown)]
    right = tuple(n for n, (_c, justify) in enumerate(SERVICE_COLUMNS) if justify == "right")
    out += ["  " + line for line in _columns(table, right=right)]
    if rows.rest:
        out.append(
            f"  ... and {counted(rows.rest, 'more service', sep=',')} with failures: "
            f"{counted(rows.rest_failed, 'failed connection', sep=',')}"
        )
    return out


# The health table's columns, and how each is aligned.
SERVICE_COLUMNS = (
    ("service", "left"),
    ("proto", "left"),
    ("connections", "right"),
    ("failed", "right"),
    ("first failure", "left"),
    ("last failure", "left"),
    ("what failed", "left"),
)


def service_cells(report: Report, services: list[Service]) -> list[tuple[str, ...]]:
    """Each service's row of the health table, as text."""
    day = _day(report)
    return [
        (
            clean(overview.service_name(svc)),
            svc.proto,
            f"{svc.connections:,}" if svc.proto != "neighbour" else "-",
            f"{svc.failed:,}",
            _when(svc.first_failure_ns, day),
            _when(svc.last_failure_ns, day),
            overview.what_failed(svc),
        )
        for svc in services
    ]


def _day(report: Report) -> str | None:
    """The UTC date every capture of the report lies in (its times are then shown as times
    of day: the header gives the date), or None."""
    days = {
        iso_time(t)[:10]
        for cap in report.captures
        for t in (cap.first_ts_ns, cap.last_ts_ns)
        if t is not None
    }
    return days.pop() if len(days) == 1 else None


def _when(ts_ns: int | None, day: str | None) -> str:
    if ts_ns is None:
        return "-"
    text = iso_time(ts_ns)
    return text[11:] if day is not None and text.startswith(day) else text


def shapes_lines(report: Report, top: int | None = overview.DEFAULT_TOP) -> list[str]:
    """One line per flood, scan or outage (findings alike that take a shape), the most
    numerous first."""
    rows = overview.shape_rows(report, top)
    if not rows.shown:
        return []
    out = ["", "Floods, scans and outages:"] + [f"  {clean(g.describe())}" for g in rows.shown]
    if rows.rest:
        out.append(
            f"  ... and {rows.rest:,} more: {counted(rows.rest_findings, 'finding', sep=',')} "
            "(--top N for more)"
        )
    return out


def kinds_lines(
    report: Report, top: int | None, all_findings: bool, *, one_vantage: bool
) -> list[str]:
    """The findings by kind, then the findings shown in full (overview.kinds_plan)."""
    kp = overview.kinds_plan(report, top, all_findings)
    out = ["", kinds_title(kp)]
    out += ["  " + kind_line(kind, kp.examples.get(kind.rule)) for kind in kp.shown]
    if kp.rest:
        out.append("  " + rest_line(kp))
    for item in kp.details:
        out.append("")
        if isinstance(item, int):
            out.append("  " + unlisted_line(item))
        else:
            i, f, advice = item
            out += finding_block(i, f, one_vantage=one_vantage, advice=advice)
    return out


def kinds_title(kp: overview.KindsPlan) -> str:
    which = "" if not kp.rest else f", the {len(kp.shown):,} most numerous shown"
    how = (
        "every listed finding in full below"
        if kp.all_findings
        else "an example of each rule below; --all-findings for every finding"
    )
    kinds = counted(kp.kinds, "kind", sep=",")
    return f"Findings by rule, errno and server port ({kinds}{which}): {how}"


def rest_line(kp: overview.KindsPlan) -> str:
    return (
        f"... and {counted(len(kp.rest), 'more kind', sep=',')}: "
        f"{counted(sum(k.count for k in kp.rest), 'finding', sep=',')} (--top N for more)"
    )


def unlisted_line(n: int) -> str:
    return f"... and {n:,} more alike, only counted (--max-alike 0 lists every one)"


def kind_line(kind: overview.Kind, example: int | None) -> str:
    """`[3] 319 x client connect() -> ECONNREFUSED ("Connection refused") to port 443 of 209
    servers (PD-TCP-001, example [1])`."""
    number = f"[{kind.example[0]}]" if kind.listed else "[-]"
    if example is None:
        see = ", none listed"
    elif not kind.listed or example != kind.example[0]:
        see = f", example [{example}]"
    else:
        see = ""
    what, where = clean(overview.kind_what(kind)), clean(overview.kind_where(kind))
    return f"{number} {kind.count:,} x {what} {where} ({kind.rule}{see})"


def _columns(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> list[str]:
    """Rows as aligned columns (numbers at `right` aligned right), the last left ragged."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else (c if i == len(r) - 1 else c.ljust(w))
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def to_text(
    report: Report,
    *,
    show_flows: bool = False,
    top: int | None = overview.DEFAULT_TOP,
    all_findings: bool = False,
) -> str:
    """The text report: the captures and counts, the health of each failing service (the
    `top` with the most failed connections; None: all), the floods, scans and outages, then
    the findings by kind with an example of each rule (every finding in full with
    `all_findings`)."""
    out = head_lines(report)
    where = vantage_said(report)
    if not report.findings:
        out.append("No failure found: every connection either worked or ended cleanly.")
    else:
        out += services_lines(report, top)
        out += shapes_lines(report, top)
        out += kinds_lines(report, top, all_findings, one_vantage=bool(where))
    if report.warnings:
        out.append("")
        out.append("Warnings:")
        out += [f"  - [{w.code}] {clean(w.message)}" for w in report.warnings]
    if show_flows and report.flows:
        out.append("")
        out += flows_table(report)
    return "\n".join(out) + "\n"


def vantage_said(report: Report) -> str:
    """One line on where the capture was taken, when the flows of every finding that shows
    it agree (one capture, one place)."""
    places = {(f.vantage.where, f.capture) for f in report.findings if f.vantage.where != "unknown"}
    if len(places) != 1 or len({f.capture for f in report.findings}) != 1:
        return ""
    if report.join is not None:  # several places: each finding says its own
        return ""
    where, _ = places.pop()
    basis = "loopback" if where == "same-host" else "from the TTLs of both sides' packets"
    return f"captured {_PLACES[where]} ({basis})"


_PLACES = {
    "client-host": "on the client's host",
    "server-host": "on the server's host",
    "path": "on the path between client and server",
    "same-host": "on the host of both ends",
}


def origin_line(f: Finding) -> str:
    """Who caused it, in one line: "network (medium confidence): the RST arrives ..."."""
    return f"{f.origin.actor} ({f.origin.confidence} confidence): {f.origin.why}"


def confidence_line(f: Finding) -> str:
    if not f.confidence.reasons:
        return f"confidence: {f.confidence.level}"
    return f"confidence: {f.confidence.level}: " + "; ".join(f.confidence.reasons)


def joined_clocks(report: Report) -> list[str]:
    """Under --join: each view's clock against the first's, and how sure that is."""
    if report.join is None:
        return []
    clocks = report.join.clocks
    line = f"  joined: {counted(report.join.connections, 'connection')} seen by more than one view"
    if report.join.translated:
        line += f" ({report.join.translated} named differently: address translation between)"
    out = [line]
    for c in clocks[1:]:
        if c.how_sure == "none":
            out.append(f"  {clean(c.capture)}: clock unknown (no handshake seen in both views)")
            continue
        drift = f", drift {c.drift_ppm} ppm" if c.drift_ppm is not None else ""
        out.append(
            f"  {clean(c.capture)}: clock {c.offset_ns / 1e6:+.3f} ms from "
            f"{clean(clocks[0].capture)}'s (+/- {c.spread_ns / 1e6:.3f} ms, "
            f"{counted(c.samples, 'handshake')}, {c.how_sure}{drift}); one way between the two "
            f"points {c.delay_ns / 1e6:.3f} ms"
        )
    return out


def finding_block(
    i: int, f: Finding, *, one_vantage: bool = False, advice: bool = True
) -> list[str]:
    """A finding in full. `one_vantage`: the report already said where the capture was
    taken, once for all findings; `advice` False: its next steps were given with a finding
    alike just before."""
    p = f.platform.name
    where = f" in {clean(f.capture)}" if f.capture else ""
    lines = [
        f"[{i}] {f.severity.upper()}  {clean(f.title)}  ({f.rule} {clean(f.rule_name)}, "
        f"finding {f.id})",
        f"    {clean(confidence_line(f))}",
        f"    connection: {f.flow.proto.upper()} client {f.flow.client} -> server "
        f"{f.flow.server}" + (f" (instance {f.flow.instance})" if f.flow.instance > 1 else ""),
    ]
    lines.append(f"    origin: {clean(origin_line(f))}")
    if f.platform.inferred:
        lines.append(f"    platform: {p}, {clean(f.platform.why)}")
    if not one_vantage and f.vantage.where != "unknown":
        lines.append(f"    captured: {_PLACES[f.vantage.where]} ({clean(f.vantage.why)})")
    effects = f.own_effects
    label = f"    {f.side} application:"
    if not effects:
        lines.append(f"{label} no error from this (nothing on {p} to report)")
    for eff in effects:
        what = f"{eff.call}() {OUTCOME_WORDS[eff.outcome]}"
        if eff.outcome == "error":
            what += f" {errno_text(p, eff.errno)}"
        if eff.then:
            what += f"; then {clean(eff.then)}"
        if eff.note:
            what += f" [{clean(eff.note)}]"
        lines.append(f"{label} {what}")
        label = " " * len(label)
    lines.append(f"    cause: {clean(f.cause)}")
    frames = ", ".join(str(n) for n in f.frames)
    lines.append(
        f"    evidence: frame{'s' if len(f.frames) > 1 else ''} {frames}{where} "
        f"({iso_time(f.first_ts_ns)})"
    )
    others: dict[str, list[int]] = {}
    for capture, n in f.evidence:
        if capture != f.capture:
            others.setdefault(capture, []).append(n)
    for capture, ns in others.items():
        lines.append(
            f"    seen in {clean(capture)}: frame{'s' if len(ns) > 1 else ''} "
            + ", ".join(str(n) for n in ns)
            + f" (wireshark: frame.number in {{{' '.join(str(n) for n in ns)}}})"
        )
    if f.next_steps and advice:
        lines.append(f"    next: {clean(f.next_steps)}")
    for note in f.notes:
        lines.append(f"    note: {clean(note)}")
    lines.append(f"    wireshark: {f.flow_filter}")
    lines.append(f"               {f.evidence_filter}")
    return lines


def flows_table(report: Report) -> list[str]:
    """Every flow with Zeek's conn_state and history, duration, packets and bytes each way,
    and its final TCP states (render/flows.py)."""
    return flows_text(report)
