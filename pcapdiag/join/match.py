"""Which flows of different views are one connection: the same protocol and endpoints (the
roles swapped where one view had to guess them), the n-th instance of those ports in one
view with the n-th in another; and the clock samples their handshakes give."""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapdiag.join.clock import Exchange
from pcapdiag.track.flows import FlowRecord


@dataclass(slots=True)
class Joined:
    """One connection and its flow in each view that saw it, by capture label. `client` and
    `server` are as the first view that saw it names them; `aliases` holds, by label, the
    names of the views that call them otherwise (address translation between the capture
    points: join/translate.py), and `how` what matched those views."""

    proto: str
    client: str
    server: str
    flows: dict[str, FlowRecord] = field(default_factory=dict)
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    how: str = "endpoints"
    # By label: how far that view's sequence numbers are from the first view's, for the
    # client's and the server's (a middlebox that rewrites them); None: not known.
    shifts: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

    @property
    def comparable(self) -> bool:
        """Whether a packet of one view can be found in another by its sequence number."""
        return all(None not in s for s in self.shifts.values())

    def named(self, label: str, side: str) -> str:
        """The endpoint of `side` ("client" | "server") as view `label` names it."""
        names = self.aliases.get(label, (self.client, self.server))
        return names[0] if side == "client" else names[1]


def match(views: list[tuple[str, list[FlowRecord]]]) -> list[Joined]:
    """The connections of every view, each with its flows: views in the given order."""
    by_key: dict[tuple[str, str, str], dict[str, list[FlowRecord]]] = {}
    for label, records in views:
        for rec in records:
            if rec.proto == "neighbour":
                continue
            key = (rec.proto, rec.client, rec.server)
            swapped = (rec.proto, rec.server, rec.client)
            if key not in by_key and swapped in by_key and rec.roles == "guessed":
                key = swapped  # this view guessed the roles the other way round
            by_key.setdefault(key, {}).setdefault(label, []).append(rec)
    joined = []
    for (proto, client, server), per_view in by_key.items():
        for flows in per_view.values():
            flows.sort(key=lambda r: r.instance)
        for i in range(max(len(flows) for flows in per_view.values())):
            j = Joined(proto, client, server)
            for label, flows in per_view.items():
                if i < len(flows):
                    j.flows[label] = flows[i]
            joined.append(j)
    return joined


def exchanges(joined: list[Joined], ref: str, other: str) -> list[Exchange]:
    """The handshakes both `ref` and `other` saw, as clock samples (join/clock.py)."""
    out = []
    for j in joined:
        a, b = j.flows.get(ref), j.flows.get(other)
        if a is None or b is None:
            continue
        ta, tb = _handshake(a), _handshake(b)
        if ta is not None and tb is not None:
            out.append(Exchange(ta[0], tb[0], tb[1], ta[1]))
    return out


def _handshake(flow: FlowRecord) -> tuple[int, int] | None:
    """Capture times of the flow's first SYN and first SYN-ACK, when it shows both."""
    syn = synack = None
    for ev in flow.events:
        if ev.name == "syn" and syn is None:
            syn = ev.ts_ns
        elif ev.name == "synack" and synack is None:
            synack = ev.ts_ns
            break
    if syn is None or synack is None:
        return None
    return syn, synack
