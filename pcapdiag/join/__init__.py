"""Several captures of the same connections from different points (`analyze --join`): each
connection matched across the views (join/match.py), each view's clock set against the
first's (join/clock.py), and one finding per failure with the evidence of every view and
what only two views prove (join/combine.py, join/facts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pcapdiag.findings.model import Finding, Report
from pcapdiag.join import clock, facts, packets
from pcapdiag.join.combine import combine
from pcapdiag.join.match import Joined, exchanges, match
from pcapdiag.track.flows import FlowRecord


@dataclass(frozen=True, slots=True)
class JoinSummary:
    """What the join found: each view's clock against the first's, and how many
    connections more than one view saw."""

    clocks: tuple[clock.Clock, ...]
    connections: int


def join_views(report: Report, labels: list[str], records: dict[str, list[FlowRecord]]) -> None:
    """Replace `report`'s findings by the joined ones and set `report.join`."""
    views = [(label, records.get(label, [])) for label in labels]
    joined = match(views)
    ref = labels[0]
    clocks = {ref: clock.reference(ref)}
    for label in labels[1:]:
        clocks[label] = clock.estimate(label, exchanges(joined, ref, label))
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
        ctx.packets[label] = packets.read(label, frames)
    out = [g for j, found in shared for g in combine(ctx, j, found)]
    for rest in by_flow.values():  # neighbour runs, and anything else no view shares
        out += rest
    report.findings = out
    # Each connection once, however many views saw it.
    report.tcp_connections = sum(j.proto == "tcp" for j in joined)
    report.udp_flows = sum(j.proto == "udp" for j in joined)
    report.join = JoinSummary(
        tuple(clocks[label] for label in labels), sum(len(j.flows) > 1 for j in joined)
    )


def _flow_key(flow: FlowRecord) -> tuple[str, str, str, int]:
    return (flow.proto, flow.client, flow.server, flow.instance)
