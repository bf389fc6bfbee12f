"""The idle gaps and the FIN/data crossing the tracker puts on its events (Data.idle_ms,
Fin.idle_ms, Retransmission.run_idle_ms, Rst.crossed_fin), with segments written by hand at
chosen capture times. Sequence numbers are absolute, as on the wire."""

from __future__ import annotations

from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN, Segment, TcpOptions
from pcapdiag.track.connection import Connection
from pcapdiag.track.events import Data, Event, Fin, Retransmission, Rst, Side

C = (bytes([10, 0, 0, 1]), 40000)
S = (bytes([10, 0, 0, 2]), 80)
CISN, SISN = 1000, 5000


class Wire:
    """One connection fed segments at the capture times given (in milliseconds)."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.events: list[Event] = []
        self.frame = 0

    def send(self, at_ms: int, frm: str, flags: int, seq: int, ack: int = 0, length: int = 0):
        self.frame += 1
        src, dst = (C, S) if frm == "c" else (S, C)
        opts = TcpOptions(mss=1460, wscale=7) if flags & SYN else None
        seg = Segment(
            frame=self.frame,
            ts_ns=at_ms * 1_000_000,
            family=4,
            src=src[0],
            dst=dst[0],
            ttl=64,
            sport=src[1],
            dport=dst[1],
            seq=seq,
            ack=ack,
            flags=flags,
            window=1000,
            payload_len=length,
            options=opts,
        )
        if self.conn is None:
            self.conn, sender = Connection.from_first_segment(seg)
        else:
            side = self.conn.side_of(seg.src, seg.sport)
            assert side is not None
            sender = side
        self.events += self.conn.receive(seg, sender)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def _exchange(w: Wire) -> None:
    """Handshake, a 100-byte request and a 100-byte response, acknowledged, by 10 ms."""
    w.send(0, "c", SYN, CISN)
    w.send(1, "s", SYN | ACK, SISN, CISN + 1)
    w.send(2, "c", ACK, CISN + 1, SISN + 1)
    w.send(3, "c", PSH | ACK, CISN + 1, SISN + 1, 100)
    w.send(4, "s", PSH | ACK, SISN + 1, CISN + 101, 100)
    w.send(10, "c", ACK, CISN + 101, SISN + 101)


def test_data_after_an_idle_spell_carries_it() -> None:
    w = Wire()
    _exchange(w)
    w.send(5010, "c", PSH | ACK, CISN + 101, SISN + 101, 100)
    first, second = w.of(Data)[:2], w.of(Data)[2]
    assert [d.idle_ms for d in first] == [1, 1]
    assert second.idle_ms == 5000


def test_a_retransmission_names_the_idle_spell_before_its_run() -> None:
    # The first data after 6 s of silence is lost and sent again: the spell is the run's.
    w = Wire()
    _exchange(w)
    w.send(6010, "c", PSH | ACK, CISN + 101, SISN + 101, 100)
    w.send(6210, "c", PSH | ACK, CISN + 101, SISN + 101, 100)
    (retx,) = w.of(Retransmission)
    assert retx.run_idle_ms == 6000


def _race(server_first: bool) -> Wire:
    """After 5 s of silence the client's request and the server's FIN cross; the server's
    closed socket answers with RST (seq = the FIN's own, as the request acknowledges)."""
    w = Wire()
    _exchange(w)
    request = (c := CISN + 101, SISN + 101, 100)
    if server_first:
        w.send(5010, "s", FIN | ACK, SISN + 101, CISN + 101)
        w.send(5013, "c", PSH | ACK, *request)
    else:
        w.send(5010, "c", PSH | ACK, *request)
        w.send(5013, "s", FIN | ACK, SISN + 101, c)
    w.send(5015, "s", RST, SISN + 101)
    return w


def test_a_fin_that_crosses_a_request_after_idle_carries_the_idle_spell() -> None:
    for server_first in (True, False):
        (fin,) = _race(server_first).of(Fin)
        assert fin.idle_ms == 5000, server_first


def test_a_rst_after_a_fin_that_crossed_the_peers_data_says_so() -> None:
    for server_first in (True, False):
        (rst,) = _race(server_first).of(Rst)
        assert rst.crossed_fin and rst.accepted and rst.receiver_state == "CLOSE_WAIT"


def test_data_written_after_the_fin_was_acknowledged_did_not_cross_it() -> None:
    w = Wire()
    _exchange(w)
    w.send(5010, "s", FIN | ACK, SISN + 101, CISN + 101)
    w.send(5014, "c", ACK, CISN + 101, SISN + 102)
    w.send(5100, "c", PSH | ACK, CISN + 101, SISN + 102, 100)
    w.send(5104, "s", RST, SISN + 102)
    (rst,) = w.of(Rst)
    assert rst.sender is Side.SERVER and not rst.crossed_fin
