"""Rule evaluation: one rule against the events of one finished flow. Pure functions.

The pattern language is closed: ordered sequence steps that bind events to names, optional
time windows between them, absences and counts between two bindings, and predicates
(all / any / not / field comparisons) over event fields. There is no eval and no regular
expression anywhere: a rule is data (the typed objects of model.py) walked by this module.

Semantics: the first match wins, in capture order (the earliest candidate for the first step,
then the earliest for the next step that keeps the whole pattern true). `between: [a, b]`
means strictly after `a` and strictly before `b`; `start` and `end` are always bound (before
the first event, and the flow's closing `end` event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapdiag.rules.predicates import resolve
from pcapdiag.track.events import Event, Side
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:
    from pcapdiag.rules.model import Absent, Count, Pattern, Rule, Step

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
    params: Mapping[str, Any] | None = None,
    index: dict[str, list[int]] | None = None,
) -> Match | None:
    """The first match of `rule` in `flow`, or None. `index` (see event_index) may be given
    when several rules are evaluated on the same flow."""
    if rule.proto != flow.proto:
        return None
    pattern = rule.match
    if index is None:
        index = event_index(flow)
    for name in pattern.step_events:
        if name not in index:
            return None  # a step can never bind: the common case for healthy flows
    p = {**rule.params, **params} if params else rule.params
    if pattern.flow is not None and not pattern.flow.test(lambda f: getattr(flow, f), p):
        return None
    events = flow.events
    positions: dict[str, int] = {"start": -1, "end": len(events) - 1}
    bound: dict[str, Event] = {"end": events[-1]}
    found = _search(pattern, 0, -1, events, index, positions, bound, p, _Budget(SEARCH_BUDGET))
    if found is None:
        return None
    bindings, counts = found
    side = rule.outcome.side.resolve(bindings)
    if side is None:
        return None
    return Match(bindings=bindings, counts=counts, side=side)


def _search(
    pattern: Pattern,
    i: int,
    last: int,
    events: tuple[Event, ...],
    index: dict[str, list[int]],
    positions: dict[str, int],
    bound: dict[str, Event],
    p: Mapping[str, Any],
    budget: _Budget,
) -> tuple[dict[str, Event], dict[str, tuple[Event, ...]]] | None:
    steps = pattern.sequence
    if i == len(steps):
        counts = _check_clauses(pattern, events, positions, bound, p)
        if counts is None:
            return None
        return dict(bound), counts
    step = steps[i]
    within, later = step.within, step.not_within
    for idx in index.get(step.event, ()):
        if idx <= last:
            continue
        budget.left -= 1
        if budget.left < 0:
            return None
        ev = events[idx]
        if not _event_ok(step, ev, bound, p):
            continue
        if within is not None:
            ref = bound[within.after]
            if ev.ts_ns - ref.ts_ns > int(resolve(within.ms, p)) * 1_000_000:
                continue
        if later is not None:
            ref = bound[later.after]
            if ev.ts_ns - ref.ts_ns < int(resolve(later.ms, p)) * 1_000_000:
                continue
        name = step.binding
        bound[name] = ev
        positions[name] = idx
        found = _search(pattern, i + 1, idx, events, index, positions, bound, p, budget)
        if found is not None:
            return found
        del bound[name]
        del positions[name]
    return None


def _check_clauses(
    pattern: Pattern,
    events: tuple[Event, ...],
    positions: dict[str, int],
    bound: dict[str, Event],
    p: Mapping[str, Any],
) -> dict[str, tuple[Event, ...]] | None:
    for absent in pattern.absent:
        lo, hi = positions[absent.between[0]], positions[absent.between[1]]
        name = absent.event
        if any(ev.name == name and _event_ok(absent, ev, bound, p) for ev in events[lo + 1 : hi]):
            return None
    counts: dict[str, tuple[Event, ...]] = {}
    for count in pattern.counts:
        lo, hi = positions[count.between[0]], positions[count.between[1]]
        name = count.event
        hits = tuple(
            ev for ev in events[lo + 1 : hi] if ev.name == name and _event_ok(count, ev, bound, p)
        )
        n = len(hits)
        if count.ge is not None and n < int(resolve(count.ge, p)):
            return None
        if count.le is not None and n > int(resolve(count.le, p)):
            return None
        if count.eq is not None and n != int(resolve(count.eq, p)):
            return None
        counts[count.name] = hits
    return counts


def _event_ok(
    clause: Step | Absent | Count, ev: Event, bound: dict[str, Event], p: Mapping[str, Any]
) -> bool:
    sender = clause.sender
    if sender is not None and ev.sender is not sender.resolve(bound):
        return False
    where = clause.where
    return where is None or where.on(ev, p)
