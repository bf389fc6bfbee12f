"""A TCP connection driven segment by segment in tests: the tracker (track/connection.py)
fed hand-written segments, every event it emits kept. Sequence numbers are absolute, as on
the wire."""

from __future__ import annotations

from pcapdiag.decode.packets import ACK, SYN, Segment, TcpOptions
from pcapdiag.track.connection import Connection
from pcapdiag.track.tcpstate import TcpState

C = (bytes([10, 0, 0, 1]), 40000)
S = (bytes([10, 0, 0, 2]), 80)
CISN, SISN = 1000, 5000


class Pair:
    """A connection fed segment by segment, remembering every event."""

    def __init__(self, cisn: int = CISN, sisn: int = SISN) -> None:
        self.conn: Connection | None = None
        self.events: list = []
        self.frame = 0
        self.cisn, self.sisn = cisn, sisn

    def send(
        self,
        frm: str,
        flags: int,
        seq: int,
        ack: int = 0,
        length: int = 0,
        window: int = 1000,
        wscale: int | None = None,
        ttl: int = 64,
        at_ms: int | None = None,
    ) -> list:
        """One segment from "c" or "s", captured at `at_ms` (default: 1 ms per frame)."""
        self.frame += 1
        src, dst = (C, S) if frm == "c" else (S, C)
        opts = TcpOptions(mss=1460, wscale=wscale) if flags & SYN else None
        seg = Segment(
            frame=self.frame,
            ts_ns=(self.frame if at_ms is None else at_ms) * 1_000_000,
            family=4,
            src=src[0],
            dst=dst[0],
            ttl=ttl,
            sport=src[1],
            dport=dst[1],
            seq=seq % 2**32,
            ack=ack % 2**32,
            flags=flags,
            window=window,
            payload_len=length,
            options=opts,
        )
        if self.conn is None:
            self.conn, sender = Connection.from_first_segment(seg)
        else:
            sender = self.conn.side_of(seg.src, seg.sport)
        evs = self.conn.receive(seg, sender)
        self.events += evs
        return evs

    def handshake(self) -> None:
        self.send("c", SYN, self.cisn, wscale=7)
        self.send("s", SYN | ACK, self.sisn, self.cisn + 1, wscale=7)
        self.send("c", ACK, self.cisn + 1, self.sisn + 1)

    def states(self) -> tuple[TcpState, TcpState]:
        assert self.conn is not None
        return self.conn.client.state, self.conn.server.state

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def of(self, kind: type) -> list:
        """The events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]
