"""What only two views of one connection prove: packets one end sent that never reached the
other's host (the loss lies between the two capture points), and a RST one end received
that the other's host never sent (made on the way).

A view is on a side's host when that side's packets leave in it with their initial TTL and
the other's arrive with less (findings/vantage.py), or when the view saw that host's
address so on another connection. A count or an absence is only evidence for the span of
time both captures ran (their first and last frames, on the reference clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pcapdiag.findings.model import CaptureInfo
from pcapdiag.findings.vantage import SAME_HOST, vantage
from pcapdiag.join.clock import Clock
from pcapdiag.join.match import Joined
from pcapdiag.join.packets import Packet, missing, pair
from pcapdiag.track.flows import FlowRecord


def _addr(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


def placed(views: list[tuple[str, list[FlowRecord]]]) -> dict[str, set[str]]:
    """The addresses each view was taken on the host of (by label), from its flows whose
    vantage is decided."""
    out: dict[str, set[str]] = {}
    for label, records in views:
        own = out.setdefault(label, set())
        for rec in records:
            if rec.proto == "neighbour":
                continue
            where = vantage(rec).where
            if where == "client-host":
                own.add(_addr(rec.client))
            elif where == "server-host":
                own.add(_addr(rec.server))
    return out


@dataclass(frozen=True, slots=True)
class Views:
    """Everything the facts need to know of the views: their order, where each was taken,
    their clocks, the span each ran (its own clock) and the packets of the connections
    with findings, read again (join/packets.py), by view and frame."""

    order: tuple[str, ...]
    hosts: dict[str, set[str]]
    clocks: dict[str, Clock]
    spans: dict[str, tuple[int, int] | None]
    packets: dict[str, dict[int, Packet]] = field(default_factory=dict)

    def near(self, j: Joined, side: str) -> str | None:
        """The view taken on `side`'s host, None when none is known to be."""
        for label in self.order:
            flow = j.flows.get(label)
            if flow is not None and vantage(flow).where in (f"{side}-host", SAME_HOST):
                return label
        for label in self.order:
            if _addr(j.named(label, side)) in self.hosts.get(label, ()):
                return label
        return None

    def covers(self, label: str, from_label: str, first_ns: int, last_ns: int) -> bool:
        """Whether view `label` ran through [first_ns, last_ns] of view `from_label`'s clock
        (its clock known against the reference's)."""
        span = self.spans.get(label)
        a, b = self.clocks.get(label), self.clocks.get(from_label)
        if span is None or a is None or b is None or "none" in (a.how_sure, b.how_sure):
            return False
        shift = a.offset_ns - b.offset_ns
        # Only what the clocks' uncertainty cannot move out of the span.
        slack = a.spread_ns + b.spread_ns
        return span[0] + slack <= first_ns + shift and last_ns + shift <= span[1] - slack


def spans(captures: list[CaptureInfo]) -> dict[str, tuple[int, int] | None]:
    """The first and last frame's time of each capture, by path (None: no frame)."""
    out: dict[str, tuple[int, int] | None] = {}
    for c in captures:
        if c.first_ts_ns is None or c.last_ts_ns is None:
            out[c.path] = None
        else:
            out[c.path] = (c.first_ts_ns, c.last_ts_ns)
    return out


@dataclass(frozen=True, slots=True)
class Loss:
    """Of the packets `side` sent while the view on the peer's host ran (`sent`, seen in the
    view on its own host), those that view never saw (`lost`: their frames in `seen_in`)."""

    side: str
    sent: int
    lost: tuple[int, ...]
    seen_in: str  # the view on the sender's host
    missing_in: str  # the view on the receiver's host
    first_lost_ns: int | None = None  # when the first lost packet left (seen_in's clock)


def loss(views: Views, j: Joined, side: str) -> Loss | None:
    """What of `side`'s packets reached the peer's host, when a view on each host is known
    and their clocks are set against each other."""
    peer = "server" if side == "client" else "client"
    ns, np_ = views.near(j, side), views.near(j, peer)
    if not j.comparable or ns is None or np_ is None or ns == np_ or ns not in j.flows:
        return None
    span = views.spans.get(np_)
    a, b = views.clocks.get(np_), views.clocks.get(ns)
    if span is None or a is None or b is None or "none" in (a.how_sure, b.how_sure):
        return None
    shift = a.offset_ns - b.offset_ns  # from the sender's view's clock to the receiver's
    who = j.client if side == "client" else j.server
    mine = views.packets.get(ns, {})
    sent = [
        Packet(mine[n].frame, mine[n].ts_ns + shift, who, mine[n].key)
        for n in j.flows[ns].frames
        if n in mine and mine[n].sender == who
    ]
    other = j.flows.get(np_)
    theirs = views.packets.get(np_, {})
    seen = (
        [theirs[n] for n in other.frames if n in theirs and theirs[n].sender == who]
        if other is not None
        else []
    )
    slack = a.spread_ns + b.spread_ns  # what the clocks' uncertainty could move
    window = (span[0] + slack, span[1] - slack)
    inside = [p for p in sent if window[0] <= p.ts_ns <= window[1]]
    lost = missing(sent, seen, window)
    first = lost[0].ts_ns - shift if lost else None
    return Loss(side, len(inside), tuple(p.frame for p in lost), ns, np_, first)


def rst_unsent(
    views: Views, j: Joined, receiver_view: str, sender: str, frame: int, ts_ns: int
) -> str | None:
    """The view on `sender`'s host, when it ran at `ts_ns` (of `receiver_view`'s clock) and
    does not hold the RST of `receiver_view`'s frame `frame` (the same sequence number and
    flags, from `sender`): that RST was never sent by it."""
    ns = views.near(j, sender)
    if (
        not j.comparable
        or ns is None
        or ns == receiver_view
        or not views.covers(ns, receiver_view, ts_ns, ts_ns)
    ):
        return None
    rst = views.packets.get(receiver_view, {}).get(frame)
    if rst is None:
        return None
    flow = j.flows.get(ns)
    theirs = views.packets.get(ns, {})
    if flow is not None and any(
        n in theirs and theirs[n].sender == rst.sender and theirs[n].key == rst.key
        for n in flow.frames
    ):
        return None
    return ns


def icmp_sent(
    views: Views, j: Joined, receiver_view: str, sender: str, ev: Any
) -> tuple[str, int | None] | None:
    """Whether `sender`'s host sent the ICMP error `ev` (an icmp_error event of
    `receiver_view` from `sender`'s address): (the view on its host, the frame there that
    shows it going out), or (that view, None) when it ran at that time and shows none: a
    device on the way made it in the sender's name (only where the clocks tell that it ran
    then). None when nothing can be told."""
    ns = views.near(j, sender)
    if ns is None or ns == receiver_view:
        return None
    flow = j.flows.get(ns)
    for other in flow.events if flow is not None else ():
        if (
            other.name == "icmp_error"
            and (other.icmp_type, other.icmp_code) == (ev.icmp_type, ev.icmp_code)
            and other.receiver == ev.receiver
        ):
            return ns, other.frame
    if not views.covers(ns, receiver_view, ev.ts_ns, ev.ts_ns):
        return None
    return ns, None


@dataclass(frozen=True, slots=True)
class Delays:
    """One-way delays of the packets both views hold, per direction ("client", "server": who
    sent them), as (time on the reference clock, delay in ns), in time order. They rest on
    the clocks' offset, itself worked out as if the path were as long both ways."""

    by_sender: dict[str, list[tuple[int, int]]]
    between: tuple[str, str]  # the two views: the first the sender's side, as ordered


def delays(views: Views, j: Joined) -> Delays | None:
    """The delays between the views on the two hosts (None: not both known, or no clock)."""
    nc, ns = views.near(j, "client"), views.near(j, "server")
    if (
        not j.comparable
        or nc is None
        or ns is None
        or nc == ns
        or nc not in j.flows
        or ns not in j.flows
    ):
        return None
    cc, cs = views.clocks.get(nc), views.clocks.get(ns)
    if cc is None or cs is None or "none" in (cc.how_sure, cs.how_sure):
        return None
    pc, ps = views.packets.get(nc, {}), views.packets.get(ns, {})
    at_client = [pc[n] for n in j.flows[nc].frames if n in pc]
    at_server = [ps[n] for n in j.flows[ns].frames if n in ps]
    out: dict[str, list[tuple[int, int]]] = {"client": [], "server": []}
    for side, sent_view, got_view, sent_clock, got_clock in (
        ("client", at_client, at_server, cc, cs),
        ("server", at_server, at_client, cs, cc),
    ):
        who = j.client if side == "client" else j.server
        sent = sorted((p for p in sent_view if p.sender == who), key=lambda p: p.ts_ns)
        for p, hit in pair(sent, (q for q in got_view if q.sender == who)):
            sent_at = sent_clock.to_reference(p.ts_ns)
            out[side].append((sent_at, got_clock.to_reference(hit.ts_ns) - sent_at))
    return Delays(out, (nc, ns))
