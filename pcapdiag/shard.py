"""Which worker of `--jobs N` owns a frame: flows are sharded by their 4-tuple.

The shard is the XOR of both addresses and both ports, modulo N: symmetric, so both
directions of a flow (and the ICMP errors quoting it) land on the same worker. `quick_shard`
reads it straight from a plain Ethernet/IPv4 TCP or UDP frame so that a worker skips the
frames of other workers without decoding them; anything else is decoded first and sharded by
`shard_of`, which gives the same number for the same packet. Frames that belong to no flow
(ARP, undecodable ones) all go to worker 0, which alone counts them.
"""

from __future__ import annotations

import struct

from .decode_ip import VXLAN_PORT
from .frames import Buffer, Frame
from .packets import Datagram, Decoded, IcmpError, Segment

_ADDRS_PORTS = struct.Struct("!IIHH")  # IPv4 source, destination, then the two ports


def quick_shard(frame: Frame, n: int) -> int | None:
    return quick_shard_at(frame.data, 0, len(frame.data), frame.linktype, n)


def quick_shard_at(data: Buffer, start: int, stop: int, linktype: int, n: int) -> int | None:
    """The worker of the plain Ethernet/IPv4 TCP or UDP frame at data[start:stop], read in
    place; None for any other frame (decode it, then use shard_of)."""
    if (
        linktype == 1
        and stop - start >= 38
        and data[start + 12] == 0x08
        and data[start + 13] == 0x00
        and data[start + 14] == 0x45  # IPv4 without options: the ports follow at 34
        and data[start + 23] in (6, 17)
        and not (data[start + 20] & 0x3F or data[start + 21])  # not a fragment
    ):
        a, b, p, q = _ADDRS_PORTS.unpack_from(data, start + 26)
        if data[start + 23] == 17 and VXLAN_PORT in (p, q):
            return None  # the decoder unwraps VXLAN: shard by the inner flow
        return int((a ^ b ^ p ^ q) % n)
    return None


def shard_of(pkt: Decoded, n: int) -> int:
    if isinstance(pkt, Segment | Datagram):
        x = int.from_bytes(pkt.src, "big") ^ int.from_bytes(pkt.dst, "big")
        return (x ^ pkt.sport ^ pkt.dport) % n
    if isinstance(pkt, IcmpError):
        q = pkt.quoted
        if q.sport is None or q.dport is None:
            return 0
        x = int.from_bytes(q.src, "big") ^ int.from_bytes(q.dst, "big")
        return (x ^ q.sport ^ q.dport) % n
    return 0
