"""Rule evaluation: one rule against the events of one finished flow. Pure functions.

The pattern language is closed: ordered sequence steps that bind events to names, optional
time windows between them, absences and counts between two bindings, and predicates
(all / any / not / field comparisons) over event fields. There is no eval and no regular
expression anywhere: a rule is data (the typed objects of model.py), compiled once per
analysis into closures over its clauses (compile.py: a Matcher), which this module's search
calls.

Semantics: the first match wins, in capture order (the earliest candidate for the first step,
then the earliest for the next step that keeps the whole pattern true). `between: [a, b]`
means strictly after `a` and strictly before `b`; `start` and `end` are always bound (before
the first event, and the flow's closing `end` event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapdiag.rules import compile as comp
from pcapdiag.rules.predicates import resolve
from pcapdiag.track.events import Event, Side
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:
    from pcapdiag.rules.model import Rule

# Upper bound on candidate bindings tried per rule and flow: keeps a pathological flow (a
# million segments) linear instead of polynomial. Real rules bind rare events (syn, rst,
# icmp_error) and use a handful of tries.
SEARCH_BUDGET = 200_000


@dataclass(frozen=True, slots=True)
class Match:
    bindings: dict[str, Event]
    counts: dict[str, tuple[Event, ...]]
    side: Side


def event_index(flow: FlowRecord) -> dict[str, list[int]]:
    """Positions of each event name in the flow: built once per flow, shared by all rules."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, ev in enumerate(flow.events):
        index[ev.name].append(i)
    return index


@dataclass(frozen=True, slots=True)
class _Step:
    binding: str
    event: str
    test: comp.ClauseTest | None
    within: tuple[str, int] | None  # (binding, ns): at most that long after it
    not_within: tuple[str, int] | None  # ... at least


@dataclass(frozen=True, slots=True)
class _Between:
    """An absence (counted: False) or a count of events named `event` between two bindings."""

    name: str  # the count's name ("" for an absence)
    event: str
    lo: str
    hi: str
    test: comp.ClauseTest | None
    ge: int | None = None
    le: int | None = None
    eq: int | None = None


class Matcher:
    """One rule compiled for one set of parameters: match(flow, index) is evaluate()."""

    __slots__ = ("absent", "counts", "flow_test", "proto", "rule", "side", "step_events", "steps")

    def __init__(self, rule: Rule, p: Mapping[str, Any]) -> None:
        pattern = rule.match
        self.rule = rule
        self.proto = rule.proto
        self.step_events = pattern.step_events
        self.flow_test = comp.predicate(pattern.flow, p) if pattern.flow is not None else None
        self.steps = tuple(
            _Step(
                s.binding,
                s.event,
                comp.clause(s, p),
                (s.within.after, _ns(s.within.ms, p)) if s.within is not None else None,
                (s.not_within.after, _ns(s.not_within.ms, p)) if s.not_within is not None else None,
            )
            for s in pattern.sequence
        )
        self.absent = tuple(
            _Between("", a.event, a.between[0], a.between[1], comp.clause(a, p))
            for a in pattern.absent
        )
        self.counts = tuple(
            _Between(
                c.name,
                c.event,
                c.between[0],
                c.between[1],
                comp.clause(c, p),
                _int(c.ge, p),
                _int(c.le, p),
                _int(c.eq, p),
            )
            for c in pattern.counts
        )
        self.side = rule.outcome.side.resolve

    def match(self, flow: FlowRecord, index: dict[str, list[int]] | None = None) -> Match | None:
        if self.proto != flow.proto:
            return None
        if index is None:
            index = event_index(flow)
        for name in self.step_events:
            if name not in index:
                return None  # a step can never bind: the common case for healthy flows
        if self.flow_test is not None and not self.flow_test(flow):
            return None
        events = flow.events
        positions: dict[str, int] = {"start": -1, "end": len(events) - 1}
        bound: dict[str, Event] = {"end": events[-1]}
        budget = [SEARCH_BUDGET]
        found = self._search(0, -1, events, index, positions, bound, budget)
        if found is None:
            return None
        bindings, counts = found
        side = self.side(bindings)
        if side is None:
            return None
        return Match(bindings=bindings, counts=counts, side=side)

    def _search(
        self,
        i: int,
        last: int,
        events: tuple[Event, ...],
        index: dict[str, list[int]],
        positions: dict[str, int],
        bound: dict[str, Event],
        budget: list[int],
    ) -> tuple[dict[str, Event], dict[str, tuple[Event, ...]]] | None:
        steps = self.steps
        if i == len(steps):
            counts = self._clauses(events, positions, bound)
            if counts is None:
                return None
            return dict(bound), counts
        step = steps[i]
        test, within, later, name = step.test, step.within, step.not_within, step.binding
        for idx in index.get(step.event, ()):
            if idx <= last:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return None
            ev = events[idx]
            if test is not None and not test(ev, bound):
                continue
            if within is not None and ev.ts_ns - bound[within[0]].ts_ns > within[1]:
                continue
            if later is not None and ev.ts_ns - bound[later[0]].ts_ns < later[1]:
                continue
            bound[name] = ev
            positions[name] = idx
            found = self._search(i + 1, idx, events, index, positions, bound, budget)
            if found is not None:
                return found
            del bound[name]
            del positions[name]
        return None

    def _clauses(
        self,
        events: tuple[Event, ...],
        positions: dict[str, int],
        bound: dict[str, Event],
    ) -> dict[str, tuple[Event, ...]] | None:
        for a in self.absent:
            name, test = a.event, a.test
            for ev in events[positions[a.lo] + 1 : positions[a.hi]]:
                if ev.name == name and (test is None or test(ev, bound)):
                    return None
        counts: dict[str, tuple[Event, ...]] = {}
        for c in self.counts:
            name, test = c.event, c.test
            hits = tuple(
                ev
                for ev in events[positions[c.lo] + 1 : positions[c.hi]]
                if ev.name == name and (test is None or test(ev, bound))
            )
            n = len(hits)
            if c.ge is not None and n < c.ge:
                return None
            if c.le is not None and n > c.le:
                return None
            if c.eq is not None and n != c.eq:
                return None
            counts[c.name] = hits
        return counts


def _ns(ms: Any, p: Mapping[str, Any]) -> int:
    return int(resolve(ms, p)) * 1_000_000


def _int(v: Any, p: Mapping[str, Any]) -> int | None:
    return None if v is None else int(resolve(v, p))


def matchers(rules: Iterable[Rule], params: Mapping[str, Mapping[str, Any]]) -> dict[str, Matcher]:
    """Each rule compiled with its defaults and the caller's `params` (by rule id)."""
    return {r.id: matcher(r, params.get(r.id)) for r in rules}


def matcher(rule: Rule, params: Mapping[str, Any] | None = None) -> Matcher:
    """`rule` compiled with its defaults overridden by `params`."""
    return Matcher(rule, {**rule.params, **params} if params else rule.params)


def evaluate(
    rule: Rule,
    flow: FlowRecord,
    params: Mapping[str, Any] | None = None,
    index: dict[str, list[int]] | None = None,
) -> Match | None:
    """The first match of `rule` in `flow`, or None. `index` (see event_index) may be given
    when several rules are evaluated on the same flow. Compiles the rule for this one call:
    an analysis compiles each once (matchers) and calls Matcher.match."""
    return matcher(rule, params).match(flow, index)
