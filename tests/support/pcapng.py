"""pcapng blocks built by hand (draft-ietf-opsawg-pcapng), for captures no capture tool writes
on demand: several interfaces with different link types and timestamp resolutions, several
sections in different byte orders, Custom Blocks between the packets."""

from __future__ import annotations

import struct

BT_SHB, BT_IDB, BT_EPB, BT_CUSTOM = 0x0A0D0D0A, 1, 6, 0x00000BAD
OPT_IF_TSRESOL = 9
# RFC 5612: the Private Enterprise Number set aside for documentation and examples.
EXAMPLE_PEN = 32473


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    """Type, total length, body padded to 32 bits, total length again (section 3.1)."""
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def options(pairs: list[tuple[int, bytes]], order: str = "<") -> bytes:
    """An option list with its opt_endofopt (section 3.5)."""
    out = b""
    for code, value in pairs:
        out += struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + struct.pack(order + "HH", 0, 0)


def shb(order: str = "<") -> bytes:
    return block(BT_SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, tsresol: int | None = None, snaplen: int = 0, order: str = "<") -> bytes:
    opts = options([(OPT_IF_TSRESOL, bytes([tsresol]))], order) if tsresol is not None else b""
    return block(BT_IDB, struct.pack(order + "HHI", linktype, 0, snaplen) + opts, order)


def epb(ifid: int, units: int, data: bytes, orig_len: int | None = None, order: str = "<") -> bytes:
    """An Enhanced Packet Block; `units` in the interface's timestamp resolution."""
    orig = len(data) if orig_len is None else orig_len
    head = struct.pack(order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    return block(BT_EPB, head + data + b"\0" * (-len(data) % 4), order)


def custom(data: bytes, order: str = "<") -> bytes:
    """A Custom Block (copiable): Wireshark numbers it as a frame of its own."""
    return block(BT_CUSTOM, struct.pack(order + "I", EXAMPLE_PEN) + data, order)
