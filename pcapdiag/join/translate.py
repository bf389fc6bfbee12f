"""Connections the views name differently: address translation between the capture points
(NAT, a load balancer, a port forward) changes addresses and ports, not what the endpoints
put in their packets.

A TCP connection is recognised by its initial sequence numbers: each end picks its own for
every connection (RFC 9293 section 3.4.1), 32 bits that NAT leaves as they are (RFC 3022
section 4.3 rewrites addresses, ports and checksums only). Both numbers equal in two views
(or the client's, where a view has no SYN-ACK), and no other flow of either view with the
same, is one connection. Where a middlebox rewrote them or a view started mid-flow, the
payload lengths of the first segments both ways, in order, and their time on the shared
clock (join/clock.py) recognise it: only one candidate in each view, or none is taken.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pcapdiag.decode.packets import SYN
from pcapdiag.join.clock import Clock
from pcapdiag.join.match import Joined
from pcapdiag.join.packets import Packet
from pcapdiag.track.flows import FlowRecord

# A flow's first frames: enough for its handshake and first payload segments both ways.
FIRST_FRAMES = 32
# Payload segments compared when the sequence numbers do not decide, at most / at least.
LENGTHS = 8
MIN_LENGTHS = 3
# How far apart the first payload segment may be in two views, beyond what the clocks'
# uncertainty allows: the path between the capture points and its queues.
SLACK_NS = 500_000_000

BY_ISN = "initial sequence numbers"
BY_LENGTHS = "payload lengths and timing"


OTHER = {"client": "server", "server": "client"}


@dataclass(frozen=True, slots=True)
class Signature:
    """What a view saw of a flow that address translation does not change."""

    client_isn: int | None
    server_isn: int | None
    # The first payload segments, each once: (sender "client" | "server", seq, bytes).
    segments: tuple[tuple[str, int, int], ...]
    first_payload_ns: int | None

    def lengths(self, flip: bool = False) -> tuple[tuple[str, int], ...]:
        return tuple((OTHER[s] if flip else s, n) for s, _, n in self.segments)

    def isn(self, side: str) -> int | None:
        return self.client_isn if side == "client" else self.server_isn


def first_frames(flow: FlowRecord) -> list[int]:
    return list(flow.frames[:FIRST_FRAMES])


def signature(flow: FlowRecord, packets: dict[int, Packet]) -> Signature:
    client_isn = server_isn = None
    segments: list[tuple[str, int, int]] = []
    first_payload = None
    for n in first_frames(flow):
        p = packets.get(n)
        if p is None:
            continue
        side = "client" if p.sender == flow.client else "server"
        seq, length, kind = p.key
        if kind & SYN:
            if side == "client" and client_isn is None:
                client_isn = seq
            elif side == "server" and server_isn is None:
                server_isn = seq
        # A retransmission is not a new segment.
        if length and len(segments) < LENGTHS and (side, seq, length) not in segments:
            segments.append((side, seq, length))
            if first_payload is None:
                first_payload = p.ts_ns
    return Signature(client_isn, server_isn, tuple(segments), first_payload)


def shifts(a: Signature, b: Signature, flip: bool) -> tuple[int | None, int | None]:
    """How far `b`'s sequence numbers are from `a`'s, for `a`'s client and server (None:
    not known): from their initial sequence numbers, else from the first payload segment
    both saw. `flip`: `b` names the roles the other way round."""
    out: list[int | None] = []
    n = min(len(a.segments), len(b.segments))
    aligned = a.lengths()[:n] == b.lengths(flip)[:n]
    for side in ("client", "server"):
        theirs = OTHER[side] if flip else side
        ia, ib = a.isn(side), b.isn(theirs)
        if ia is not None and ib is not None:
            out.append((ib - ia) & 0xFFFFFFFF)
            continue
        pairs = zip(a.segments[:n], b.segments[:n], strict=True) if aligned else ()
        out.append(
            next(((sb - sa) & 0xFFFFFFFF for (w, sa, _), (_, sb, _) in pairs if w == side), None)
        )
    return out[0], out[1]


def through_translation(
    joined: list[Joined],
    order: tuple[str, ...],
    signatures: dict[tuple[str, int], Signature],
    clocks: dict[str, Clock] | None,
) -> list[Joined]:
    """`joined` with the connections views name differently put together, view pair by view
    pair in `order`: by sequence numbers when `clocks` is None, else by payload lengths and
    timing. `signatures` by (view label, id of the flow record)."""
    how = BY_ISN if clocks is None else BY_LENGTHS
    for i, x in enumerate(order):
        for y in order[i + 1 :]:
            in_x = [j for j in joined if j.proto == "tcp" and x in j.flows and y not in j.flows]
            in_y = [j for j in joined if j.proto == "tcp" and y in j.flows and x not in j.flows]
            sig_x = {id(j): signatures.get((x, id(j.flows[x]))) for j in in_x}
            sig_y = {id(j): signatures.get((y, id(j.flows[y]))) for j in in_y}
            if clocks is None:
                pairs = _by_isn(in_x, in_y, sig_x, sig_y)
            else:
                pairs = _by_lengths(x, y, in_x, in_y, clocks, sig_x, sig_y)
            for a, b, swapped in pairs:
                sa, sb = sig_x[id(a)], sig_y[id(b)]
                assert sa is not None and sb is not None
                _merge(a, b, x, y, swapped, shifts(sa, sb, swapped), how)
            gone = {id(b) for _, b, _ in pairs}
            joined = [j for j in joined if id(j) not in gone]
    return joined


def _merge(
    a: Joined,
    b: Joined,
    x: str,
    y: str,
    swapped: bool,
    delta: tuple[int | None, int | None],
    how: str,
) -> None:
    """Add `b`'s flows to `a`, remembering how those views name the connection and how far
    their sequence numbers are from `a`'s (`delta`: view `y`'s from view `x`'s)."""
    base = a.shifts.get(x, (0, 0))
    for label, flow in b.flows.items():
        a.flows[label] = flow
        names = b.aliases.get(label, (b.client, b.server))
        own, at_y = b.shifts.get(label, (0, 0)), b.shifts.get(y, (0, 0))
        if swapped:
            names, own, at_y = names[::-1], own[::-1], at_y[::-1]
        if names != (a.client, a.server):
            a.aliases[label] = names
        shift = tuple(
            _add(o, -t if t is not None else None, d, s0)
            for o, t, d, s0 in zip(own, at_y, delta, base, strict=True)
        )
        if shift != (0, 0):
            a.shifts[label] = (shift[0], shift[1])
    a.how = how


def _add(*parts: int | None) -> int | None:
    if any(p is None for p in parts):
        return None
    return sum(parts) & 0xFFFFFFFF  # type: ignore[arg-type]


# fits(a, b): None when they are not one connection; False when they are, as named; True
# when they are with the roles the other way round in one of the views.
Fits = Callable[[Joined, Joined], "bool | None"]
# The flows of the other view worth testing against one (a dictionary lookup, a time window),
# so that two views of tens of thousands of flows never compare every pair.
Candidates = Callable[[Joined], Iterable[Joined]]


def _unique_pairs(
    in_x: list[Joined], candidates: Candidates, fits: Fits
) -> list[tuple[Joined, Joined, bool]]:
    """The pairs where each is the other's only candidate."""
    found: dict[int, list[tuple[Joined, bool]]] = {}
    back: dict[int, int] = {}
    for a in in_x:
        tested: set[int] = set()
        for b in candidates(a):
            if id(b) in tested:
                continue
            tested.add(id(b))
            swapped = fits(a, b)
            if swapped is None:
                continue
            found.setdefault(id(a), []).append((b, swapped))
            back[id(b)] = back.get(id(b), 0) + 1
    out = []
    for a in in_x:
        cands = found.get(id(a), [])
        if len(cands) == 1 and back[id(cands[0][0])] == 1:
            out.append((a, cands[0][0], cands[0][1]))
    return out


def _by_isn(
    in_x: list[Joined],
    in_y: list[Joined],
    sig_x: dict[int, Signature | None],
    sig_y: dict[int, Signature | None],
) -> list[tuple[Joined, Joined, bool]]:
    by_isn: dict[int, list[Joined]] = {}
    for b in in_y:
        s = sig_y[id(b)]
        if s is not None and s.client_isn is not None:
            by_isn.setdefault(s.client_isn, []).append(b)

    def candidates(a: Joined) -> Iterable[Joined]:
        s = sig_x[id(a)]
        return by_isn.get(s.client_isn, ()) if s is not None and s.client_isn is not None else ()

    def fits(a: Joined, b: Joined) -> bool | None:
        ia, ib = sig_x[id(a)], sig_y[id(b)]
        assert ia is not None and ib is not None
        if None not in (ia.server_isn, ib.server_isn) and ia.server_isn != ib.server_isn:
            return None
        return False

    return _unique_pairs(in_x, candidates, fits)


def _by_lengths(
    x: str,
    y: str,
    in_x: list[Joined],
    in_y: list[Joined],
    clocks: dict[str, Clock],
    sig_x: dict[int, Signature | None],
    sig_y: dict[int, Signature | None],
) -> list[tuple[Joined, Joined, bool]]:
    cx, cy = clocks.get(x), clocks.get(y)
    if cx is None or cy is None or "none" in (cx.how_sure, cy.how_sure):
        shift, slack = 0, SLACK_NS  # the capture hosts' clocks as they were
    else:
        shift, slack = cy.offset_ns - cx.offset_ns, SLACK_NS + cx.spread_ns + cy.spread_ns
    # The other view's flows by their first payload lengths, each bucket in time order.
    buckets: dict[tuple[tuple[str, int], ...], list[tuple[int, int, Joined]]] = {}
    for i, b in enumerate(in_y):
        s = sig_y[id(b)]
        if s is not None and s.first_payload_ns is not None and len(s.segments) >= MIN_LENGTHS:
            key = s.lengths()[:MIN_LENGTHS]
            buckets.setdefault(key, []).append((s.first_payload_ns, i, b))
    for bucket in buckets.values():
        bucket.sort(key=lambda e: (e[0], e[1]))

    def candidates(a: Joined) -> Iterator[Joined]:
        s = sig_x[id(a)]
        if s is None or s.first_payload_ns is None or len(s.segments) < MIN_LENGTHS:
            return
        t = s.first_payload_ns + shift
        for key in (s.lengths()[:MIN_LENGTHS], s.lengths(flip=True)[:MIN_LENGTHS]):
            bucket = buckets.get(key, [])
            i = bisect.bisect_left(bucket, t - slack, key=lambda e: e[0])
            while i < len(bucket) and bucket[i][0] <= t + slack:
                yield bucket[i][2]
                i += 1

    def fits(a: Joined, b: Joined) -> bool | None:
        sa, sb = sig_x[id(a)], sig_y[id(b)]
        if sa is None or sb is None or sa.first_payload_ns is None or sb.first_payload_ns is None:
            return None
        n = min(len(sa.segments), len(sb.segments))
        if n < MIN_LENGTHS or abs(sa.first_payload_ns + shift - sb.first_payload_ns) > slack:
            return None
        if sa.lengths()[:n] == sb.lengths()[:n]:
            return False
        guessed = "guessed" in (a.flows[x].roles, b.flows[y].roles)
        if guessed and sa.lengths()[:n] == sb.lengths(flip=True)[:n]:
            return True
        return None

    return _unique_pairs(in_x, candidates, fits)
