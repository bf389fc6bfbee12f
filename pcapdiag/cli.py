"""Command line: parse arguments, call the library, render, map errors to exit codes.

Exit codes (also in `pcapdiag --help` and the README):
  0  analysed; no --fail-on condition met
  1  analysed; a finding met a --fail-on condition (or a rule test failed)
  2  usage error (bad option or argument)
  3  unreadable input: not a capture, missing file, empty file
  4  damaged input: the capture is truncated or corrupt part-way; the frames before the
     damage were analysed and reported
  5  invalid rules (schema or semantic errors, listed with file:line)
 70  internal error (a bug: please report it)
130  interrupted (Ctrl-C)

Each outcome other than 0 and 70 is raised as an `Outcome` (a click exception that carries
its exit code), so that a command ends where it finds out; `main()` turns into exit codes
what click does not: an interruption, a reader gone away, a bug.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from pcapdiag import __version__
from pcapdiag.api import (
    Analysis,
    Cluster,
    annotate_capture,
    default_jobs,
    export_findings,
    run_analysis,
)
from pcapdiag.cluster import ClusterError, parse_cluster
from pcapdiag.errnos import ALL_NAMES, PLATFORMS
from pcapdiag.errors import CaptureError, RuleError
from pcapdiag.findings.collect import DEFAULT_MAX_ALIKE
from pcapdiag.findings.confidence import at_least
from pcapdiag.findings.expect import ExpectationError, check, load_expectation
from pcapdiag.findings.model import GROUP_KINDS, SEVERITY_ORDER, Finding, Report
from pcapdiag.findings.plural import counted
from pcapdiag.io.sources import expand_sources
from pcapdiag.render.flows import iter_flows_csv, iter_flows_json
from pcapdiag.render.overview import DEFAULT_TOP
from pcapdiag.render.progress import Callback, cluster_progress_display, progress_display
from pcapdiag.render.text import clean, flows_table, iter_json, live_line, to_text
from pcapdiag.rules.loader import load_rules
from pcapdiag.rules.model import FLOW_FIELDS, Rule
from pcapdiag.ruletest import run_rule_tests
from pcapdiag.selection import Selection, SelectionError, parse_host, parse_time
from pcapdiag.settings import NO_ACCEL, Settings
from pcapdiag.track.events import EVENT_TYPES, predicate_fields

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_UNREADABLE, EXIT_DAMAGED, EXIT_RULES = 0, 1, 2, 3, 4, 5
EXIT_PARTIAL, EXIT_CLUSTER = 6, 7
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130

EPILOG = """\b
Exit codes: 0 analysed, 1 a --fail-on condition met, 2 usage error,
3 unreadable input, 4 damaged input (analysed up to the damage),
5 invalid rules, 6 partial (--cluster: a capture's task failed, the
others are reported), 7 the cluster cannot be used, 70 internal error.

\b
Examples:
  pcapdiag analyze capture.pcap
  tcpdump -w - -i eth0 port 443 | pcapdiag analyze -
  pcapdiag analyze --format json --platform macos capture.pcapng.gz
  pcapdiag analyze --fail-on high --fail-on ECONNRESET ci-sample.pcap
  pcapdiag analyze --cluster tcp://scheduler:8786 --since 2026-12-06T02:00Z \\
      --until 2026-12-06T02:30Z 's3://captures/2026-12-06/*.pcap'
"""

CHECK_EPILOG = """\b
Exit codes: 0 the findings are as expected, 1 a difference (each
printed; a missing finding with the nearest actual one), 2 usage error
(bad option, invalid expectation file), 3 unreadable input, 4 damaged
input (checked up to the damage), 5 invalid rules, 70 internal error.

\b
An expectation file (YAML; an entry compares any of rule, errno, call,
side, client, server, proto, severity, confidence, frames):
  capture: nightly.pcap   # relative to this file; used without CAPTURES
  exclusive: true         # and no other finding
  findings:
    - {rule: PD-TCP-001, errno: ECONNREFUSED, client: "10.0.0.1:40001"}
    - {rule: PD-TCP-003, side: client, count: 3, min_confidence: medium}

\b
Examples:
  pcapdiag check --expect expected.yaml
  pcapdiag check today.pcap --expect expected.yaml
  pcapdiag check --rules my-rules/ --expect expected.yaml a.pcap b.pcap
"""


class Outcome(click.ClickException):
    """The end of a run with its exit code, shown as `pcapdiag: <message>` on standard error;
    without a message, nothing is shown (the report or the lines before said it)."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    def show(self, file: IO[Any] | None = None) -> None:
        if self.message:
            click.echo(f"pcapdiag: {clean(self.message)}", err=True)


class ReaderGone(Outcome):
    """Standard output's reader went away (`| head`): not an error of ours."""

    exit_code = EXIT_OK


class FailOnMet(Outcome):
    """A finding met a --fail-on condition; or a check or a rule test found differences."""

    exit_code = EXIT_FAIL_ON


class BadUsage(Outcome):
    """A usage error found past click's parsing: an expectation file, an unknown rule."""

    exit_code = EXIT_USAGE


class Unreadable(Outcome):
    """A capture that cannot be read at all."""

    exit_code = EXIT_UNREADABLE


class Damaged(Outcome):
    """A capture damaged part-way (analysed up to the damage)."""

    exit_code = EXIT_DAMAGED


class InvalidRules(Outcome):
    """Rule files with schema or semantic errors."""

    exit_code = EXIT_RULES


class Partial(Outcome):
    """A run on a cluster where some captures' tasks failed: the others are reported."""

    exit_code = EXIT_PARTIAL


class ClusterUnusable(Outcome):
    """--cluster names a cluster that cannot be used (no scheduler, no workers, no Dask)."""

    exit_code = EXIT_CLUSTER


def _load(rule_dirs: tuple[Path, ...], builtin: bool) -> list[Rule]:
    try:
        return load_rules(rule_dirs, builtin=builtin)
    except RuleError as exc:
        problems = "\n".join(f"  {p}" for p in exc.problems)
        raise InvalidRules("invalid rules:\n" + problems) from exc


rules_option = click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Extra rule file or directory (repeatable); added to the built-in rules.",
)
no_builtin_option = click.option(
    "--no-builtin-rules", is_flag=True, help="Use only the rules given with --rules."
)
platform_option = click.option(
    "--platform",
    type=click.Choice(("auto", *PLATFORMS)),
    default="auto",
    show_default=True,
    help="Whose errno names and numbers to report: auto infers each host's platform from "
    "its packets (Linux where they do not decide).",
)


def selection_options(command: Callable[..., None]) -> Callable[..., None]:
    """--host, --port, --since, --until, --rule and --errno, given to `command` as one
    `selection` (pcapdiag.selection)."""

    @functools.wraps(command)
    def with_selection(
        *args: Any,
        hosts: tuple[str, ...],
        ports: tuple[int, ...],
        since: str | None,
        until: str | None,
        select_rules: tuple[str, ...],
        errnos: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        try:
            selection = Selection(
                hosts=frozenset(parse_host(h) for h in hosts),
                ports=frozenset(ports),
                since=parse_time(since) if since is not None else None,
                until=parse_time(until) if until is not None else None,
                rules=frozenset(select_rules),
                errnos=frozenset(e.upper() for e in errnos),
            )
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from exc
        unknown = sorted(e for e in selection.errnos if e not in ALL_NAMES)
        if unknown:
            raise click.BadParameter(
                f"{', '.join(unknown)}: not an errno name pcapdiag knows", param_hint="--errno"
            )
        command(*args, selection=selection, **kwargs)

    options = [
        click.option(
            "--host",
            "hosts",
            multiple=True,
            metavar="ADDR",
            help="Only packets to or from this address (repeatable; ICMP errors by the "
            "packet they quote). Frame numbers stay those of the file.",
        ),
        click.option(
            "--port",
            "ports",
            multiple=True,
            type=click.IntRange(0, 65535),
            help="Only TCP and UDP packets to or from this port (repeatable).",
        ),
        click.option(
            "--since",
            metavar="TIME",
            help="Only frames from this capture time on: ISO 8601 (2026-12-07T02:00:00Z; UTC "
            "without a zone) or after the capture's first frame (30s, 1.5m, 250ms).",
        ),
        click.option("--until", metavar="TIME", help="Only frames up to this time (as --since)."),
        click.option(
            "--rule",
            "select_rules",
            multiple=True,
            metavar="ID",
            help="Only findings of this rule, by id or name (repeatable).",
        ),
        click.option(
            "--errno",
            "errnos",
            multiple=True,
            metavar="NAME",
            help="Only findings naming this errno, e.g. ECONNRESET (repeatable).",
        ),
    ]
    for option in reversed(options):
        with_selection = option(with_selection)
    return with_selection


def _check_selected_rules(selection: Selection, rules: list[Rule]) -> None:
    known = {r.id for r in rules} | {r.name for r in rules}
    unknown = sorted(selection.rules - known)
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: no such rule id or name (see: pcapdiag rules list)",
            param_hint="--rule",
        )


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version: the version, then which engine runs (firstpass.version_line)."""
    if not value or ctx.resilient_parsing:
        return
    from pcapdiag import firstpass

    click.echo(f"pcapdiag {__version__}\n{firstpass.version_line()}")
    ctx.exit()


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and whether the compiled first pass runs, and exit.",
)
def cli() -> None:
    """Which call of which application failed with which errno, from a packet capture."""


@cli.command("analyze", epilog=EPILOG)
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl", "markdown", "junit", "html"]),
    default="text",
    show_default=True,
    help="Report format. jsonl: each finding as one line of JSON as soon as its flow is "
    "decided (the report's finding objects), nothing else.",
)
@platform_option
@rules_option
@no_builtin_option
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="SEVERITY|ERRNO|SHAPE|any",
    help="Exit 1 when a finding has this severity or higher, or this errno name, or when "
    "findings alike take this shape: flood, scan, outage (repeatable).",
)
@click.option(
    "--min-confidence",
    type=click.Choice(["low", "medium", "high"]),
    default="medium",
    show_default=True,
    help="--fail-on counts only findings at least this sure (low: every finding).",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="List every flow, not only the failed ones (text and JSON).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour and tables in the text report (auto: when standard output is a terminal).",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML report with ladder diagrams to this file.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display and no notes on stderr.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Worker processes; flows are shared out by 4-tuple and the report is the same "
    "[default: one per CPU, at most 4; 1 on two CPUs or fewer and for small captures]",
)
@click.option(
    "--no-hash",
    is_flag=True,
    help="Leave out each capture's sha256 (null in the report): a pass over the bytes less, "
    "for fleets of captures where it costs a third of the analysis's CPU.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS|local[:N]",
    help="Run as tasks of a Dask cluster: a scheduler's address (tcp://host:8786), or "
    "local:N to start N worker processes here. Each worker fetches and analyses its own "
    "captures (paths, globs, s3:// gs:// https:// URLs); the report is the same. With "
    "--jobs N, each capture's flows are cut into N tasks.",
)
@click.option(
    "--merge",
    is_flag=True,
    help="Treat the captures as consecutive pieces of one (tcpdump -C/-G rotation): one flow "
    "table across files, frame numbers running on as in `mergecap -a`.",
)
@click.option(
    "--merge-by-dir",
    is_flag=True,
    help="As --merge, but each directory's (or URL prefix's) files are one rotation: a "
    "fleet's hosts, each with its own directory of rotated files.",
)
@click.option(
    "--join",
    is_flag=True,
    help="Treat the captures as views of the same connections from different points (one on "
    "each end): connections matched across files, clocks set against the first file's, one "
    "finding per failure from the view on its side's host, with every view's frames.",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the packets of each failed flow to DIR/<finding id>.pcap.",
)
@click.option(
    "--annotate",
    "annotate_out",
    metavar="OUT.pcapng",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a copy of the capture (one file) with a comment on each evidence frame of "
    'each listed finding, for Wireshark (frame.comment contains "pcapdiag"); frame '
    "numbers unchanged. Findings only counted (past --max-alike) have no frames to mark.",
)
@click.option(
    "--max-alike",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_ALIKE,
    show_default=True,
    help="Findings alike (same rule, side, errno and server address: a SYN flood, a port "
    "scan) listed in full; the rest are counted. 0 lists every one.",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=DEFAULT_TOP,
    show_default=True,
    help="Text, Markdown and HTML: the failing services and the kinds of finding listed "
    "(the most failures first); the rest are counted in one line. 0 lists every one.",
)
@click.option(
    "--all-findings",
    is_flag=True,
    help="Text, Markdown and HTML: every listed finding in full, not one example of each "
    "rule (JSON always has every one).",
)
@click.option(
    "--accel/--no-accel",
    default=True,
    show_default=True,
    help="Set aside the connections the C first pass proves plain, and decode common "
    "segments in one step. --no-accel reads every frame in Python: slower, the same report.",
)
@selection_options
def analyze_cmd(
    captures: tuple[str, ...],
    fmt: str,
    platform: str,
    rule_dirs: tuple[Path, ...],
    no_builtin_rules: bool,
    fail_on: tuple[str, ...],
    min_confidence: str,
    show_all: bool,
    output: Path | None,
    color: str,
    html_file: Path | None,
    quiet: bool,
    jobs: int | None,
    no_hash: bool,
    cluster: str | None,
    merge: bool,
    merge_by_dir: bool,
    join: bool,
    export_dir: Path | None,
    annotate_out: Path | None,
    max_alike: int,
    top: int,
    all_findings: bool,
    accel: bool,
    selection: Selection,
) -> None:
    """Analyse CAPTURES (pcap or pcapng files, optionally .gz, or directories of them; "-"
    for standard input)."""
    _check_fail_on(fail_on)
    if (merge or merge_by_dir) and join:
        raise click.UsageError("--merge and --join: a rotation's pieces or views of one another")
    _refuse_second_read(captures, fmt, html_file, export_dir)
    _check_annotate(captures, annotate_out)
    _check_cluster(cluster, captures, fmt, join)
    if "-" in captures and fmt == "markdown" and not quiet:
        # Markdown without ladders is still a whole report: each finding lacks only its
        # table of evidence packets, so this is said, not refused.
        click.echo(
            "pcapdiag: standard input cannot be read twice: the Markdown report lists no "
            "evidence packets for its findings (save the capture to a file for them)",
            err=True,
        )
    rules = _load(rule_dirs, not no_builtin_rules)
    if accel and not quiet:
        _say_if_slow(captures)
    n_jobs = _jobs(jobs, captures) if cluster is None else 1
    size = _total_size(captures)
    live = _live_output(fmt, captures, output)
    if cluster is None:
        display = progress_display(size, enabled=not quiet)
    else:
        display = cluster_progress_display(enabled=not quiet)
    with display as progress, live as on_finding:
        report = _analyze(
            captures,
            rules,
            platform,
            merge=merge or merge_by_dir,
            merge_by_dir=merge_by_dir,
            join=join,
            keep_flows=show_all,
            jobs=n_jobs,
            progress=progress if cluster is None else None,
            max_alike=max_alike or None,
            ladders=fmt in ("markdown", "html") or html_file is not None,
            accel=accel,
            selection=selection,
            on_finding=on_finding,
            # --jobs with --cluster: the shares of each capture (pcapdiag.cluster).
            cluster=None if cluster is None else Cluster(cluster, jobs, progress),
            hash_captures=not no_hash,
        )
    # The report's objects will live until the process ends: kept out of the cyclic
    # collector's sight, the renderer's garbage does not cost a full collection over them.
    gc.freeze()
    if fmt == "jsonl":
        text = None
    elif fmt == "json":
        _emit_chunks(iter_json(report), output)
        text = None
    # Renderers and their libraries (rich, dpkt for --export) are imported when used: each
    # costs start-up time that a run in another format should not pay.
    elif fmt == "markdown":
        from pcapdiag.render.markdown import to_markdown

        text = to_markdown(report)
    elif fmt == "junit":
        from pcapdiag.render.junit import to_junit

        text = to_junit(report)
    elif fmt == "html":
        from pcapdiag.render.html import to_html

        text = to_html(report)
    elif output is None and (color == "always" or (color == "auto" and sys.stdout.isatty())):
        from rich.console import Console

        from pcapdiag.render.terminal import print_report

        print_report(
            report,
            Console(force_terminal=True, highlight=False),
            show_flows=show_all,
            top=top or None,
            all_findings=all_findings,
        )
        text = None
    else:
        text = to_text(report, show_flows=show_all, top=top or None, all_findings=all_findings)
    if text is not None:
        _emit(text, output)
    if html_file is not None:
        from pcapdiag.render.html import to_html

        html_file.write_text(to_html(report), encoding="utf-8")
    if export_dir is not None:
        try:
            written = export_findings(report, export_dir)
        except CaptureError as exc:
            raise Unreadable(f"--export: {exc}") from exc
        if not quiet:
            where = clean(str(export_dir))
            click.echo(f"pcapdiag: wrote {len(written)} capture(s) to {where}", err=True)
    if annotate_out is not None:
        _annotate(report, annotate_out, quiet)
    _finish(report, fail_on, min_confidence)


@cli.command("flows")
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text: a table; csv: a header row, then a line a flow; json: a pcapdiag.flows/v1 "
    "document (pcapdiag schema --flows).",
)
@platform_option
@rules_option
@no_builtin_option
@selection_options
def flows_cmd(
    captures: tuple[str, ...],
    fmt: str,
    platform: str,
    rule_dirs: tuple[Path, ...],
    no_builtin_rules: bool,
    selection: Selection,
) -> None:
    """List every flow: Zeek's conn_state and history, duration, packets and payload bytes
    each way, and the final TCP states (client: Zeek's originator)."""
    rules = _load(rule_dirs, not no_builtin_rules)
    report = _analyze(captures, rules, platform, keep_flows=True, selection=selection)
    if fmt == "json":
        _emit_chunks(iter_flows_json(report), None)
    elif fmt == "csv":
        _emit_chunks(iter_flows_csv(report), None)
    else:
        _emit("\n".join(flows_table(report)) + "\n", None)
    _finish(report, ())


@cli.command("check", epilog=CHECK_EPILOG)
@click.argument("captures", nargs=-1)
@click.option(
    "--expect",
    "expect_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Expectation file (YAML): the findings that must be present.",
)
@rules_option
@no_builtin_option
def check_cmd(
    captures: tuple[str, ...],
    expect_file: Path,
    rule_dirs: tuple[Path, ...],
    no_builtin_rules: bool,
) -> None:
    """Check that CAPTURES produce the findings an expectation file lists (exit 0), or print
    what is missing or unexpected (exit 1). Without CAPTURES, the file's `capture` is used."""
    try:
        spec = load_expectation(expect_file)
    except ExpectationError as exc:
        raise BadUsage(str(exc)) from exc
    if not captures:
        if "capture" not in spec:
            raise BadUsage(f"{expect_file}: no capture given and none named in the file")
        captures = (str(expect_file.parent / spec["capture"]),)
    rules = _load(rule_dirs, not no_builtin_rules)
    report = _analyze(captures, rules, spec.get("platform", "auto"))
    problems = check(report, spec)
    # A damaged capture is checked up to the damage, as analyze reports it, and the run ends
    # as analyze's does: the damage on standard error and exit 4, before any difference's 1.
    upto = " (up to the damage)" if report.damaged else ""
    for line in problems:
        click.echo(clean(line))
    if problems:
        said = counted(len(problems), "difference")
        click.echo(f"FAIL: {said} from {clean(str(expect_file))}{upto}")
    else:
        said = counted(report.finding_count, "finding")
        click.echo(f"OK: {said} as expected ({clean(str(expect_file))}){upto}")
    _stop_if_damaged(report)
    if problems:
        raise FailOnMet()


@cli.command("schema")
@click.option("--rule", "rule_schema", is_flag=True, help="Print the rule file schema instead.")
@click.option(
    "--flows",
    "flows_schema",
    is_flag=True,
    help="Print the schema of `pcapdiag flows --format json` (pcapdiag.flows/v1) instead.",
)
def schema_cmd(rule_schema: bool, flows_schema: bool) -> None:
    """Print the JSON Schema of the JSON report (pcapdiag.report/v1), of rule files or of
    the flow listing."""
    if rule_schema and flows_schema:
        raise click.UsageError("--rule or --flows: one schema at a time")
    name = "report-v1.schema.json"
    if rule_schema:
        name = "rule-v1.schema.json"
    elif flows_schema:
        name = "flows-v1.schema.json"
    click.echo(resources.files("pcapdiag").joinpath("schemas", name).read_text(), nl=False)


@cli.group("rules")
def rules_group() -> None:
    """List, show, check and test rules."""


@rules_group.command("list")
@rules_option
@no_builtin_option
def rules_list(rule_dirs: tuple[Path, ...], no_builtin_rules: bool) -> None:
    """One line per rule: id, severity, name, title."""
    for r in sorted(_load(rule_dirs, not no_builtin_rules), key=lambda r: r.id):
        click.echo(f"{r.id:<11} {r.severity:<8} {r.name:<26} {clean(r.title)}")


@rules_group.command("show")
@click.argument("rule_id")
@rules_option
@no_builtin_option
def rules_show(rule_id: str, rule_dirs: tuple[Path, ...], no_builtin_rules: bool) -> None:
    """Print one rule file (by id or name)."""
    from pcapdiag.rules.show import show

    for r in _load(rule_dirs, not no_builtin_rules):
        if rule_id in (r.id, r.name):
            click.echo(clean(show(r)), nl=False)
            return
    raise BadUsage(f"no rule with id or name {rule_id!r} (see: pcapdiag rules list)")


@rules_group.command("events")
def rules_events() -> None:
    """The pattern vocabulary: every tracker event and the fields a rule may test."""
    for name, cls in sorted(EVENT_TYPES.items()):
        click.echo(f"{name}: {cls.doc}")
        fields = predicate_fields(name)
        click.echo(f"    fields: {', '.join(('sender', 'receiver', *fields))}")
    click.echo("flow (match.flow): " + ", ".join(FLOW_FIELDS))


@rules_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@no_builtin_option
def rules_check(paths: tuple[Path, ...], no_builtin_rules: bool) -> None:
    """Validate rule files (schema and semantics); every problem with file:line."""
    rules = _load(paths, not no_builtin_rules)
    click.echo(f"{counted(len(rules), 'rule')} OK")


@rules_group.command("test")
@click.argument("rule_id", required=False)
@rules_option
@no_builtin_option
def rules_test(rule_id: str | None, rule_dirs: tuple[Path, ...], no_builtin_rules: bool) -> None:
    """Run the test cases written in the rules (all, or one rule by id or name)."""
    rules = _load(rule_dirs, not no_builtin_rules)
    try:
        results = run_rule_tests(rules, rule_id)
    except CaptureError as exc:
        raise Unreadable(f"rule test capture: {exc}") from exc
    if not results:
        raise BadUsage(f"no test cases for {rule_id!r}")
    for res in results:
        click.echo(f"{'PASS' if res.ok else 'FAIL'}  {res.rule}  {clean(res.name)}")
        for problem in res.problems:
            click.echo(f"      {clean(problem)}")
    failed = sum(not r.ok for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise FailOnMet()


def _refuse_second_read(
    captures: tuple[str, ...], fmt: str, html_file: Path | None, export_dir: Path | None
) -> None:
    """--export and the HTML ladders need the packets again, from a second read of the capture
    (evidence.py), which standard input cannot give: refused before standard input is read,
    rather than found out after the whole capture was analysed."""
    if "-" not in captures:
        return
    needs = [
        name
        for name, asked in (
            ("--export", export_dir is not None),
            ("--format html", fmt == "html"),
            ("--html", html_file is not None),
        )
        if asked
    ]
    if needs:
        raise click.UsageError(
            f"{' and '.join(needs)} read the capture a second time, and standard input "
            "cannot be read twice: save the capture to a file (tcpdump -w FILE) and analyse "
            "that"
        )


def _check_annotate(captures: tuple[str, ...], out: Path | None) -> None:
    """--annotate copies one capture file, read again once analysed: refused before the
    analysis when that cannot be done (standard input, several captures whose frame numbers
    are not one file's) or would destroy the capture (OUT is the capture itself)."""
    if out is None:
        return
    if "-" in captures:
        raise click.UsageError(
            "--annotate reads the capture a second time, and standard input cannot be read "
            "twice: save the capture to a file (tcpdump -w FILE) and analyse that"
        )
    try:
        files = expand_sources(captures)
    except CaptureError:
        return  # not a capture at all: the analysis says so, with its own exit code
    if len(files) != 1:
        raise click.UsageError(
            f"--annotate copies one capture file, and {len(files)} were given: annotate "
            "each on its own"
        )
    if out.exists() and os.path.exists(files[0]) and os.path.samefile(out, files[0]):
        raise click.UsageError(f"--annotate {out} is the capture itself: name another file")
    if not out.parent.is_dir():
        raise click.UsageError(f"--annotate {out}: directory {out.parent} does not exist")


def _annotate(report: Report, out: Path, quiet: bool) -> None:
    try:
        done = annotate_capture(report, out)
    except CaptureError as exc:
        raise Unreadable(f"--annotate: {exc}") from exc
    except OSError as exc:
        # A path that cannot be written is a bad argument (checked before the analysis
        # where it can be: a missing directory, the capture itself).
        raise BadUsage(f"--annotate: cannot write {out}: {exc.strerror or exc}") from exc
    if quiet:
        return
    notes = [f"{counted(done.comments, 'comment')} on {counted(done.commented_frames, 'frame')}"]
    if done.damage is not None:
        notes.append(f"copied up to the damage: {counted(done.frames, 'frame')}")
    if done.placeholders == 1:
        notes.append("a placeholder for 1 block that is not a packet")
    elif done.placeholders:
        notes.append(f"placeholders for {done.placeholders} blocks that are not packets")
    if done.clamped:
        notes.append(f"{counted(done.clamped, 'timestamp')} outside pcapng's range clamped")
    click.echo(f"pcapdiag: wrote {clean(str(out))} ({'; '.join(notes)})", err=True)


def _say_if_slow(captures: tuple[str, ...]) -> None:
    """Once, before reading: a large capture without the compiled first pass, how much
    slower that is and how to build it (firstpass.slow_note). Sizes on disk: a gzip file's
    is smaller than what is read, standard input's unknown."""
    from pcapdiag import firstpass

    size = 0
    for c in captures:
        path = Path(c)
        if c != "-" and path.is_file():
            size += path.stat().st_size
        elif c != "-" and path.is_dir():
            size += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    note = firstpass.slow_note(size)
    if note is not None:
        click.echo(f"pcapdiag: {note}", err=True)


def _total_size(captures: tuple[str, ...]) -> int | None:
    """Bytes to read, for the progress bar; None when unknown (standard input, gzip)."""
    paths = [c for c in captures if c != "-"]
    if len(paths) != len(captures) or any(c.endswith(".gz") for c in paths):
        return None
    try:
        return sum(os.path.getsize(c) for c in paths)
    except OSError:
        return None


def _check_cluster(cluster: str | None, captures: tuple[str, ...], fmt: str, join: bool) -> None:
    """What a cluster cannot do, refused before it is started."""
    if cluster is None:
        return
    try:
        parse_cluster(cluster)
    except ClusterError as exc:
        raise click.BadParameter(
            str(exc).removeprefix(f"--cluster {cluster}: "), param_hint="--cluster"
        ) from None
    if "-" in captures:
        raise click.UsageError("--cluster: standard input is read here, not by a worker")
    if join:
        raise click.UsageError("--cluster and --join: the views are joined in one process")
    if fmt == "jsonl":
        raise click.UsageError(
            "--cluster and --format jsonl: findings come back with their capture's task, not "
            "as each flow is decided (use --format json)"
        )


def _jobs(asked: int | None, captures: tuple[str, ...]) -> int:
    """--jobs, or by default api.default_jobs() for captures big enough to gain: below
    ~64 MB, starting workers costs more than it saves."""
    if asked is not None:
        return asked
    size = sum(os.path.getsize(c) for c in captures if c != "-" and os.path.isfile(c))
    return default_jobs() if size >= 64 * 1024 * 1024 else 1


def _analyze(
    captures: tuple[str, ...],
    rules: list[Rule],
    platform: str,
    *,
    merge: bool = False,
    merge_by_dir: bool = False,
    join: bool = False,
    keep_flows: bool = False,
    jobs: int = 1,
    progress: Callback | None = None,
    max_alike: int | None = DEFAULT_MAX_ALIKE,
    ladders: bool = False,
    accel: bool = True,
    selection: Selection | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    cluster: Cluster | None = None,
    hash_captures: bool = True,
) -> Report:
    if selection is not None:
        _check_selected_rules(selection, rules)
    analysis = Analysis(
        sources=captures,
        rules=tuple(rules),
        platform=platform,
        merge=merge,
        merge_by_dir=merge_by_dir,
        keep_flows=keep_flows,
        jobs=1 if join else jobs,
        keep_records=join,
        max_alike=max_alike,
        ladders=ladders,
        settings=Settings() if accel else NO_ACCEL,
        selection=selection or Selection(),
        on_finding=on_finding,
        hash_captures=hash_captures,
    )
    try:
        return run_analysis(analysis, progress, cluster)
    except CaptureError as exc:
        raise Unreadable(str(exc)) from exc
    except ClusterError as exc:
        raise ClusterUnusable(str(exc)) from exc


@contextlib.contextmanager
def _live_output(
    fmt: str, captures: tuple[str, ...], output: Path | None
) -> Iterator[Callable[[Finding], None] | None]:
    """What is written as each finding is decided: with --format jsonl, the finding as a
    line of JSON (to the report's file or standard output); with the text report of
    standard input, one line on standard output, the report following at the end."""
    if fmt == "jsonl":
        fh = output.open("w", encoding="utf-8") if output is not None else sys.stdout
        try:

            def write_line(finding: Finding) -> None:
                fh.write(json.dumps(finding.to_dict()) + "\n")
                fh.flush()

            yield _reader_gone_guard(write_line)
        finally:
            if output is not None:
                fh.close()
    elif fmt == "text" and "-" in captures:

        def print_line(finding: Finding) -> None:
            sys.stdout.write(live_line(finding) + "\n")
            sys.stdout.flush()

        yield _reader_gone_guard(print_line)
    else:
        yield None


def _reader_gone_guard(write: Callable[[Finding], None]) -> Callable[[Finding], None]:
    """`write`, ending the run quietly when standard output's reader goes away (| head)."""

    def guarded(finding: Finding) -> None:
        try:
            write(finding)
        except BrokenPipeError:
            _silence_stdout()
            raise ReaderGone() from None

    return guarded


def _check_fail_on(values: tuple[str, ...]) -> None:
    for v in values:
        if (
            v != "any"
            and v.lower() not in SEVERITY_ORDER
            and v.upper() not in ALL_NAMES
            and v.lower() not in GROUP_KINDS
        ):
            raise click.BadParameter(
                f"{v!r} is neither a severity ({', '.join(SEVERITY_ORDER)}), 'any', a group's "
                f"shape ({', '.join(GROUP_KINDS)}) nor a known errno name",
                param_hint="--fail-on",
            )


def _fails(report: Report, fail_on: tuple[str, ...], min_confidence: str) -> bool:
    shapes = {v.lower() for v in fail_on} & set(GROUP_KINDS)
    for g in report.groups:
        if g.kind in shapes and at_least(g.confidence, min_confidence):
            return True
    for f in report.findings:
        if not at_least(f.confidence.level, min_confidence):
            continue
        prim = f.primary()
        errno = prim.errno if prim else None
        for v in fail_on:
            if v == "any":
                return True
            if v.lower() in SEVERITY_ORDER and (
                SEVERITY_ORDER.index(f.severity) >= SEVERITY_ORDER.index(v.lower())
            ):
                return True
            if errno is not None and v.upper() == errno:
                return True
    return False


def _emit_chunks(chunks: Iterable[str], output: Path | None) -> None:
    """Write a report made in pieces as the pieces come (see render.iter_json)."""
    if output is not None:
        with output.open("w", encoding="utf-8") as fh:
            fh.writelines(chunks)
    else:
        try:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
        except BrokenPipeError:
            # Caught here, not left to click, which would exit 1.
            _silence_stdout()
            raise ReaderGone() from None


def _emit(text: str, output: Path | None) -> None:
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _finish(report: Report, fail_on: tuple[str, ...], min_confidence: str = "medium") -> None:
    _stop_if_damaged(report)
    _stop_if_partial(report)
    if fail_on and _fails(report, fail_on, min_confidence):
        raise FailOnMet()


def _stop_if_damaged(report: Report) -> None:
    """Each damaged capture's offset, frame and message on standard error, then exit 4."""
    if not report.damaged:
        return
    for cap in report.captures:
        if cap.damage is not None:
            d = cap.damage
            click.echo(
                f"pcapdiag: {clean(cap.path)}: damaged at byte {d.offset} (frame "
                f"{d.frame}): {clean(d.message)}",
                err=True,
            )
    raise Damaged()


def _stop_if_partial(report: Report) -> None:
    """Each capture whose task failed on the cluster on standard error, then exit 6."""
    if not report.failed_captures:
        return
    for w in report.failed_captures:
        click.echo(f"pcapdiag: {clean(w.message)}", err=True)
    raise Partial()


def _silence_stdout() -> None:
    """Standard output's reader went away (| head): send what is left, and the flush at
    exit, nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: no traceback reaches the user; every outcome is an exit code.

    Click runs outside its standalone mode, which would turn Ctrl-C into its own "Aborted!"
    and exit 1: its errors and ours (Outcome) come here and are shown as they are."""
    try:
        cli.main(args=argv, prog_name="pcapdiag", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("pcapdiag: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_OK)
    except Exception as exc:  # the last line of defence against tracebacks
        if os.environ.get("PCAPDIAG_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"pcapdiag: internal error: {type(exc).__name__}: {clean(str(exc))} (a bug; "
            "set PCAPDIAG_DEBUG=1 to see the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)
