"""Each host's TTL (hop limit) as its own handshake packets show it, across every connection
of a capture: the baseline a RST claiming to come from that host is held to when its own
connection holds no other packet of it. A SYN refused by a firewall's `REJECT --reject-with
tcp-reset` is the common case: the RST is all the client ever gets on that connection, but
the server's SYN-ACKs on other connections show how far away the server really is
(findings/hosts.py uses this).

Only SYNs and SYN-ACKs are noted: the general decoder reads them anyway, so healthy traffic
pays nothing, and the C first pass notes the same frames of the connections it sets aside.
The table is the same whatever the order of notes and however the frames are shared out
(--jobs, the first pass): the earliest frame of each host wins, and past MAX_HOSTS distinct
hosts (a flood of spoofed sources) the table is `overflow` and gives no baseline at all.
"""

from __future__ import annotations

# Distinct hosts a capture's table holds (accel/_triage.c holds the same, from
# accel/shared.py); beyond it the table gives up rather than depend on which were kept.
MAX_HOSTS = 65_536


class HostBaselines:
    __slots__ = ("first", "overflow")

    def __init__(self) -> None:
        self.first: dict[bytes, tuple[int, int]] = {}  # address -> (frame, TTL)
        self.overflow = False

    def note(self, addr: bytes, frame: int, ttl: int) -> None:
        """A SYN or SYN-ACK from `addr` in `frame`, with `ttl`."""
        seen = self.first.get(addr)
        if seen is not None:
            if frame < seen[0]:
                self.first[addr] = (frame, ttl)
            return
        if len(self.first) >= MAX_HOSTS:
            self.overflow = True
            return
        self.first[addr] = (frame, ttl)

    def merge(self, other: HostBaselines | dict[bytes, tuple[int, int]] | None) -> None:
        """Take in another worker's table, or the first pass's (None: it gave up: overflow)."""
        if other is None:
            self.overflow = True
            return
        if isinstance(other, HostBaselines):
            self.overflow |= other.overflow
            other = other.first
        for addr, (frame, ttl) in other.items():
            self.note(addr, frame, ttl)

    def baseline(self, addr: bytes) -> tuple[int, int] | None:
        """(frame, TTL) of `addr`'s first handshake packet, or None (none, or overflow)."""
        return None if self.overflow else self.first.get(addr)
