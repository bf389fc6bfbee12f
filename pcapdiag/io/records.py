"""Types shared by the capture reader and the decoder: one record per frame of the file.

`Frame` is treated as immutable but not declared frozen: one is created per frame, and frozen
dataclasses are several times slower to create (see packets.py)."""

from __future__ import annotations

import mmap
from dataclasses import dataclass

# What a record's bytes are read from: the file's mmap, or a bytes buffer (stdin, gzip).
Buffer = bytes | mmap.mmap


@dataclass(slots=True)
class Frame:
    """One packet record of a pcap or pcapng file, before any decoding."""

    number: int  # 1-based, as Wireshark numbers it: every packet record counts
    ts_ns: int  # capture timestamp, integer nanoseconds since the Unix epoch
    linktype: int  # LINKTYPE_* value of the interface the frame was captured on
    data: bytes  # the captured bytes (may be shorter than orig_len: snaplen)
    orig_len: int  # length of the packet on the wire
    interface: int = 0  # pcapng interface id (0 for pcap)


@dataclass(frozen=True, slots=True)
class Damage:
    """Where a capture file stops being readable. Frames before it were delivered."""

    offset: int  # byte offset in the (decompressed) file where the bad record/block starts
    frame: int  # the frame number the bad record would have had
    message: str  # one line, plain words
