"""The time span of a capture file from its first and last bytes only.

A run with a time window (`--since/--until`) can skip a capture that lies wholly outside it
without reading it. `probe_file` tells the timestamp of the first frame and of the last frame
from one read at the head of the file and one read at its tail, so that it costs two range
requests on an object store (open an fsspec file with `cache_type="none"`, or a small
`block_size`, for the reads to be of the size asked).

Timestamps are computed exactly as `pcapdiag.io.reader` computes them (integer nanoseconds since
the epoch). `last_ts_ns` is given only when the tail proves it, else None:

- A file whose head and tail reads cover it whole is walked from the start exactly as the reader
  walks it (the same checks, the same stop at damage), so both values are the reader's.
- pcap: records have no backward link. In the tail, a chain of record headers that are each
  plausible (caplen within the snaplen, when that is not 0, and the reader's limit; caplen <=
  origlen; origlen > 0; sub-second field in range; timestamp at most a day before the first
  frame's) and that ends exactly at the end of the file is searched for, at least `MIN_CHAIN`
  records long. Every such chain must end with the same record (chains that merge do), or
  nothing is proven.
- pcapng: every block repeats its length at its end, so the tail is walked backwards to the last
  Enhanced or obsolete Packet Block. Its timestamp needs the Interface Description Block of its
  section. When the walk reaches that section's header in the tail, the section is walked
  forward from there, as the reader would. Otherwise the IDBs read at the head are used, which
  is right when the file has one section: that is accepted only when the head holds a single
  section header, whose Section Length (when given) spans the whole file, the interface id is
  among the head's IDBs, no section header lies after the packet block, and its timestamp is
  neither more than a day before the first frame's nor more than `SPAN_NS` after it. (A file
  of several sections whose later headers all lie between the head and the tail reads, and
  whose later IDB for the same interface id has another resolution or offset that still gives
  a plausible time, cannot be told apart from a single section: that residual case is wrong.)

What lies between the head and the tail is not read: a file damaged there (the reader stops at
the damage) gets the time of its real last record.

A Simple Packet Block has no timestamp (the reader gives it 0): a file whose first or last frame
is one gets None for that end. gzip-compressed files cannot be read from the tail: (None, None).
Corrupt or short input never raises; only input that is not a capture at all raises
`CaptureError`. Read errors (OSError) are left to the caller.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pcapdiag.errors import CaptureError
from pcapdiag.io.reader import (
    _BOM_BE,
    _BOM_LE,
    _GZIP,
    _NG_BLOCK_HDR,
    _NG_EPB,
    _NG_PB,
    _NG_SHB_VER,
    _NG_U32,
    _PCAP_FILE_HDR,
    _PCAP_MAGICS,
    _PCAP_REC_HDR,
    _PCAPNG_SHB,
    BT_EPB,
    BT_IDB,
    BT_PB,
    BT_SHB,
    BT_SPB,
    MAX_BLOCK,
    MAX_CAPLEN,
    idb_timing,
    open_error,
    section_byte_order,
)

# What is read at each end. Small, for a query over a day of a fleet's files probes every
# one (half a million files of 320 KiB is 160 GB): the head needs the file header and the
# first packet record (pcapng: the section and interface blocks before it, a few KiB); the
# tail, a few of the last records (pcap: MIN_CHAIN of them, 64 KiB each at most) or the last
# packet block (pcapng).
HEAD_BYTES = 64 * 1024  # read at the start of the file
PCAPNG_TAIL_BYTES = 256 * 1024  # read at the end of a pcapng file
PCAP_TAIL_BYTES = 256 * 1024  # read at the end of a pcap file
MIN_CHAIN = 4  # pcap: records a tail chain needs to be believed
DAY_NS = 86_400 * 1_000_000_000
# pcapng, last packet read with the head's IDBs: a time further than this after the first frame
# is taken for a sign of a later section with other IDBs, and not believed.
SPAN_NS = 366 * DAY_NS

# pcapng block types a backward walk may step over (draft-ietf-opsawg-pcapng section 10.1):
# IDB, PB, SPB, NRB, ISB, EPB, IRIG, ARINC 429, systemd journal, DSB, SHB, custom blocks.
_KNOWN_BLOCKS = frozenset({*range(0x01, 0x0B), BT_SHB, 0x00000BAD, 0x40000BAD})

_SHB_LEN = {e: struct.Struct(e + "q") for e in "<>"}  # section length, at offset 16


@dataclass(frozen=True, slots=True)
class Probe:
    first_ts_ns: int | None  # timestamp of the first packet record (None: none could be read)
    last_ts_ns: int | None  # timestamp of the last packet record when proven from the tail
    size: int


def probe_path(path: str) -> Probe:
    """Probe a local file. Raises `CaptureError` when it is missing or not a capture."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode):
            return Probe(None, None, 0)  # a pipe or device: no tail to seek to
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise open_error(path, exc) from None
    with fh:
        return probe_file(fh, os.fstat(fh.fileno()).st_size)


def probe_file(fh: BinaryIO, size: int) -> Probe:
    """Probe a seekable binary file of `size` bytes, positioned anywhere: one read at its head
    and (when the head does not cover it) one at its tail."""
    size = max(size, 0)
    fh.seek(0)
    head = _read(fh, min(size, HEAD_BYTES))
    if head.startswith(_GZIP):
        return Probe(None, None, size)
    magic = head[:4]
    if magic in _PCAP_MAGICS:
        tail_bytes = PCAP_TAIL_BYTES
    elif magic == _PCAPNG_SHB:
        tail_bytes = PCAPNG_TAIL_BYTES
    elif len(head) < 4 and any(m.startswith(head) for m in (*_PCAP_MAGICS, _PCAPNG_SHB, _GZIP)):
        return Probe(None, None, size)  # empty, or cut short inside the magic
    else:
        hexhead = " ".join(f"{b:02x}" for b in head[:4])
        raise CaptureError(f"{_name(fh)}: not a pcap or pcapng file (starts with bytes {hexhead})")

    # The tail: the whole rest of the file when it joins the head, else its last bytes.
    tail: bytes | None = None
    if len(head) < size:
        if len(head) < min(size, HEAD_BYTES):
            pass  # the file is shorter than `size` says: no end to read back from
        elif size - tail_bytes <= len(head):
            fh.seek(len(head))
            head += _read(fh, size - len(head))
        else:
            fh.seek(size - tail_bytes)
            tail = _read(fh, tail_bytes)
            if len(tail) != tail_bytes:
                tail = None
    whole = len(head) == size

    if magic in _PCAP_MAGICS:
        first, last = _probe_pcap(head, whole, tail, size)
    else:
        first, last = _probe_pcapng(head, whole, tail, size)
    return Probe(first, last, size)


def _read(fh: BinaryIO, n: int) -> bytes:
    """Up to n bytes (fewer only at the end of the file)."""
    parts: list[bytes] = []
    while n > 0:
        data = fh.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _name(fh: BinaryIO) -> str:
    for attr in ("full_name", "name", "path"):
        value = getattr(fh, attr, None)
        if isinstance(value, str) and value:
            return value
    return "<capture>"


# -- pcap ----------------------------------------------------------------------------------------


def _probe_pcap(
    head: bytes, whole: bool, tail: bytes | None, size: int
) -> tuple[int | None, int | None]:
    if len(head) < 24:
        return None, None
    order, nano = _PCAP_MAGICS[head[:4]]
    snaplen = _PCAP_FILE_HDR[order].unpack_from(head, 0)[5]
    frac_mul = 1 if nano else 1000
    rec = _PCAP_REC_HDR[order].unpack_from
    if whole:
        # The reader's loop (reader._pcap_records), without the frames.
        first: int | None = None
        last: int | None = None
        pos = 24
        while size - pos >= 16:
            sec, frac, caplen, _orig = rec(head, pos)
            if caplen > MAX_CAPLEN or pos + 16 + caplen > size:
                break
            last = sec * 1_000_000_000 + frac * frac_mul
            if first is None:
                first = last
            pos += 16 + caplen
        return first, last
    first = None
    if len(head) >= 40:
        sec, frac, caplen, _orig = rec(head, 24)
        if caplen <= MAX_CAPLEN and 40 + caplen <= size:
            first = sec * 1_000_000_000 + frac * frac_mul
    if first is None or tail is None:
        return first, None
    return first, _pcap_tail_last(tail, order, nano, snaplen, first)


def _pcap_tail_last(tail: bytes, order: str, nano: bool, snaplen: int, first: int) -> int | None:
    """The timestamp of the record that ends the file, from a tail that ends with it: see the
    module docstring."""
    n = len(tail)
    if n < 16:
        return None
    # cols[r][q] is the u32 at offset 4*q + r: every offset's word, unpacked at C speed.
    cols = [struct.unpack_from(f"{order}{(n - r) // 4}I", tail, r) for r in range(4)]
    limit = min(snaplen or MAX_CAPLEN, MAX_CAPLEN)
    frac_max = 1_000_000_000 if nano else 1_000_000
    frac_mul = 1 if nano else 1000
    min_ts = first - DAY_NS
    # For each offset, the records of the chain from there to the end of the file (0: none)
    # and where its last record starts.
    count = [0] * (n + 1)
    ends = [0] * (n + 1)
    for i in range(n - 16, -1, -1):
        col = cols[i & 3]
        q = i >> 2
        caplen = col[q + 2]
        nxt = i + 16 + caplen
        if nxt != n and (nxt > n or not count[nxt]):
            continue
        orig = col[q + 3]
        if not orig or caplen > orig or caplen > limit:
            continue
        frac = col[q + 1]
        if frac >= frac_max or col[q] * 1_000_000_000 + frac * frac_mul < min_ts:
            continue
        if nxt == n:
            count[i], ends[i] = 1, i
        else:
            count[i], ends[i] = count[nxt] + 1, ends[nxt]
    found = {ends[i] for i in range(n + 1) if count[i] >= MIN_CHAIN}
    if len(found) != 1:
        return None  # no chain, or chains that disagree on the last record
    (at,) = found
    sec, frac, _caplen, _orig = _PCAP_REC_HDR[order].unpack_from(tail, at)
    return sec * 1_000_000_000 + frac * frac_mul


# -- pcapng --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Walk:
    """What a forward walk over pcapng blocks saw (reader._pcapng_frames, without frames)."""

    first: int | None = None  # ts of the first frame (None: an SPB, which has none)
    last: int | None = None  # ts of the last frame
    frames: int = 0
    sections: int = 0
    damaged: bool = False  # stopped where the reader reports damage
    order: str = "<"  # byte order of the first section
    section_length: int = -1  # of the first section, as its header gives it
    shb_len: int = 0
    ifaces: tuple[tuple[int, int, int], ...] = ()  # first section: (mul, div, offset ns)


def _ng_forward(buf: bytes, pos: int, end: int, at_eof: bool) -> _Walk:
    """Walk blocks from `pos` (a section header) to `end`, with the reader's checks. When
    `at_eof` is False, `end` is only the end of what was read and a block running past it
    ends the walk without damage."""
    walk = _Walk()
    order = "<"
    ifaces: list[tuple[int, int, int]] = []
    while True:
        if end - pos < 12:
            walk.damaged = at_eof and pos != end
            break
        if buf[pos : pos + 4] == _PCAPNG_SHB:
            switched = section_byte_order(buf, pos)
            if switched is None:
                walk.damaged = True
                break
            order = switched
        btype, blen = _NG_BLOCK_HDR[order].unpack_from(buf, pos)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            walk.damaged = True
            break
        if end - pos < blen:
            walk.damaged = at_eof
            break
        if _NG_U32[order].unpack_from(buf, pos + blen - 4)[0] != blen:
            walk.damaged = True
            break
        ts: int | None
        if btype in (BT_EPB, BT_PB):
            if blen < 32:
                walk.damaged = True
                break
            if btype == BT_EPB:
                ifid, ts_hi, ts_lo, caplen, _orig = _NG_EPB[order].unpack_from(buf, pos + 8)
            else:
                ifid, _drops, ts_hi, ts_lo, caplen, _orig = _NG_PB[order].unpack_from(buf, pos + 8)
            if ifid >= len(ifaces) or caplen > blen - 32 or caplen > MAX_CAPLEN:
                walk.damaged = True
                break
            mul, div, off = ifaces[ifid]
            ts = ((ts_hi << 32) | ts_lo) * mul // div + off
            _frame(walk, ts)
        elif btype == BT_SPB:
            if not ifaces or blen < 16:
                walk.damaged = True
                break
            _frame(walk, None)
        elif btype == BT_IDB:
            if blen < 20:
                walk.damaged = True
                break
            ifaces.append(idb_timing(buf, pos, blen, order))
            if walk.sections == 1:
                walk.ifaces = tuple(ifaces)
        elif btype == BT_SHB:
            if blen < 28 or _NG_SHB_VER[order].unpack_from(buf, pos + 12)[0] != 1:
                walk.damaged = True
                break
            ifaces = []
            walk.sections += 1
            if walk.sections == 1:
                walk.order = order
                walk.shb_len = blen
                walk.section_length = _SHB_LEN[order].unpack_from(buf, pos + 16)[0]
        pos += blen
    return walk


def _frame(walk: _Walk, ts: int | None) -> None:
    if not walk.frames:
        walk.first = ts
    walk.last = ts
    walk.frames += 1


def _probe_pcapng(
    head: bytes, whole: bool, tail: bytes | None, size: int
) -> tuple[int | None, int | None]:
    walk = _ng_forward(head, 0, len(head), whole)
    if whole:
        return walk.first, walk.last
    if tail is None:
        return walk.first, None
    return walk.first, _pcapng_tail_last(walk, tail, size)


def _pcapng_tail_last(walk: _Walk, tail: bytes, size: int) -> int | None:
    """The timestamp of the last packet block, from a tail that ends the file: see the module
    docstring."""
    for order in (walk.order, ">" if walk.order == "<" else "<"):
        blocks = _ng_backward(tail, order)
        if blocks:
            break
    else:
        return None
    packet: tuple[int, int, int] | None = None
    for block in blocks:
        if block[1] in (BT_SHB, BT_SPB):
            return None  # a section with no packet in the tail, or a frame with no time
        if block[1] == BT_IDB and block[2] < 20:
            return None  # the reader stops here
        if block[1] in (BT_EPB, BT_PB):
            packet = block
            break
    if packet is None:
        return None
    start, btype, blen = packet
    if blocks[-1][1] == BT_SHB:
        # The packet's section starts in the tail: walk it as the reader would.
        shb = blocks[-1][0]
        section = _ng_forward(tail, shb, len(tail), True)
        if section.damaged or not section.frames:
            return None
        return section.last
    # The IDBs at the head, if the file has a single section.
    if order != walk.order or walk.sections != 1 or walk.damaged or walk.first is None:
        return None
    if walk.section_length != -1 and walk.shb_len + walk.section_length != size:
        return None
    if blen < 32:
        return None
    if btype == BT_EPB:
        ifid, ts_hi, ts_lo, caplen, _orig = _NG_EPB[order].unpack_from(tail, start + 8)
    else:
        ifid, _drops, ts_hi, ts_lo, caplen, _orig = _NG_PB[order].unpack_from(tail, start + 8)
    if ifid >= len(walk.ifaces) or caplen > blen - 32 or caplen > MAX_CAPLEN:
        return None
    mul, div, off = walk.ifaces[ifid]
    ts = ((ts_hi << 32) | ts_lo) * mul // div + off
    if not walk.first - DAY_NS <= ts <= walk.first + SPAN_NS:
        return None  # an interface read with another section's resolution, most likely
    return ts


def _ng_backward(tail: bytes, order: str) -> list[tuple[int, int, int]]:
    """Blocks (offset in the tail, type, length) from the end of the tail backwards, each with
    matching leading and trailing lengths and a known type, up to a section header or until
    the walk can go no further."""
    u32 = _NG_U32[order].unpack_from
    hdr = _NG_BLOCK_HDR[order].unpack_from
    blocks: list[tuple[int, int, int]] = []
    end = len(tail)
    while end >= 12:
        blen = u32(tail, end - 4)[0]
        start = end - blen
        if blen < 12 or blen % 4 or blen > MAX_BLOCK or start < 0:
            break
        btype, lead = hdr(tail, start)
        if lead != blen or btype not in _KNOWN_BLOCKS:
            break
        if btype == BT_SHB:
            bom = tail[start + 8 : start + 12]
            if bom != (_BOM_LE if order == "<" else _BOM_BE):
                break
            blocks.append((start, btype, blen))
            break
        blocks.append((start, btype, blen))
        end = start
    return blocks
