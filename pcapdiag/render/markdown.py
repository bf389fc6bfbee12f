"""Markdown report, to paste into a ticket: a summary table, then one section per finding with
its evidence frames as a small table. Every string that may come from a capture or a rule is
escaped so that it cannot break the table or inject markup."""

from __future__ import annotations

import html

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.crossing import BOTH, LOST, RESEGMENTED, UNSEEN, UNSENT, TwoViews
from pcapdiag.findings.ladder import LadderRow
from pcapdiag.findings.model import OUTCOME_WORDS, Finding, Report
from pcapdiag.render.text import (
    confidence_line,
    headline,
    origin_line,
    platforms_said,
    vantage_said,
)
from pcapdiag.render.twoviews import crossing_rows

# Characters with a meaning inside a Markdown paragraph or table cell (GitHub flavour).
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|~"})


def md(text: str) -> str:
    """Escape text for Markdown: HTML special characters, Markdown punctuation, control
    characters and line breaks (a table cell must stay on one line)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return html.escape(text, quote=False).translate(_MD_SPECIAL)


def code(text: str) -> str:
    """An inline code span: shown literally, so only backticks, table pipes and control
    characters need care."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if "<" in text or ">" in text:
        # Some ticket systems render HTML even inside code spans: use escaped plain text.
        return md(text)
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def to_markdown(report: Report) -> str:
    """The report in Markdown; a finding with ladder rows in `report.ladders` lists its
    evidence packets with the endpoints' states."""
    out = ["# pcapdiag report", ""]
    for cap in report.captures:
        span = ""
        if cap.first_ts_ns is not None and cap.last_ts_ns is not None:
            span = f", {iso_time(cap.first_ts_ns)} to {iso_time(cap.last_ts_ns)}"
        out.append(f"- Capture {code(cap.path)}: {cap.format}, {cap.frames} frames{span}")
        if cap.damage is not None:
            d = cap.damage
            out.append(f"  - **Damaged** at byte {d.offset} (frame {d.frame}): {md(d.message)}")
    out.append(
        f"- {report.tcp_connections} TCP connections, {report.udp_flows} UDP flows, "
        f"{report.finding_count} findings; {md(platforms_said(report))}"
    )
    where = vantage_said(report)
    if where:
        out.append(f"- {md(where[0].upper() + where[1:])}")
    out += _views(report)
    for g in report.groups:
        if g.unlisted:
            out.append(f"- {md(g.describe())}: the first {g.listed} listed, {g.unlisted:,} more")
    out.append("")
    if not report.findings:
        out.append("No failure found.")
        return "\n".join(out) + "\n"
    out += [
        "| # | severity | confidence | who saw what | rule | frames |",
        "|---|---|---|---|---|---|",
    ]
    for i, f in enumerate(report.findings, 1):
        frames = ", ".join(str(n) for n in f.frames[:8]) + (" …" if len(f.frames) > 8 else "")
        out.append(
            f"| {i} | {f.severity} | {f.confidence.level} | {md(headline(f))} | {f.rule} "
            f"{md(f.rule_name)} | {frames} |"
        )
    for i, f in enumerate(report.findings, 1):
        out += ["", *_section(i, f, report.ladders.get(f.id), bool(where))]
        both = report.crossings.get(f.id)
        if both is not None and both.crossings:
            out += _crossings(f, both)
    if report.warnings:
        out += ["", "## Warnings", ""]
        out += [f"- `{w.code}` {md(w.message)}" for w in report.warnings]
    return "\n".join(out) + "\n"


def _views(report: Report) -> list[str]:
    """Under --join: the views, each with its clock against the first's."""
    if report.join is None:
        return []
    translated = (
        f" ({report.join.translated} named differently: address translation between)"
        if report.join.translated
        else ""
    )
    out = [
        f"- Joined: {report.join.connections} connections seen by more than one view" + translated,
        "",
        "| view | clock against the first | +/- | one way between the points | handshakes "
        "| how sure |",
        "|---|---|---|---|---|---|",
    ]
    for c in report.join.clocks:
        if c.how_sure in ("reference", "none"):
            what = "reference" if c.how_sure == "reference" else "unknown"
            out.append(f"| {code(c.capture)} | {what} | | | {c.samples} | {c.how_sure} |")
            continue
        out.append(
            f"| {code(c.capture)} | {c.offset_ns / 1e6:+.3f} ms | {c.spread_ns / 1e6:.3f} ms "
            f"| {c.delay_ns / 1e6:.3f} ms | {c.samples} | {c.how_sure} |"
        )
    out.append("")
    return out


def _seen_by_view(f: Finding) -> list[str]:
    """Under --join: the finding's evidence in each view, a row a file."""
    by: dict[str, list[int]] = {}
    for capture, n in f.evidence:
        by.setdefault(capture, []).append(n)
    if len(by) < 2:
        return []
    lines = ["", "| view | frames of this evidence | Wireshark filter |", "|---|---|---|"]
    for capture, frames in by.items():
        shown = ", ".join(str(n) for n in frames[:12]) + (" …" if len(frames) > 12 else "")
        shown_filter = code("frame.number in {" + " ".join(str(n) for n in frames) + "}")
        lines.append(f"| {code(capture)} | {shown} | {shown_filter} |")
    return lines


def _section(
    i: int, f: Finding, rows: list[LadderRow] | None, one_vantage: bool = False
) -> list[str]:
    lines = [
        f"## {i}. {md(f.title)}",
        "",
        f"- **Rule:** {f.rule} {code(f.rule_name)} (rev {f.rev}), severity {f.severity}, "
        f"finding {code(f.id)}",
        f"- **Confidence:** {md(confidence_line(f).partition(': ')[2])}",
        f"- **Origin:** {md(origin_line(f))}",
        f"- **Connection:** {f.flow.proto.upper()} client {code(f.flow.client)} → server "
        f"{code(f.flow.server)}",
    ]
    if f.platform.inferred:
        lines.append(f"- **Platform:** {f.platform.name}, {md(f.platform.why)}")
    if not one_vantage and f.vantage.where != "unknown":
        lines.append(f"- **Captured:** {f.vantage.where} ({md(f.vantage.why)})")
    for eff in f.own_effects:
        what = OUTCOME_WORDS[eff.outcome]
        if eff.outcome == "error":
            what += f" **{eff.errno}**"
        extra = f"; then {md(eff.then)}" if eff.then else ""
        note = f" ({md(eff.note)})" if eff.note else ""
        lines.append(f"- **{f.side} `{eff.call}()`** {what}{extra}{note}")
    lines.append(f"- **Cause:** {md(f.cause)}")
    if f.next_steps:
        lines.append(f"- **Next:** {md(f.next_steps)}")
    lines += [f"- **Note:** {md(n)}" for n in f.notes]
    lines.append(f"- **Wireshark:** {code(f.flow_filter)} — evidence: {code(f.evidence_filter)}")
    lines += _seen_by_view(f)
    if rows:
        evidence = set(f.frames)
        lines += [
            "",
            "| frame | time | direction | packet | seq | ack | len | client | server |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        t0 = rows[0].ts_ns
        arrow = {
            "c2s": "client → server",
            "s2c": "server → client",
            "net2c": "network → client",
            "net2s": "network → server",
        }
        for r in rows:
            if r.frame not in evidence:
                continue
            lines.append(
                f"| {r.frame} | {(r.ts_ns - t0) / 1e9:.6f} | {arrow.get(r.direction, '?')} | "
                f"{md(r.label)} | {'' if r.seq is None else r.seq} | "
                f"{'' if r.ack is None else r.ack} | {r.length} | {r.client_state} | "
                f"{r.server_state} |"
            )
    return lines


_FATES = {
    BOTH: "",
    LOST: "**lost between the captures**",
    UNSENT: "**never sent by its host**",
    RESEGMENTED: "bytes arrived in other segments",
    UNSEEN: "the other capture was not running",
}


def _crossings(f: Finding, tv: TwoViews) -> list[str]:
    """Under --join: each packet of the connection as it left one host's view and arrived,
    or not, in the other's (render/twoviews.py folds it as the HTML figure does)."""
    cv, sv = code(tv.client_view), code(tv.server_view)
    lines = [
        "",
        f"What each view saw (frame numbers in {cv}, on the client's host, and in {sv}, on "
        f"the server's; time on {code(tv.reference)}'s clock):",
        "",
        f"| time | packet | {cv} | {sv} | |",
        "|---|---|---|---|---|",
    ]
    t0 = tv.crossings[0].first_ns
    own = set(f.frames)
    for row in crossing_rows(f, tv):
        if isinstance(row, int):
            lines.append(f"| | … {row} packet{'s' if row != 1 else ''} not shown | | | |")
            continue
        at_client, at_server = tv.at(row, tv.client_view), tv.at(row, tv.server_view)
        mine = tv.at(row, f.capture)

        def cell(at: tuple[int, int] | None, mine: tuple[int, int] | None = mine) -> str:
            if at is None:
                return "—"
            return f"**{at[0]}**" if at is mine and at[0] in own else str(at[0])

        arrow = "client → server" if row.sender == "client" else "server → client"
        lines.append(
            f"| {(row.first_ns - t0) / 1e9:.6f} | {arrow} {md(row.label)} | {cell(at_client)} "
            f"| {cell(at_server)} | {_FATES[row.status]} |"
        )
    return lines
