"""The record stream of a file the first pass planned, read in C batches.

The reader (io.reader) offers each record or block to a FastForward hook first; the hooks here
read on in C (`_triage.batch` for pcap, `_triage.ng_batch` for a pcapng section of Ethernet
interfaces) and hand back one Chunk per batch. `records` then unpacks the chunks into what the
session takes: Segments built in C (common TCP segments, when fast decoding is on), Records
for the session to decode, and a SkippedRun for each run of frames the plan sets aside. The
records the reader reads itself (a pcapng section the hooks step aside for, what follows
damage) are held to the same plan here, so the session sees one stream either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pcapdiag.accel import _triage  # type: ignore[attr-defined]
from pcapdiag.accel.shared import NG_BATCH_IFACES
from pcapdiag.accel.triage import Plan
from pcapdiag.decode.packets import Segment
from pcapdiag.io.reader import MAX_CAPLEN, CaptureReader, Chunk, FastForward, Interface, Record
from pcapdiag.io.records import Buffer
from pcapdiag.track.flows import EvictOldest, SkippedRun

# Records read by one C batch.
BATCH = 4096
# ng_batch computes timestamps in 128 bits from 64-bit factors.
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def records(
    reader: CaptureReader, plan: Plan, decode_in_c: bool
) -> Iterator[Record | Segment | SkippedRun | EvictOldest]:
    """The records of `reader`'s file as the session takes them, `plan`'s frames set aside
    in runs, and after each frame `plan.evict` marks an EvictOldest. With `decode_in_c`,
    common TCP segments come as Segments built in C."""
    seg_type = Segment if decode_in_c else None
    hook = _pcap_hook(plan, seg_type) if reader.format == "pcap" else _pcapng_hook(plan, seg_type)
    bits, own, evict = plan.bits, plan.own, plan.evict
    nbits, nown, nevict = len(bits) * 8, len(own) * 8, len(evict) * 8
    stamps: list[int] = []  # the run's frames that are this worker's, by time
    in_run = False
    for item in reader.records(hook):
        if type(item) is Chunk:
            if in_run:
                yield SkippedRun(len(stamps), stamps, 0)
                stamps, in_run = [], False
            items, times, buf, linktype = item.payload  # type: ignore[misc]
            for x in items:
                if type(x) is not tuple:
                    yield x  # a Segment
                elif len(x) == 2:
                    yield SkippedRun(x[0], times, x[1])
                elif len(x) == 1:
                    yield EvictOldest(x[0])
                else:
                    start, stop, number, ts, orig = x
                    yield Record(buf, start, stop, number, ts, linktype, orig)
            continue
        assert type(item) is Record
        i = item.number - 1
        if i < nbits and bits[i >> 3] >> (i & 7) & 1:
            in_run = True
            if i < nown and own[i >> 3] >> (i & 7) & 1:
                stamps.append(item.ts_ns)
        else:
            if in_run:
                yield SkippedRun(len(stamps), stamps, 0)
                stamps, in_run = [], False
            yield item
        if i < nevict and evict[i >> 3] >> (i & 7) & 1:
            if in_run:
                yield SkippedRun(len(stamps), stamps, 0)
                stamps, in_run = [], False
            yield EvictOldest(item.ts_ns)
    if in_run:
        yield SkippedRun(len(stamps), stamps, 0)


def _pcap_hook(plan: Plan, seg_type: type | None) -> FastForward:
    def read_on(
        buf: Buffer, pos: int, number: int, big: bool, ifaces: Sequence[Interface]
    ) -> Chunk | None:
        linktype, _snap, mul, _div, _off = ifaces[0]
        items, stamps, new_pos, new_number, first, last = _triage.batch(
            buf,
            pos,
            big,
            mul == 1,  # nanosecond timestamps
            plan.bits,
            plan.own,
            plan.evict,
            number,
            BATCH,
            MAX_CAPLEN,
            linktype == 1 and seg_type is not None,
            seg_type,
        )
        if new_number == number:
            return None
        return _chunk(new_pos, new_number, first, last, items, stamps, buf, linktype)

    return read_on


def _pcapng_hook(plan: Plan, seg_type: type | None) -> FastForward:
    def read_on(
        buf: Buffer, pos: int, number: int, big: bool, ifaces: Sequence[Interface]
    ) -> Chunk | None:
        times = [(i.ts_mul, i.ts_div, i.ts_offset_ns) for i in ifaces]
        if (
            len(ifaces) > NG_BATCH_IFACES
            or any(i.linktype != 1 for i in ifaces)
            or any(not _I64_MIN <= v <= _I64_MAX for t in times for v in t)
        ):
            # The plan was made for Ethernet only, and ng_batch's timestamps need 64-bit
            # factors: the reader reads such a section itself.
            return None
        items, stamps, new_pos, new_number, first, last = _triage.ng_batch(
            buf,
            pos,
            big,
            plan.bits,
            plan.own,
            plan.evict,
            number,
            BATCH,
            MAX_CAPLEN,
            times,
            seg_type,
        )
        if new_pos == pos:
            return None
        return _chunk(new_pos, new_number, first, last, items, stamps, buf, 1)

    return read_on


def _chunk(
    end: int,
    number: int,
    first: int | None,
    last: int | None,
    items: list[Any],
    stamps: Any,
    buf: Buffer,
    linktype: int,
) -> Chunk:
    times = memoryview(stamps).cast("q")
    return Chunk(end, number, first, last, (items, times, buf, linktype))
