"""Where the times between a failing connection's moments (its SYN, its RST, its end) can
change what the rules say: the first pass puts two such connections in one class only when
each of these times falls between the same two of these boundaries (_triage.c full_class),
so that a class's exemplars speak for all of it however the round trip or the end varies.

Time reaches the rules in three ways, each read off the rules in use (with their
parameters) and turned into boundaries:
- a step's `within` / `not_within` (rules/engine.py): the time in ns against a number of ms;
- a field in milliseconds (`idle_ms`, `lag_ms`, ...: every event field named `*_ms` is a
  time in whole ms, track/events.py) compared with a number;
- `elapsed.a.b` in a `when` (findings/build.py): seconds rounded to ms, compared with a
  number of seconds: the boundaries are found on that very rounding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pcapdiag.rules.model import Rule, Window
from pcapdiag.rules.predicates import Compare, Param

_MS = 1_000_000
_LIMIT = 1 << 62  # no threshold lies beyond (a class of its own past it)


def nodes(value: Any) -> Iterator[Any]:
    """Every dataclass instance held anywhere in `value` (a rule's pattern or outcome)."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in dataclasses.fields(value):
            yield from nodes(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from nodes(v)
    elif isinstance(value, Iterable):
        for v in value:
            yield from nodes(v)


def _numbers(value: Any, p: Mapping[str, Any]) -> list[float]:
    values = value if isinstance(value, tuple) else (value,)
    out = []
    for v in values:
        v = p.get(v.name) if isinstance(v, Param) else v
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out.append(v)
    return out


def thresholds(
    rules: Iterable[Rule], params: Mapping[str, Mapping[str, Any]]
) -> dict[str, set[float]]:
    """The numbers time is compared with, by way: "window" (ms), "ms" (a *_ms field),
    "elapsed" (seconds)."""
    out: dict[str, set[float]] = {"window": set(), "ms": set(), "elapsed": set()}
    for rule in rules:
        p = {**rule.params, **params.get(rule.id, {})}
        for node in nodes((rule.match, rule.outcome)):
            if isinstance(node, Window):
                out["window"].update(_numbers(node.ms, p))
            elif isinstance(node, Compare):
                name = node.field.rpartition(".")[2]
                if node.field.startswith("elapsed."):
                    out["elapsed"].update(_numbers(node.value, p))
                elif name.endswith("_ms"):
                    out["ms"].update(_numbers(node.value, p))
    return out


def _elapsed(ns: int) -> float:
    """findings/build.py _Context's `elapsed`: seconds, rounded to ms."""
    return round(ns / 1e9, 3)


def _first(test: Any) -> int:
    """The smallest time in ns from 0 to _LIMIT for which `test` holds (it holds from some
    point on, never before); _LIMIT if never."""
    lo, hi = 0, _LIMIT
    if not test(hi):
        return _LIMIT
    while lo < hi:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def boundaries(rules: Iterable[Rule], params: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """The sorted boundaries (ns) on a time between two moments of a failing connection."""
    points: set[int] = {0, 1}
    found = thresholds(rules, params)
    for c in found["window"]:
        ms = int(c) * _MS  # rules/engine.py: int(ms) * 1,000,000
        points.update((ms, ms + 1))
    for c in found["ms"]:
        # A whole number of ms (gap // 1,000,000) against c: it changes at every ms around.
        for whole in (math.floor(c), math.ceil(c)):
            points.update((whole * _MS, (whole + 1) * _MS))
    for c in found["elapsed"]:
        points.add(_first(lambda x, c=c: _elapsed(x) >= c))
        points.add(_first(lambda x, c=c: _elapsed(x) > c))
    return sorted(p for p in points if 0 <= p < _LIMIT)
