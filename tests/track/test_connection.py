"""The sans-IO tracker driven directly: segments in, events and states out (playbook style).

Segments are written by hand with the fields that matter; each test says which kernel rule it
checks. Sequence numbers are absolute, as on the wire.
"""

from __future__ import annotations

from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN, IcmpError, Quoted
from pcapdiag.track.connection import unwrap
from pcapdiag.track.events import Side
from pcapdiag.track.tcpstate import TcpState
from tests.support.pair import CISN, SISN, C, Pair, S


def test_unwrap_crosses_the_32_bit_boundary() -> None:
    ref = 2**32 - 10
    assert unwrap(5, ref) == 2**32 + 5
    assert unwrap(2**32 - 20, 2**32 + 5) == 2**32 - 20


def test_handshake_and_orderly_close_walk_rfc9293_states() -> None:
    p = Pair()
    p.send("c", SYN, CISN, wscale=7)
    # The server holds a connection only once it is seen to answer (a RST would mean no
    # listener at all).
    assert p.states() == (TcpState.SYN_SENT, TcpState.LISTEN)
    p.send("s", SYN | ACK, SISN, CISN + 1, wscale=7)
    assert p.states() == (TcpState.ESTABLISHED, TcpState.SYN_RECEIVED)
    p.send("c", ACK, CISN + 1, SISN + 1)
    assert p.states() == (TcpState.ESTABLISHED, TcpState.ESTABLISHED)
    p.send("c", FIN | ACK, CISN + 1, SISN + 1)
    assert p.states() == (TcpState.FIN_WAIT_1, TcpState.CLOSE_WAIT)
    p.send("s", ACK, SISN + 1, CISN + 2)
    assert p.states() == (TcpState.FIN_WAIT_2, TcpState.CLOSE_WAIT)
    p.send("s", FIN | ACK, SISN + 1, CISN + 2)
    assert p.states() == (TcpState.TIME_WAIT, TcpState.LAST_ACK)
    p.send("c", ACK, CISN + 2, SISN + 2)
    assert p.states() == (TcpState.TIME_WAIT, TcpState.CLOSED)
    assert p.names() == ["syn", "synack", "handshake", "fin", "fin"]
    assert p.conn is not None and p.conn.finished
    assert p.conn.history() == "ShAFaf"


def test_simultaneous_close_goes_through_closing() -> None:
    p = Pair()
    p.handshake()
    p.send("c", FIN | ACK, CISN + 1, SISN + 1)
    p.send("s", FIN | ACK, SISN + 1, CISN + 1)  # crosses the client's FIN: does not ACK it
    assert p.states() == (TcpState.CLOSING, TcpState.CLOSING)
    p.send("s", ACK, SISN + 2, CISN + 2)
    p.send("c", ACK, CISN + 2, SISN + 2)
    assert p.states() == (TcpState.TIME_WAIT, TcpState.TIME_WAIT)


def test_rst_at_rcv_nxt_resets_in_established() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100)
    (rst,) = p.send("s", RST, SISN + 1)  # seq = server's snd_nxt = client's rcv_nxt
    assert rst.accepted and rst.disposition == "reset"
    assert rst.receiver_state == "ESTABLISHED"
    assert p.states() == (TcpState.CLOSED, TcpState.CLOSED)


def _close_race(server_ttl: int, client_ttl: int, acked: bool) -> object:
    """zeek/psql-aws-ssl-require's ending: the client sends data and its FIN, the server's
    next segment acknowledges only what came before them (or, with `acked`, all of it), and
    the client resets at the sequence number the server last acknowledged."""
    p = Pair()
    p.send("c", SYN, CISN, wscale=7, ttl=client_ttl)
    p.send("s", SYN | ACK, SISN, CISN + 1, wscale=7, ttl=server_ttl)
    p.send("c", ACK, CISN + 1, SISN + 1, ttl=client_ttl)
    p.send("c", PSH | FIN | ACK, CISN + 1, SISN + 1, length=31, ttl=client_ttl)
    ack = CISN + 33 if acked else CISN + 1
    p.send("s", PSH | ACK, SISN + 1, ack, length=31, ttl=server_ttl)
    (rst,) = p.send("c", RST, CISN + 1, ttl=client_ttl)
    return rst


def test_a_receiver_state_taken_from_what_was_sent_to_it_is_not_proven() -> None:
    # Captured with no router in sight (both TTLs 64): the server's state (CLOSE_WAIT) comes
    # from the client's FIN, which the server's own ACK does not cover.
    rst = _close_race(server_ttl=64, client_ttl=64, acked=False)
    assert rst.receiver_state == "CLOSE_WAIT" and not rst.receiver_state_proven


def test_a_receiver_state_is_proven_by_its_acks_or_by_a_capture_on_its_host() -> None:
    # The server acknowledged the FIN: its own packet shows it.
    assert _close_race(server_ttl=64, client_ttl=64, acked=True).receiver_state_proven
    # The server's packets leave with their initial TTL, the client's arrive with one less:
    # captured on the server's host, where what arrives is what its kernel got.
    assert _close_race(server_ttl=64, client_ttl=63, acked=False).receiver_state_proven
    # Captured on the client's host instead: still unproven.
    assert not _close_race(server_ttl=63, client_ttl=64, acked=False).receiver_state_proven


def test_rst_in_window_but_not_rcv_nxt_draws_a_challenge_ack() -> None:
    # RFC 5961 3.2 / tcp_validate_incoming(): no reset, the receiver stays ESTABLISHED.
    p = Pair()
    p.handshake()
    (rst,) = p.send("s", RST, SISN + 1 + 10)
    assert not rst.accepted and rst.disposition == "challenge-ack"
    assert p.states()[0] is TcpState.ESTABLISHED


def test_rst_outside_the_window_is_ignored() -> None:
    p = Pair()
    p.handshake()
    (rst,) = p.send("s", RST, SISN + 1 + 2**30 + 5)
    assert not rst.accepted and rst.disposition == "out-of-window"


def test_rst_one_below_rcv_nxt_is_accepted_in_close_wait_only() -> None:
    # tcp_reset_check(): seq == rcv_nxt - 1 resets in CLOSE_WAIT, LAST_ACK and CLOSING.
    p = Pair()
    p.handshake()
    p.send("s", FIN | ACK, SISN + 1, CISN + 1)
    assert p.states()[0] is TcpState.CLOSE_WAIT
    (rst,) = p.send("s", RST, SISN + 1)  # the FIN's own sequence number: rcv_nxt - 1
    assert rst.accepted and rst.receiver_state == "CLOSE_WAIT"

    q = Pair()
    q.handshake()
    (rst2,) = q.send("s", RST, SISN)  # rcv_nxt - 1 while ESTABLISHED: not accepted
    assert not rst2.accepted


def test_rst_in_syn_sent_needs_an_acceptable_ack() -> None:
    # RFC 9293 3.10.7.3: in SYN-SENT a RST is acceptable only if its ACK acknowledges the SYN.
    no_ack = Pair()
    no_ack.send("c", SYN, CISN)
    (rst,) = no_ack.send("s", RST, 0)
    assert (rst.accepted, rst.disposition) == (False, "no-ack-in-syn-sent")
    assert no_ack.states()[0] is TcpState.SYN_SENT

    bad_ack = Pair()
    bad_ack.send("c", SYN, CISN)
    (rst,) = bad_ack.send("s", RST | ACK, 0, CISN + 7)
    assert (rst.accepted, rst.disposition) == (False, "bad-ack-in-syn-sent")

    good = Pair()
    good.send("c", SYN, CISN)
    (rst,) = good.send("s", RST | ACK, 0, CISN + 1)
    assert rst.accepted and rst.receiver_state == "SYN_SENT"
    assert good.states()[0] is TcpState.CLOSED


def test_retransmissions_and_recovery() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100)
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100)
    r2 = p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100)
    assert [e.name for e in r2] == ["retransmission"]
    assert r2[0].streak == 2 and r2[0].kind == "data" and r2[0].since_original_ms == 2
    rec = p.send("s", ACK, SISN + 1, CISN + 101)
    assert [e.name for e in rec] == ["recovered"]


def test_syn_and_fin_retransmissions_are_named() -> None:
    p = Pair()
    p.send("c", SYN, CISN)
    (ev,) = p.send("c", SYN, CISN)
    assert ev.name == "retransmission" and ev.kind == "syn"
    p.send("s", SYN | ACK, SISN, CISN + 1)
    p.send("c", ACK, CISN + 1, SISN + 1)
    p.send("c", FIN | ACK, CISN + 1, SISN + 1)
    (ev,) = p.send("c", FIN | ACK, CISN + 1, SISN + 1)
    assert ev.name == "retransmission" and ev.kind == "fin"


def test_data_runs_fold_until_another_event() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=10)
    p.send("c", PSH | ACK, CISN + 11, SISN + 1, length=10)  # same run: no event
    p.send("s", PSH | ACK, SISN + 1, CISN + 21, length=5)  # the other side: a new run
    p.send("c", PSH | ACK, CISN + 21, SISN + 6, length=10)  # and back: a new run again
    assert [(e.name, e.sender.value, e.frame) for e in p.events[3:]] == [
        ("data", "client", 4),
        ("data", "server", 6),
        ("data", "client", 7),
    ]


def test_keepalive_probe_and_answer() -> None:
    p = Pair()
    p.handshake()
    (probe,) = p.send("c", ACK, CISN, SISN + 1)  # seq = snd_una - 1, no payload (Linux)
    assert probe.name == "keepalive" and probe.number == 1
    (probe2,) = p.send("c", ACK, CISN, SISN + 1, length=1)  # one garbage byte (Windows)
    assert probe2.name == "keepalive" and probe2.number == 2
    (answer,) = p.send("s", ACK, SISN + 1, CISN + 1)
    assert answer.name == "keepalive_ack"


def test_zero_window_and_probe() -> None:
    p = Pair()
    p.handshake()
    (zw,) = p.send("s", ACK, SISN + 1, CISN + 1, window=0)
    assert zw.name == "zero_window" and zw.sender is Side.SERVER
    (probe,) = p.send("c", ACK, CISN, SISN + 1)
    assert probe.name == "zero_window_probe"
    (opened,) = p.send("s", ACK, SISN + 1, CISN + 1, window=500)
    assert opened.name == "window_open"


def test_window_open_says_how_long_it_was_shut() -> None:
    p = Pair()
    p.handshake()
    p.send("s", ACK, SISN + 1, CISN + 1, window=0)  # frame 4
    p.send("c", ACK, CISN, SISN + 1)  # frame 5: probe
    (opened,) = p.send("s", ACK, SISN + 1, CISN + 1, window=500)  # frame 6
    assert opened.closed_ms == 2  # frames are 1 ms apart


def test_a_prober_answering_with_a_bare_rst_abandoned_the_connection() -> None:
    """A RST without ACK from the side that probed a zero window: its kernel had no socket
    (tcp_v4_send_reset), so it gave up (TCP_USER_TIMEOUT); a RST|ACK is its socket's own."""
    for flags, abandoned in ((RST, True), (RST | ACK, False)):
        p = Pair()
        p.handshake()
        p.send("c", ACK, CISN + 1, SISN + 1, length=100)
        p.send("s", ACK, SISN + 1, CISN + 101, window=0)
        p.send("c", ACK, CISN + 100, SISN + 1)  # probe
        p.send("s", ACK, SISN + 1, CISN + 101, window=500)
        p.send("c", flags, CISN + 101, SISN + 1 if flags & ACK else 0)
        assert p.conn is not None
        end = p.conn.end("closed", p.frame * 1_000_000, p.frame)
        assert end.zero_window_abandoned is abandoned


def test_a_retransmission_carries_its_size_against_mss_and_acked_data() -> None:
    p = Pair()
    p.handshake()  # both SYNs offer MSS 1460
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100)
    p.send("s", ACK, SISN + 1, CISN + 101)
    p.send("c", ACK, CISN + 101, SISN + 1, length=1460)
    (retx,) = p.send("c", ACK, CISN + 101, SISN + 1, length=1460)
    assert retx.name == "retransmission"
    assert (retx.peer_mss, retx.below_mss, retx.acked_before, retx.above_acked) == (
        1460,
        0,
        100,
        1360,
    )
    assert retx.unacked_oversize is False


def test_an_unacknowledged_segment_above_the_mss_marks_offload() -> None:
    p = Pair()
    p.handshake()
    p.send("c", ACK, CISN + 1, SISN + 1, length=4 * 1460)  # a TSO segment, as captured
    (retx,) = p.send("c", ACK, CISN + 1, SISN + 1, length=1460)
    assert retx.unacked_oversize is True and retx.acked_before == 0


def test_sequence_wraparound_keeps_data_new() -> None:
    isn = 2**32 - 50
    p = Pair(cisn=isn)
    p.handshake()
    first = p.send("c", PSH | ACK, isn + 1, SISN + 1, length=100)  # crosses 2^32
    second = p.send("c", PSH | ACK, isn + 101, SISN + 1, length=100)  # seq now small
    # The second segment continues the first one's run of data: new, not a retransmission.
    assert [e.name for e in first + second] == ["data"]
    assert p.conn is not None and p.conn.client.bytes_sent == 200
    again = p.send("c", PSH | ACK, isn + 101, SISN + 1, length=100)
    assert [e.name for e in again] == ["retransmission"]


def _icmp(frame: int, seq: int, code: int = 1) -> IcmpError:
    return IcmpError(
        frame=frame,
        ts_ns=frame * 1_000_000,
        family=4,
        src=bytes([10, 0, 1, 254]),
        dst=C[0],
        ttl=64,
        type=3,
        code=code,
        quoted=Quoted(family=4, src=C[0], dst=S[0], proto=6, sport=C[1], dport=S[1], seq=seq),
    )


def test_icmp_must_quote_a_sequence_number_in_flight() -> None:
    # tcp_v4_err(): the quoted seq must be in [snd_una, snd_nxt] or the error is ignored.
    p = Pair()
    p.send("c", SYN, CISN)
    assert p.conn is not None
    (stale,) = p.conn.icmp(_icmp(2, CISN + 500), Side.CLIENT)
    assert not stale.accepted
    assert p.conn.client.state is TcpState.SYN_SENT
    (good,) = p.conn.icmp(_icmp(3, CISN, code=10), Side.CLIENT)
    assert good.accepted and good.kind == "v4:host-prohibited"
    assert p.conn.client.state is TcpState.CLOSED  # connect() aborted at once on Linux


def test_icmp_on_established_connection_does_not_close_it() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=10)
    assert p.conn is not None
    (ev,) = p.conn.icmp(_icmp(5, CISN + 1), Side.CLIENT)
    assert ev.accepted and ev.receiver_state == "ESTABLISHED"
    assert p.conn.client.state is TcpState.ESTABLISHED  # soft error only


def test_midstream_roles_are_guessed_from_ports() -> None:
    p = Pair()
    p.send("s", PSH | ACK, SISN + 1, CISN + 1, length=10)  # first packet seen: from port 80
    assert p.conn is not None
    assert p.conn.roles == "guessed"
    assert p.conn.server.port == 80 and "port" in p.conn.roles_reason
