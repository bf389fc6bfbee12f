"""accel/timing.py: two round trips between the same two boundaries look the same to every
comparison a rule can make of them (the ways are listed in that module's docstring)."""

from __future__ import annotations

import bisect
import operator
import random

from pcapdiag.accel.timing import boundaries, numbers

GRACE = 3_000_000_000
_OPS = (operator.lt, operator.le, operator.eq, operator.ge, operator.gt)


def _seen(dt: int, c: float) -> tuple[bool, ...]:
    """Every comparison of a round trip `dt` (ns) with a rule's number `c`."""
    out = []
    for x in (dt, dt + GRACE):  # SYN to RST, SYN to the end
        ms = int(c) * 1_000_000
        out += [x - ms > 0, x - ms < 0]  # within / not_within (rules/engine.py)
        elapsed = round(x / 1e9, 3)
        out += [op(elapsed, c) for op in _OPS]
    out += [op(dt // 1_000_000, c) for op in _OPS]  # the RST's idle_ms
    return tuple(out)


def test_round_trips_in_one_class_compare_alike(builtin_rules) -> None:
    bounds = boundaries(builtin_rules, {}, GRACE)
    values = {v for r in builtin_rules for v in numbers(r)}
    assert {1000, 1} <= values  # min_silence_ms, the Windows doubt's elapsed.rst.end
    rng = random.Random(7)
    for _ in range(3000):
        # Around a boundary or anywhere up to a minute.
        b = rng.choice(bounds)
        a = max(0, b + rng.randrange(-3, 3)) if rng.random() < 0.5 else rng.randrange(60 * 10**9)
        i = bisect.bisect_right(bounds, a)
        lo, hi = bounds[i - 1], (bounds[i] if i < len(bounds) else a + 10**9)
        other = rng.randrange(lo, hi)
        for c in values:
            assert _seen(a, c) == _seen(other, c), (a, other, c)


def test_params_given_on_the_command_line_count(builtin_rules) -> None:
    plain = boundaries(builtin_rules, {}, GRACE)
    given = boundaries(builtin_rules, {"PD-TCP-013": {"min_silence_ms": 1234}}, GRACE)
    assert 1234 * 1_000_000 in given and 1234 * 1_000_000 not in plain
