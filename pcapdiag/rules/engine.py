"""Rule evaluation: one rule against the events of one finished flow. Pure functions.

The pattern language is closed: ordered sequence steps that bind events to names, optional
time windows between them, absences and counts between two bindings, and predicates
(all / any / not / field comparisons) over event fields. There is no eval and no regular
expression anywhere: a rule is data walked by this module.

Semantics: the first match wins, in capture order (the earliest candidate for the first step,
then the earliest for the next step that keeps the whole pattern true). `between: [a, b]`
means strictly after `a` and strictly before `b`; `start` and `end` are always bound (before
the first event, and the flow's closing `end` event).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapdiag.track.events import Event, Side
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:  # rules.py reads files; the engine only needs the type
    from pcapdiag.rules.loader import Rule

# Upper bound on candidate bindings tried per rule and flow: keeps a pathological flow (a
# million segments) linear instead of polynomial. Real rules bind rare events (syn, rst,
# icmp_error) and use a handful of tries.
SEARCH_BUDGET = 200_000


@dataclass(frozen=True, slots=True)
class Match:
    bindings: dict[str, Event]
    counts: dict[str, tuple[Event, ...]]
    side: Side


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def event_index(flow: FlowRecord) -> dict[str, list[int]]:
    """Positions of each event name in the flow: built once per flow, shared by all rules."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, ev in enumerate(flow.events):
        index[ev.name].append(i)
    return index


def evaluate(
    rule: Rule,
    flow: FlowRecord,
    params: dict[str, Any] | None = None,
    index: dict[str, list[int]] | None = None,
) -> Match | None:
    """The first match of `rule` in `flow`, or None. `index` (see event_index) may be given
    when several rules are evaluated on the same flow."""
    if rule.proto != flow.proto:
        return None
    match = rule.data["match"]
    if index is None:
        index = event_index(flow)
    for name in rule.step_events:
        if name not in index:
            return None  # a step can never bind: the common case for healthy flows
    p = {**rule.params, **params} if params else rule.params
    if "flow" in match and not test(match["flow"], lambda f: getattr(flow, f), p):
        return None
    events = flow.events
    positions: dict[str, int] = {"start": -1, "end": len(events) - 1}
    bound: dict[str, Event] = {"end": events[-1]}
    found = _search(
        match, match["sequence"], 0, -1, events, index, positions, bound, p, _Budget(SEARCH_BUDGET)
    )
    if found is None:
        return None
    bindings, counts = found
    side = resolve_side(rule.data["outcome"]["side"], bindings)
    if side is None:
        return None
    return Match(bindings=bindings, counts=counts, side=side)


def _search(
    match: dict[str, Any],
    steps: list[dict[str, Any]],
    i: int,
    last: int,
    events: tuple[Event, ...],
    index: dict[str, list[int]],
    positions: dict[str, int],
    bound: dict[str, Event],
    p: dict[str, Any],
    budget: _Budget,
) -> tuple[dict[str, Event], dict[str, tuple[Event, ...]]] | None:
    if i == len(steps):
        counts = _check_clauses(match, events, positions, bound, p)
        if counts is None:
            return None
        return dict(bound), counts
    step = steps[i]
    for idx in index.get(step["event"], ()):
        if idx <= last:
            continue
        budget.left -= 1
        if budget.left < 0:
            return None
        ev = events[idx]
        if not _event_ok(step, ev, bound, p):
            continue
        within = step.get("within")
        if within is not None:
            ref = bound[within["after"]]
            if ev.ts_ns - ref.ts_ns > int(_value(within["ms"], p)) * 1_000_000:
                continue
        later = step.get("not_within")
        if later is not None:
            ref = bound[later["after"]]
            if ev.ts_ns - ref.ts_ns < int(_value(later["ms"], p)) * 1_000_000:
                continue
        name = step["as"]
        bound[name] = ev
        positions[name] = idx
        found = _search(match, steps, i + 1, idx, events, index, positions, bound, p, budget)
        if found is not None:
            return found
        del bound[name]
        del positions[name]
    return None


def _check_clauses(
    match: dict[str, Any],
    events: tuple[Event, ...],
    positions: dict[str, int],
    bound: dict[str, Event],
    p: dict[str, Any],
) -> dict[str, tuple[Event, ...]] | None:
    for clause in match.get("absent", ()):
        lo, hi = positions[clause["between"][0]], positions[clause["between"][1]]
        if any(
            ev.name == clause["event"] and _event_ok(clause, ev, bound, p)
            for ev in events[lo + 1 : hi]
        ):
            return None
    counts: dict[str, tuple[Event, ...]] = {}
    for clause in match.get("counts", ()):
        lo, hi = positions[clause["between"][0]], positions[clause["between"][1]]
        hits = tuple(
            ev
            for ev in events[lo + 1 : hi]
            if ev.name == clause["event"] and _event_ok(clause, ev, bound, p)
        )
        n = len(hits)
        if "ge" in clause and n < int(_value(clause["ge"], p)):
            return None
        if "le" in clause and n > int(_value(clause["le"], p)):
            return None
        if "eq" in clause and n != int(_value(clause["eq"], p)):
            return None
        counts[clause["as"]] = hits
    return counts


def _event_ok(
    clause: dict[str, Any], ev: Event, bound: dict[str, Event], p: dict[str, Any]
) -> bool:
    if "from" in clause:
        want = resolve_side(clause["from"], bound)
        if clause["from"] != "any" and ev.sender is not want:
            return False
    return "where" not in clause or test(clause["where"], lambda f: getattr(ev, f), p)


def resolve_side(spec: Any, bound: dict[str, Event]) -> Side | None:
    """A side spec (client | server | any | {sender_of: b} | {receiver_of: b}) to a Side."""
    if spec == "client":
        return Side.CLIENT
    if spec == "server":
        return Side.SERVER
    if isinstance(spec, dict):
        if "sender_of" in spec:
            return bound[spec["sender_of"]].sender
        return bound[spec["receiver_of"]].receiver
    return None


def _value(v: Any, p: dict[str, Any]) -> Any:
    if isinstance(v, str) and v.startswith("$"):
        return p[v[1:]]
    return v


def test(pred: dict[str, Any], get: Any, p: dict[str, Any]) -> bool:
    """Evaluate a predicate tree; `get(field)` returns a field's value."""
    if "all" in pred:
        return all(test(sub, get, p) for sub in pred["all"])
    if "any" in pred:
        return any(test(sub, get, p) for sub in pred["any"])
    if "not" in pred:
        return not test(pred["not"], get, p)
    try:
        actual = get(pred["field"])
    except (AttributeError, KeyError):
        return False
    for op, raw in pred.items():
        if op == "field":
            continue
        if op == "in":
            return actual in [_value(v, p) for v in raw]
        want = _value(raw, p)
        if op == "eq":
            return bool(actual == want)
        if op == "ne":
            return bool(actual != want)
        if actual is None:
            return False
        try:
            if op == "lt":
                return bool(actual < want)
            if op == "le":
                return bool(actual <= want)
            if op == "gt":
                return bool(actual > want)
            if op == "ge":
                return bool(actual >= want)
        except TypeError:
            return False
    return False
