"""Writing pcapng (draft-ietf-opsawg-pcapng): one section, interfaces described as they are
first needed, Enhanced Packet Blocks that may carry comments, and placeholder Custom Blocks.

The blocks are packed here with struct rather than with dpkt.pcapng: dpkt 1.9's
EnhancedPacketBlock writes the captured length as the original length too (a frame cut short
by the snaplen would claim to be whole), its Writer.writepkt stamps a zero timestamp with the
current time, and its Writer takes every interface before the first packet. The file is
little-endian whatever the host: section 4.1 lets the writer choose, and every reader takes
both orders.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import BinaryIO

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_EPB = 0x00000006
# Custom Block that a rewriter should not copy into new files (section 4.8): a placeholder
# only means something in the file it was written into.
BT_CUSTOM_NO_COPY = 0x40000BAD
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1  # opt_comment: UTF-8 text, not zero-terminated (section 3.5)
OPT_SHB_USERAPPL = 4
OPT_IF_TSRESOL = 9

# A Custom Block names the organisation that defined its data by its IANA Private Enterprise
# Number; pcapdiag has none. 0 is reserved in IANA's registry, so no reader takes a
# placeholder for data of its own format.
PLACEHOLDER_PEN = 0

_BLOCK_HEAD = struct.Struct("<II")  # block type, block total length
_U32 = struct.Struct("<I")
_OPTION_HEAD = struct.Struct("<HH")  # option code, option length
_SHB_BODY = struct.Struct("<IHHq")  # byte-order magic, major, minor, section length
_IDB_BODY = struct.Struct("<HHI")  # link type, reserved, snaplen
_EPB_HEAD = struct.Struct("<IIIIIII")  # block head, interface id, ts high, ts low, lengths

_MAX_OPTION = 0xFFFF  # an option's length is 16 bits
_MAX_UNITS = (1 << 64) - 1  # an EPB's timestamp is an unsigned 64-bit count of units
_NS_PER_US = 1000


# Zero bytes that bring a length up to a multiple of 32 bits (section 3.1), by how many.
_PADDING = [b"\0" * n for n in range(4)]


def _pad(n: int) -> bytes:
    """The padding after n bytes."""
    return _PADDING[-n % 4]


def _options(options: Sequence[tuple[int, bytes]]) -> bytes:
    """An option list, ended by opt_endofopt; nothing at all when there is no option (the
    list is optional, section 3.5)."""
    if not options:
        return b""
    parts = []
    for code, value in options:
        if len(value) > _MAX_OPTION:
            raise ValueError(f"pcapng option {code} of {len(value)} bytes: at most 65535")
        parts += [_OPTION_HEAD.pack(code, len(value)), value, _pad(len(value))]
    parts.append(_OPTION_HEAD.pack(OPT_ENDOFOPT, 0))
    return b"".join(parts)


def _block(btype: int, body: bytes) -> bytes:
    body += _pad(len(body))
    total = 12 + len(body)
    return _BLOCK_HEAD.pack(btype, total) + body + _U32.pack(total)


class PcapngWriter:
    """Writes one pcapng section to `fh`: its header at once, then interfaces, packets and
    placeholders in the order they are given."""

    def __init__(self, fh: BinaryIO, application: str) -> None:
        self._fh = fh
        self._units: list[int] = []  # per interface: nanoseconds per timestamp unit
        # Section length -1: not known in advance (a stream may be written).
        body = _SHB_BODY.pack(BYTE_ORDER_MAGIC, 1, 0, -1)
        fh.write(_block(BT_SHB, body + _options([(OPT_SHB_USERAPPL, application.encode())])))

    def add_interface(self, linktype: int, snaplen: int, nanosecond: bool) -> int:
        """Describe an interface (an Interface Description Block); returns its id. Its
        timestamps count microseconds (if_tsresol absent: the default, section 4.2) or, with
        `nanosecond`, nanoseconds (if_tsresol 9)."""
        options = [(OPT_IF_TSRESOL, bytes([9]))] if nanosecond else []
        body = _IDB_BODY.pack(linktype, 0, snaplen) + _options(options)
        self._fh.write(_block(BT_IDB, body))
        self._units.append(1 if nanosecond else _NS_PER_US)
        return len(self._units) - 1

    def packet(
        self,
        interface: int,
        ts_ns: int,
        data: bytes,
        orig_len: int,
        comments: Sequence[str] = (),
    ) -> bool:
        """One Enhanced Packet Block (section 4.3) with an opt_comment per comment (an option
        may appear more than once). Returns False when the timestamp had to be clamped: before
        1970 or past what 64 bits of the interface's units hold."""
        # Called for every frame of the capture: the common case (nanoseconds, no comment)
        # takes no division and builds no option list.
        unit = self._units[interface]
        units = ts_ns
        if unit != 1:
            units, rest = divmod(ts_ns, unit)
            if rest:
                raise ValueError(f"timestamp {ts_ns} ns is finer than interface {interface} keeps")
        exact = 0 <= units <= _MAX_UNITS
        if not exact:
            units = min(max(units, 0), _MAX_UNITS)
        opts = _options([(OPT_COMMENT, c.encode()) for c in comments]) if comments else b""
        caplen = len(data)
        pad = _PADDING[-caplen % 4]
        total = 32 + caplen + len(pad) + len(opts)
        head = _EPB_HEAD.pack(
            BT_EPB, total, interface, units >> 32, units & 0xFFFFFFFF, caplen, orig_len
        )
        self._fh.write(b"".join((head, data, pad, opts, _U32.pack(total))))
        return exact

    def placeholder(self, text: str) -> None:
        """A Custom Block holding `text`: stands in for a block that is not copied, where
        Wireshark would give that block a frame number (it numbers Custom Blocks)."""
        self._fh.write(_block(BT_CUSTOM_NO_COPY, _U32.pack(PLACEHOLDER_PEN) + text.encode()))
