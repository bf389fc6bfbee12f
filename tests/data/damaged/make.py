"""Damaged captures for tests/io/test_damaged_inputs.py, all made from samples/demo.pcap.

Run `python tests/data/damaged/make.py` to rewrite them; tests/io/test_damaged_inputs.py checks that
the committed files are exactly what this script writes. Each `CASES` entry says how its file
was damaged; the expected message, byte offset, frame number and exit code of each are in the
table of tests/io/test_damaged_inputs.py.

samples/demo.pcap: little-endian microsecond pcap, link type 1, 31 records. The 24-byte file
header is followed by the records at these offsets (record header 16 bytes + captured bytes):
frame 1 at 24, 20 at 1548, 21 at 1630, 22 at 1712, 24 at 1852, 25 at 1934, 29 at 2246,
31 at 2409; the file ends at 2479.

The pcapng cases start from the same 31 packets as pcapng (`demo_pcapng`): a 28-byte Section
Header Block (little-endian, no options), a 20-byte Interface Description Block (Ethernet, no
options), then one Enhanced Packet Block per frame (32 bytes + data padded to 4).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent.parent.parent / "samples" / "demo.pcap"


def demo_records() -> list[tuple[int, int, bytes, int]]:
    """(seconds, microseconds, data, original length) of each record of demo.pcap."""
    raw = DEMO.read_bytes()
    out = []
    pos = 24
    while pos < len(raw):
        sec, usec, caplen, orig = struct.unpack_from("<IIII", raw, pos)
        out.append((sec, usec, raw[pos + 16 : pos + 16 + caplen], orig))
        pos += 16 + caplen
    return out


def record_offset(frame: int) -> int:
    """Byte offset of record `frame` (1-based) in demo.pcap."""
    pos = 24
    for _sec, _usec, data, _orig in demo_records()[: frame - 1]:
        pos += 16 + len(data)
    return pos


def block(btype: int, body: bytes, *, blen: int | None = None) -> bytes:
    """A little-endian pcapng block; `blen` overrides the leading length only."""
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return (
        struct.pack("<II", btype, blen if blen is not None else total)
        + body
        + struct.pack("<I", total)
    )


def shb(bom: int = 0x1A2B3C4D) -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", bom, 1, 0, -1))


def idb(linktype: int = 1) -> bytes:
    return block(1, struct.pack("<HHI", linktype, 0, 0))


def epb(frame: int, ifid: int = 0, *, blen: int | None = None) -> bytes:
    sec, usec, data, orig = demo_records()[frame - 1]
    units = sec * 1_000_000 + usec
    head = struct.pack("<IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    return block(6, head + data, blen=blen)


def demo_pcapng(
    *, before: Callable[[int], bytes] | None = None, ifid: dict[int, int] | None = None
) -> bytes:
    """demo.pcap's 31 packets as pcapng; `before(n)` is inserted before frame n's block and
    `ifid` gives some frames another interface id."""
    out = [shb(), idb()]
    for n in range(1, len(demo_records()) + 1):
        if before is not None:
            out.append(before(n))
        out.append(epb(n, (ifid or {}).get(n, 0)))
    return b"".join(out)


def pcapng_offset(data: bytes, frame: int) -> int:
    """Offset of the block of packet `frame` in one of the pcapng files written here."""
    pos, n = 0, 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            n += 1
            if n == frame:
                return pos
        pos += blen
    raise ValueError(frame)


def _demo() -> bytes:
    return DEMO.read_bytes()


def global_header_truncated() -> bytes:
    """The first 10 bytes only: the magic is there, the link type is not. Not a capture that
    can be read at all (exit 3)."""
    return _demo()[:10]


def record_header_truncated() -> bytes:
    """Cut 8 bytes into the 16-byte record header of frame 21 (offset 1630): frames 1-20 are
    complete."""
    return _demo()[: record_offset(21) + 8]


def packet_data_truncated() -> bytes:
    """Cut 30 bytes into the packet data of frame 24 (record at 1852, data from 1868): frames
    1-23 are complete."""
    return _demo()[: record_offset(24) + 16 + 30]


def garbage_appended() -> bytes:
    """All 31 records, then 48 bytes of ASCII text (as when a log line lands in the file). Read
    as a record header, the text claims 0x42524147 ("GARB") captured bytes, more than the 256 KiB
    limit: damage at the end of the real records (2479), frame 32."""
    return _demo() + b"GARBAGE GARBAGE GARBAGE: not a pcap record header\n"[:48]


def pcapng_unknown_block() -> bytes:
    """pcapng with a block of an unknown type (0x0000F00D, 16 bytes) before frame 11. A reader
    must skip blocks it does not know (pcapng draft section 3.1): nothing is damaged, and the
    frame numbers are those of demo.pcap."""
    return demo_pcapng(before=lambda n: block(0x0000F00D, b"skip") if n == 11 else b"")


def pcapng_bad_bom_second_section() -> bytes:
    """pcapng whose second section, starting before frame 21, has the byte-order magic
    0xDEADBEEF instead of 0x1A2B3C4D: nothing after it can be read."""
    return demo_pcapng(before=lambda n: shb(bom=0xDEADBEEF) + idb() if n == 21 else b"")


def pcapng_undefined_interface() -> bytes:
    """pcapng whose packet block of frame 25 names interface 3; the section defines only
    interface 0."""
    return demo_pcapng(ifid={25: 3})


def pcapng_block_length_overflow() -> bytes:
    """pcapng whose packet block of frame 29 claims a total length of 0xFFFFFFFC (4 GiB - 4) in
    its header: a length that overflows any sane buffer (the trailing copy still says 88)."""
    data = demo_pcapng()
    at = pcapng_offset(data, 29)
    return data[: at + 4] + struct.pack("<I", 0xFFFFFFFC) + data[at + 8 :]


def pcapng_block_past_end() -> bytes:
    """pcapng cut 20 bytes into the packet block of frame 30: the block's length runs past the
    end of the file."""
    data = demo_pcapng()
    return data[: pcapng_offset(data, 30) + 20]


CASES: dict[str, Callable[[], bytes]] = {
    "global-header-truncated.pcap": global_header_truncated,
    "record-header-truncated.pcap": record_header_truncated,
    "packet-data-truncated.pcap": packet_data_truncated,
    "garbage-appended.pcap": garbage_appended,
    "pcapng-unknown-block.pcapng": pcapng_unknown_block,
    "pcapng-bad-bom-second-section.pcapng": pcapng_bad_bom_second_section,
    "pcapng-undefined-interface.pcapng": pcapng_undefined_interface,
    "pcapng-block-length-overflow.pcapng": pcapng_block_length_overflow,
    "pcapng-block-past-end.pcapng": pcapng_block_past_end,
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CASES.items():
        (out / name).write_bytes(make())
        print(f"{name}: {(make.__doc__ or '').split(chr(10))[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
