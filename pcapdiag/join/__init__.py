"""Several captures of the same connections from different points (`analyze --join`): each
connection matched across the views (join/match.py), each view's clock set against the
first's (join/clock.py), and one finding per failure with the evidence of every view and
what only two views prove (join/combine.py, join/facts.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pcapdiag.findings.model import Finding, Report
from pcapdiag.join import clock, crossings, facts, packets, translate
from pcapdiag.join.combine import combine
from pcapdiag.join.match import Joined, exchanges, match
from pcapdiag.join.packets import Packet
from pcapdiag.track.flows import FlowRecord


@dataclass(frozen=True, slots=True)
class JoinSummary:
    """What the join found: each view's clock against the first's, and how many
    connections more than one view saw."""

    clocks: tuple[clock.Clock, ...]
    connections: int
    translated: int = 0  # of them, views named differently (address translation between)


def join_views(
    report: Report, labels: list[str], records: dict[str, list[FlowRecord]], fast: bool = False
) -> None:
    """Replace `report`'s findings by the joined ones and set `report.join`. `fast`: read
    the packets again with the accelerator's batches (join/packets.py read)."""
    views = [(label, records.get(label, [])) for label in labels]
    joined = match(views)
    joined, read = _through_translation(joined, tuple(labels), fast)
    clocks = _clocks(joined, labels)
    ctx = facts.Views(
        order=tuple(labels),
        hosts=facts.placed(views),
        clocks=clocks,
        spans=facts.spans(report.captures),
    )
    by_flow: dict[tuple[str, str, str, str, int], list[Finding]] = {}
    for f in report.findings:
        by_flow.setdefault((f.capture, *_flow_key(f.flow)), []).append(f)
    # Each connection with its findings from every view (a connection only one view saw is
    # joined too: its absence from the view on the other host is evidence, join/facts.py).
    shared: list[tuple[Joined, list[Finding]]] = []
    for j in joined:
        found = [
            f for label, fl in j.flows.items() for f in by_flow.pop((label, *_flow_key(fl)), [])
        ]
        if found:
            shared.append((j, found))
    # Their packets, each file read once more.
    wanted: dict[str, set[int]] = {}
    for j, _ in shared:
        for label, fl in j.flows.items():
            wanted.setdefault(label, set()).update(fl.frames)
    for label, frames in wanted.items():
        have = read.get(label, {})
        ctx.packets[label] = {**have, **packets.read(label, frames - have.keys(), fast)}
    _rename(joined, ctx.packets)
    out = []
    for j, found in shared:
        kept = combine(ctx, j, found)
        seen = crossings.two_views(ctx, j) if kept else None
        for g in kept:
            out.append(g)
            if seen is not None:
                report.crossings[g.id] = seen
    for rest in by_flow.values():  # neighbour runs, and anything else no view shares
        out += rest
    report.findings = out
    # Each connection once, however many views saw it.
    report.tcp_connections = sum(j.proto == "tcp" for j in joined)
    report.udp_flows = sum(j.proto == "udp" for j in joined)
    report.join = JoinSummary(
        tuple(clocks[label] for label in labels),
        sum(len(j.flows) > 1 for j in joined),
        sum(bool(j.aliases) for j in joined),
    )


def _clocks(joined: list[Joined], labels: list[str]) -> dict[str, clock.Clock]:
    ref = labels[0]
    clocks = {ref: clock.reference(ref)}
    for label in labels[1:]:
        clocks[label] = clock.estimate(label, exchanges(joined, ref, label))
    return clocks


def _through_translation(
    joined: list[Joined], order: tuple[str, ...], fast: bool
) -> tuple[list[Joined], dict[str, dict[int, Packet]]]:
    """Put together the TCP connections the views name differently (join/translate.py):
    first by their sequence numbers, then, with the clocks those give, by payload lengths
    and timing. Also the packets read for it, by view and frame."""
    lacking = [j for j in joined if j.proto == "tcp" and len(j.flows) < len(order)]
    frames: dict[str, set[int]] = {}
    for j in lacking:
        for label, fl in j.flows.items():
            frames.setdefault(label, set()).update(translate.first_frames(fl))
    if len(frames) < 2:  # nothing another view could match
        return joined, {}
    read = {label: packets.read(label, fs, fast) for label, fs in frames.items()}
    sigs = {
        (label, id(fl)): translate.signature(fl, read[label])
        for j in lacking
        for label, fl in j.flows.items()
    }
    joined = translate.through_translation(joined, order, sigs, None)
    clocks = _clocks(joined, list(order))
    return translate.through_translation(joined, order, sigs, clocks), read


def _rename(joined: list[Joined], found: dict[str, dict[int, Packet]]) -> None:
    """Name each packet's sender, and count its sequence number, as the connection's first
    view does, so that the packets of views on either side of address translation (or of a
    device that rewrites sequence numbers) compare (join/packets.py pair)."""
    for j in joined:
        for label in j.aliases.keys() | j.shifts.keys():
            names = {j.named(label, "client"): 0, j.named(label, "server"): 1}
            canonical = (j.client, j.server)
            shift = j.shifts.get(label, (0, 0))
            mine = found.get(label, {})
            for n in j.flows[label].frames:
                p = mine.get(n)
                side = names.get(p.sender) if p is not None else None
                if p is None or side is None:
                    continue
                seq, length, kind = p.key
                by = shift[side] or 0
                mine[n] = dataclasses.replace(
                    p, sender=canonical[side], key=((seq - by) & 0xFFFFFFFF, length, kind)
                )


def _flow_key(flow: FlowRecord) -> tuple[str, str, str, int]:
    return (flow.proto, flow.client, flow.server, flow.instance)
