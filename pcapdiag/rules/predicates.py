"""Predicates of the rule language: a small closed tree (all / any / not / one comparison of a
field with a value), built once when a rule is loaded and evaluated for every flow.
`on(obj, p)` tests an object's attributes directly (the rule engine's events), `test(get,
p)` through any getter.

A value written `$name` in a rule file is a `Param`: the rule's parameter of that name,
looked up in the parameters of the evaluation (the rule's defaults, or a caller's values).
Fields are read through a getter (`get(field)`), so the same tree tests an event, a flow
record, a finding's template context or a set of hypothetical values. A field the getter
does not know (AttributeError or KeyError) makes its comparison false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Getter: TypeAlias = Callable[[str], Any]
Params: TypeAlias = Mapping[str, Any]
# The comparison operators a rule may write; "in" takes a list of values.
ORDERED_OPS: Mapping[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
OPS = ("eq", "ne", *ORDERED_OPS, "in")


@dataclass(frozen=True, slots=True)
class Param:
    """A `$name` reference to one of the rule's parameters."""

    name: str

    def __str__(self) -> str:
        return f"${self.name}"


Value: TypeAlias = str | int | float | bool | Param


def resolve(v: Value, p: Params) -> Any:
    """The value itself, or the parameter it refers to."""
    return p[v.name] if isinstance(v, Param) else v


@dataclass(frozen=True, slots=True)
class All:
    parts: tuple[Predicate, ...]

    def test(self, get: Getter, p: Params) -> bool:
        return all(part.test(get, p) for part in self.parts)

    def on(self, obj: object, p: Params) -> bool:
        # A loop, not all(): no generator made for each event tested.
        for part in self.parts:  # noqa: SIM110
            if not part.on(obj, p):
                return False
        return True

    def fields(self) -> Iterator[str]:
        for part in self.parts:
            yield from part.fields()


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Predicate, ...]

    def test(self, get: Getter, p: Params) -> bool:
        return any(part.test(get, p) for part in self.parts)

    def on(self, obj: object, p: Params) -> bool:
        for part in self.parts:  # noqa: SIM110 (as in All.on)
            if part.on(obj, p):
                return True
        return False

    def fields(self) -> Iterator[str]:
        for part in self.parts:
            yield from part.fields()


@dataclass(frozen=True, slots=True)
class Not:
    part: Predicate

    def test(self, get: Getter, p: Params) -> bool:
        return not self.part.test(get, p)

    def on(self, obj: object, p: Params) -> bool:
        return not self.part.on(obj, p)

    def fields(self) -> Iterator[str]:
        return self.part.fields()


@dataclass(frozen=True, slots=True)
class Compare:
    """`field` compared by `op` (one of OPS) with `value`; for "in", `value` is a tuple of
    values. eq and ne compare anything (None included); the ordered operators are false for
    a missing value (None) and for values that do not order (a string and a number)."""

    field: str
    op: str
    value: Value | tuple[Value, ...]
    # Whether `value` holds a parameter reference (else it is used as it is).
    _has_param: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown comparison operator {self.op!r}")
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        object.__setattr__(self, "_has_param", any(isinstance(v, Param) for v in values))

    def test(self, get: Getter, p: Params) -> bool:
        try:
            actual = get(self.field)
        except (AttributeError, KeyError):
            return False
        return self._holds(actual, p)

    def on(self, obj: object, p: Params) -> bool:
        """test() with the object's attributes as the fields: what the rule engine asks of
        every event a clause looks at, without a getter made and called for each."""
        try:
            actual = getattr(obj, self.field)
        except AttributeError:
            return False
        if self.op == "eq" and not self._has_param:
            return bool(actual == self.value)
        return self._holds(actual, p)

    def _holds(self, actual: Any, p: Params) -> bool:
        op, want = self.op, self.value
        if self._has_param:
            want = (
                tuple(resolve(v, p) for v in want) if isinstance(want, tuple) else resolve(want, p)
            )
        if op == "eq":
            return bool(actual == want)
        if op == "ne":
            return bool(actual != want)
        if op == "in":
            return actual in want  # type: ignore[operator]
        if actual is None:
            return False
        try:
            return bool(ORDERED_OPS[op](actual, want))
        except TypeError:
            return False

    def fields(self) -> Iterator[str]:
        yield self.field


Predicate: TypeAlias = All | AnyOf | Not | Compare
