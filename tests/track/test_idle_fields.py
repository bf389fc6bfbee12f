"""The idle gaps and the FIN/data crossing the tracker puts on its events (Data.idle_ms,
Fin.idle_ms, Retransmission.run_idle_ms, Rst.crossed_fin), with segments written by hand at
chosen capture times. Sequence numbers are absolute, as on the wire."""

from __future__ import annotations

from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN
from pcapdiag.track.events import Data, Fin, Retransmission, Rst, Side
from tests.support.pair import CISN, SISN, Pair


def _exchange(w: Pair) -> None:
    """Handshake, a 100-byte request and a 100-byte response, acknowledged, by 10 ms."""
    w.send("c", SYN, CISN, wscale=7, at_ms=0)
    w.send("s", SYN | ACK, SISN, CISN + 1, wscale=7, at_ms=1)
    w.send("c", ACK, CISN + 1, SISN + 1, at_ms=2)
    w.send("c", PSH | ACK, CISN + 1, SISN + 1, 100, at_ms=3)
    w.send("s", PSH | ACK, SISN + 1, CISN + 101, 100, at_ms=4)
    w.send("c", ACK, CISN + 101, SISN + 101, at_ms=10)


def test_data_after_an_idle_spell_carries_it() -> None:
    w = Pair()
    _exchange(w)
    w.send("c", PSH | ACK, CISN + 101, SISN + 101, 100, at_ms=5010)
    first, second = w.of(Data)[:2], w.of(Data)[2]
    assert [d.idle_ms for d in first] == [1, 1]
    assert second.idle_ms == 5000


def test_a_retransmission_names_the_idle_spell_before_its_run() -> None:
    # The first data after 6 s of silence is lost and sent again: the spell is the run's.
    w = Pair()
    _exchange(w)
    w.send("c", PSH | ACK, CISN + 101, SISN + 101, 100, at_ms=6010)
    w.send("c", PSH | ACK, CISN + 101, SISN + 101, 100, at_ms=6210)
    (retx,) = w.of(Retransmission)
    assert retx.run_idle_ms == 6000


def _race(server_first: bool) -> Pair:
    """After 5 s of silence the client's request and the server's FIN cross; the server's
    closed socket answers with RST (seq = the FIN's own, as the request acknowledges)."""
    w = Pair()
    _exchange(w)
    request = (c := CISN + 101, SISN + 101, 100)
    if server_first:
        w.send("s", FIN | ACK, SISN + 101, CISN + 101, at_ms=5010)
        w.send("c", PSH | ACK, *request, at_ms=5013)
    else:
        w.send("c", PSH | ACK, *request, at_ms=5010)
        w.send("s", FIN | ACK, SISN + 101, c, at_ms=5013)
    w.send("s", RST, SISN + 101, at_ms=5015)
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
    w = Pair()
    _exchange(w)
    w.send("s", FIN | ACK, SISN + 101, CISN + 101, at_ms=5010)
    w.send("c", ACK, CISN + 101, SISN + 102, at_ms=5014)
    w.send("c", PSH | ACK, CISN + 101, SISN + 102, 100, at_ms=5100)
    w.send("s", RST, SISN + 102, at_ms=5104)
    (rst,) = w.of(Rst)
    assert rst.sender is Side.SERVER and not rst.crossed_fin
