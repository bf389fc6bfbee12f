"""The hot path of decoding: Ethernet + IPv4 or IPv6 + TCP without surprises, in one unpack.

Most frames of a busy link are exactly that. `decode_fast` reads the header fields it needs
with a single precompiled struct from the frame's start and builds the Segment directly; any
frame it does not fully understand (another link type, VLAN tags, IP options, fragments,
extension headers, SYNs and RSTs with options, whose options matter, options in any layout
but the common one, short frames) goes to the general decoder `decode.decode`. Options are
left out (None) of other segments: the tracker reads them only from SYNs and RSTs, and of
the rest only the timestamps' TSval, which this path reads when the options start with
NOP, NOP, timestamps (Linux, Windows, BSD and macOS all write them so). A RST without
options comes here. tests/accel/test_fast_path.py checks that both paths give identical
reports.
"""

from __future__ import annotations

import struct

from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import RST, SYN, Decoded, Segment
from pcapdiag.io.records import Buffer, Frame

# Ethernet (type at 12), IPv4 without options (20 bytes at 14), the TCP fields up to the window
# (16 of its 20 bytes, at 34).
_ETH_IP4_TCP = struct.Struct("!12xHBxHHHBBxx4s4sHHIIHH")
# The options' first word when they start with NOP, NOP, timestamps (kind 8, length 10:
# RFC 7323 appendix A's layout), then TSval.
_TS_HEAD = 0x0101080A
_TS_LEAD = struct.Struct("!II")
# Ethernet, IPv6 fixed header (40 bytes at 14), TCP up to the window (at 54).
_ETH_IP6_TCP = struct.Struct("!12xHIHBB16s16sHHIIHH")
# Frames must hold the whole 20-byte TCP header, as the general decoder requires.
_MIN4 = 14 + 20 + 20
_MIN6 = 14 + 40 + 20


def _common_ts(data: Buffer, p: int, thl: int, stop: int) -> int | None:
    """The TSval of options at `p` that start with NOP, NOP, timestamps captured whole; None
    for any other layout (the general decoder reads those)."""
    if thl < 32 or stop < p + 12:
        return None
    head, ts_val = _TS_LEAD.unpack_from(data, p)
    return ts_val if head == _TS_HEAD else None


def decode_fast(frame: Frame) -> Decoded:
    if frame.linktype == 1:
        data = frame.data
        seg = ethernet_segment(data, 0, len(data), frame.number, frame.ts_ns)
        if seg is not None:
            return seg
    return decode(frame)


def decode_record(
    buf: Buffer, start: int, stop: int, number: int, ts_ns: int, linktype: int, orig_len: int
) -> Decoded:
    """decode_fast for a record still in the reader's buffer (the bytes at start:stop): a
    frame of the common kind is decoded in place, with no Frame and no copy of its bytes."""
    if linktype == 1:
        seg = ethernet_segment(buf, start, stop, number, ts_ns)
        if seg is not None:
            return seg
    return decode(Frame(number, ts_ns, linktype, bytes(buf[start:stop]), orig_len))


def ethernet_segment(
    data: Buffer, start: int, stop: int, number: int, ts_ns: int
) -> Segment | None:
    """The Segment in the Ethernet frame at data[start:stop], or None when the frame is not
    of the common kind (the general decoder then decides what it is)."""
    n = stop - start
    # One 802.1Q tag is common on trunk captures: the same layout, 4 bytes later.
    off = 4 if n > 18 and data[start + 12] == 0x81 and data[start + 13] == 0x00 else 0
    if n <= 14 + off:
        return None
    t0 = data[start + 12 + off]
    t1 = data[start + 13 + off]
    if t0 == 0x08 and t1 == 0x00 and n >= _MIN4 + off:
        (
            _et,
            vihl,
            total,
            ident,
            frag,
            ttl,
            proto,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            offflags,
            window,
        ) = _ETH_IP4_TCP.unpack_from(data, start + off)
        thl = (offflags >> 10) & 0x3C  # data offset in bytes
        if (
            vihl == 0x45
            and proto == 6
            and not frag & 0x3FFF  # neither a fragment nor the first of several
            and total >= 40
            and thl >= 20
            and total - 20 >= thl
            and not offflags & SYN
            and (not offflags & RST or thl == 20)
        ):
            ts_val = -1 if thl == 20 else _common_ts(data, start + off + 54, thl, stop)
            if ts_val is None:
                return None
            return Segment(
                number,
                ts_ns,
                4,
                src,
                dst,
                ttl,
                sport,
                dport,
                seq,
                ack,
                offflags & 0xFF,
                window,
                total - 20 - thl,
                None,
                False,
                ident,
                frag & 0x4000 != 0,  # Don't Fragment (RFC 791)
                ts_val,
            )
    elif t0 == 0x86 and t1 == 0xDD and n >= _MIN6 + off:
        (_et, vtcfl, plen, nh, hlim, src, dst, sport, dport, seq, ack, offflags, window) = (
            _ETH_IP6_TCP.unpack_from(data, start + off)
        )
        thl = (offflags >> 10) & 0x3C
        if (
            vtcfl >> 28 == 6
            and nh == 6
            and plen >= thl >= 20
            and not offflags & SYN
            and (not offflags & RST or thl == 20)
        ):
            ts_val = -1 if thl == 20 else _common_ts(data, start + off + 74, thl, stop)
            if ts_val is None:
                return None
            return Segment(
                number,
                ts_ns,
                6,
                src,
                dst,
                hlim,
                sport,
                dport,
                seq,
                ack,
                offflags & 0xFF,
                window,
                plen - thl,
                None,
                False,
                -1,
                False,
                ts_val,
            )
    return None
