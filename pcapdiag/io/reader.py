"""Capture framing: turn a pcap or pcapng file (optionally gzip-compressed) into `Frame`s.

This is the hot path, so records are cut with precompiled `struct.Struct`s straight out of one
buffer: the whole file through `mmap` for a regular uncompressed file, or a chunked buffer that
is refilled from the stream for gzip and stdin. The same two loops (one per format) serve both
cases: an mmap buffer is simply a buffer whose end is already the end of the file.

Formats:
- pcap: the libpcap file format (draft-ietf-opsawg-pcap), both byte orders, microsecond magic
  0xA1B2C3D4 and nanosecond magic 0xA1B23C4D.
- pcapng: draft-ietf-opsawg-pcapng. Several sections (each with its own byte order), several
  interfaces per section (each with its own link type, `if_tsresol` and `if_tsoffset`).

Frame numbers follow Wireshark (tshark 4.0): every Enhanced, Simple and obsolete Packet Block
gets a number, and so do Custom Blocks (types 0x00000BAD and 0x40000BAD) and systemd Journal
Export Blocks, which Wireshark lists as frames of their own; those numbers are used up but no
`Frame` is yielded for them, so the numbers of the yielded frames can have gaps. Every other block
(IDB, NRB, ISB, DSB, unknown types) is skipped without using a number.

Timestamps are integer nanoseconds since the epoch. A Simple Packet Block carries no timestamp
(Wireshark shows none); its frames get ts_ns = 0.

Damage (a cut-short or corrupt file) never raises: iteration stops and `reader.damage` tells
where, after every frame before the damage has been yielded. `CaptureError` is kept for input
that is not a capture at all.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, NamedTuple, Protocol, cast

from pcapdiag.errors import CaptureError
from pcapdiag.io.records import Buffer, Damage, Frame


class Record(NamedTuple):
    """One packet record, still in the reader's buffer: a decoder can read its bytes where
    they lie, with no Frame made and no bytes copied (the hot path)."""

    buf: Buffer
    start: int  # the frame's bytes are buf[start:stop]
    stop: int
    number: int  # 1-based, as Wireshark numbers it
    ts_ns: int
    linktype: int
    orig_len: int


class Interface(NamedTuple):
    """What a record's bytes and timestamp mean: the file header (pcap) or an Interface
    Description Block (pcapng). A timestamp in ns is units * ts_mul // ts_div + ts_offset_ns."""

    linktype: int
    snaplen: int
    ts_mul: int
    ts_div: int
    ts_offset_ns: int


@dataclass(slots=True)
class Chunk:
    """Records a FastForward hook read on the reader's behalf. The reader yields it as it is:
    what the hook read (`payload`) means nothing to the reader, which takes only where the
    hook stopped and the timestamps it saw."""

    end: int  # buffer position after the last record or block read
    numbered: int  # the last frame number used
    first_ts_ns: int | None
    last_ts_ns: int | None
    payload: object


class FastForward(Protocol):
    """Reads on from `pos` in a file mapped whole in memory, faster than the reader would:
    records (pcap) or blocks (pcapng) of the current section, whose byte order and interfaces
    are given, numbered on from `number`. Returns None when it read nothing (the reader then
    reads the next record or block itself, and may ask again after it)."""

    def __call__(
        self, buf: Buffer, pos: int, number: int, big_endian: bool, interfaces: Sequence[Interface]
    ) -> Chunk | None: ...


# Wireshark refuses records longer than this for ordinary link types
# (WTAP_MAX_PACKET_SIZE_STANDARD); libpcap's own limit is the same 256 KiB.
MAX_CAPLEN = 262144
# Upper bound for any pcapng block, so that a corrupt length cannot make us buffer gigabytes from
# a stream. Generous compared with MAX_CAPLEN because NRBs and custom blocks can be large.
MAX_BLOCK = 16 * 1024 * 1024
CHUNK = 1024 * 1024
# Compressed bytes fed to zlib at a time: zlib reports corruption without handing back what it
# decompressed from the same call, so small steps keep the frames before the damage.
GZIP_STEP = 64 * 1024

_PCAP_MAGICS = {
    # first four bytes of the file -> (byte order, nanosecond resolution)
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"  # palindromic, so readable before the byte order is known
_BOM_LE = b"\x4d\x3c\x2b\x1a"  # 0x1A2B3C4D written little-endian
_BOM_BE = b"\x1a\x2b\x3c\x4d"
_GZIP = b"\x1f\x8b"

# pcapng block types (draft-ietf-opsawg-pcapng section 10.1 registry)
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block (appendix A)
BT_SPB = 0x00000003
BT_EPB = 0x00000006
# Blocks Wireshark numbers as frames without them being packets (see module docstring).
_NUMBERED_NON_PACKETS = frozenset({0x00000BAD, 0x40000BAD, 0x00000009})

_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

_PCAP_FILE_HDR = {e: struct.Struct(e + "4sHHiIII") for e in "<>"}
_PCAP_REC_HDR = {e: struct.Struct(e + "IIII") for e in "<>"}
_NG_BLOCK_HDR = {e: struct.Struct(e + "II") for e in "<>"}
_NG_U32 = {e: struct.Struct(e + "I") for e in "<>"}
_NG_SHB_VER = {e: struct.Struct(e + "HH") for e in "<>"}
_NG_IDB = {e: struct.Struct(e + "HHI") for e in "<>"}
_NG_OPT = {e: struct.Struct(e + "HH") for e in "<>"}
_NG_I64 = {e: struct.Struct(e + "q") for e in "<>"}
_NG_EPB = {e: struct.Struct(e + "IIIII") for e in "<>"}  # if id, ts high, ts low, caplen, len
_NG_PB = {e: struct.Struct(e + "HHIIII") for e in "<>"}  # if id, drops, ts hi/lo, caplen, len


class _StreamDamage(Exception):
    """Raised by a stream when its bytes cannot be produced (corrupt or truncated gzip)."""


class _GzipStream:
    """Decompresses a gzip stream chunk by chunk (RFC 1952), including concatenated members."""

    def __init__(self, raw: Callable[[int], bytes], head: bytes) -> None:
        self._raw = raw
        self._pending = head  # compressed bytes not yet fed to the decompressor
        self._dec = zlib.decompressobj(wbits=31)
        self._done = False
        self._error: str | None = None

    def read(self, n: int) -> bytes:
        if self._error is not None:
            raise _StreamDamage(self._error)
        out: list[bytes] = []
        got = 0
        while got < n and not self._done:
            piece = self._step()
            if piece:
                out.append(piece)
                got += len(piece)
            if self._error is not None:
                if not out:
                    raise _StreamDamage(self._error)
                break  # hand out what was decompressed; fail on the next read
        return b"".join(out)

    def _step(self) -> bytes:
        if self._pending:
            data = self._pending[:GZIP_STEP]
            self._pending = self._pending[GZIP_STEP:]
        else:
            data = self._raw(GZIP_STEP)
        if not data:
            if not self._dec.eof:
                self._error = "gzip stream is truncated"
            self._done = True
            return b""
        backup = self._dec.copy()
        try:
            piece = self._dec.decompress(data)
        except zlib.error as exc:
            self._error = f"gzip stream is corrupt ({exc})"
            self._done = True
            return self._salvage(backup, data)
        if self._dec.eof:
            rest = self._dec.unused_data
            if not rest:
                rest = self._raw(GZIP_STEP)
                if not rest:
                    self._done = True
                    return piece
            # RFC 1952 section 2.2: a gzip file may hold several members back to back.
            if not rest.startswith(_GZIP[: len(rest)]):
                self._error = "garbage after the end of the gzip stream"
                self._done = True
            else:
                self._pending = rest + self._pending
                self._dec = zlib.decompressobj(wbits=31)
        return piece

    @staticmethod
    def _salvage(dec: zlib._Decompress, data: bytes) -> bytes:
        """zlib raises without returning what it decompressed in the failing call: replay that
        input in small pieces to keep everything before the bad spot."""
        out = []
        for i in range(0, len(data), 256):
            before = dec.copy()
            try:
                out.append(dec.decompress(data[i : i + 256]))
            except zlib.error:
                # Once more byte by byte, for the output that came before the bad byte.
                for j in range(i, min(i + 256, len(data))):
                    try:
                        out.append(before.decompress(data[j : j + 1]))
                    except zlib.error:
                        break
                break
        return b"".join(out)


def _hexhead(head: bytes) -> str:
    return " ".join(f"{b:02x}" for b in head[:4])


def open_capture(source: str) -> CaptureReader:
    """Open a capture file, stdin when `source` is "-", or a URL (io/remote.py). Raises
    `CaptureError` when the input is missing or is not a pcap/pcapng capture (compressed or
    not)."""
    if source == "-":
        name = "<stdin>"
        stream: BinaryIO = sys.stdin.buffer
        # read1: what the pipe holds now, not a whole chunk, so that a live capture's
        # packets are analysed as they come (`tcpdump -w - | pcapdiag analyze -`).
        return _from_stream(name, stream.read1, None, None)  # type: ignore[attr-defined]
    if is_url(source):
        from pcapdiag.io.remote import open_remote  # fsspec: only for URLs

        return open_remote(source)
    try:
        fh = open(source, "rb")  # noqa: SIM115 - closed by the reader when iteration ends
    except OSError as exc:
        raise open_error(source, exc) from None
    return open_file(source, fh)


def open_file(source: str, fh: BinaryIO) -> CaptureReader:
    """A capture reader over an open file, named `source` (closed with the reader, or here
    when it is no capture). A regular uncompressed file is mapped whole in memory."""
    try:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise CaptureError(f"{source}: is a directory, not a capture file")
        regular = stat.S_ISREG(st.st_mode)
        size = st.st_size if regular else None
        if regular and size == 0:
            raise CaptureError(f"{source}: empty file")
        head = fh.read(4)
        if regular and not head.startswith(_GZIP):
            _check_magic(source, head)
            assert size is not None
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            reader = CaptureReader(source, mm, True, None, size, False, fh, mm)
            return reader
        return _from_stream(source, fh.read if regular else fh.read1, size, fh, head)
    except BaseException:
        fh.close()
        raise


def idb_timing(buf: Buffer, pos: int, blen: int, order: str) -> tuple[int, int, int]:
    """What an Interface Description Block's options say of its timestamps (pcapng draft
    section 4.2, if_tsresol and if_tsoffset): a time in ns is units * mul // div + offset."""
    mul, div, offset_s = 1000, 1, 0  # default resolution: microseconds
    opt = _NG_OPT[order].unpack_from
    p = pos + 16
    stop = pos + blen - 4
    while p + 4 <= stop:
        code, length = opt(buf, p)
        if code == 0:  # opt_endofopt
            break
        value = p + 4
        if value + length > stop:
            break  # malformed option list: keep what we have, like Wireshark's defaults
        if code == _OPT_IF_TSRESOL and length >= 1:
            res = buf[value]
            if res & 0x80:
                # MSB set: negative power of two (section 4.2, if_tsresol).
                mul, div = 1_000_000_000, 1 << (res & 0x7F)
            elif res <= 9:
                mul, div = 10 ** (9 - res), 1
            else:
                mul, div = 1, 10 ** (res - 9)
        elif code == _OPT_IF_TSOFFSET and length >= 8:
            offset_s = _NG_I64[order].unpack_from(buf, value)[0]
        p = value + ((length + 3) & ~3)
    return mul, div, offset_s * 1_000_000_000


def section_byte_order(buf: Buffer, pos: int) -> str | None:
    """ "<" or ">" by the byte-order magic of the Section Header Block at `pos` (pcapng draft
    section 4.1); None when it is neither."""
    bom = bytes(buf[pos + 8 : pos + 12])
    if bom == _BOM_LE:
        return "<"
    if bom == _BOM_BE:
        return ">"
    return None


def open_error(source: str, exc: OSError) -> CaptureError:
    """The CaptureError for a capture that cannot be opened, in words a user reads."""
    if isinstance(exc, FileNotFoundError):
        return CaptureError(f"{source}: file not found")
    if isinstance(exc, IsADirectoryError):
        return CaptureError(f"{source}: is a directory, not a capture file")
    if isinstance(exc, PermissionError):
        return CaptureError(f"{source}: permission denied")
    return CaptureError(f"{source}: cannot open ({exc.strerror or exc})")


def is_url(source: str) -> bool:
    """Whether `source` names a capture by URL (s3://, gs://, https://...: io/remote.py)."""
    scheme, sep, _rest = source.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum()


def _from_stream(
    name: str,
    read: Callable[[int], bytes],
    size: int | None,
    fh: BinaryIO | None,
    head: bytes = b"",
) -> CaptureReader:
    """Set up a chunked reader, decompressing when the first bytes are the gzip magic."""
    if len(head) < 4:
        head += read(4 - len(head))
    if not head:
        raise CaptureError(f"{name}: empty file")
    compressed = head.startswith(_GZIP)
    if compressed:
        gz = _GzipStream(read, head)
        read = gz.read
        try:
            head = read(CHUNK)
        except _StreamDamage as exc:
            raise CaptureError(f"{name}: {exc}") from None
        if not head:
            raise CaptureError(f"{name}: empty file (after gzip decompression)")
    _check_magic(name, head)
    return CaptureReader(name, head, False, read, size, compressed, fh, None)


def _check_magic(name: str, head: bytes) -> None:
    if head[:4] in _PCAP_MAGICS or head[:4] == _PCAPNG_SHB:
        return
    if len(head) < 4 and (
        _PCAPNG_SHB.startswith(head) or any(m.startswith(head) for m in _PCAP_MAGICS)
    ):
        raise CaptureError(f"{name}: file header cut short ({len(head)} bytes)")
    raise CaptureError(f"{name}: not a pcap or pcapng file (starts with bytes {_hexhead(head)})")


class CaptureReader:
    """An open capture. Iterate it (once) to get its `Frame`s; afterwards `damage` says whether
    and where the file stopped being readable. Usable as a context manager."""

    format: str  # "pcap" or "pcapng"
    compressed: bool  # gzip container
    size: int | None  # bytes on disk; None for stdin and pipes
    nanosecond: bool  # pcap: nanosecond magic; pcapng: some interface finer than 1 us
    snaplen: int | None  # pcap file header snaplen (None for pcapng: per interface)
    byte_order: str  # "little" or "big" (pcapng: of the first section)
    damage: Damage | None
    numbered: int  # the last frame number used (Wireshark's frame count once iterated)
    sections: int  # pcapng Section Header Blocks seen (1 for pcap)
    # The file's sha256 when its opener hashed the bytes as it fetched them (io/remote.py);
    # None: a local file, hashed beside the analysis (io/hashing.py), or standard input.
    sha256: str | None = None

    def __init__(
        self,
        name: str,
        buf: bytes | mmap.mmap,
        eof: bool,
        read: Callable[[int], bytes] | None,
        size: int | None,
        compressed: bool,
        fh: BinaryIO | None,
        mm: mmap.mmap | None,
    ) -> None:
        self.name = name
        self.size = size
        self.compressed = compressed
        self.damage = None
        self.numbered = 0
        # Timestamps of the first and the last record read, and roughly how far into the
        # (decompressed) file reading has got: kept by the reader so that its caller does not
        # have to look at every frame for them.
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.position = 0
        self.sections = 0
        self._buf = buf
        self._eof = eof
        self._read = read
        self._fh = fh
        self._mm = mm
        self._released = 0  # bytes at the start of the mmap given back (see _release)
        self._stream_error: str | None = None
        self._started = False
        self._linktypes: set[int] = set()
        head = bytes(buf[:4])
        if head == _PCAPNG_SHB:
            self.format = "pcapng"
            self.snaplen = None
            self.nanosecond = False
            bom = bytes(self._ensure_head(12)[8:12])
            if bom == _BOM_LE:
                self.byte_order = "little"
            elif bom == _BOM_BE:
                self.byte_order = "big"
            else:
                self.close()
                if len(bom) < 4:
                    raise CaptureError(f"{name}: pcapng section header cut short")
                raise CaptureError(
                    f"{name}: not a valid pcapng file (bad byte-order magic {_hexhead(bom)})"
                )
        else:
            order, nano = _PCAP_MAGICS[head]
            hdr = self._ensure_head(24)
            if len(hdr) < 24:
                have = len(hdr)
                self.close()
                raise CaptureError(f"{name}: pcap file header cut short ({have} of 24 bytes)")
            _magic, _vmaj, _vmin, _zone, _sigfigs, snaplen, network = _PCAP_FILE_HDR[
                order
            ].unpack_from(hdr, 0)
            self.format = "pcap"
            self.byte_order = "little" if order == "<" else "big"
            self.nanosecond = nano
            self.snaplen = snaplen
            # The upper bits of the link-type field carry FCS information (pcap draft,
            # section 4: LinkType and additional information); the link type is the low 16.
            self._pcap_linktype = network & 0xFFFF
            self._pcap_order = order
            self._linktypes.add(self._pcap_linktype)
            self.sections = 1

    def whole_file(self) -> mmap.mmap | None:
        """The whole file, when it is an uncompressed pcap or pcapng mapped in memory (else
        None): what triage.first_pass can read on its own before the frames are iterated."""
        if self._mm is None or self._buf is not self._mm:
            return None
        return self._mm

    @property
    def linktypes(self) -> list[int]:
        """LINKTYPE values of the file header (pcap) or of every IDB read so far (pcapng:
        complete once iteration is over)."""
        return sorted(self._linktypes)

    # -- buffer management -------------------------------------------------------------------

    def _ensure_head(self, n: int) -> bytes | mmap.mmap:
        """Make sure the first n bytes are buffered (or the stream is exhausted)."""
        if len(self._buf) < n and not self._eof:
            self._buf, _base = self._refill(self._buf, 0, 0, n)
        return self._buf

    def _refill(self, buf: bytes | mmap.mmap, pos: int, base: int, need: int) -> tuple[bytes, int]:
        """Drop the consumed bytes and read until `need` bytes are available from `pos` (or
        the stream ends). Returns the new buffer (starting at old `pos`) and its file offset."""
        assert self._read is not None
        parts = [bytes(buf[pos:])]
        have = len(parts[0])
        while have < need:
            try:
                data = self._read(max(CHUNK, need - have))
            except _StreamDamage as exc:
                self._stream_error = str(exc)
                data = b""
            except OSError as exc:
                self._stream_error = f"read error ({exc.strerror or exc})"
                data = b""
            if not data:
                self._eof = True
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts), base + pos

    # -- iteration ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._started = True
        if self.format == "pcap":
            return self._pcap_frames()
        # Without `fast`, only Frames.
        return cast(Iterator[Frame], self._pcapng_frames())

    def _set_damage(self, offset: int, message: str) -> None:
        if self._stream_error is not None:
            message = f"{message} ({self._stream_error})"
        self.damage = Damage(offset, self.numbered + 1, message)

    def records(self, fast: FastForward | None = None) -> Iterator[Record | Chunk]:
        """Every record as a Record (the bytes where they lie in the buffer; pcapng
        records are cut from their Frames). Damage is handled and recorded as when iterating
        frames. With `fast`, when the whole file is mapped in memory, the hook is offered each
        record (pcap) or block (pcapng) first and what it reads is yielded as one Chunk."""
        if self._started:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._started = True
        if self.format == "pcap":
            return self._pcap_records(fast)
        return self._pcapng_records(fast)

    def _pcapng_records(self, fast: FastForward | None = None) -> Iterator[Record | Chunk]:
        for f in self._pcapng_frames(fast):
            if type(f) is Chunk:
                yield f
                continue
            assert isinstance(f, Frame)
            if self.first_ts_ns is None:
                self.first_ts_ns = f.ts_ns
            self.last_ts_ns = f.ts_ns
            self.position += len(f.data) + 32  # about: block headers vary
            yield Record(f.data, 0, len(f.data), f.number, f.ts_ns, f.linktype, f.orig_len)

    def _pcap_frames(self) -> Iterator[Frame]:
        for buf, start, stop, number, ts, link, orig in cast(
            Iterator[Record], self._pcap_records()
        ):
            yield Frame(number, ts, link, buf[start:stop], orig)

    def _pcap_records(self, fast: FastForward | None = None) -> Iterator[Record | Chunk]:
        rec = _PCAP_REC_HDR[self._pcap_order].unpack_from
        linktype = self._pcap_linktype
        # pcap draft section 5: the sub-second field is in us or ns depending on the magic.
        frac_mul = 1 if self.nanosecond else 1000
        buf = self._buf
        pos = 24
        base = 0
        end = len(buf)
        eof = self._eof
        number = 0
        first: int | None = None
        last: int | None = None
        try:
            if fast is not None and buf is self._mm:
                # The whole file is mapped: the hook reads on as far as it can. What it stops
                # before (damage, the end of the file) is left to the loop below.
                big = self._pcap_order == ">"
                ifaces = [
                    Interface(linktype, self.snaplen or 0, frac_mul, 1, 0),
                ]
                while (chunk := fast(buf, pos, number, big, ifaces)) is not None:
                    pos, number = self._took(chunk)
                    yield chunk
                    self._release(buf, pos)
                first, last = self.first_ts_ns, self.last_ts_ns
            while True:
                if end - pos < 16:
                    if not eof:
                        buf, base = self._refill(buf, pos, base, 16)
                        pos, end, eof = 0, len(buf), self._eof
                        continue
                    if pos == end:
                        if self._stream_error is not None:
                            self.numbered = number
                            self._set_damage(base + pos, "compressed stream ends early")
                        break
                    self.numbered = number
                    self._set_damage(base + pos, "file cut short inside a record header")
                    break
                sec, frac, caplen, orig_len = rec(buf, pos)
                if caplen > MAX_CAPLEN:
                    self.numbered = number
                    self._set_damage(
                        base + pos,
                        f"record claims {caplen} captured bytes, more than the {MAX_CAPLEN} "
                        "limit: corrupt record header",
                    )
                    break
                stop = pos + 16 + caplen
                if stop > end:
                    if not eof:
                        buf, base = self._refill(buf, pos, base, 16 + caplen)
                        pos, end, eof = 0, len(buf), self._eof
                        continue
                    self.numbered = number
                    self._set_damage(base + pos, "file cut short inside packet data")
                    break
                number += 1
                last = sec * 1_000_000_000 + frac * frac_mul
                if first is None:
                    first = last
                yield Record(buf, pos + 16, stop, number, last, linktype, orig_len)
                pos = stop
                if not number & 0xFFF:
                    # Every 4096 records (a few MB): the pages read so far are given back, so
                    # that the file counts little in the resident memory.
                    self.position = base + pos
                    self._release(buf, pos)
        finally:
            self.numbered = number
            self.first_ts_ns, self.last_ts_ns, self.position = first, last, base + pos
            self.close()

    def _took(self, chunk: Chunk) -> tuple[int, int]:
        """Account for what a FastForward hook read (in the mapped file, so positions are file
        offsets); returns where reading goes on: the position and the last frame number."""
        if chunk.first_ts_ns is not None:
            if self.first_ts_ns is None:
                self.first_ts_ns = chunk.first_ts_ns
            self.last_ts_ns = chunk.last_ts_ns
        self.numbered = chunk.numbered  # so far: what a progress display shows
        self.position = chunk.end
        return chunk.end, chunk.numbered

    def _release(self, buf: bytes | mmap.mmap, pos: int) -> None:
        """Give the pages of an mmap-ed file already read back to the kernel: they would
        otherwise count in the resident memory, which should grow with the open connections,
        not with the size of the file."""
        if buf is not self._mm or self._mm is None:
            return
        upto = pos - pos % mmap.PAGESIZE
        if upto > self._released:
            self._mm.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
            self._released = upto

    def _pcapng_frames(self, fast: FastForward | None = None) -> Iterator[Frame | Chunk]:
        """The frames of a pcapng file. With `fast` (a file mapped in memory), before each
        block the hook may read on from there; its Chunk is yielded, and when it reads
        nothing this loop reads the next block itself."""
        buf = self._buf
        took_last = False  # `fast` was just called and read nothing: this loop takes a block
        pos = 0
        base = 0
        end = len(buf)
        eof = self._eof
        number = 0
        order = "<"
        hdr = _NG_BLOCK_HDR[order].unpack_from
        u32 = _NG_U32[order].unpack_from
        epb = _NG_EPB[order].unpack_from
        # per interface of the current section: (linktype, snaplen, ts multiplier, ts divisor,
        # ts offset in ns); the timestamp in ns is units * mul // div + offset.
        ifaces: list[Interface] = []
        damage: str | None = None
        try:
            while True:
                if fast is not None and not took_last and buf is self._mm:
                    chunk = fast(buf, pos, number, order == ">", ifaces)
                    if chunk is None:
                        took_last = True
                        continue
                    pos, number = self._took(chunk)
                    yield chunk
                    self._release(buf, pos)
                    continue
                took_last = False
                if end - pos < 12:
                    if not eof:
                        buf, base = self._refill(buf, pos, base, 12)
                        pos, end, eof = 0, len(buf), self._eof
                        continue
                    if pos == end:
                        if self._stream_error is not None:
                            damage = "compressed stream ends early"
                        break
                    damage = "file cut short inside a block header"
                    break
                if buf[pos : pos + 4] == _PCAPNG_SHB:
                    # A new section may switch byte order (pcapng draft, section 4.1).
                    switched = section_byte_order(buf, pos)
                    if switched is None:
                        damage = "section header block with an invalid byte-order magic"
                        break
                    order = switched
                    hdr = _NG_BLOCK_HDR[order].unpack_from
                    u32 = _NG_U32[order].unpack_from
                    epb = _NG_EPB[order].unpack_from
                btype, blen = hdr(buf, pos)
                if blen < 12 or blen % 4:
                    damage = f"block length {blen} is invalid (must be a multiple of 4, >= 12)"
                    break
                if blen > MAX_BLOCK:
                    damage = f"block length {blen} is implausibly large: corrupt block header"
                    break
                if end - pos < blen:
                    if not eof:
                        buf, base = self._refill(buf, pos, base, blen)
                        pos, end, eof = 0, len(buf), self._eof
                        continue
                    damage = "file cut short inside a block (block runs past the end)"
                    break
                if u32(buf, pos + blen - 4)[0] != blen:
                    damage = "block's trailing length does not match its leading length"
                    break
                if btype == BT_EPB:
                    if blen < 32:
                        damage = "enhanced packet block too short"
                        break
                    ifid, ts_hi, ts_lo, caplen, orig_len = epb(buf, pos + 8)
                    if ifid >= len(ifaces):
                        damage = f"packet block refers to interface {ifid}, which is not defined"
                        break
                    if caplen > blen - 32 or caplen > MAX_CAPLEN:
                        damage = f"packet block claims {caplen} captured bytes, more than it holds"
                        break
                    linktype, _snap, mul, div, off = ifaces[ifid]
                    units = (ts_hi << 32) | ts_lo
                    number += 1
                    yield Frame(
                        number,
                        (units * mul if div == 1 else units * mul // div) + off,
                        linktype,
                        buf[pos + 28 : pos + 28 + caplen],
                        orig_len,
                        ifid,
                    )
                elif btype == BT_SPB:
                    # Simple Packet Block (pcapng draft section 4.4): interface 0, no
                    # timestamp. Wireshark shows no time for it; we use 0.
                    if not ifaces:
                        damage = "simple packet block before any interface description block"
                        break
                    if blen < 16:
                        damage = "simple packet block too short"
                        break
                    orig_len = u32(buf, pos + 8)[0]
                    linktype, snap, _m, _d, _o = ifaces[0]
                    caplen = min(orig_len, blen - 16, MAX_CAPLEN)
                    if snap:
                        caplen = min(caplen, snap)
                    number += 1
                    yield Frame(number, 0, linktype, buf[pos + 12 : pos + 12 + caplen], orig_len)
                elif btype == BT_IDB:
                    if blen < 20:
                        damage = "interface description block too short"
                        break
                    iface = self._parse_idb(buf, pos, blen, order)
                    ifaces.append(iface)
                    self._linktypes.add(iface[0])
                elif btype == BT_SHB:
                    if blen < 28:
                        damage = "section header block too short"
                        break
                    major, _minor = _NG_SHB_VER[order].unpack_from(buf, pos + 12)
                    if major != 1:
                        damage = f"unsupported pcapng major version {major}"
                        break
                    ifaces = []  # interface ids are per section
                    self.sections += 1
                elif btype == BT_PB:
                    if blen < 32:
                        damage = "packet block too short"
                        break
                    ifid, _drops, ts_hi, ts_lo, caplen, orig_len = _NG_PB[order].unpack_from(
                        buf, pos + 8
                    )
                    if ifid >= len(ifaces):
                        damage = f"packet block refers to interface {ifid}, which is not defined"
                        break
                    if caplen > blen - 32 or caplen > MAX_CAPLEN:
                        damage = f"packet block claims {caplen} captured bytes, more than it holds"
                        break
                    linktype, _snap, mul, div, off = ifaces[ifid]
                    number += 1
                    yield Frame(
                        number,
                        ((ts_hi << 32) | ts_lo) * mul // div + off,
                        linktype,
                        buf[pos + 28 : pos + 28 + caplen],
                        orig_len,
                        ifid,
                    )
                elif btype in _NUMBERED_NON_PACKETS:
                    number += 1
                pos += blen
                if not number & 0xFFF:
                    self._release(buf, pos)
        finally:
            self.numbered = number
            if damage is not None:
                self._set_damage(base + pos, damage)
            self.close()

    def _parse_idb(self, buf: bytes | mmap.mmap, pos: int, blen: int, order: str) -> Interface:
        """Interface Description Block (pcapng draft section 4.2)."""
        linktype, _reserved, snaplen = _NG_IDB[order].unpack_from(buf, pos + 8)
        mul, div, offset_ns = idb_timing(buf, pos, blen, order)
        if div != 1 or mul < 1000:
            self.nanosecond = True
        return Interface(linktype, snaplen, mul, div, offset_ns)

    # -- resources ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file (and mmap). Called automatically when iteration ends."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        # An mmap buffer is unusable once closed; drop the reference.
        self._buf = b""

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
