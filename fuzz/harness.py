"""Fuzzing targets and input generators for pcapdiag (issue 6).

Targets (each takes the bytes of one capture file and raises on a property violation):

- `target_capture`: the capture reader alone. Frame numbers increase and stay within 1..N (pcap:
  exactly 1..N), a `Damage` names an offset inside the file (pcap: exactly where the first
  record that was not delivered starts) and the frame number after the last one delivered.
- `target_decode`: every frame through the link/IP/transport decoders, called below
  `decode()`'s catch-all so that a decoder bug shows as a traceback instead of a hidden
  "decoder error" warning.
- `target_analysis`: `pcapdiag.api.analyze` plus every renderer (text, rich, JSON, Markdown,
  JUnit, HTML with ladders, the flows table) and `--export`; frame numbers in the report stay
  within 1..N.
- `target_cli`: the CLI in-process; the exit code must be 0, 3 or 4 (never 70).

`run_one` runs all of them on one input under a time limit. The only exception an input may
cause is `CaptureError` (unreadable input); anything else is a crash, and so is a property
violation (`PropertyViolation`) or exceeding the time limit (`Hang`).

Inputs are made by `generate(rng)`: a seed capture (samples/demo.pcap, rules/*/*.pcap,
samples/recorded/*/*.pcap) or a capture built from random packets, optionally converted to
pcapng, then mutated by structure-aware mutators (record and block lengths, link types, IP and
TCP header fields, IPv6 extension-header chains, ICMP errors quoting truncated or nested ICMP)
and plain byte mutators, and sometimes gzip-compressed.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import itertools
import os
import random
import signal
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pcapdiag.api import analyze  # noqa: E402
from pcapdiag.decode.link import decode_link  # noqa: E402
from pcapdiag.decode.packets import Undecodable  # noqa: E402
from pcapdiag.errors import CaptureError  # noqa: E402
from pcapdiag.io.reader import open_capture  # noqa: E402
from pcapdiag.io.records import Frame  # noqa: E402
from pcapdiag.rules.loader import load_rules  # noqa: E402
from pcapdiag.rules.model import Rule  # noqa: E402

# Link types pcapdiag decodes, plus a few it does not (they must become `Other`).
LINKTYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 105, 127, 147, 0xFFFF)
INTERESTING_32 = (
    0,
    1,
    3,
    4,
    11,
    12,
    16,
    20,
    24,
    28,
    31,
    32,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x10000,
    65535,
    262144,
    262145,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFF0,
    0xFFFFFFFC,
    0xFFFFFFFF,
)
INTERESTING_16 = (0, 1, 4, 5, 8, 0x7F, 0x80, 0xFF, 0x100, 0x5FF, 0x600, 0x7FFF, 0x8000, 0xFFFF)
INTERESTING_8 = (0, 1, 0x0F, 0x10, 0x40, 0x45, 0x4F, 0x5F, 0x60, 0x7F, 0x80, 0xF0, 0xFF)
TIME_LIMIT_S = 5.0  # per input, all targets together


class PropertyViolation(AssertionError):
    """An input broke one of the harness's properties (not an exception from pcapdiag)."""


class Hang(Exception):
    """An input took longer than the time limit."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise PropertyViolation(message)


# -- seeds ---------------------------------------------------------------------------------------


def seed_files() -> list[Path]:
    files = [ROOT / "samples" / "demo.pcap"]
    files += sorted((ROOT / "rules").glob("*/*.pcap"))
    files += sorted((ROOT / "samples" / "recorded").glob("*/*.pcap"))
    return [f for f in files if f.is_file()]


@functools.cache
def seeds() -> tuple[bytes, ...]:
    return tuple(f.read_bytes() for f in seed_files())


@functools.cache
def rules() -> tuple[Rule, ...]:
    return tuple(load_rules())


# -- pcap / pcapng structure ---------------------------------------------------------------------

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}


@dataclass
class Record:
    sec: int
    frac: int
    data: bytes
    orig_len: int


@dataclass
class Pcap:
    order: str
    nano: bool
    snaplen: int
    linktype: int
    records: list[Record]

    def encode(self) -> bytes:
        o = self.order
        magic = 0xA1B23C4D if self.nano else 0xA1B2C3D4
        out = [struct.pack(o + "IHHiIII", magic, 2, 4, 0, 0, self.snaplen, self.linktype)]
        for r in self.records:
            out.append(
                struct.pack(
                    o + "IIII", r.sec & 0xFFFFFFFF, r.frac & 0xFFFFFFFF, len(r.data), r.orig_len
                )
                + r.data
            )
        return b"".join(out)


def parse_pcap(data: bytes) -> Pcap | None:
    """The records of a well-formed pcap (None for anything else)."""
    order = _PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < 24:
        return None
    _m, _a, _b, _z, _s, snaplen, linktype = struct.unpack_from(order + "IHHiIII", data, 0)
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    records: list[Record] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, orig = struct.unpack_from(order + "IIII", data, pos)
        if pos + 16 + caplen > len(data):
            break
        records.append(Record(sec, frac, data[pos + 16 : pos + 16 + caplen], orig))
        pos += 16 + caplen
    return Pcap(order, nano, snaplen, linktype, records)


def ng_block(btype: int, body: bytes, order: str = "<", *, blen: int | None = None) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    head = total if blen is None else blen
    return struct.pack(order + "II", btype, head) + body + struct.pack(order + "I", total)


def ng_option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def ng_options(opts: list[tuple[int, bytes]], order: str = "<") -> bytes:
    if not opts:
        return b""
    return b"".join(ng_option(c, v, order) for c, v in opts) + ng_option(0, b"", order)


def ng_shb(order: str = "<", bom: int = 0x1A2B3C4D, major: int = 1, opts: bytes = b"") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(order + "IHHq", bom, major, 0, -1) + opts, order)


def ng_idb(linktype: int, snaplen: int = 0, order: str = "<", opts: bytes = b"") -> bytes:
    return ng_block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts, order)


def ng_epb(
    ifid: int, units: int, data: bytes, orig: int, order: str = "<", opts: bytes = b""
) -> bytes:
    hi, lo = (units >> 32) & 0xFFFFFFFF, units & 0xFFFFFFFF
    return ng_block(
        6, struct.pack(order + "IIIII", ifid, hi, lo, len(data), orig) + data + opts, order
    )


def to_pcapng(cap: Pcap, rng: random.Random) -> bytes:
    """The same packets as pcapng: random byte order, interface options, packet block kinds,
    extra blocks of other types, sometimes a second section."""
    order = rng.choice("<>")
    out = [ng_shb(order, opts=ng_options(_random_opts(rng, (1, 2, 3, 4)), order))]
    n_if = rng.randint(1, 3)
    for _ in range(n_if):
        opts: list[tuple[int, bytes]] = []
        if rng.random() < 0.5:
            opts.append(
                (9, bytes([rng.choice([6, 9, 0x80 | rng.randint(0, 127), rng.randint(0, 255)])]))
            )
        if rng.random() < 0.2:
            opts.append(
                (
                    14,
                    struct.pack(
                        order + "q",
                        rng.choice(
                            [0, -1, 1 << 40, -(1 << 62), rng.randint(-(1 << 63), (1 << 63) - 1)]
                        ),
                    ),
                )
            )
        opts += _random_opts(rng, (2, 3, 1, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15))
        lt = cap.linktype if rng.random() < 0.8 else rng.choice(LINKTYPES)
        out.append(
            ng_idb(
                lt & 0xFFFF,
                rng.choice([0, 0, 65535, 64, cap.snaplen & 0xFFFFFFFF]),
                order,
                ng_options(opts, order),
            )
        )
    for r in cap.records:
        kind = rng.random()
        units = r.sec * 1_000_000 + (r.frac // 1000 if cap.nano else r.frac)
        ifid = 0 if rng.random() < 0.8 else rng.randrange(n_if)
        if kind < 0.85:
            opts_b = (
                ng_options(_random_opts(rng, (1, 2, 3, 4, 5, 6, 7)), order)
                if rng.random() < 0.1
                else b""
            )
            out.append(ng_epb(ifid, units, r.data, r.orig_len, order, opts_b))
        elif kind < 0.92:
            out.append(ng_block(3, struct.pack(order + "I", r.orig_len) + r.data, order))
        else:
            body = struct.pack(
                order + "HHIIII",
                ifid,
                0,
                (units >> 32) & 0xFFFFFFFF,
                units & 0xFFFFFFFF,
                len(r.data),
                r.orig_len,
            )
            out.append(ng_block(2, body + r.data, order))
        if rng.random() < 0.05:
            out.append(_random_block(rng, order))
    if rng.random() < 0.15:
        order2 = rng.choice("<>")
        out.append(ng_shb(order2))
        out.append(ng_idb(cap.linktype & 0xFFFF, 0, order2))
        for r in cap.records[: rng.randint(0, 5)]:
            out.append(ng_epb(0, r.sec * 1_000_000, r.data, r.orig_len, order2))
    return b"".join(out)


def _random_opts(rng: random.Random, codes: tuple[int, ...]) -> list[tuple[int, bytes]]:
    opts = []
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        value = rng.choice(
            [
                b"eth0",
                b"\x1b[31mred\x1b[0m",
                b"<script>alert(1)</script>",
                b"| a | b |",
                bytes(rng.randrange(256) for _ in range(rng.randint(0, 12))),
            ]
        )
        opts.append((rng.choice(codes), value))
    return opts


def _random_block(rng: random.Random, order: str) -> bytes:
    btype = rng.choice([4, 5, 7, 8, 9, 0x0A, 0xBAD, 0x40000BAD, 0x80000001, rng.getrandbits(32)])
    if btype == 0x0A0D0D0A:
        btype = 0x0A0D0D0B
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    return ng_block(btype, body, order)


def ng_blocks(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, byte order) of each pcapng block that can be walked."""
    out: list[tuple[int, int, str]] = []
    pos, order = 0, "<"
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blen < 12 or pos + blen > len(data):
            break
        out.append((pos, blen, order))
        pos += blen
    return out


# -- packet generator ----------------------------------------------------------------------------


def _ip4_addr(rng: random.Random) -> bytes:
    return bytes([10, 0, rng.randint(0, 2), rng.randint(1, 3)])


def _ip6_addr(rng: random.Random) -> bytes:
    return b"\xfd\x00" + b"\0" * 12 + bytes([0, rng.randint(1, 3)])


def _tcp_options(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 5)):
        k = rng.random()
        if k < 0.15:
            parts.append(b"\x02\x04" + struct.pack("!H", rng.choice([0, 536, 1460, 65535])))
        elif k < 0.3:
            parts.append(b"\x03\x03" + bytes([rng.randint(0, 20)]))
        elif k < 0.4:
            parts.append(b"\x04\x02")
        elif k < 0.55:
            n = rng.randint(0, 5)
            olen = rng.choice([2 + 8 * n, rng.randint(0, 60)])
            blocks = b"".join(
                struct.pack("!II", rng.getrandbits(32), rng.getrandbits(32)) for _ in range(n)
            )
            parts.append(bytes([5, olen & 0xFF]) + blocks)
        elif k < 0.7:
            parts.append(b"\x08\x0a" + struct.pack("!II", rng.getrandbits(32), rng.getrandbits(32)))
        elif k < 0.8:
            parts.append(b"\x01")
        elif k < 0.85:
            parts.append(b"\x00")
        else:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))))
    return b"".join(parts)


def _tcp(rng: random.Random, payload: bytes) -> bytes:
    opts = _tcp_options(rng) if rng.random() < 0.5 else b""
    opts += b"\0" * (-len(opts) % 4)
    doff = (20 + len(opts)) // 4
    if rng.random() < 0.25:
        doff = rng.randint(0, 15)
    flags = rng.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, rng.randrange(256)])
    head = struct.pack(
        "!HHIIBBHHH",
        rng.choice([80, 443, 8080, 40001, rng.randrange(65536)]),
        rng.choice([80, 443, 8080, 40001, rng.randrange(65536)]),
        rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32)]),
        rng.choice([0, 1, 0xFFFFFFFF, rng.getrandbits(32)]),
        (doff & 0xF) << 4,
        flags,
        rng.choice([0, 1, 65535, rng.randrange(65536)]),
        0,
        0,
    )
    return head + opts + payload


def _udp(rng: random.Random, payload: bytes, depth: int) -> bytes:
    dport = rng.choice([53, 4789, 123, rng.randrange(65536)])
    if dport == 4789 and depth < 4 and rng.random() < 0.7:
        inner = _ethernet(rng, depth + 1)
        payload = bytes([rng.choice([0x08, 0x00, 0xFF]), 0, 0, 0, 0, 0, 1, 0]) + inner
    ulen = 8 + len(payload)
    if rng.random() < 0.2:
        ulen = rng.choice([0, 7, 8, 0xFFFF])
    return struct.pack("!HHHH", rng.randrange(65536), dport, ulen, 0) + payload


def _icmp(rng: random.Random, family: int, depth: int) -> bytes:
    """An ICMP(v6) message: mostly errors quoting a (possibly truncated, possibly ICMP) datagram."""
    if family == 4:
        typ = rng.choice([3, 3, 3, 11, 12, 4, 5, 0, 8, rng.randrange(256)])
    else:
        typ = rng.choice([1, 1, 2, 3, 4, 128, 129, 135, rng.randrange(256)])
    code = rng.choice([0, 1, 3, 4, 9, 10, 13, rng.randrange(256)])
    rest = struct.pack("!I", rng.choice([0, 1280, 1500, 576, rng.getrandbits(32)]))
    quote_family = family if rng.random() < 0.8 else 10 - family
    if depth < 4:
        quoted = _ip_packet(rng, quote_family, depth + 1)
    else:
        quoted = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
    if rng.random() < 0.5:
        quoted = quoted[: rng.randint(0, len(quoted))]
    return bytes([typ, code]) + b"\0\0" + rest + quoted


def _gre(rng: random.Random, depth: int) -> bytes:
    flags = rng.choice([0, 0x8000, 0x2000, 0x1000, 0xB000, 0x4000, 0x0001, rng.randrange(65536)])
    proto = rng.choice([0x0800, 0x86DD, 0x6558, 0x880B, rng.randrange(65536)])
    extra = b"\0\0\0\0" * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    if proto == 0x0800 and depth < 4:
        inner = _ip_packet(rng, 4, depth + 1)
    elif proto == 0x86DD and depth < 4:
        inner = _ip_packet(rng, 6, depth + 1)
    elif proto == 0x6558 and depth < 4:
        inner = _ethernet(rng, depth + 1)
    else:
        inner = bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    return struct.pack("!HH", flags, proto) + extra + inner


def _transport(rng: random.Random, family: int, depth: int) -> tuple[int, bytes]:
    payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 10, 100])))
    k = rng.random()
    if k < 0.4:
        return 6, _tcp(rng, payload)
    if k < 0.6:
        return 17, _udp(rng, payload, depth)
    if k < 0.85:
        return (1 if family == 4 else 58), _icmp(rng, family, depth)
    if k < 0.93:
        return 47, _gre(rng, depth)
    return rng.choice([2, 4, 41, 50, 51, 59, 89, 132, rng.randrange(256)]), payload


def _ipv6_ext_chain(rng: random.Random, final_nh: int) -> tuple[int, bytes]:
    """A random chain of IPv6 extension headers ending in `final_nh`."""
    chain = [
        rng.choice([0, 43, 60, 44, 51, 135, 139, 140, 50, 59]) for _ in range(rng.randint(0, 5))
    ]
    out = b""
    nh = final_nh
    for ext in reversed(chain):
        if ext == 44:
            off = rng.choice([0, 0, 1, 8, 0xFFF8, rng.randrange(65536)])
            body = bytes([nh, 0]) + struct.pack("!HI", off, rng.getrandbits(32))
        elif ext == 51:
            n = rng.randint(0, 4)
            body = bytes([nh, rng.choice([n, rng.randrange(256)])]) + b"\0" * (4 * (n + 2) - 2)
        elif ext in (50, 59):
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))
        else:
            n = rng.randint(0, 2)
            opts = b""
            if ext == 0 and rng.random() < 0.4:
                opts = b"\xc2\x04" + struct.pack(
                    "!I", rng.choice([0, 65536, 0xFFFFFFFF, rng.getrandbits(32)])
                )
            opts = opts + b"\x01\x00" * 10
            opts = opts[: 8 * (n + 1) - 2]
            if rng.random() < 0.1:
                opts = bytes(rng.randrange(256) for _ in range(len(opts)))
            body = bytes([nh, rng.choice([n, n, rng.randrange(256)])]) + opts
        out = body + out
        nh = ext
    return nh, out


def _ip_packet(rng: random.Random, family: int, depth: int = 0) -> bytes:
    proto, l4 = _transport(rng, family, depth)
    if family == 4:
        opt_len = rng.choice([0, 0, 0, 4, 8, 40])
        options = bytes(
            rng.choice([0, 1, 7, 0x44, 0x83, rng.randrange(256)]) for _ in range(opt_len)
        )
        ihl = (20 + opt_len) // 4
        if rng.random() < 0.2:
            ihl = rng.randint(0, 15)
        total = 20 + opt_len + len(l4)
        total = rng.choice(
            [total, total, total, 0, total - 1, total + 100, rng.randrange(65536), 20]
        )
        frag = rng.choice([0, 0, 0, 0x4000, 0x2000, 0x2001, 0x0001, rng.randrange(65536)])
        head = struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | (ihl & 0xF),
            0,
            total & 0xFFFF,
            1,
            frag,
            64,
            proto,
            0,
            _ip4_addr(rng),
            _ip4_addr(rng),
        )
        if rng.random() < 0.03:
            head = bytes([rng.randrange(256)]) + head[1:]
        return head + options + l4
    nh, ext = _ipv6_ext_chain(rng, proto) if rng.random() < 0.5 else (proto, b"")
    plen = len(ext) + len(l4)
    plen = rng.choice([plen, plen, plen, 0, plen - 1, plen + 100, rng.randrange(65536)]) & 0xFFFF
    head = struct.pack("!IHBB16s16s", 0x60000000, plen, nh, 64, _ip6_addr(rng), _ip6_addr(rng))
    return head + ext + l4


def _ethernet(rng: random.Random, depth: int = 0) -> bytes:
    family = rng.choice([4, 4, 6])
    tags = b"".join(
        struct.pack("!HH", rng.choice([0x8100, 0x88A8, 0x9100]), rng.randrange(65536))
        for _ in range(rng.choice([0, 0, 0, 1, 2, 5]))
    )
    ethertype = 0x0800 if family == 4 else 0x86DD
    if rng.random() < 0.05:
        ethertype = rng.choice([0x0806, 0x88CC, 0x05DC, rng.randrange(65536)])
    return (
        b"\x02" * 6
        + b"\x04" * 6
        + tags
        + struct.pack("!H", ethertype)
        + _ip_packet(rng, family, depth)
    )


def gen_frame(rng: random.Random) -> tuple[int, bytes]:
    """(link type, frame bytes) of one random, mostly plausible, often broken packet."""
    lt = rng.choice([1, 1, 1, 101, 113, 276, 0, 108, 228, 229, 12, 14, rng.choice(LINKTYPES)])
    family = rng.choice([4, 4, 6])
    if lt == 1:
        return lt, _ethernet(rng)
    ip = _ip_packet(rng, family)
    if lt == 113:
        head = struct.pack("!HHH8sH", 0, 1, 6, b"\2" * 8, 0x0800 if family == 4 else 0x86DD)
    elif lt == 276:
        head = struct.pack("!HHIHBB8s", 0x0800 if family == 4 else 0x86DD, 0, 1, 1, 0, 6, b"\2" * 8)
    elif lt == 0:
        head = struct.pack(
            rng.choice("<>") + "I", 2 if family == 4 else rng.choice([10, 24, 28, 30])
        )
    elif lt == 108:
        head = struct.pack(">I", 2 if family == 4 else rng.choice([24, 28, 30, 7]))
    else:
        head = b""
    return lt, head + ip


def gen_pcap(rng: random.Random) -> Pcap:
    """A pcap of random packets: one link type for the file (as pcap has)."""
    lt, first = gen_frame(rng)
    frames = [first]
    while len(frames) < rng.randint(1, 12):
        lt2, fr = gen_frame(rng)
        if lt2 == lt:
            frames.append(fr)
        elif rng.random() < 0.3:
            frames.append(fr)  # wrong link type for the file: must still decode safely
    t0 = rng.choice([1_700_000_000, 0, 0xFFFFFFFF])
    recs = [Record(t0 + i, rng.randrange(1_000_000), f, len(f)) for i, f in enumerate(frames)]
    return Pcap("<", False, 65535, lt, recs)


# -- mutators ------------------------------------------------------------------------------------

Mutator = Callable[[bytes, random.Random], bytes]


def _pos(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data)) if data else 0


def m_flip_bits(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def m_set_byte(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.choice((*INTERESTING_8, rng.randrange(256)))
    return bytes(b)


def m_set_word(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 4:
        return data
    i = rng.randrange(len(data) - 3)
    if rng.random() < 0.5:
        v = rng.choice((*INTERESTING_32, len(data), len(data) - i, rng.getrandbits(32)))
        return data[:i] + struct.pack(rng.choice("<>") + "I", v & 0xFFFFFFFF) + data[i + 4 :]
    v = rng.choice(INTERESTING_16)
    return data[:i] + struct.pack(rng.choice("<>") + "H", v) + data[i + 2 :]


def m_truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randint(0, len(data))]


def m_append(data: bytes, rng: random.Random) -> bytes:
    tail = rng.choice(
        [
            b"garbage",
            b"\xff" * rng.randint(1, 40),
            b"\0" * rng.randint(1, 40),
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))),
            data[: rng.randint(0, 64)],
        ]
    )
    return data + tail


def m_splice(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = _pos(data, rng)
    j = min(len(data), i + rng.randint(1, 64))
    k = rng.random()
    if k < 0.4:
        return data[:i] + data[j:]  # delete
    if k < 0.7:
        return data[:j] + data[i:j] + data[j:]  # duplicate
    return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[i:]


def m_other_seed(data: bytes, rng: random.Random) -> bytes:
    """Cross-over: the front of this input with the back of a seed."""
    other = rng.choice(seeds())
    return data[: _pos(data, rng)] + other[_pos(other, rng) :]


def m_pcap_records(data: bytes, rng: random.Random) -> bytes:
    """Record-level surgery on a well-formed pcap: bogus caplen / orig_len / snaplen / link
    type / timestamps, zero-length records, reordered or duplicated records, nanosecond magic,
    byte order swapped."""
    cap = parse_pcap(data)
    if cap is None or not cap.records:
        return m_set_word(data, rng)
    k = rng.random()
    if k < 0.12:
        cap.linktype = rng.choice((*LINKTYPES, rng.getrandbits(32)))
    elif k < 0.2:
        cap.snaplen = rng.choice([0, 1, 14, 54, 65535, 262144, 0xFFFFFFFF])
        if rng.random() < 0.5:  # records longer than the snaplen claims
            for r in cap.records:
                r.orig_len = max(r.orig_len, len(r.data))
    elif k < 0.3:
        r = rng.choice(cap.records)
        r.data = b""
    elif k < 0.4:
        r = rng.choice(cap.records)
        r.orig_len = rng.choice([0, 1, len(r.data) - 1, 0xFFFFFFFF, 262145]) & 0xFFFFFFFF
    elif k < 0.5:
        cap.nano = not cap.nano
        for r in cap.records:
            r.frac = rng.choice([r.frac, 999_999_999, 1_000_000_000, 0xFFFFFFFF])
    elif k < 0.58:
        cap.order = ">" if cap.order == "<" else "<"
    elif k < 0.68:
        i = rng.randrange(len(cap.records))
        cap.records.insert(rng.randrange(len(cap.records) + 1), cap.records[i])
    elif k < 0.75:
        rng.shuffle(cap.records)
    elif k < 0.82:
        for r in rng.sample(cap.records, k=min(len(cap.records), rng.randint(1, 3))):
            r.sec = rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, r.sec - 8000, r.sec + 8000])
    elif k < 0.9:
        # a record header claiming more than follows (caplen > file, > snaplen, > limit)
        encoded = cap.encode()
        offs = _pcap_record_offsets(encoded)
        if not offs:
            return encoded
        o = rng.choice(offs)
        caplen = rng.choice(
            [262145, 0xFFFFFFFF, len(encoded), len(encoded) - o, cap.snaplen + 1, 0]
        )
        e = cap.order
        return encoded[: o + 8] + struct.pack(e + "I", caplen & 0xFFFFFFFF) + encoded[o + 12 :]
    else:
        r = rng.choice(cap.records)
        r.data = mutate_frame(r.data, rng, cap.linktype)
    return cap.encode()


def _pcap_record_offsets(data: bytes) -> list[int]:
    order = _PCAP_MAGICS.get(data[:4])
    if order is None:
        return []
    out, pos = [], 24
    while pos + 16 <= len(data):
        out.append(pos)
        caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
        pos += 16 + caplen
    return out


def m_packet_fields(data: bytes, rng: random.Random) -> bytes:
    """Mutate IP/TCP header fields inside some records of a pcap."""
    cap = parse_pcap(data)
    if cap is None or not cap.records:
        return m_flip_bits(data, rng)
    for _ in range(rng.randint(1, 3)):
        r = rng.choice(cap.records)
        r.data = mutate_frame(r.data, rng, cap.linktype)
        if rng.random() < 0.7:
            r.orig_len = len(r.data)
    return cap.encode()


def m_insert_generated(data: bytes, rng: random.Random) -> bytes:
    """Replace or insert records with generated packets of the file's link type."""
    cap = parse_pcap(data)
    if cap is None:
        return data
    for _ in range(rng.randint(1, 4)):
        lt, fr = gen_frame(rng)
        if lt != cap.linktype and rng.random() < 0.8:
            continue
        ts = cap.records[-1].sec if cap.records else 1_700_000_000
        rec = Record(ts, 0, fr, len(fr))
        if cap.records and rng.random() < 0.5:
            cap.records[rng.randrange(len(cap.records))] = rec
        else:
            cap.records.insert(rng.randint(0, len(cap.records)), rec)
    return cap.encode()


def _ip_offset(frame: bytes, linktype: int) -> int | None:
    if linktype == 1 and len(frame) >= 14:
        off = 12
        while off + 2 <= len(frame) and frame[off : off + 2] in (
            b"\x81\x00",
            b"\x88\xa8",
            b"\x91\x00",
        ):
            off += 4
        return off + 2
    if linktype in (101, 12, 14, 228, 229):
        return 0
    if linktype == 113:
        return 16
    if linktype == 276:
        return 20
    if linktype in (0, 108):
        return 4
    return None


def mutate_frame(frame: bytes, rng: random.Random, linktype: int) -> bytes:
    """Header-field mutations at the IP and transport layers of one frame."""
    ip = _ip_offset(frame, linktype)
    if ip is None or ip >= len(frame):
        return m_flip_bits(frame, rng)
    b = bytearray(frame)
    version = b[ip] >> 4
    k = rng.random()
    if version == 4 and len(b) >= ip + 20:
        ihl = (b[ip] & 0xF) * 4
        l4 = ip + ihl
        if k < 0.2:
            b[ip] = 0x40 | rng.randint(0, 15)  # IHL
        elif k < 0.3:
            struct.pack_into(
                "!H", b, ip + 2, rng.choice([0, 1, 19, 20, 21, len(b) - ip + 100, 65535])
            )
        elif k < 0.4:
            struct.pack_into("!H", b, ip + 6, rng.choice([0x2000, 0x2001, 0x0001, 0x1FFF, 0x4000]))
        elif k < 0.5:
            b[ip + 9] = rng.choice([1, 6, 17, 47, 58, 0, 255])
        elif k < 0.65 and len(b) >= l4 + 13 and b[ip + 9] == 6:
            b[l4 + 12] = rng.randint(0, 15) << 4  # TCP data offset
        elif k < 0.75 and len(b) >= l4 + 14 and b[ip + 9] == 6:
            b[l4 + 13] = rng.randrange(256)  # TCP flags
        elif k < 0.85 and len(b) >= l4 + 12 and b[ip + 9] == 6:
            struct.pack_into("!I", b, l4 + 4 + rng.choice([0, 4]), rng.getrandbits(32))  # seq/ack
        elif k < 0.92:
            # insert IP options (keeps IHL in step or not)
            opts = bytes(rng.randrange(256) for _ in range(4 * rng.randint(1, 10)))
            b = b[: ip + 20] + bytearray(opts) + b[ip + 20 :]
            if rng.random() < 0.7:
                b[ip] = 0x40 | min(15, ((b[ip] & 0xF) + len(opts) // 4))
        else:
            cut = rng.randint(ip, len(b))
            b = b[:cut]
        return bytes(b)
    if version == 6 and len(b) >= ip + 40:
        if k < 0.3:
            struct.pack_into(
                "!H", b, ip + 4, rng.choice([0, 1, 8, 40, 65535, len(b) - ip - 40 + 8])
            )
        elif k < 0.6:
            nh, ext = _ipv6_ext_chain(rng, b[ip + 6])
            b[ip + 6] = nh
            b = b[: ip + 40] + bytearray(ext) + b[ip + 40 :]
            if rng.random() < 0.8:
                plen = struct.unpack_from("!H", b, ip + 4)[0]
                struct.pack_into("!H", b, ip + 4, (plen + len(ext)) & 0xFFFF)
        elif k < 0.75:
            b[ip + 6] = rng.choice([0, 6, 17, 43, 44, 50, 51, 58, 59, 60, 255])
        else:
            b = b[: rng.randint(ip, len(b))]
        return bytes(b)
    return m_flip_bits(frame, rng)


def m_pcapng(data: bytes, rng: random.Random) -> bytes:
    """Block-level surgery on a pcapng: lengths that overflow or do not match, unknown blocks,
    interface ids that do not exist, a later section with a bad byte-order magic, timestamps
    far out of range."""
    blocks = ng_blocks(data)
    if data[:4] != b"\x0a\x0d\x0d\x0a" or not blocks:
        return m_set_word(data, rng)
    pos, blen, order = rng.choice(blocks)
    btype = struct.unpack_from(order + "I", data, pos)[0]
    k = rng.random()
    b = bytearray(data)
    if k < 0.15:
        v = rng.choice(
            [
                0,
                4,
                8,
                12,
                13,
                0xFFFFFFFC,
                0xFFFFFFFF,
                0x7FFFFFFC,
                blen + 4,
                blen - 4,
                16 * 1024 * 1024 + 4,
            ]
        )
        struct.pack_into(order + "I", b, pos + 4, v & 0xFFFFFFFF)
    elif k < 0.25:
        v = rng.choice([0, blen + 4, 0xFFFFFFFF])
        struct.pack_into(order + "I", b, pos + blen - 4, v & 0xFFFFFFFF)
    elif k < 0.4:
        b[pos + blen : pos + blen] = _random_block(rng, order)
    elif k < 0.5 and btype in (6, 2) and blen >= 32:
        if btype == 6:
            struct.pack_into(order + "I", b, pos + 8, rng.choice([1, 2, 255, 0xFFFFFFFF]))
        else:
            struct.pack_into(order + "H", b, pos + 8, rng.choice([1, 2, 0xFFFF]))
    elif k < 0.6 and btype in (6, 2) and blen >= 32:
        field = pos + 12  # timestamp high word (EPB and PB)
        struct.pack_into(
            order + "I", b, field, rng.choice([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 1 << 20])
        )
    elif k < 0.68 and btype in (6, 2) and blen >= 32:
        struct.pack_into(
            order + "I", b, pos + 20, rng.choice([0xFFFFFFFF, blen, blen - 31, 262145])
        )
    elif k < 0.76:
        bom = rng.choice([0x1A2B3C4D, 0x4D3C2B1A, 0, 0xDEADBEEF])
        shb = ng_shb(rng.choice("<>"), bom=bom, major=rng.choice([1, 1, 2, 0]))
        b[pos + blen : pos + blen] = shb
    elif k < 0.84 and btype == 1 and blen >= 20:
        opts = ng_options(
            [
                (9, bytes([rng.randrange(256)])),
                (14, struct.pack(order + "q", rng.getrandbits(64) - (1 << 63))),
            ],
            order,
        )
        new = ng_idb(rng.choice(LINKTYPES), rng.getrandbits(32), order, opts)
        b[pos : pos + blen] = new
    elif k < 0.9 and btype == 1 and blen >= 20:
        # options with lengths that run past the block
        struct.pack_into(
            order + "HH", b, pos + 16, rng.choice([9, 14, 2]), rng.choice([1, 8, 0xFFFF, blen])
        )
    else:
        return m_set_word(data, rng)
    return bytes(b)


BYTE_MUTATORS: tuple[Mutator, ...] = (
    m_flip_bits,
    m_set_byte,
    m_set_word,
    m_truncate,
    m_append,
    m_splice,
    m_other_seed,
)
PCAP_MUTATORS: tuple[Mutator, ...] = (m_pcap_records, m_packet_fields, m_insert_generated)


def generate(rng: random.Random) -> tuple[bytes, bool]:
    """One fuzz input: (file bytes, whether they are gzip-compressed)."""
    k = rng.random()
    if k < 0.25:
        data = gen_pcap(rng).encode()
    else:
        data = rng.choice(seeds())
        cap = parse_pcap(data)
        if cap is not None and len(cap.records) > 40 and rng.random() < 0.8:
            # keep the per-input cost low: a window of the seed's records
            start = rng.randrange(len(cap.records) - 20)
            cap.records = cap.records[start : start + rng.randint(5, 40)]
            data = cap.encode()
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        data = rng.choice(PCAP_MUTATORS)(data, rng)
    if rng.random() < 0.35:
        cap = parse_pcap(data)
        if cap is not None:
            data = to_pcapng(cap, rng)
            for _ in range(rng.choice([0, 1, 1, 2])):
                data = m_pcapng(data, rng)
    for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
        data = rng.choice(BYTE_MUTATORS)(data, rng)
    compressed = False
    if rng.random() < 0.05:
        data = gzip.compress(data, compresslevel=1, mtime=0)
        compressed = True
        if rng.random() < 0.5:
            data = rng.choice([m_truncate, m_flip_bits, m_append])(data, rng)
    return data, compressed


# -- targets -------------------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `Hang` in the main thread after `seconds` (SIGALRM; no-op elsewhere)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(_sig: int, _frame: FrameType | None) -> None:
        raise Hang(f"input took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _logical(data: bytes) -> bytes | None:
    """The decompressed bytes of a gzip input (every member, RFC 1952 section 2.2), or None
    when they cannot all be decompressed."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    out = []
    rest = data
    while rest:
        dec = zlib.decompressobj(wbits=31)
        try:
            out.append(dec.decompress(rest))
        except zlib.error:
            return None
        if not dec.eof:
            break  # cut short: what there is
        rest = dec.unused_data
    return b"".join(out)


def target_capture(path: Path, data: bytes) -> list[Frame]:
    """Read the capture; check frame numbering and the damage position."""
    try:
        reader = open_capture(str(path))
    except CaptureError:
        return []
    frames = list(reader)
    numbers = [f.number for f in frames]
    _require(all(n >= 1 for n in numbers), f"frame number below 1: {numbers[:5]}")
    _require(
        all(a < b for a, b in itertools.pairwise(numbers)),
        "frame numbers not increasing",
    )
    _require(not numbers or numbers[-1] <= reader.numbered, "frame number above the frame count")
    if reader.format == "pcap":
        _require(numbers == list(range(1, len(numbers) + 1)), "pcap frames not numbered 1..N")
        _require(reader.numbered == len(frames), "pcap frame count differs from frames read")
    dmg = reader.damage
    if dmg is not None:
        _require(
            dmg.frame == reader.numbered + 1,
            f"damage names frame {dmg.frame}, not {reader.numbered + 1}",
        )
        _require("\n" not in dmg.message, "damage message has a line break")
        logical = data if not reader.compressed else _logical(data)
        if not reader.compressed:
            _require(
                0 <= dmg.offset < len(data),
                f"damage offset {dmg.offset} outside the file of {len(data)} bytes",
            )
        elif logical is not None:
            _require(
                0 <= dmg.offset <= len(logical),
                f"damage offset {dmg.offset} outside the decompressed {len(logical)} bytes",
            )
        if reader.format == "pcap":
            expect = 24 + sum(16 + len(f.data) for f in frames)
            _require(
                dmg.offset == expect,
                f"pcap damage offset {dmg.offset}, first undelivered record at {expect}",
            )
    return frames


_decode_fast: Callable[[Frame], object] | None
try:  # the fast path being written next to decode.py; compared with it when present
    from pcapdiag.accel.fast_decode import decode_fast as _decode_fast
except ImportError:  # pragma: no cover - depends on the pcapdiag version
    _decode_fast = None


def _same_decoding(frame: Frame) -> None:
    """decode_fast (if any) must give what decode gives, except that it leaves the options of
    non-SYN segments out (its docstring: the tracker reads options only from SYNs)."""
    if _decode_fast is None:
        return
    from dataclasses import replace

    from pcapdiag.decode.link import decode
    from pcapdiag.decode.packets import SYN, Segment

    slow, fast = decode(frame), _decode_fast(frame)
    if isinstance(slow, Segment) and isinstance(fast, Segment) and not slow.flags & SYN:
        slow, fast = replace(slow, options=None), replace(fast, options=None)
    _require(slow == fast, f"decode_fast differs from decode: {fast!r} != {slow!r}")


def target_decode(frames: list[Frame]) -> None:
    """Decode each frame without `decode()`'s catch-all, so that a bug raises here; the fast
    path, when there is one, must agree with it."""
    for frame in frames:
        _same_decoding(frame)
        pkt = decode_link(frame, frame.linktype, frame.data, 0, 0)
        if isinstance(pkt, Undecodable):
            _require("\n" not in pkt.reason, "undecodable reason has a line break")
        _require(pkt.frame == frame.number, "decoded packet names another frame")


def target_analysis(path: Path, frame_count: int | None, workdir: Path) -> None:
    """The whole analysis and every renderer."""
    from rich.console import Console

    from pcapdiag.api import export_findings
    from pcapdiag.render.html import to_html
    from pcapdiag.render.junit import to_junit
    from pcapdiag.render.markdown import to_markdown
    from pcapdiag.render.terminal import print_report
    from pcapdiag.render.text import flows_table, to_json, to_text
    from pcapdiag.settings import Settings

    try:
        report = analyze([str(path)], list(rules()), ladders=True)
    except CaptureError:
        return
    # The C first pass (accel) may only save time: the report without it is the same.
    without = analyze([str(path)], list(rules()), settings=Settings(accelerate=False))
    _require(report.to_dict() == without.to_dict(), "report differs without the C first pass")
    (cap,) = report.captures
    n = cap.frames
    if frame_count is not None:
        _require(n == frame_count, f"report counts {n} frames, the reader {frame_count}")
    for f in report.findings:
        _require(all(1 <= x <= n for x in f.frames), f"finding frames {f.frames} outside 1..{n}")
        _require(list(f.frames) == sorted(set(f.frames)), "finding frames not increasing")
    for w in report.warnings:
        _require(
            w.frame is None or 1 <= w.frame <= n + 1, f"warning frame {w.frame} outside 1..{n + 1}"
        )
    to_text(report, show_flows=True)
    to_json(report)
    to_markdown(report)
    to_junit(report)
    to_html(report)
    flows_table(report)
    print_report(
        report, Console(file=io.StringIO(), force_terminal=True, width=100), show_flows=True
    )
    if report.findings:
        export_findings(report, workdir / "export")


def target_cli(path: Path) -> None:
    """The CLI entry point in-process: exit 0, 3 or 4, never 70 or a traceback."""
    from pcapdiag.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: object = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["analyze", "--format", "json", str(path)])
        except SystemExit as exc:
            code = exc.code
    _require(code in (0, 3, 4), f"CLI exit code {code}: {err.getvalue()[-300:]}")
    _require("Traceback" not in err.getvalue(), "CLI printed a traceback")


def run_one(
    data: bytes,
    *,
    workdir: Path | None = None,
    name: str = "fuzz.pcap",
    cli: bool = False,
    limit: float = TIME_LIMIT_S,
) -> None:
    """Every target on one input, within `limit` seconds. Raises on a crash."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="pcapdiag-fuzz-"))
            )
        path = workdir / name
        path.write_bytes(data)
        with time_limit(limit):
            frames = target_capture(path, data)
            target_decode(frames)
            count = None
            if frames or data[:4] in _PCAP_MAGICS or data[:4] == b"\x0a\x0d\x0d\x0a":
                with contextlib.suppress(CaptureError):
                    reader = open_capture(str(path))
                    for _ in reader:
                        pass
                    count = reader.numbered
            target_analysis(path, count, workdir)
            if cli:
                target_cli(path)


def signature(exc: BaseException) -> str:
    """A short, stable name for a crash: exception type and the innermost pcapdiag line."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    inner = [fs for fs in frames if "/pcapdiag/" in fs.filename] or frames[-1:]
    where = f"{Path(inner[-1].filename).name}:{inner[-1].lineno}" if inner else "?"
    if isinstance(exc, PropertyViolation):
        msg = str(exc).split(":")[0][:40]
        return f"PropertyViolation[{msg}]"
    return f"{type(exc).__name__}@{where}"


def reproduces(data: bytes, sig: str, limit: float = TIME_LIMIT_S) -> bool:
    try:
        run_one(data, limit=limit)
    except Exception as exc:
        return signature(exc) == sig
    return False


def minimize(data: bytes, sig: str, *, budget_s: float = 60.0) -> bytes:
    """Delta debugging over bytes: drop chunks while the same crash signature reproduces."""
    import time

    deadline = time.monotonic() + budget_s
    best = data
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        progressed = False
        while i < len(best) and time.monotonic() < deadline:
            cand = best[:i] + best[i + chunk :]
            if cand and reproduces(cand, sig):
                best = cand
                progressed = True
            else:
                i += chunk
        if not progressed:
            chunk //= 2
    # then try zeroing bytes (smaller, more readable reproducers)
    i = 0
    while i < len(best) and time.monotonic() < deadline:
        if best[i] != 0:
            cand = best[:i] + b"\0" + best[i + 1 :]
            if reproduces(cand, sig):
                best = cand
        i += 1
    return best


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def describe(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "head": data[:8].hex()}
