"""One finding per failure of a joined connection, with the evidence of every view.

Each side's findings are taken from the view on its host, where what its kernel got is
seen, not inferred: a failure only a far view suggests (a RST that never arrived) is left
out, and each host's sockets get their errnos at the confidence of a capture on that host.
Where no view is on a side's host, the views' findings are pooled, one per rule. Each kept
finding cites, in every other view that saw the connection, the same packets as its own
evidence where they got there (join/packets.py pair); and what only the two views prove
(join/facts.py) decides its origin.
"""

from __future__ import annotations

import dataclasses
import statistics

from pcapdiag.findings.confidence import LEVELS
from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.model import Finding, Origin
from pcapdiag.findings.plural import counted, word
from pcapdiag.join import facts
from pcapdiag.join.facts import Views
from pcapdiag.join.match import Joined
from pcapdiag.join.packets import pair

# Frames a finding cites in each other view, at most.
MAX_CITED = 12


def combine(views: Views, j: Joined, found: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for side in ("client", "server"):
        mine = [f for f in found if f.side == side]
        if not mine:
            continue
        near = views.near(j, side)
        if near is not None and near in j.flows:
            kept = [f for f in mine if f.capture == near]
        else:
            kept = _one_per_rule(mine, views.order)
        out += [_joined(views, j, f) for f in kept]
    return out


def _one_per_rule(found: list[Finding], order: tuple[str, ...]) -> list[Finding]:
    best: dict[str, Finding] = {}
    for f in sorted(found, key=lambda f: order.index(f.capture) if f.capture in order else 0):
        have = best.get(f.rule)
        if have is None or LEVELS.index(f.confidence.level) > LEVELS.index(have.confidence.level):
            best[f.rule] = f
    return list(best.values())


def _joined(views: Views, j: Joined, f: Finding) -> Finding:
    own = j.flows.get(f.capture)
    cited = [ev for ev in own.events if ev.frame in f.frames] if own is not None else []
    evidence = [(f.capture, n) for n in f.frames]
    mine = views.packets.get(f.capture, {})
    wanted = [mine[n] for n in f.frames if n in mine]
    for label in views.order:
        other = j.flows.get(label)
        if label == f.capture or other is None or not j.comparable:
            continue
        # The same packets where the other view holds them: sender, sequence number,
        # length and flags (join/packets.py), each copy once.
        theirs = views.packets.get(label, {})
        hits = pair(wanted, (theirs[n] for n in other.frames if n in theirs))
        evidence += [(label, n) for n in sorted(q.frame for _, q in hits)[:MAX_CITED]]
    origin, notes = _two_views(views, j, f, cited)
    notes += _delay_notes(views, j, f)
    notes += _names_note(j, f)
    return dataclasses.replace(
        f,
        evidence=tuple(evidence),
        origin=origin,
        notes=f.notes + tuple(notes),
    )


def _two_views(views: Views, j: Joined, f: Finding, cited: list) -> tuple[Origin, list[str]]:
    side = f.side
    peer = "server" if side == "client" else "client"
    notes = []
    for ev in cited:
        if ev.name == "rst" and ev.sender is not None and ev.sender.value == peer:
            where = facts.rst_unsent(views, j, f.capture, peer, ev.frame, ev.ts_ns)
            if where is not None:
                why = (
                    f"the {side}'s capture shows a RST in the {peer}'s name (frame {ev.frame}), "
                    f"and {where}, taken on the {peer}'s host, has none on this connection: the "
                    f"{peer} never sent it, a device on the way made it"
                )
                return Origin("network", "high", why), notes
        if ev.name == "icmp_error" and ev.from_peer:
            seen = facts.icmp_sent(views, j, f.capture, peer, ev)
            if seen is None:
                continue
            where, frame = seen
            said = (
                f"the {side}'s capture shows an ICMP error from the {peer}'s address "
                f"(frame {ev.frame})"
            )
            if frame is None:
                why = (
                    f"{said}, and {where}, taken on the {peer}'s host, shows none going out: "
                    f"the {peer} never sent it, a device on the way made it in its name"
                )
                return Origin("network", "high", why), notes
            why = f"{said}, and {where}, taken on the {peer}'s host, shows it leave (frame {frame})"
            return Origin("peer", "high", why), notes
    mine, theirs = facts.loss(views, j, side), facts.loss(views, j, peer)
    lost = [x for x in (mine, theirs) if x is not None]
    for x in lost:
        if x.lost:
            other = "server" if x.side == "client" else "client"
            frames = ", ".join(str(n) for n in x.lost[:MAX_CITED])
            since = f" ({iso_time(x.first_lost_ns)})" if x.first_lost_ns is not None else ""
            notes.append(
                f"{len(x.lost)} of the {counted(x.sent, 'packet')} the {x.side} sent while "
                f"both captures ran never reached the {other}'s host ({x.missing_in}), from "
                f"frame {x.lost[0]} of {x.seen_in}{since} on "
                f"({word(len(x.lost), 'frame')} {frames}): lost between the two capture points."
            )
    prim = f.primary()
    if prim is None or prim.errno != "ETIMEDOUT" or mine is None or not mine.sent:
        return f.origin, notes
    gone = [x for x in lost if x.lost]
    if gone:
        why = "; ".join(
            f"{len(x.lost)} of the {x.side}'s {x.sent} packets never reached the "
            f"{'server' if x.side == 'client' else 'client'}'s host"
            for x in gone
        )
        return Origin("network", "high", why + ": lost between the two capture points"), notes
    if theirs is None:
        return f.origin, notes
    why = (
        f"the {peer}'s host received every packet the {side} sent ({mine.sent}), and the "
        f"{side}'s host every one the {peer} sent: the {peer} did not answer"
    )
    return Origin("peer", "high", why), notes


# "Around the failure": the packets sent in this long before the finding's first evidence.
BEFORE_NS = 1_000_000_000


def _delay_notes(views: Views, j: Joined, f: Finding) -> list[str]:
    """The path between the two hosts' captures: its round trip (the two one-way medians
    added: what the clocks' offset cannot skew), and each way's change in the second before
    the finding's evidence begins, when a millisecond or more (a change is the clocks'
    offset's to skew no more than the round trip)."""
    found = facts.delays(views, j)
    if found is None:
        return []
    c2s, s2c = found.by_sender["client"], found.by_sender["server"]
    if not c2s or not s2c:
        return []
    clock = views.clocks.get(f.capture)
    start = clock.to_reference(f.first_ts_ns) if clock is not None else f.first_ts_ns
    rtt = statistics.median(d for _, d in c2s) + statistics.median(d for _, d in s2c)
    text = (
        f"Round trip between the two captures {rtt / 1e6:.3f} ms "
        f"({counted(len(c2s), 'packet')} matched "
        f"client to server, {len(s2c)} server to client)"
    )
    for name, samples in (("client to server", c2s), ("server to client", s2c)):
        whole = statistics.median(d for _, d in samples)
        near = [d for t, d in samples if start - BEFORE_NS <= t < start]
        if near and abs(statistics.median(near) - whole) >= 1_000_000:
            change = statistics.median(near) - whole
            text += f"; {name} {change / 1e6:+.3f} ms in the second before it failed"
    return [text + "."]


def _names_note(j: Joined, f: Finding) -> list[str]:
    """Where the views name the connection differently: how each of the others names it."""
    if not j.aliases:
        return []
    names = [
        f"{label} as {j.named(label, 'client')} -> {j.named(label, 'server')}"
        for label in j.flows
        if label != f.capture
    ]
    return [
        "Address translation between the captures: "
        + "; ".join(names)
        + f" (the same connection: matched by {j.how})."
    ]
