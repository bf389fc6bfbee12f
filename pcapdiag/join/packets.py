"""The packets of joined connections, read again from each view's file, and which of one
side's packets the other side's host never saw.

A packet is known in another view by what the network does not change: its sender, sequence
number, length and SYN / FIN / RST flags (a retransmission is the same packet again: each
copy is counted). Only packets sent while the other capture was running count, that is
between its first and last frame on the shared clock: after its last frame, it may simply
have stopped.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import FIN, RST, SYN, Segment, format_endpoint
from pcapdiag.io.reader import CaptureReader, Record, open_capture
from pcapdiag.io.records import Frame
from pcapdiag.track.flows import SkippedRun

try:
    from pcapdiag.accel import batches, triage
except ImportError:  # built without the accelerator
    batches = triage = None  # type: ignore[assignment]

_KIND = SYN | FIN | RST


@dataclass(frozen=True, slots=True)
class Packet:
    frame: int
    ts_ns: int
    sender: str  # "ip:port"
    key: tuple[int, int, int]  # seq, payload length, SYN/FIN/RST flags
    flags: int = 0  # all the TCP flags (for a diagram's label)


def read(path: str, frames: set[int], fast: bool = False) -> dict[int, Packet]:
    """The TCP segments among `frames` of the capture at `path`, by frame number. `fast`:
    the accelerator's C batches read past the other frames and decode common segments (the
    same packets: tests/join/test_read.py)."""
    out: dict[int, Packet] = {}
    if not frames:
        return out
    last = max(frames)
    with open_capture(path) as reader:
        for item in _records(reader, frames, last, fast):
            if type(item) is SkippedRun:
                continue
            if isinstance(item, Record):
                if item.number not in frames:
                    if item.number > last:
                        break
                    continue
                data = bytes(item.buf[item.start : item.stop])
                seg = decode(Frame(item.number, item.ts_ns, item.linktype, data, item.orig_len))
            else:
                seg = item
            if isinstance(seg, Segment) and seg.frame in frames:
                out[seg.frame] = Packet(
                    seg.frame,
                    seg.ts_ns,
                    format_endpoint(seg.src, seg.sport),
                    (seg.seq, seg.payload_len, seg.flags & _KIND),
                    seg.flags,
                )
                if seg.frame == last:
                    break
    return out


def _records(
    reader: CaptureReader, frames: set[int], last: int, fast: bool
) -> Iterator[Record | Segment | SkippedRun]:
    if not fast or batches is None or not triage.available():
        yield from (r for r in reader.records() if isinstance(r, Record))
        return
    # A plan that sets every frame aside but those wanted (accel/triage.py Plan).
    skip = bytearray(b"\xff" * ((last + 7) // 8))
    for n in frames:
        skip[(n - 1) >> 3] &= ~(1 << ((n - 1) & 7)) & 0xFF
    plan = triage.Plan(bytes(skip), bytes(len(skip)), 0, 0, 0)
    yield from batches.records(reader, plan, decode_in_c=True)


def pair(mine: Iterable[Packet], theirs: Iterable[Packet]) -> list[tuple[Packet, Packet]]:
    """Each packet of `mine` with the same packet in `theirs` (sender and key), where there
    is one: copies in the order given, each used once."""
    pool: dict[tuple[str, tuple[int, int, int]], deque[Packet]] = defaultdict(deque)
    for q in theirs:
        pool[(q.sender, q.key)].append(q)
    out = []
    for p in mine:
        copies = pool.get((p.sender, p.key))
        if copies:
            out.append((p, copies.popleft()))
    return out


def missing(sent: list[Packet], seen: list[Packet], window: tuple[int, int]) -> list[Packet]:
    """The packets of `sent` (one side's, in the view on its host, times already on the
    other view's clock) sent inside `window` that `seen` (the same side's packets in the
    other view) does not hold. A packet without payload must be there copy for copy; one
    with payload only needs its bytes there, in one segment or several: the capture on the
    sender's host sees segments before segmentation offload cuts them, the other view
    after (and a lost copy whose retransmission arrived is not counted: the claim stays on
    the safe side)."""
    have = Counter(p.key for p in seen if p.key[1] == 0)
    # Sequence numbers wrap at 2**32: counted from a gigabyte before the first packet sent,
    # a connection's numbers stay in order.
    first = min(sent, key=lambda p: p.ts_ns).key[0] if sent else 0
    base = (first - (1 << 30)) & 0xFFFFFFFF
    spans = _merged(
        ((p.key[0] - base) & 0xFFFFFFFF, ((p.key[0] - base) & 0xFFFFFFFF) + p.key[1])
        for p in seen
        if p.key[1]
    )
    lost = []
    for p in sorted(sent, key=lambda p: p.ts_ns):
        if p.key[1] == 0:
            if have[p.key]:
                have[p.key] -= 1
                continue
        else:
            start = (p.key[0] - base) & 0xFFFFFFFF
            if _covered(spans, start, start + p.key[1]):
                continue
        if window[0] <= p.ts_ns <= window[1]:
            lost.append(p)
    return lost


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _covered(spans: list[tuple[int, int]], lo: int, hi: int) -> bool:
    i = bisect.bisect_right(spans, (lo, 1 << 40)) - 1
    return i >= 0 and spans[i][0] <= lo and hi <= spans[i][1]
