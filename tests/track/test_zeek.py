"""Zeek's conn_state and history (track/zeek.py), from connections fed to the tracker segment
by segment. Each expected value is worked out from Zeek's definitions (its conn.log
documentation and its TCP analyzer's state machine), written next to the packets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN, Datagram, IcmpError, Quoted
from pcapdiag.track import zeek
from pcapdiag.track.flows import FlowTable
from pcapdiag.track.zeek import tcp_conn_state, udp_conn_state
from tests.support.pair import CISN, SISN, C, Pair, S

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", ROOT.parent / "shared/captures/public"))


def zeek_of(p: Pair) -> tuple[str, str]:
    assert p.conn is not None
    return p.conn.conn_state(), p.conn.history()


def established(p: Pair) -> None:
    """Handshake, 10 bytes each way, each acknowledged: history ShADad."""
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=10)
    p.send("s", ACK, SISN + 1, CISN + 11)
    p.send("s", PSH | ACK, SISN + 1, CISN + 11, length=10)
    p.send("c", ACK, CISN + 11, SISN + 11)


# -- conn_state: one connection per state -------------------------------------------------


def test_s0_a_syn_and_its_retransmissions_nothing_back() -> None:
    p = Pair()
    for at in (1, 1001, 3001):
        p.send("c", SYN, CISN, at_ms=at)
    # One s: a SYN at the same sequence number writes no second letter.
    assert zeek_of(p) == ("S0", "S")


def test_rej_the_server_resets_the_syn() -> None:
    p = Pair()
    p.send("c", SYN, CISN)
    p.send("s", RST | ACK, 0, CISN + 1)
    assert zeek_of(p) == ("REJ", "Sr")


def test_sf_both_sides_close() -> None:
    p = Pair()
    established(p)
    p.send("s", FIN | ACK, SISN + 11, CISN + 11)
    p.send("c", FIN | ACK, CISN + 11, SISN + 12)
    p.send("s", ACK, SISN + 12, CISN + 12)
    assert zeek_of(p) == ("SF", "ShADadfF")


def test_s1_established_and_left_open() -> None:
    p = Pair()
    established(p)
    assert zeek_of(p) == ("S1", "ShADad")


def test_s2_only_the_client_closes() -> None:
    p = Pair()
    established(p)
    p.send("c", FIN | ACK, CISN + 11, SISN + 11)
    p.send("s", ACK, SISN + 11, CISN + 12)
    assert zeek_of(p) == ("S2", "ShADadF")


def test_s3_only_the_server_closes() -> None:
    p = Pair()
    established(p)
    p.send("s", FIN | ACK, SISN + 11, CISN + 11)
    p.send("c", ACK, CISN + 11, SISN + 12)
    assert zeek_of(p) == ("S3", "ShADadf")


def test_rsto_the_client_aborts() -> None:
    p = Pair()
    established(p)
    p.send("c", RST | ACK, CISN + 11, SISN + 11)
    assert zeek_of(p) == ("RSTO", "ShADadR")


def test_rstr_the_server_aborts() -> None:
    p = Pair()
    established(p)
    p.send("s", RST, SISN + 11)
    assert zeek_of(p) == ("RSTR", "ShADadr")


def test_rstos0_the_client_gives_up_on_its_syn() -> None:
    p = Pair()
    p.send("c", SYN, CISN)
    p.send("c", RST, CISN + 1)
    assert zeek_of(p) == ("RSTOS0", "SR")


def test_rstrh_a_syn_ack_then_the_servers_rst_syn_not_captured() -> None:
    # The server sent the first packet: the history starts with ^ (pcapdiag's client is the
    # SYN-ACK's receiver, Zeek's originator after its flip).
    p = Pair()
    p.send("s", SYN | ACK, SISN, CISN + 1)
    p.send("s", RST, SISN + 1)
    assert zeek_of(p) == ("RSTRH", "^hr")


def test_sh_a_syn_then_a_fin_no_answer() -> None:
    p = Pair()
    p.send("c", SYN, CISN)
    p.send("c", FIN | ACK, CISN + 1, 0)
    assert zeek_of(p) == ("SH", "SF")


def test_shr_a_syn_ack_then_the_servers_fin_syn_not_captured() -> None:
    p = Pair()
    p.send("s", SYN | ACK, SISN, CISN + 1)
    p.send("s", FIN | ACK, SISN + 1, CISN + 1)
    assert zeek_of(p) == ("SHR", "^hf")


def test_oth_midstream_data_both_ways() -> None:
    # No SYN: the client's port 40000 is not the lower one, so its first packet keeps it the
    # client (no ^); both sides PARTIAL, never closed.
    p = Pair()
    p.send("c", PSH | ACK, 77_000, 90_000, length=20)
    p.send("s", PSH | ACK, 90_000, 77_020, length=30)
    p.send("c", ACK, 77_020, 90_030)
    assert zeek_of(p) == ("OTH", "DdA")


def test_oth_midstream_started_by_the_server_is_flipped() -> None:
    p = Pair()
    p.send("s", PSH | ACK, 90_000, 77_000, length=30)
    p.send("c", ACK, 77_000, 90_030)
    assert zeek_of(p) == ("OTH", "^dA")


def test_sf_midstream_both_close() -> None:
    # Both PARTIAL, then a FIN from each: CLOSED and CLOSED is SF, SYN or not.
    p = Pair()
    p.send("c", FIN | ACK, 77_000, 90_000)
    p.send("s", FIN | ACK, 90_000, 77_001)
    p.send("c", ACK, 77_001, 90_001)
    assert zeek_of(p) == ("SF", "FfA")


# -- the state machine's finer rules ------------------------------------------------------


def test_a_rst_after_both_fins_leaves_sf() -> None:
    # A closed endpoint's RST changes nothing once the peer closed too.
    p = Pair()
    established(p)
    p.send("c", FIN | ACK, CISN + 11, SISN + 11)
    p.send("s", FIN | ACK, SISN + 11, CISN + 12)
    p.send("c", RST, CISN + 12)
    assert zeek_of(p) == ("SF", "ShADadFfR")


def test_fin_then_rst_then_the_peers_fin_is_a_normal_close() -> None:
    # The client's FIN, then its RST before the server closed: RESET after CLOSED, which
    # the server's own FIN turns back into CLOSED (Zeek: "actually normal termination").
    p = Pair()
    established(p)
    p.send("c", FIN | ACK, CISN + 11, SISN + 11)
    p.send("c", RST | ACK, CISN + 12, SISN + 11)
    assert zeek_of(p) == ("RSTO", "ShADadFR")
    p.send("s", FIN | ACK, SISN + 11, CISN + 12)
    assert zeek_of(p) == ("SF", "ShADadFRf")


def test_a_server_ack_of_the_syn_before_its_syn_ack_is_no_reply() -> None:
    # Some stacks acknowledge a SYN before answering it: the responder stays INACTIVE.
    p = Pair()
    p.send("c", SYN, CISN)
    p.send("s", ACK, SISN, CISN + 1)
    assert p.conn is not None
    assert (p.conn.zeek.orig.state, p.conn.zeek.resp.state) == (zeek.SYN_SENT, zeek.INACTIVE)
    assert zeek_of(p) == ("S0", "Sa")


def test_both_reset_without_data_is_rej() -> None:
    # The originator RESET and the responder RESET with no byte either way: REJ.
    assert tcp_conn_state(zeek.RESET, zeek.RESET, 0, 0, "ShAR") == "REJ"
    assert tcp_conn_state(zeek.RESET, zeek.RESET, 10, 0, "ShADRr") == "RSTR"


def test_rstos0_needs_the_history_zeek_tests() -> None:
    # A RST from an originator whose responder is inactive: RSTOS0 only when the history
    # is a SYN, then the RST, with no SYN-ACK, ACK or FIN of its own between.
    assert tcp_conn_state(zeek.RESET, zeek.INACTIVE, 0, 0, "SR") == "RSTOS0"
    assert tcp_conn_state(zeek.RESET, zeek.INACTIVE, 0, 0, "SAR") == "OTH"
    assert tcp_conn_state(zeek.RESET, zeek.INACTIVE, 0, 0, "R") == "OTH"


# -- history: letters and their counting rules ---------------------------------------------


def test_a_fin_with_payload_writes_f_not_d() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | FIN | ACK, CISN + 1, SISN + 1, length=10)
    assert zeek_of(p)[1] == "ShAF"


def test_rst_again_at_a_new_sequence_number_writes_r_again() -> None:
    p = Pair()
    established(p)
    p.send("s", RST, SISN + 11)
    p.send("s", RST, SISN + 11)  # the same sequence number: no letter
    p.send("s", RST, SISN + 500)  # another one: r again
    assert zeek_of(p)[1] == "ShADadrr"


def test_retransmissions_write_t_at_the_1st_10th_and_100th() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100, at_ms=10)
    for n in range(1, 101):
        p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=100, at_ms=10 + 200 * n)
        if n == 9:
            assert zeek_of(p)[1] == "ShADT"
    assert zeek_of(p)[1] == "ShADTTT"


def test_a_fin_or_syn_sent_again_is_no_t() -> None:
    # Zeek's t is for payload sent again; a SYN or FIN without payload repeats nothing.
    p = Pair()
    p.send("c", SYN, CISN, at_ms=1)
    p.send("c", SYN, CISN, at_ms=1001)
    p.send("s", SYN | ACK, SISN, CISN + 1, at_ms=1002)
    p.send("c", ACK, CISN + 1, SISN + 1, at_ms=1003)
    p.send("c", FIN | ACK, CISN + 1, SISN + 1, at_ms=1004)
    p.send("c", FIN | ACK, CISN + 1, SISN + 1, at_ms=1300)
    assert zeek_of(p) == ("S2", "ShAF")


def test_zero_windows_write_w_at_the_1st_and_10th() -> None:
    p = Pair()
    p.handshake()
    p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=10)
    for n in range(10):
        p.send("s", ACK, SISN + 1, CISN + 11, window=0, at_ms=100 + n)
    # Each packet: its flags' letter first (a, once), then its window.
    assert zeek_of(p)[1] == "ShADaww"


def test_a_zero_window_after_the_peers_fin_is_not_written() -> None:
    p = Pair()
    p.handshake()
    p.send("c", FIN | ACK, CISN + 1, SISN + 1)
    p.send("s", ACK, SISN + 1, CISN + 2, window=0)
    assert zeek_of(p)[1] == "ShAFa"


def test_fin_and_rst_together_is_i_syn_and_fin_is_q() -> None:
    p = Pair()
    p.send("c", SYN | FIN, CISN)
    assert zeek_of(p)[1] == "Q"
    p = Pair()
    established(p)
    p.send("s", FIN | RST | ACK, SISN + 11, CISN + 11)
    p.send("s", FIN | RST | ACK, SISN + 11, CISN + 11)  # i at most once a side
    assert zeek_of(p)[1] == "ShADadi"


def test_an_icmp_error_writes_no_letter() -> None:
    p = Pair()
    p.send("c", SYN, CISN)
    assert p.conn is not None
    err = IcmpError(
        frame=2,
        ts_ns=2_000_000,
        family=4,
        src=bytes([10, 0, 0, 254]),
        dst=C[0],
        ttl=64,
        type=3,
        code=1,
        quoted=Quoted(4, C[0], S[0], 6, C[1], S[1], CISN),
    )
    p.conn.icmp(err, p.conn.side_of(*C))
    assert zeek_of(p) == ("S0", "S")


def test_the_steady_path_writes_what_the_general_path_does() -> None:
    # The tracker takes in-order segments of two established ends inline: its letters must
    # be the general path's.
    def run(fast: bool) -> str:
        p = Pair()
        p.handshake()
        assert p.conn is not None
        p.conn.fast_path = fast
        established_more(p)
        return p.conn.history()

    def established_more(p: Pair) -> None:
        p.send("c", PSH | ACK, CISN + 1, SISN + 1, length=10)
        p.send("s", ACK, SISN + 1, CISN + 11)
        p.send("s", PSH | ACK, SISN + 1, CISN + 11, length=10)
        p.send("c", ACK, CISN + 11, SISN + 11)

    assert run(True) == run(False) == "ShADad"


# -- UDP and whole flows ---------------------------------------------------------------------


def test_udp_states_and_history() -> None:
    assert udp_conn_state(1, 0) == "S0"
    assert udp_conn_state(2, 1) == "SF"
    table = FlowTable()
    table.add_datagram(Datagram(1, 1_000, 4, C[0], S[0], 64, 5353, 53, 30))
    table.add_datagram(Datagram(2, 2_000, 4, C[0], S[0], 64, 5353, 53, 30))
    table.add_datagram(Datagram(3, 3_000, 4, S[0], C[0], 64, 53, 5353, 90))
    table.add_datagram(Datagram(4, 4_000, 4, C[0], S[0], 64, 6000, 53, 30))
    one, other = sorted(table.finish(5_000), key=lambda r: r.first_frame)
    assert (one.conn_state, one.history) == ("SF", "Dd")
    assert (other.conn_state, other.history) == ("S0", "D")


def test_fin_retransmission_trace_ends_as_zeeks_baseline_says() -> None:
    # zeek/fin_retransmission.pcap from Zeek's own test traces: its published baseline
    # (core.tcp.fin-retransmit) prints the originator in state 5 (CLOSED) with 3 packets
    # and the responder in state 6 (RESET) with 2, sizes 0. The packets, read with tshark:
    # the originator's SYN, FIN and FIN again; the responder's SYN-ACK and RST.
    path = PUBLIC / "zeek" / "fin_retransmission.pcap"
    if not path.exists():
        pytest.skip("the public captures are not beside the repository")
    from pcapdiag.api import analyze

    report = analyze([str(path)], [], keep_flows=True)
    (flow,) = report.flows
    assert (flow.client_packets, flow.server_packets) == (3, 2)
    assert (flow.client_bytes, flow.server_bytes) == (0, 0)
    # CLOSED originator, RESET responder: a responder's RST after the handshake is RSTR.
    assert flow.conn_state == "RSTR"
    assert flow.history == "SFhr"
