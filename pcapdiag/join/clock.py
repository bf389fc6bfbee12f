"""How far each view's clock is from the first view's, from packets both captured.

A connection's handshake crosses both capture points in both directions: the SYN leaves the
client's side at T1 (view A) and passes the other point at T2 (view B), the SYN-ACK passes B
at T3 and A at T4. With the path between the points as long one way as the other, B's clock
is ((T2 - T1) + (T3 - T4)) / 2 ahead of A's and the path takes ((T4 - T1) - (T3 - T2)) / 2
each way: the offset and delay of NTP's on-wire exchange (RFC 5905 section 8). A path
slower one way than the other moves a sample by up to the one-way delay, so a sample holds
the offset only within that. Each handshake seen in both views gives one sample; the median
is the offset, known within the larger of half the samples' range and their smallest
one-way delay, and with samples spread over time their slope is the drift.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Exchange:
    """One handshake seen by both views: T1..T4 as above, in each view's own clock (ns)."""

    t1: int  # SYN in view A
    t2: int  # SYN in view B
    t3: int  # SYN-ACK in view B
    t4: int  # SYN-ACK in view A

    @property
    def offset_ns(self) -> float:
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2

    @property
    def delay_ns(self) -> float:
        return ((self.t4 - self.t1) - (self.t3 - self.t2)) / 2


@dataclass(frozen=True, slots=True)
class Clock:
    """One view's clock against the reference view's: add `offset_ns` to a reference time to
    get this view's, within +/- `spread_ns`. `how_sure` is high (three samples or more, and
    known within 1 ms), medium (within 10 ms), low (less), or none (no handshake seen in
    both: offset 0, nothing known)."""

    capture: str
    offset_ns: int
    spread_ns: int  # the offset is known within +/- this
    delay_ns: int  # one-way delay between the two capture points (median)
    samples: int
    drift_ppm: float | None  # the offset's slope over the capture, when it can be told
    how_sure: str

    def to_reference(self, ts_ns: int) -> int:
        """A time of this view in the reference view's clock."""
        return ts_ns - self.offset_ns


def reference(capture: str) -> Clock:
    return Clock(capture, 0, 0, 0, 0, None, "reference")


def estimate(capture: str, exchanges: list[Exchange]) -> Clock:
    if not exchanges:
        return Clock(capture, 0, 0, 0, 0, None, "none")
    offsets = [e.offset_ns for e in exchanges]
    offset = statistics.median(offsets)
    delay = statistics.median(e.delay_ns for e in exchanges)
    spread = max((max(offsets) - min(offsets)) / 2, min(max(e.delay_ns, 0) for e in exchanges))
    n = len(exchanges)
    if n >= 3 and spread <= 1_000_000:
        how = "high"
    elif spread <= 10_000_000:
        how = "medium"
    else:
        how = "low"
    return Clock(capture, round(offset), round(spread), round(delay), n, _drift(exchanges), how)


def _drift(exchanges: list[Exchange]) -> float | None:
    """The offset's least-squares slope against time, in parts per million, when three or
    more samples span at least 10 s (shorter spans show the path's jitter, not the clocks)."""
    if len(exchanges) < 3:
        return None
    xs = [e.t1 for e in exchanges]
    if max(xs) - min(xs) < 10_000_000_000:
        return None
    ys = [e.offset_ns for e in exchanges]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return round(sxy / sxx * 1e6, 2)
