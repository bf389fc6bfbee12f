"""What the rule schema cannot say, each problem with the file and line it is on: names that
must exist and be bound before they are used, parameters declared, errno names known on
their platform, test captures present, and (across rules) ids used once and overrides of
rules that exist."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from string import Formatter
from typing import Any

from pcapdiag.errnos import ERRNO
from pcapdiag.rules.model import FLOW_FIELDS, RESERVED_BINDINGS, Rule
from pcapdiag.rules.yamlfile import LineDict
from pcapdiag.track.events import event_fields


def semantic_problems(path: Path, data: LineDict) -> Iterator[str]:
    """What the schema cannot say: names that must exist and be defined before use."""
    params = set(data.get("params", {}))
    match = data["match"]
    bound: dict[str, str] = {}  # binding -> event name

    def at(node: Any, key: str | None = None) -> str:
        if isinstance(node, LineDict):
            return f"{path}:{node.lines.get(key, node.line) if key else node.line}"
        return f"{path}:{data.line}"

    def check_value(node: Any, value: Any) -> Iterator[str]:
        if isinstance(value, str) and value.startswith("$") and value[1:] not in params:
            yield f"{at(node)}: unknown parameter {value!r} (declare it under params)"

    def check_pred(node: Any, fields: tuple[str, ...] | None, what: str) -> Iterator[str]:
        if "all" in node or "any" in node:
            for sub in node.get("all", node.get("any", [])):
                yield from check_pred(sub, fields, what)
        elif "not" in node:
            yield from check_pred(node["not"], fields, what)
        else:
            if fields is not None and node["field"] not in fields:
                yield (
                    f"{at(node, 'field')}: {what} has no field {node['field']!r} "
                    f"(known: {', '.join(fields)})"
                )
            for op, value in node.items():
                if op != "field":
                    values = value if isinstance(value, list) else [value]
                    for v in values:
                        yield from check_value(node, v)

    def check_side(node: Any, key: str) -> Iterator[str]:
        spec = node.get(key)
        if isinstance(spec, dict):
            ref = spec.get("sender_of") or spec.get("receiver_of")
            if ref not in bound:
                yield f"{at(node, key)}: {key} refers to {ref!r}, which is not bound before it"

    def check_binding(node: Any, key: str, name: str) -> Iterator[str]:
        if name not in bound and name not in RESERVED_BINDINGS:
            yield f"{at(node, key)}: {name!r} is not bound by an earlier sequence step"

    if "flow" in match:
        yield from check_pred(match["flow"], FLOW_FIELDS, "the flow record")
    for step in match["sequence"]:
        name = step["as"]
        if name in bound or name in RESERVED_BINDINGS:
            yield f"{at(step, 'as')}: binding {name!r} is already used"
        yield from check_side(step, "from")
        if "where" in step:
            yield from check_pred(
                step["where"], event_fields(step["event"]), f"event {step['event']!r}"
            )
        for key in ("within", "not_within"):
            if key in step:
                yield from check_binding(step[key], "after", step[key]["after"])
                yield from check_value(step[key], step[key]["ms"])
        bound[name] = step["event"]
    for clause in match.get("absent", []) + match.get("counts", []):
        yield from check_side(clause, "from")
        if "where" in clause:
            yield from check_pred(
                clause["where"], event_fields(clause["event"]), f"event {clause['event']!r}"
            )
        for b in clause["between"]:
            yield from check_binding(clause, "between", b)
        for op in ("ge", "le", "eq"):
            if op in clause:
                yield from check_value(clause, clause[op])
    counts = {c["as"] for c in match.get("counts", [])}
    outcome = data["outcome"]
    yield from _empty_counts_cited(match.get("counts", []), outcome, data.get("params", {}), at)
    side = outcome["side"]
    if isinstance(side, dict):
        ref = side.get("sender_of") or side.get("receiver_of")
        if ref not in bound:
            yield f"{at(outcome, 'side')}: side refers to {ref!r}, which is not bound"
    if side == "any":
        yield f"{at(outcome, 'side')}: the outcome must name one side, not 'any'"
    for ref in outcome["evidence"]:
        name, _, pick = ref.partition(".")
        if name not in bound and name not in counts and name != "end":
            yield f"{at(outcome, 'evidence')}: evidence {name!r} is neither a binding nor a count"
        elif pick and name not in counts:
            yield f"{at(outcome, 'evidence')}: {ref!r}: .first/.last apply to counts only"
    for platform, effects in outcome["effects"].items():
        for eff in effects:
            names = [eff["errno"]] if eff.get("errno") else []
            if "errno_from" in eff:
                src = eff["errno_from"]
                if src["binding"] not in bound:
                    yield f"{at(eff)}: errno_from refers to unbound {src['binding']!r}"
                elif src["field"] not in event_fields(bound[src["binding"]]):
                    ev_name = bound[src["binding"]]
                    yield f"{at(eff)}: event {ev_name!r} has no field {src['field']!r}"
                names += list(src["map"].values())
            for n in names:
                if n not in ERRNO[platform]:
                    yield f"{at(eff)}: {n!r} is not an errno name on {platform}"
    for test in data["tests"]:
        cap = path.parent / test["capture"]
        if not cap.is_file():
            yield f"{at(test, 'capture')}: test capture {test['capture']!r} not found"
        for exp in test["expect"]:
            if exp.get("errno") is not None:
                platform = test.get("platform", "linux")
                if exp["errno"] not in ERRNO[platform]:
                    yield f"{at(exp)}: {exp['errno']!r} is not an errno name on {platform}"
    if data["status"] in ("test", "stable") and not data["tests"]:
        yield f"{at(data, 'tests')}: a {data['status']} rule needs test cases"


def _may_be_empty(count: Any, params: Any) -> bool:
    """Whether a count can match with none of what it counts (no `ge`, or ge of 0 or less)."""
    bound = count.get("ge", count.get("eq"))
    if isinstance(bound, str) and bound.startswith("$"):
        bound = params.get(bound[1:], {}).get("default")
    return not isinstance(bound, int) or bound <= 0


def _empty_counts_cited(counts: Any, outcome: Any, params: Any, at: Any) -> Iterator[str]:
    """A count that may match nothing, cited by the cause or the next steps (which are
    always shown): the report would name frames that are not there ("frames ")."""
    empty = {c["as"]: c for c in counts if _may_be_empty(c, params)}
    if not empty:
        return
    for key in ("cause", "next_steps"):
        text = outcome.get(key)
        if not text:
            continue
        for _, name, _, _ in Formatter().parse(text):
            head, _, attr = (name or "").partition(".")
            if head in empty and attr in ("frames", "gaps"):
                yield (
                    f"{at(empty[head], 'as')}: count {head!r} may match nothing (ge: 0), yet "
                    f"the {key} cites {{{name}}}: require ge: 1, or cite it in a note whose "
                    "`when` tests the count"
                )


def cross_rule_problems(loaded: Sequence[tuple[Rule, LineDict]]) -> list[str]:
    """Ids used twice, overrides of rules not loaded; `loaded`: each rule and its file's data
    (for the lines)."""
    problems: list[str] = []
    seen: dict[str, Rule] = {}
    for rule, data in loaded:
        if rule.id in seen:
            line = data.lines.get("id", 1)
            problems.append(
                f"{rule.path}:{line}: duplicate rule id {rule.id} (also {seen[rule.id].path})"
            )
        seen.setdefault(rule.id, rule)
    for rule, data in loaded:
        for other in rule.overrides:
            if other not in seen:
                line = data.lines.get("overrides", 1)
                problems.append(f"{rule.path}:{line}: overrides unknown rule {other}")
    return problems
