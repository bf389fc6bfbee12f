"""Minimized reproducers of the crashes the fuzzer (fuzz/run.py) found (tests/system/test_fuzz.py).

Each was first found as a fuzzer input (fuzz/crashes/<signature>-<sha>.bin), then rewritten by
hand as the smallest capture that shows the same crash, built here so that what each byte means
is written down. `python tests/data/fuzz/make.py` rewrites them; tests/system/test_fuzz.py checks
the committed files are exactly what this script writes.

All are little-endian pcapng: a Section Header Block, one Interface Description Block
(Ethernet) with the options named, then Enhanced Packet Blocks.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent.parent.parent / "samples" / "demo.pcap"


def block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb() -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(*, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]))
    if tsoffset is not None:
        opts += option(14, struct.pack("<q", tsoffset))
    if opts:
        opts += option(0, b"")
    return block(1, struct.pack("<HHI", 1, 0, 0) + opts)


def epb(units: int, data: bytes) -> bytes:
    head = struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
    return block(6, head + data)


# An Ethernet frame carrying ARP (ethertype 0x0806): decoded as "other", no flow, no finding.
ARP = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28


def demo_frames(*numbers: int) -> list[tuple[int, bytes]]:
    """(timestamp in microseconds, data) of some records of samples/demo.pcap."""
    raw = DEMO.read_bytes()
    out, pos, n = [], 24, 0
    while pos < len(raw):
        sec, usec, caplen, _orig = struct.unpack_from("<IIII", raw, pos)
        n += 1
        if n in numbers:
            out.append((sec * 1_000_000 + usec, raw[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


def year_out_of_range() -> bytes:
    """One ARP frame stamped 2**60 microseconds after the epoch (year 38 504): a valid pcapng
    timestamp (64 bits of if_tsresol units) that `datetime` cannot show. report.iso_time raises
    ValueError("year 38504 is out of range") in every renderer."""
    return shb() + idb() + epb(1 << 60, ARP)


def seconds_eoverflow() -> bytes:
    """One ARP frame stamped 2**60 seconds after the epoch (if_tsresol = 0: units of 10**0 s).
    report.iso_time raises OSError(EOVERFLOW, "Value too large for defined data type")."""
    return shb() + idb(tsresol=0) + epb(1 << 60, ARP)


def time_t_overflow() -> bytes:
    """One ARP frame stamped 2**64 - 1 seconds after the epoch (if_tsresol = 0): report.iso_time
    raises OverflowError("timestamp out of range for platform time_t")."""
    return shb() + idb(tsresol=0) + epb((1 << 64) - 1, ARP)


def before_year_one() -> bytes:
    """One ARP frame at 0 plus if_tsoffset = -2**40 seconds (year -32 873): report.iso_time
    raises ValueError("year -32873 is out of range")."""
    return shb() + idb(tsoffset=-(1 << 40)) + epb(0, ARP)


def export_after_2106() -> bytes:
    """demo.pcap's refused connection (frames 1-2: SYN, RST|ACK -> PD-TCP-001) shifted by
    if_tsoffset = 2**32 seconds, to the year 2160: a time `datetime` shows, but pcap's 32-bit
    seconds field cannot hold. `analyze --export DIR` writes the finding's packets as pcap:
    export.py raises struct.error ("'I' format requires 0 <= number <= 4294967295")."""
    return shb() + idb(tsoffset=1 << 32) + b"".join(epb(t, d) for t, d in demo_frames(1, 2))


def export_before_1970() -> bytes:
    """The same refused connection shifted by if_tsoffset = -2**31 seconds (the year 1955):
    negative seconds, which pcap cannot hold either (struct.error in export.py)."""
    return shb() + idb(tsoffset=-(1 << 31)) + b"".join(epb(t, d) for t, d in demo_frames(1, 2))


def batch_offset_beyond_64_bits() -> bytes:
    """demo.pcap's refused connection on interface 0, after a second Ethernet interface whose
    if_tsoffset is -2**62 seconds, beyond 64 bits in nanoseconds, that no packet uses. The
    first pass plans the file (no packet's timestamp overflows), and the C batches of the
    second pass were handed that interface's offset: OverflowError, found by the hypothesis
    fuzz test. The reader now reads such a section itself."""
    frames = b"".join(epb(t, d) for t, d in demo_frames(1, 2))
    return shb() + idb() + idb(tsoffset=-(1 << 62)) + frames


CASES: dict[str, Callable[[], bytes]] = {
    "iso-time-year-out-of-range.pcapng": year_out_of_range,
    "iso-time-seconds-eoverflow.pcapng": seconds_eoverflow,
    "iso-time-overflow-time-t.pcapng": time_t_overflow,
    "iso-time-before-year-one.pcapng": before_year_one,
    "export-timestamp-after-2106.pcapng": export_after_2106,
    "export-timestamp-before-1970.pcapng": export_before_1970,
    "ng-batch-offset-beyond-64-bits.pcapng": batch_offset_beyond_64_bits,
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CASES.items():
        (out / name).write_bytes(make())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
