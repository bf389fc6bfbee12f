"""Expectation files for CI: which findings a capture must (and must not) produce.

An entry matches a finding when every key it gives equals the finding's value (rule, errno and
call on the finding's platform, platform, side, client, server, proto, severity, confidence,
frames; `min_confidence` and `max_confidence` bound the confidence; `why` is the reader's,
not compared). Each entry
claims `count` distinct findings (default 1). With `exclusive: true` any finding left over is
a failure too. The result is a list of readable lines, empty when the expectation holds.
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


def check(report: Report, spec: dict[str, Any]) -> list[str]:
    """Problems, one readable line each ("- missing ...", "+ unexpected ..."); [] if it holds.

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
            problems.append(f"- missing ({len(hits)} of {need} found): {describe(want)}")
    if spec.get("exclusive"):
        problems += [f"+ unexpected: {describe(facts[i])}" for i in unclaimed]
    return problems
