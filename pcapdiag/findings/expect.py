"""Expectation files for CI: which findings a capture must (and must not) produce.

An entry matches a finding when every key it gives equals the finding's value (rule, errno and
call on the finding's platform, platform, side, client, server, proto, severity, confidence,
frames; `min_confidence` and `max_confidence` bound the confidence; `why` is the reader's,
not compared). Each entry
claims `count` distinct findings (default 1). With `exclusive: true` any finding left over is
a failure too. The result is a list of readable problems, empty when the expectation holds.

An entry not met names the nearest actual finding, to tell a wrong expectation from a missing
finding at a glance: among the findings that share the entry's rule, errno or connection
(every one of `client` and `server` the entry gives), the one that differs from it in the
fewest of the keys it gives; on a tie, one with the same rule, then the same errno, then the
same connection, then the first in the report's order.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pcapdiag.errors import PcapdiagError
from pcapdiag.findings.confidence import at_least
from pcapdiag.findings.model import Finding, Report


class ExpectationError(PcapdiagError):
    """The expectation file is unreadable or invalid."""


def load_expectation(path: Path) -> dict[str, Any]:
    import jsonschema  # here: a cost only `check --expect` has

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExpectationError(f"{path}: {str(exc).splitlines()[0]}") from exc
    schema = json.loads(
        resources.files("pcapdiag").joinpath("schemas/expect-v1.schema.json").read_text()
    )
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise ExpectationError(f"{path}: {where}: {errors[0].message}")
    return data  # type: ignore[no-any-return]


def finding_facts(f: Finding) -> dict[str, Any]:
    prim = f.primary()
    return {
        "rule": f.rule,
        "platform": f.platform.name,
        "confidence": f.confidence.level,
        "errno": prim.errno if prim else None,
        "call": prim.call if prim else None,
        "side": f.side,
        "client": f.flow.client,
        "server": f.flow.server,
        "proto": f.flow.proto,
        "severity": f.severity,
        "frames": list(f.frames),
    }


_NOT_COMPARED = frozenset({"count", "why"})


def _matches(facts: dict[str, Any], want: dict[str, Any]) -> bool:
    for key, value in want.items():
        if key == "min_confidence":
            if not at_least(facts["confidence"], value):
                return False
        elif key == "max_confidence":
            if not at_least(value, facts["confidence"]):
                return False
        elif facts.get(key) != value:
            return False
    return True


def describe(facts: dict[str, Any]) -> str:
    keys = ("rule", "side", "call", "errno", "confidence", "client", "server", "frames")
    return " ".join(f"{k}={facts[k]}" for k in keys if k in facts)


_CONNECTION = ("client", "server")


def nearest(
    facts: list[dict[str, Any]], want: dict[str, Any]
) -> tuple[dict[str, Any], list[str]] | None:
    """The actual finding nearest an entry that none matches, with the entry's keys it
    differs in; None when no finding shares the entry's rule, errno or connection (see the
    module's docstring)."""
    ends = [k for k in _CONNECTION if k in want]
    best: tuple[tuple[int, ...], dict[str, Any], list[str]] | None = None
    for got in facts:
        differs = [k for k in want if not _matches(got, {k: want[k]})]
        if not differs:
            continue  # a match: claimed, or one of the too few found
        same_rule = "rule" in want and "rule" not in differs
        same_errno = "errno" in want and "errno" not in differs
        same_connection = bool(ends) and not any(k in differs for k in ends)
        if not (same_rule or same_errno or same_connection):
            continue
        # Lower is nearer; `<` keeps the first of equals, so ties go to report order.
        rank = (len(differs), not same_rule, not same_errno, not same_connection)
        if best is None or rank < best[0]:
            best = (rank, got, differs)
    return None if best is None else (best[1], best[2])


def check(report: Report, spec: dict[str, Any]) -> list[str]:
    """Problems, one readable line each ("- missing ...", "+ unexpected ..."); [] if it holds.
    A missing one has a second line, indented, naming the nearest actual finding (nearest()).

    Findings only counted in a group (beyond --max-alike) have the group's facts: rule,
    errno, call, side, proto and severity, but no client, server or frames of their own."""
    facts = [finding_facts(f) for f in report.findings]
    for g in report.groups:
        prim = g.primary.get(g.platform)
        group_facts = {
            "rule": g.rule,
            "platform": g.platform,
            "confidence": g.confidence,
            "errno": prim.errno if prim else None,
            "call": prim.call if prim else None,
            "side": g.side,
            "proto": g.proto,
            "severity": g.severity,
        }
        facts += [group_facts] * g.unlisted
    unclaimed = list(range(len(facts)))
    problems: list[str] = []
    for entry in spec["findings"]:
        want = {k: v for k, v in entry.items() if k not in _NOT_COMPARED}
        need = entry.get("count", 1)
        hits = [i for i in unclaimed if _matches(facts[i], want)]
        for i in hits[:need]:
            unclaimed.remove(i)
        if len(hits) < need:
            line = f"- missing ({len(hits)} of {need} found): {describe(want)}"
            near = nearest(facts, want)
            if near is not None:
                got, differs = near
                line += f"\n  nearest: {describe(got)} (differs in {', '.join(differs)})"
            problems.append(line)
    if spec.get("exclusive"):
        problems += [f"+ unexpected: {describe(facts[i])}" for i in unclaimed]
    return problems
