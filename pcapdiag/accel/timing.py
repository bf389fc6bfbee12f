"""Where the time between a refused connection's SYN and its RST can change what the rules
say: the first pass puts two refused connections in one class only when that time falls
between the same two of these boundaries (_triage.c refused), so that a class's exemplars
speak for all of it however the round trip varies.

The time reaches the rules in four ways, each turned into boundaries for every number a rule
holds (over-splitting costs a little speed, never a result):
- `within` / `not_within` (rules/engine.py): the time in ns against a number of ms;
- the RST's `idle_ms`, the time in whole ms (track/connection.py: gap // 1,000,000);
- `elapsed.a.b` in a `when` (findings/build.py): seconds rounded to ms, compared with a
  number of seconds: the boundaries are found on that very rounding;
- each of these from the SYN to the connection's `end`, which the tracker puts `grace_ns`
  after the RST for every connection the pass counts (flows.FlowTable._close_tcp).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pcapdiag.rules.model import Rule

_MS = 1_000_000
_LIMIT = 1 << 62  # no threshold lies beyond (a class of its own past it)


def numbers(value: Any) -> Iterator[float]:
    """Every number held anywhere in `value` (a rule, its patterns, predicates, outcome)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if math.isfinite(value):
            yield value
    elif isinstance(value, str | bytes):
        return
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from numbers(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, Iterable):
        for v in value:
            yield from numbers(v)


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


def boundaries(
    rules: Iterable[Rule], params: Mapping[str, Mapping[str, Any]], grace_ns: int
) -> list[int]:
    """The sorted boundaries (ns) on the time from a refused connection's SYN to its RST."""
    values: set[float] = {0.0}
    for rule in rules:
        values.update(numbers(rule))
        values.update(numbers(dict(params.get(rule.id, {}))))
    points: set[int] = {0, 1}
    for c in values:
        if abs(c) > _LIMIT / 1e9 / 4:
            continue
        ms = int(c) * _MS  # rules/engine.py: int(ms) * 1,000,000
        floor, ceil = math.floor(c) * _MS, math.ceil(c) * _MS
        for p in (ms, ms + 1, floor, floor + _MS, ceil, ceil + _MS):
            points.update((p, p - grace_ns, p - grace_ns + 1))
        for p in (
            _first(lambda x, c=c: _elapsed(x) >= c),
            _first(lambda x, c=c: _elapsed(x) > c),
        ):
            points.update((p, p - grace_ns))
    return sorted(p for p in points if 0 <= p < _LIMIT)
