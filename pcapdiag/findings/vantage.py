"""Where a flow was captured: on the client's host, on the server's, on the path between,
or unknown, from the TTL (hop limit) each side's packets arrive with.

A host's own packets are captured before any router decrements their TTL, so they carry
their stack's initial value (64, 128 or 255: track/fingerprint.py); the other side's packets
arrive with less when a router lies between the two. Packets from both sides below their
initial values were captured on the path. Both at their initial values means no router
between the hosts (one LAN, or loopback): the capture could be on either host, so that says
nothing about which.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pcapdiag.slots import compact_pickle
from pcapdiag.track.fingerprint import captured_on_sender, initial_ttl
from pcapdiag.track.flows import FlowRecord

SAME_HOST = "same-host"
CLIENT_HOST = "client-host"
SERVER_HOST = "server-host"
PATH = "path"
UNKNOWN = "unknown"


@compact_pickle
@dataclass(frozen=True, slots=True)
class Vantage:
    where: str  # client-host | server-host | same-host | path | unknown
    why: str

    def is_far(self, side: str) -> bool:
        """Whether the capture was taken away from this side's host, on its peer's or on the
        path (so its kernel state is inferred from what was sent to it, not seen)."""
        return self.where == PATH or (self.where, side) in (
            (CLIENT_HOST, "server"),
            (SERVER_HOST, "client"),
        )


NOWHERE = Vantage(UNKNOWN, "")


def vantage(flow: FlowRecord) -> Vantage:
    if flow.one_host:
        return Vantage(SAME_HOST, "both ends are on one host (loopback or the same address)")
    c, s = flow.client_host.ttl, flow.server_host.ttl
    by_ttl = _by_ttl(c, s)
    if by_ttl is not None:
        return by_ttl
    by_timing = _by_handshake_timing(flow)
    if by_timing is not None:
        return by_timing
    return _no_router(c, s)


@functools.lru_cache(maxsize=1024)
def _no_router(c: int | None, s: int | None) -> Vantage:
    """Neither TTL nor timing tells (cached: one object for the many findings of an outage
    that say the same)."""
    said = f"the client's packets arrive with TTL {c}, the server's with {s}"
    return Vantage(UNKNOWN, f"{said}: no router between them, either host could have captured")


@functools.lru_cache(maxsize=1024)
def _by_ttl(c: int | None, s: int | None) -> Vantage | None:
    """What the two TTLs say (cached: a capture shows few pairs), None when both are
    initial values and the handshake's timing may tell."""
    if c is None or s is None:
        seen, ttl = ("client", c) if c is not None else ("server", s)
        if ttl is None:
            return Vantage(UNKNOWN, "no packet of either side was captured")
        return Vantage(UNKNOWN, f"only the {seen}'s packets were captured")
    said = f"the client's packets arrive with TTL {c}, the server's with {s}"
    if captured_on_sender(c, s):
        return Vantage(CLIENT_HOST, f"{said}: only the server's crossed a router")
    if captured_on_sender(s, c):
        return Vantage(SERVER_HOST, f"{said}: only the client's crossed a router")
    if initial_ttl(c) > c and initial_ttl(s) > s:
        return Vantage(PATH, f"{said}: both crossed a router before the capture point")
    return None


def _by_handshake_timing(flow: FlowRecord) -> Vantage | None:
    """Where the capture was taken, from the handshake's timing when the TTLs cannot tell: a
    host answers what reaches it in microseconds, while a packet's round trip to the other
    host takes the path's time. On the client's host the SYN-ACK comes a round trip after
    the SYN and the ACK follows at once; on the server's, the SYN-ACK follows the SYN at once
    and the ACK comes a round trip later."""
    syn = synack = ack = None
    for ev in flow.events:
        if ev.name == "syn" or (ev.name == "retransmission" and getattr(ev, "kind", "") == "syn"):
            if synack is None:
                syn = ev.ts_ns
        elif ev.name == "synack" and synack is None:
            synack = ev.ts_ns
        elif ev.name == "handshake":
            ack = ev.ts_ns
            break
    if syn is None or synack is None or ack is None:
        return None
    out, back = synack - syn, ack - synack
    said = f"SYN-ACK {out / 1e6:.3f} ms after the SYN, ACK {back / 1e6:.3f} ms after it"
    if back * 10 < out:
        return Vantage(CLIENT_HOST, f"the TTLs show no router; {said}: the client answered at once")
    if out * 10 < back:
        return Vantage(SERVER_HOST, f"the TTLs show no router; {said}: the server answered at once")
    return None
