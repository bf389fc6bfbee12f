"""Ladder rows: the packets of one flow replayed through a fresh tracker, which gives each
endpoint's state after every packet. The frames come from the second pass (evidence.py);
nothing here reads a file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pcapdiag.decode.icmp import describe_kind, icmp_kind
from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN, Datagram, IcmpError, Segment
from pcapdiag.findings.model import Finding
from pcapdiag.io.records import Frame
from pcapdiag.track.connection import Connection

FLAG_NAMES = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"))


@dataclass(frozen=True, slots=True)
class LadderRow:
    """One packet of a flow as a ladder diagram draws it."""

    frame: int
    ts_ns: int
    direction: str  # "c2s", "s2c", or "net2c" / "net2s" for an ICMP error from a router
    label: str  # flags, or the ICMP error in words
    seq: int | None  # relative to the sender's ISN (Wireshark's relative sequence numbers)
    ack: int | None
    length: int
    client_state: str  # after this packet
    server_state: str


def finding_sources(f: Finding) -> tuple[str, ...]:
    """The file(s) a finding's frame numbers refer to (several when captures were merged),
    from which its ladder is read again; none for a finding made without a capture."""
    return tuple(f.sources) or ((f.capture,) if f.capture else ())


class LadderReplay:
    """The rows of one flow, made as its frames are given, in capture order."""

    def __init__(self) -> None:
        self.rows: list[LadderRow] = []
        self._conn: Connection | None = None
        self._udp_client: tuple[bytes, int] | None = None

    def add(self, frame: Frame) -> None:
        pkt = decode(frame)
        if isinstance(pkt, Segment):
            self._segment(pkt)
        elif isinstance(pkt, IcmpError) and self._conn is not None:
            self._tcp_icmp(pkt, self._conn)
        elif isinstance(pkt, Datagram | IcmpError):
            self._udp(pkt)

    def _segment(self, pkt: Segment) -> None:
        conn = self._conn
        if conn is None:
            conn, sender = Connection.from_first_segment(pkt)
            self._conn = conn
        else:
            side = conn.side_of(pkt.src, pkt.sport)
            if side is None:
                return
            sender = side
        s = conn.endpoint(sender)
        r = conn.endpoint(sender.peer)
        # Sequence numbers are shown relative to each sender's first known one: its ISN, or
        # for a flow seen mid-stream the first unacknowledged byte.
        base_s = s.isn if s.isn is not None else s.snd_una
        base_r = r.isn if r.isn is not None else r.snd_una
        conn.receive(pkt, sender)
        base_s = s.isn if base_s is None else base_s
        base_r = r.isn if base_r is None else base_r
        self.rows.append(
            LadderRow(
                frame=pkt.frame,
                ts_ns=pkt.ts_ns,
                direction="c2s" if sender.value == "client" else "s2c",
                label=" ".join(n for bit, n in FLAG_NAMES if pkt.flags & bit) or "none",
                seq=(s.seq(pkt.seq) - base_s) if base_s is not None else None,
                ack=(r.seq(pkt.ack) - base_r) if pkt.flags & ACK and base_r is not None else None,
                length=pkt.payload_len,
                client_state=conn.client.state.value,
                server_state=conn.server.state.value,
            )
        )

    def _tcp_icmp(self, pkt: IcmpError, conn: Connection) -> None:
        q = pkt.quoted
        side = conn.side_of(q.src, q.sport or 0)
        if side is None:
            return
        conn.icmp(pkt, side)
        self.rows.append(
            LadderRow(
                frame=pkt.frame,
                ts_ns=pkt.ts_ns,
                direction=f"net2{side.value[0]}",
                label=describe_kind(icmp_kind(pkt.family, pkt.type, pkt.code)),
                seq=None,
                ack=None,
                length=0,
                client_state=conn.client.state.value,
                server_state=conn.server.state.value,
            )
        )

    def _udp(self, pkt: Datagram | IcmpError) -> None:
        if isinstance(pkt, Datagram):
            if self._udp_client is None:
                self._udp_client = (pkt.src, pkt.sport)
            direction = "c2s" if (pkt.src, pkt.sport) == self._udp_client else "s2c"
            label, length = "UDP", pkt.payload_len
        else:
            client = self._udp_client
            to_client = client is None or (pkt.quoted.src, pkt.quoted.sport) == client
            direction = "net2c" if to_client else "net2s"
            label = describe_kind(icmp_kind(pkt.family, pkt.type, pkt.code))
            length = 0
        self.rows.append(
            LadderRow(
                frame=pkt.frame,
                ts_ns=pkt.ts_ns,
                direction=direction,
                label=label,
                seq=None,
                ack=None,
                length=length,
                client_state="UDP",
                server_state="UDP",
            )
        )


def ladder_rows(frames: Iterable[Frame]) -> list[LadderRow]:
    """The rows of one flow from its frames, in capture order."""
    replay = LadderReplay()
    for frame in frames:
        replay.add(frame)
    return replay.rows
