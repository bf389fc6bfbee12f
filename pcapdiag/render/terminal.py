"""The text report for a terminal: colour and a summary table (rich), when stdout is a TTY.

Same content as render.to_text. Every string is added as plain rich `Text` (never parsed as
markup) after `clean()` has escaped control characters, so nothing from a capture can style
or drive the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.model import Report
from pcapdiag.render.text import (
    clean,
    finding_block,
    flows_table,
    headline,
    plan,
    platforms_said,
    vantage_said,
)

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def print_report(report: Report, console: Console, *, show_flows: bool = False) -> None:
    for cap in report.captures:
        head = Text(clean(cap.path), style="bold")
        head.append(f": {cap.format}, {cap.frames} frames")
        if cap.first_ts_ns is not None and cap.last_ts_ns is not None:
            head.append(f", {iso_time(cap.first_ts_ns)} to {iso_time(cap.last_ts_ns)}")
        console.print(head)
        if cap.damage is not None:
            d = cap.damage
            console.print(
                Text(
                    f"  DAMAGED at byte {d.offset} (frame {d.frame}): {clean(d.message)}",
                    style="bold red",
                )
            )
    failed = report.failed_calls()
    console.print(
        Text(
            f"{report.tcp_connections} TCP connections, {report.udp_flows} UDP flows; "
            f"{failed} failed calls, {report.finding_count - failed} other findings "
            f"({platforms_said(report)})"
        )
    )
    unconfirmed = report.unconfirmed_calls()
    if unconfirmed:
        console.print(Text(f"  {unconfirmed} possible failed calls at low confidence, not counted"))
    where = vantage_said(report)
    if where:
        console.print(Text(f"  {where}"))
    if not report.findings:
        console.print(
            Text(
                "No failure found: every connection either worked or ended cleanly.", style="green"
            )
        )
    else:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("#", "severity", "confidence", "who saw what", "rule", "frames"):
            table.add_column(col)
        rows, details = plan(report)
        for i, f, group in rows:
            frames = ", ".join(map(str, f.frames[:6])) + (" ..." if len(f.frames) > 6 else "")
            what = headline(f) if group is None else group.describe()
            table.add_row(
                str(i) + ("..." if group is not None else ""),
                Text(f.severity, style=SEVERITY_STYLE.get(f.severity, "")),
                Text(f.confidence.level),
                Text(clean(what)),
                Text(f"{f.rule} {clean(f.rule_name)}"),
                Text(frames),
            )
        console.print(table)
        for item in details:
            console.print()
            if isinstance(item, int):
                console.print(
                    Text(f"  ... and {item:,} more findings alike (counted in --format json)")
                )
                continue
            i, f = item
            lines = finding_block(i, f, one_vantage=bool(where))
            console.print(Text(lines[0], style=SEVERITY_STYLE.get(f.severity, "bold")))
            for line in lines[1:]:
                style = "bold" if "application:" in line or line.startswith(" " * 20) else ""
                console.print(Text(line, style=style), soft_wrap=True)
    if report.warnings:
        console.print()
        console.print(Text("Warnings:", style="yellow bold"))
        for w in report.warnings:
            console.print(Text(f"  - [{w.code}] {clean(w.message)}", style="yellow"))
    if show_flows and report.flows:
        console.print()
        for line in flows_table(report):
            console.print(Text(line), soft_wrap=True)
