"""Predicates and clauses of a rule turned once into Python closures, for the rule engine to
call on every event it looks at instead of walking the predicate tree each time.

A compiled test gives what the tree gives (Predicate.on: an object's attributes, a missing one
making its comparison false; tests/rules/test_compiled.py checks both on every event of the
recordings): the tree stays the rule's definition, read by everything else (the accelerator's
blindness check, the rule checks, the finding builder). Parameters (`$name`) are resolved at
compile time: a rule is compiled for the parameters of one analysis.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pcapdiag.rules.predicates import ORDERED_OPS, All, AnyOf, Compare, Not, Predicate, resolve
from pcapdiag.track.events import Event

if TYPE_CHECKING:
    from pcapdiag.rules.model import Absent, Count, Step

Test = Callable[[Any], bool]
# A clause's test of one event, given the events bound so far (its sender may be named
# after one of them).
ClauseTest = Callable[[Event, Mapping[str, Event]], bool]


def predicate(pred: Predicate, p: Mapping[str, Any]) -> Test:
    """`pred` as a function of one object: pred.on(obj, p)."""
    if isinstance(pred, Compare):
        return _compare(pred, p)
    if isinstance(pred, Not):
        part = predicate(pred.part, p)
        return lambda obj: not part(obj)
    parts = tuple(predicate(x, p) for x in pred.parts)
    if isinstance(pred, All):
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda obj: a(obj) and b(obj)

        def all_of(obj: Any) -> bool:
            for part in parts:  # noqa: SIM110 (no generator made for each event)
                if not part(obj):
                    return False
            return True

        return all_of
    assert isinstance(pred, AnyOf)
    if len(parts) == 1:
        return parts[0]

    def any_of(obj: Any) -> bool:
        for part in parts:  # noqa: SIM110 (as in all_of)
            if part(obj):
                return True
        return False

    return any_of


def _compare(c: Compare, p: Mapping[str, Any]) -> Test:
    """Compare.on with its value resolved: eq and ne compare anything, `in` looks the value
    up, the ordered operators are false for None and for values that do not order."""
    want = (
        tuple(resolve(v, p) for v in c.value) if isinstance(c.value, tuple) else resolve(c.value, p)
    )
    get = operator.attrgetter(c.field)
    op = c.op
    if op in ("eq", "ne", "in"):
        holds = {"eq": operator.eq, "ne": operator.ne, "in": lambda a, w: a in w}[op]

        def simple(obj: Any) -> bool:
            try:
                actual = get(obj)
            except AttributeError:
                return False
            return bool(holds(actual, want))

        return simple
    order = ORDERED_OPS[op]

    def ordered(obj: Any) -> bool:
        try:
            actual = get(obj)
        except AttributeError:
            return False
        if actual is None:
            return False
        try:
            return bool(order(actual, want))
        except TypeError:
            return False

    return ordered


def clause(c: Step | Absent | Count, p: Mapping[str, Any]) -> ClauseTest | None:
    """Whether an event passes a clause's sender and `where` (None: every event does)."""
    where = predicate(c.where, p) if c.where is not None else None
    sender = c.sender
    if sender is None:
        if where is None:
            return None
        return lambda ev, bound: where(ev)
    # client or server whatever is bound (`any` is not: SideSpec.resolve gives None for it,
    # which no event's sender is).
    fixed = sender.resolve({}) if sender.kind in ("client", "server") else None
    if fixed is not None:
        if where is None:
            return lambda ev, bound: ev.sender is fixed
        return lambda ev, bound: ev.sender is fixed and where(ev)
    resolve_side = sender.resolve
    if where is None:
        return lambda ev, bound: ev.sender is resolve_side(bound)
    return lambda ev, bound: ev.sender is resolve_side(bound) and where(ev)
