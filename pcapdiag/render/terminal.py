"""The text report for a terminal: colour and a summary table (rich), when stdout is a TTY.

Same content as render.to_text. Every string is added as plain rich `Text` (never parsed as
markup) after `clean()` has escaped control characters, so nothing from a capture can style
or drive the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from pcapdiag.findings.model import Report
from pcapdiag.render import overview
from pcapdiag.render.text import (
    clean,
    finding_block,
    flows_table,
    head_lines,
    kind_line,
    kinds_title,
    rest_line,
    services_lines,
    shapes_lines,
    unlisted_line,
    vantage_said,
)

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def print_report(
    report: Report,
    console: Console,
    *,
    show_flows: bool = False,
    top: int | None = overview.DEFAULT_TOP,
    all_findings: bool = False,
) -> None:
    head = head_lines(report)
    for line in head:
        style = "bold red" if "DAMAGED" in line else ""
        console.print(Text(line, style=style), soft_wrap=True)
    where = vantage_said(report)
    if not report.findings:
        console.print(
            Text(
                "No failure found: every connection either worked or ended cleanly.", style="green"
            )
        )
    else:
        _services(report, console, top)
        for line in shapes_lines(report, top):
            style = "bold" if line and line[0] != " " else "yellow"
            console.print(Text(line, style=style), soft_wrap=True)
        kp = overview.kinds_plan(report, top, all_findings)
        console.print()
        console.print(Text(kinds_title(kp), style="bold"), soft_wrap=True)
        for kind in kp.shown:
            console.print(Text("  " + kind_line(kind, kp.examples.get(kind.rule))), soft_wrap=True)
        if kp.rest:
            console.print(Text("  " + rest_line(kp)))
        for item in kp.details:
            console.print()
            if isinstance(item, int):
                console.print(Text("  " + unlisted_line(item)))
                continue
            i, f, advice = item
            lines = finding_block(i, f, one_vantage=bool(where), advice=advice)
            console.print(
                Text(lines[0], style=SEVERITY_STYLE.get(f.severity, "bold")), soft_wrap=True
            )
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


def _services(report: Report, console: Console, top: int | None) -> None:
    """The health table (text.services_lines), its title and header in bold; lines too
    wide for the terminal wrap rather than squeeze the columns."""
    for n, line in enumerate(services_lines(report, top)):
        console.print(Text(line, style="bold" if n in (1, 2) else ""), soft_wrap=True)
