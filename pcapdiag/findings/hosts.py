"""Who sent a RST that is its claimed sender's only packet on its connection: held to that
host's TTL on the capture's other connections (track/hosts.py), at the report's end, when
every connection has been read (and every worker's table merged, so --jobs decides alike).

A rule states how TTLs attribute a RST within one connection (`outcome.origin`, on
`rst.ttl_delta` and `rst.ttl_baseline`); when its connection gave no baseline the rule's
origin is `unknown`, and the finding keeps an `RstClaim`. If the claimed sender's SYNs or
SYN-ACKs elsewhere in the capture arrive with fewer hops left than the RST, something closer
than that host sent it (a firewall's REJECT with tcp-reset, a load balancer, conntrack);
with the same TTL, the host itself (or a device as far away). A RST that arrives with less
TTL than its claimed sender's own packets proves nothing here and stays unknown.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from pcapdiag.findings.model import Finding, Origin
from pcapdiag.rules.engine import Match
from pcapdiag.rules.model import Rule
from pcapdiag.slots import compact_pickle
from pcapdiag.track.events import Rst, Side
from pcapdiag.track.flows import FlowRecord
from pcapdiag.track.hosts import HostBaselines


@compact_pickle
@dataclass(frozen=True, slots=True)
class RstClaim:
    """A RST with no baseline in its own connection, as the report's end needs it."""

    addr: bytes  # the address it claims to come from
    role: str  # that address's role in the connection: client or server
    ttl: int
    frame: int
    ip_id: int  # -1: IPv6
    timestamps: bool
    timestamps_in_use: bool


def claim_of(rule: Rule, flow: FlowRecord, match: Match, origin: Origin) -> RstClaim | None:
    """The RST to attribute later, when the rule attributes RSTs by TTL and found nothing
    in the connection to compare this one with."""
    if origin.actor != "unknown" or not rule.outcome.origins:
        return None
    for ev in match.bindings.values():
        if isinstance(ev, Rst) and not ev.ttl_baseline and ev.sender is not None:
            endpoint = flow.client if ev.sender is Side.CLIENT else flow.server
            return RstClaim(
                _packed(endpoint),
                ev.sender.value,
                ev.ttl,
                ev.frame,
                ev.ip_id,
                ev.timestamps,
                ev.timestamps_in_use,
            )
    return None


def attribute(finding: Finding, baselines: HostBaselines | None) -> Finding:
    """`finding` with its origin decided by its RST claim's host baseline, when there is one."""
    claim = finding.rst_claim
    if claim is None or baselines is None:
        return finding
    base = baselines.baseline(claim.addr)
    if base is None or base[0] == claim.frame:
        return finding
    frame, ttl = base
    who = claim.role
    if claim.ttl > ttl:
        # Not the IP ID: Linux's own resets made without a socket carry 0 as well as
        # netfilter's and injectors' (the recordings show all three), so it tells nothing.
        origin = Origin(
            "network",
            "medium",
            f"sent by a device closer than the {who}: the RST arrives with TTL {claim.ttl}, "
            f"the {who}'s own handshake packets on other connections with {ttl} (frame "
            f"{frame}); a firewall's REJECT with tcp-reset, a load balancer or "
            "conntrack answers like this",
        )
    elif claim.ttl == ttl:
        origin = Origin(
            "peer",
            "medium",
            f"the RST arrives with the TTL of the {who}'s own handshake packets on other "
            f"connections ({ttl}, frame {frame}): its host sent it, or a device as far away",
        )
    else:
        return finding
    return dataclasses.replace(finding, origin=origin)


def _packed(endpoint: str) -> bytes:
    """The address bytes of an "ip:port" or "[ip]:port" endpoint."""
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    return ipaddress.ip_address(host).packed
