"""What one host's packets of a flow look like, kept in a few fields per direction: the
evidence for the platform a host runs (findings/platform.py) and for where the capture was
taken (findings/vantage.py).

An IP packet leaves its host with the initial TTL (hop limit) of its stack and loses one per
router; the initial values in use are 64 (Linux, BSD, macOS), 128 (Windows) and 255 (network
devices, some Unix): RFC 1700 lists 64 as the recommended default, and p0f v3 classifies
hosts by the same three. A packet captured with exactly its initial TTL was captured on the
host that sent it (or one LAN hop away on a switch port: nothing routed it).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_TTLS = (32, 64, 128, 255)


def initial_ttl(ttl: int) -> int:
    """The smallest usual initial TTL at or above `ttl`: the value the sender started with,
    when it is fewer than 32 hops away (paths are far shorter: RFC 1812 hosts see 10-20)."""
    for start in INITIAL_TTLS:
        if ttl <= start:
            return start
    return 255


def captured_on_sender(own: int | None, other: int | None) -> bool:
    """Whether a capture whose two sides' packets arrive with TTLs `own` and `other` was taken
    on the host sending `own`: its packets carry their initial TTL, the other side's crossed a
    router. False when either is unknown, or when no router shows between them."""
    if own is None or other is None:
        return False
    return initial_ttl(own) == own and initial_ttl(other) > other


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One side of a flow as its packets show it. None: not seen in the capture."""

    ttl: int | None = None  # TTL / hop limit of the side's first packet captured
    syn_layout: str | None = None  # options layout of its SYN or SYN-ACK (TcpOptions.layout)
    syn_window: int | None = None  # window field of its SYN or SYN-ACK
    syn_mss: int | None = None
    bad_checksum_frame: int | None = None  # its SYN's TCP checksum was wrong (offload)

    @property
    def hops(self) -> int | None:
        """Routers between the sender and the capture point (0: captured on its host or on
        its own LAN)."""
        return None if self.ttl is None else initial_ttl(self.ttl) - self.ttl


NOT_SEEN = Fingerprint()
