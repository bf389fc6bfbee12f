"""The join's arithmetic, on numbers worked out by hand: the clock offset and path delay of
NTP's on-wire exchange (RFC 5905 section 8) from handshakes seen at two points, and which of
one side's packets the other view does not hold."""

from __future__ import annotations

from pcapdiag.join.clock import Exchange, estimate
from pcapdiag.join.packets import Packet, missing

MS = 1_000_000


def _exchange(at: int, offset: int, fwd: int, back: int, turn: int = 0) -> Exchange:
    """A SYN leaving A at `at` (A's clock), `fwd` ns to B, answered after `turn`, `back` ns
    to A; B's clock is `offset` ahead of A's."""
    t1 = at
    t2 = at + fwd + offset
    t3 = t2 + turn
    t4 = at + fwd + turn + back
    return Exchange(t1, t2, t3, t4)


def test_a_symmetric_path_gives_the_offset_exactly() -> None:
    e = _exchange(10 * MS, offset=250 * MS, fwd=2 * MS, back=2 * MS, turn=30_000)
    assert e.offset_ns == 250 * MS and e.delay_ns == 2 * MS
    c = estimate("b.pcap", [e, _exchange(500 * MS, 250 * MS, 2 * MS, 2 * MS)] * 2)
    # Known within the one-way delay: a path slower one way would look the same.
    assert (c.offset_ns, c.spread_ns, c.delay_ns, c.samples) == (250 * MS, 2 * MS, 2 * MS, 4)
    assert c.how_sure == "medium"
    assert c.to_reference(1_000 * MS) == 750 * MS
    # Two capture points 0.2 ms apart, three handshakes: high.
    near = [_exchange(x * MS, 250 * MS, 200_000, 200_000) for x in (1, 2, 3)]
    assert estimate("b.pcap", near).how_sure == "high"


def test_an_asymmetric_path_shows_in_the_spread() -> None:
    # One exchange 3 ms slower one way: its offset is off by half of it.
    a = _exchange(0, 100 * MS, 2 * MS, 2 * MS)
    b = _exchange(MS, 100 * MS, 5 * MS, 2 * MS)
    assert b.offset_ns == 101.5 * MS
    c = estimate("b.pcap", [a, b])
    assert c.spread_ns == 2 * MS and c.how_sure == "medium"
    far = estimate("b.pcap", [a, _exchange(MS, 100 * MS, 40 * MS, 2 * MS)])
    assert far.spread_ns == 9.5 * MS and far.how_sure == "medium"
    worse = estimate("b.pcap", [a, _exchange(MS, 100 * MS, 60 * MS, 2 * MS)])
    assert worse.how_sure == "low"


def test_drift_is_the_slope_over_ten_seconds_or_more() -> None:
    # B's clock gains 50 us a second (50 ppm) over 20 s.
    xs = [0, 10_000 * MS, 20_000 * MS]
    c = estimate("b.pcap", [_exchange(x, 7 * MS + x // 20_000, MS, MS) for x in xs])
    assert c.drift_ppm == 50.0
    short = estimate("b.pcap", [_exchange(x // 10, 7 * MS, MS, MS) for x in xs])
    assert short.drift_ppm is None


def test_no_shared_handshake_is_no_clock() -> None:
    c = estimate("b.pcap", [])
    assert c.how_sure == "none" and c.samples == 0


def _p(frame: int, ms: int, seq: int, length: int, flags: int = 0) -> Packet:
    return Packet(frame, ms * MS, "10.0.0.1:40000", (seq, length, flags))


def test_missing_counts_copies_and_accepts_offloaded_segments_cut_up() -> None:
    sent = [
        _p(1, 10, 1000, 2896),  # one segment on the sender's host (offload)...
        _p(2, 20, 3896, 0),  # a bare ACK
        _p(3, 30, 3896, 0),  # the same ACK again (a duplicate ACK)
        _p(4, 40, 3896, 100),  # data, never arrived
        _p(5, 90, 3896, 100),  # its retransmission, after the other capture's last frame
    ]
    seen = [
        _p(11, 11, 1000, 1448),  # ... that arrives as two
        _p(12, 11, 2448, 1448),
        _p(13, 21, 3896, 0),  # one copy of the ACK
    ]
    lost = missing(sent, seen, (0, 50 * MS))
    assert [p.frame for p in lost] == [3, 4]


def test_a_sequence_wrap_is_followed() -> None:
    sent = [_p(1, 10, 2**32 - 100, 200)]
    seen = [_p(2, 11, 2**32 - 100, 100), _p(3, 11, 0, 100)]
    assert missing(sent, seen, (0, 50 * MS)) == []
