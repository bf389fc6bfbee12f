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
        paired_sent = {p.frame for p, _ in hits}
        paired_got = {q.frame for _, q in hits}
        lost = {p.frame for p in missing(sent, got, windows[peer])}
        for p in sent:
            if p.frame in paired_sent:
                continue
            inside = windows[peer][0] <= p.ts_ns <= windows[peer][1]
            status = LOST if p.frame in lost else RESEGMENTED if inside else UNSEEN
            out.append(Crossing(side, _label(p, base), (p.frame, p.ts_ns), None, status))
        # What arrived and never left: the same test the other way round.
        unsent = {q.frame for q in missing(got, sent, windows[side])}
        for q in got:
            if q.frame in paired_got:
                continue
            inside = windows[side][0] <= q.ts_ns <= windows[side][1]
            status = UNSENT if q.frame in unsent else RESEGMENTED if inside else UNSEEN
            out.append(Crossing(side, _label(q, base), None, (q.frame, q.ts_ns), status))
    out.sort(key=lambda c: c.first_ns)
    return TwoViews(
        nc, ns, tuple(out), j.named(nc, "client"), j.named(ns, "server"), views.order[0]
    )


def _label(p: Packet, base: int) -> str:
    flags = " ".join(name for bit, name in FLAG_NAMES if p.flags & bit) or "none"
    seq, length, _ = p.key
    text = f"{flags} seq={(seq - base) & 0xFFFFFFFF}"
    return text + (f" len={length}" if length else "")
