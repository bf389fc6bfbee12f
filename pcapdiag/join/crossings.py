"""Each packet of a joined connection as it left one host's view and arrived, or not, in the
other's (findings/crossing.py): what the HTML report draws side by side and the Markdown
report tabulates. Packets are paired as the evidence is (join/packets.py pair); a packet
unpaired is lost, or never sent, only while the other capture ran (the same window and the
same byte coverage as the loss count of join/facts.py)."""

from __future__ import annotations

from pcapdiag.findings.crossing import BOTH, LOST, RESEGMENTED, UNSEEN, UNSENT, Crossing, TwoViews
from pcapdiag.findings.ladder import FLAG_NAMES
from pcapdiag.join.facts import Views
from pcapdiag.join.match import Joined
from pcapdiag.join.packets import Packet, missing, pair


def two_views(views: Views, j: Joined) -> TwoViews | None:
    """The crossings of `j`, when a view on each host holds it and their clocks are known."""
    nc, ns = views.near(j, "client"), views.near(j, "server")
    if not j.comparable or nc is None or ns is None or nc == ns:
        return None
    if nc not in j.flows or ns not in j.flows:
        return None
    view = {"client": nc, "server": ns}
    clocks = {side: views.clocks.get(label) for side, label in view.items()}
    windows = {}
    for side, label in view.items():
        c, span = clocks[side], views.spans.get(label)
        if c is None or span is None or c.how_sure == "none":
            return None
        # The span the view surely ran, on the reference clock.
        windows[side] = (
            c.to_reference(span[0]) + c.spread_ns,
            c.to_reference(span[1]) - c.spread_ns,
        )
    at: dict[str, list[Packet]] = {}
    for side, label in view.items():
        mine = views.packets.get(label, {})
        c = clocks[side]
        assert c is not None
        at[side] = [
            Packet(p.frame, c.to_reference(p.ts_ns), p.sender, p.key, p.flags)
            for p in (mine.get(n) for n in j.flows[label].frames)
            if p is not None
        ]
    out: list[Crossing] = []
    for side, peer in (("client", "server"), ("server", "client")):
        who = j.client if side == "client" else j.server
        sent = sorted((p for p in at[side] if p.sender == who), key=lambda p: p.ts_ns)
        got = sorted((p for p in at[peer] if p.sender == who), key=lambda p: p.ts_ns)
        first = sent[0] if sent else got[0] if got else None
        base = first.key[0] if first is not None else 0
        hits = pair(sent, got)
        out += [
            Crossing(side, _label(p, base), (p.frame, p.ts_ns), (q.frame, q.ts_ns), BOTH)
            for p, q in hits
        ]
        # What left and never arrived, and (the same test the other way round) what arrived
        # and never left, each judged while the other capture ran.
        left = _unpaired(sent, got, {p.frame for p, _ in hits}, windows[peer], LOST)
        out += [Crossing(side, _label(p, base), (p.frame, p.ts_ns), None, st) for p, st in left]
        came = _unpaired(got, sent, {q.frame for _, q in hits}, windows[side], UNSENT)
        out += [Crossing(side, _label(q, base), None, (q.frame, q.ts_ns), st) for q, st in came]
    out.sort(key=lambda c: c.first_ns)
    return TwoViews(
        nc, ns, tuple(out), j.named(nc, "client"), j.named(ns, "server"), views.order[0]
    )


def _unpaired(
    mine: list[Packet],
    theirs: list[Packet],
    paired: set[int],
    window: tuple[int, int],
    absent: str,
) -> list[tuple[Packet, str]]:
    """The packets of `mine` no packet of `theirs` was paired with, each with its fate:
    `absent` when `theirs`' view ran then and holds none of its bytes (join/packets.py
    missing), resegmented when it ran and holds them in other segments, else unseen."""
    gone = {p.frame for p in missing(mine, theirs, window)}
    out = []
    for p in mine:
        if p.frame in paired:
            continue
        inside = window[0] <= p.ts_ns <= window[1]
        out.append((p, absent if p.frame in gone else RESEGMENTED if inside else UNSEEN))
    return out


def _label(p: Packet, base: int) -> str:
    flags = " ".join(name for bit, name in FLAG_NAMES if p.flags & bit) or "none"
    seq, length, _ = p.key
    text = f"{flags} seq={(seq - base) & 0xFFFFFFFF}"
    return text + (f" len={length}" if length else "")
