"""Markdown report, to paste into a ticket: a summary table, then one section per finding with
its evidence frames as a small table. Every string that may come from a capture or a rule is
escaped where Markdown would read it as markup, and only there, so that the raw text stays
readable: `->` and `[::1]:443` are left as they are.

The rules are CommonMark's (spec 0.31.2; section numbers below) and, for tables, GitHub
Flavored Markdown's tables extension (GFM spec, section 4.10).
"""

from __future__ import annotations

import re

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.crossing import BOTH, LOST, RESEGMENTED, UNSEEN, UNSENT, TwoViews
from pcapdiag.findings.ladder import LadderRow
from pcapdiag.findings.model import OUTCOME_WORDS, Finding, Report
from pcapdiag.findings.plural import counted
from pcapdiag.render import overview
from pcapdiag.render.text import (
    confidence_line,
    origin_line,
    platforms_said,
    vantage_said,
)
from pcapdiag.render.twoviews import crossing_rows

# Backslash-escaped wherever they stand (section 2.4 allows it before any ASCII punctuation):
# "\" so that no backslash of the text escapes what follows it, "`" code spans (6.1), "*"
# emphasis (6.2: a "*" may open or close inside a word), "~" GFM strikethrough.
_ALWAYS = str.maketrans({c: "\\" + c for c in "\\`*~"})
# "_" opens or closes emphasis only at a word's edge (6.2, left- and right-flanking runs):
# between two letters or digits (SYN_SENT, tcp_retries2) it is plain text.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# "[" ... "]" is a link only as "[text](destination)" (6.3 inline links), "[text][label]" or
# "[text]" with a link reference definition (4.7): an escaped "]" before "(" or "[" closes no
# link text. A definition starts a block, "[label]:", so only a leading "[" is escaped too
# ("[::1]:443" inside a sentence is plain text); an image is "!" and a link (6.4).
_LINK_CLOSE = re.compile(r"\](?=[(\[])")
# "&" starts an entity or numeric character reference only when one follows (2.5).
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9A-Fa-f]{1,6};|[A-Za-z][A-Za-z0-9]{0,31};)")
# "<" starts raw HTML (6.6) or an autolink (6.5) only when a non-space character follows.
_TAG_OPEN = re.compile(r"<(?=\S)")
# At the start of a list item's text these begin a block of their own: an ATX heading (4.2),
# a block quote (5.1), a thematic break (4.1) or a nested list (5.2); the escape goes before
# the character that makes the block ("#", ">", "-", "+", or an ordered list's "." or ")").
_BLOCK_START = re.compile(r"^(?:[#>+-]|[0-9]{1,9}[.)](?=\s|$))")


def _printable(text: str) -> str:
    """Control characters and line breaks as spaces: a table row, a list item and a heading
    each stay on one line."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def md(text: str, *, start: bool = False) -> str:
    """Text for a paragraph, a list item or a heading, shown as it is: only what CommonMark
    would take for markup is escaped (see the patterns above). `start`: the text begins a
    list item's line, where a few more characters would begin a block. Spaces at either end
    are not kept (no Markdown renderer shows them)."""
    text = _printable(text).strip().translate(_ALWAYS)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _LINK_CLOSE.sub(r"\\]", text)
    text = _ENTITY.sub("&amp;", text)
    text = _TAG_OPEN.sub("&lt;", text)
    if not start:
        return text
    if text.startswith("["):
        return "\\" + text
    return _BLOCK_START.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], text, count=1)


def cell(text: str) -> str:
    """md() for a table cell: a "|" also ends the cell unless escaped (GFM 4.10)."""
    return md(text).replace("|", "\\|")


def code(text: str, *, in_cell: bool = False) -> str:
    """An inline code span, whose content CommonMark shows literally (6.1): nothing in it is
    escaped. Its fence is one backtick longer than the longest run of backticks inside, with a
    space on each side where the content begins or ends with a backtick, or with a space at
    both ends (a space each side is stripped again unless all are spaces). In a table cell,
    "|" is escaped even in a code span: GFM splits the row into cells before it reads code
    spans (4.10)."""
    text = _printable(text)
    if in_cell:
        text = text.replace("|", "\\|")
    if not text:
        return "` `"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    edge = "`" in (text[0], text[-1]) or (text[0] == text[-1] == " " and text.strip())
    pad = " " if edge else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_markdown(
    report: Report, *, top: int | None = overview.DEFAULT_TOP, all_findings: bool = False
) -> str:
    """The report in Markdown: the health of the failing services (the `top` with the most
    failed connections; None: all), the findings by kind, then a section for an example of
    each rule (every listed finding with `all_findings`); a finding with ladder rows in
    `report.ladders` lists its evidence packets with the endpoints' states."""
    out = ["# pcapdiag report", ""]
    for cap in report.captures:
        span = ""
        if cap.first_ts_ns is not None and cap.last_ts_ns is not None:
            span = f", {iso_time(cap.first_ts_ns)} to {iso_time(cap.last_ts_ns)}"
        frames = counted(cap.frames, "frame")
        out.append(f"- Capture {code(cap.path)}: {cap.format}, {frames}{span}")
        if cap.damage is not None:
            d = cap.damage
            out.append(f"  - **Damaged** at byte {d.offset} (frame {d.frame}): {md(d.message)}")
    out.append(
        f"- {counted(report.tcp_connections, 'TCP connection')}, "
        f"{counted(report.udp_flows, 'UDP flow')}, {counted(report.finding_count, 'finding')}; "
        f"{md(platforms_said(report))}"
    )
    where = vantage_said(report)
    if where:
        out.append(f"- {md(where[0].upper() + where[1:], start=True)}")
    out += _views(report)
    out.append("")
    if not report.findings:
        out.append("No failure found.")
        return "\n".join(out) + "\n"
    out += _services(report, top)
    out += _shapes(report, top)
    kp = overview.kinds_plan(report, top, all_findings)
    out += _kinds(kp)
    for item in kp.details:
        if isinstance(item, int):
            out += [
                "",
                f"… and {item:,} more alike, only counted (`--max-alike 0` lists every one)",
            ]
            continue
        i, f, advice = item
        out += ["", *_section(i, f, report.ladders.get(f.id), bool(where), advice)]
        both = report.crossings.get(f.id)
        if both is not None and both.crossings:
            out += _crossings(f, both)
    if report.warnings:
        out += ["", "## Warnings", ""]
        out += [f"- `{w.code}` {md(w.message)}" for w in report.warnings]
    return "\n".join(out) + "\n"


def _services(report: Report, top: int | None) -> list[str]:
    """The health table: the failing services, the most failed connections first."""
    rows = overview.service_rows(report, top)
    if not rows.shown:
        return []
    shown = "" if not rows.rest else f" (the {len(rows.shown):,} with the most failed connections)"
    out = [
        f"## Services with failures: {rows.failing:,} of {rows.total:,}{shown}",
        "",
        "| service | proto | connections | failed | first failure | last failure | what failed |",
        "|---|---|--:|--:|---|---|---|",
    ]
    for svc in rows.shown:
        name, proto, conns, failed, first, last, what = overview.service_row(svc)
        out.append(
            f"| {code(name, in_cell=True)} | {proto} | {conns} | {failed} | {first} | {last} "
            f"| {cell(what)} |"
        )
    if rows.rest:
        out += [
            "",
            f"… and {counted(rows.rest, 'more service', sep=',')} with failures: "
            f"{counted(rows.rest_failed, 'failed connection', sep=',')} (`--top N` lists more)",
        ]
    return [*out, ""]


def _shapes(report: Report, top: int | None) -> list[str]:
    """The floods, scans and outages, the most numerous first."""
    rows = overview.shape_rows(report, top)
    if not rows.shown:
        return []
    out = ["## Floods, scans and outages", ""]
    out += [f"- {md(g.describe(), start=True)}" for g in rows.shown]
    if rows.rest:
        out.append(f"- … and {rows.rest:,} more: {counted(rows.rest_findings, 'finding', sep=',')}")
    return [*out, ""]


def _kinds(kp: overview.KindsPlan) -> list[str]:
    """The findings by kind: how many, what failed, where, and which section shows it."""
    shown = "" if not kp.rest else f" (the {len(kp.shown):,} most numerous)"
    out = [
        f"## Findings by rule, errno and server port: {counted(kp.kinds, 'kind', sep=',')}{shown}",
        "",
        "| findings | who saw what | where | rule | example |",
        "|--:|---|---|---|---|",
    ]
    for kind in kp.shown:
        example = kp.examples.get(kind.rule)
        out.append(
            f"| {kind.count:,} | {cell(overview.kind_what(kind))} | "
            f"{cell(overview.kind_where(kind))} | {kind.rule} | "
            + (f"section {example} |" if example is not None else "none listed |")
        )
    if kp.rest:
        out += [
            "",
            f"… and {counted(len(kp.rest), 'more kind', sep=',')}: "
            f"{counted(sum(k.count for k in kp.rest), 'finding', sep=',')} (`--top N` lists more)",
        ]
    return out


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
        f"- Joined: {counted(report.join.connections, 'connection')} seen by more than one view"
        + translated,
        "",
        "| view | clock against the first | +/- | one way between the points | handshakes "
        "| how sure |",
        "|---|---|---|---|---|---|",
    ]
    for c in report.join.clocks:
        if c.how_sure in ("reference", "none"):
            what = "reference" if c.how_sure == "reference" else "unknown"
            view = code(c.capture, in_cell=True)
            out.append(f"| {view} | {what} | | | {c.samples} | {c.how_sure} |")
            continue
        out.append(
            f"| {code(c.capture, in_cell=True)} | {c.offset_ns / 1e6:+.3f} ms "
            f"| {c.spread_ns / 1e6:.3f} ms "
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
        lines.append(f"| {code(capture, in_cell=True)} | {shown} | {shown_filter} |")
    return lines


def _section(
    i: int,
    f: Finding,
    rows: list[LadderRow] | None,
    one_vantage: bool = False,
    advice: bool = True,
) -> list[str]:
    """A finding in full; `advice` False: its next steps were given with the finding alike
    just before."""
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
    if f.next_steps and advice:
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
                f"{cell(r.label)} | {'' if r.seq is None else r.seq} | "
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
        f"| time | packet | {code(tv.client_view, in_cell=True)} "
        f"| {code(tv.server_view, in_cell=True)} | |",
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

        def seen(at: tuple[int, int] | None, mine: tuple[int, int] | None = mine) -> str:
            if at is None:
                return "—"
            return f"**{at[0]}**" if at is mine and at[0] in own else str(at[0])

        arrow = "client → server" if row.sender == "client" else "server → client"
        lines.append(
            f"| {(row.first_ns - t0) / 1e9:.6f} | {arrow} {cell(row.label)} | {seen(at_client)} "
            f"| {seen(at_server)} | {_FATES[row.status]} |"
        )
    return lines
