"""accel/timing.py: two times between the same two boundaries look the same to every
comparison a rule can make of them (the ways are listed in that module's docstring)."""

from __future__ import annotations

import bisect
import operator
import random

from pcapdiag.accel.timing import boundaries, thresholds

_OPS = (operator.lt, operator.le, operator.eq, operator.ge, operator.gt)


def _seen(dt: int, found: dict[str, set[float]]) -> tuple[bool, ...]:
    """Every comparison a rule makes of a time `dt` (ns) between two moments."""
    out = []
    for c in found["window"]:  # within / not_within (rules/engine.py)
        ms = int(c) * 1_000_000
        out += [dt - ms > 0, dt - ms < 0]
    for c in found["ms"]:  # idle_ms and the like: whole ms
        out += [op(dt // 1_000_000, c) for op in _OPS]
    for c in found["elapsed"]:  # elapsed.a.b: seconds rounded to ms
        out += [op(round(dt / 1e9, 3), c) for op in _OPS]
    return tuple(out)


def test_times_in_one_class_compare_alike(builtin_rules) -> None:
    bounds = boundaries(builtin_rules, {})
    found = thresholds(builtin_rules, {})
    assert 1000 in found["window"]  # syn-unanswered's min_silence_ms
    assert 1 in found["elapsed"]  # the Windows doubt's elapsed.rst.end
    assert 60000 in found["ms"]  # an idle_ms threshold
    rng = random.Random(7)
    for _ in range(3000):
        # Around a boundary or anywhere up to a minute.
        b = rng.choice(bounds)
        a = max(0, b + rng.randrange(-3, 3)) if rng.random() < 0.5 else rng.randrange(60 * 10**9)
        i = bisect.bisect_right(bounds, a)
        lo, hi = bounds[i - 1], (bounds[i] if i < len(bounds) else a + 10**9)
        other = rng.randrange(lo, hi)
        assert _seen(a, found) == _seen(other, found), (a, other)


def test_params_given_on_the_command_line_count(builtin_rules) -> None:
    plain = boundaries(builtin_rules, {})
    given = boundaries(builtin_rules, {"PD-TCP-013": {"min_silence_ms": 1234}})
    assert 1234 * 1_000_000 in given and 1234 * 1_000_000 not in plain
