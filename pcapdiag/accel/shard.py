"""Which worker of `--jobs N` owns a frame: flows are sharded by their 4-tuple.

The shard is the XOR of both addresses and both ports, modulo N: symmetric, so both
directions of a flow (and the ICMP errors quoting it) land on the same worker. Every worker
decodes every frame (most through the fast path, which costs about what reading the shard from
raw header bytes did) and keeps the packets whose shard is its own. Frames that belong to no
flow (ARP, undecodable ones) all go to worker 0, which alone counts them: sharding the decoded
packet keeps that exact, where a shard read from raw bytes had sent a truncated TCP frame to
the worker of its ports, and no worker counted it.
"""

from __future__ import annotations

from pcapdiag.decode.packets import Datagram, Decoded, IcmpError, Segment


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
