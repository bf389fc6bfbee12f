"""Flow table memory: finished flows are released, long flows are thinned, not kept whole."""

from __future__ import annotations

from pcapdiag.decode.packets import ACK, PSH, RST, SYN, Segment
from pcapdiag.track.events import Data, Rst, Side
from pcapdiag.track.flows import MAX_EVENTS_PER_FLOW, FlowTable, compact

C, S = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def _seg(
    frame: int,
    ts_s: float,
    src: bytes,
    sport: int,
    dst: bytes,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    length: int = 0,
) -> Segment:
    return Segment(
        frame, int(ts_s * 1e9), 4, src, dst, 64, sport, dport, seq, ack, flags, 1000, length, None
    )


def test_compact_keeps_rare_events_and_both_ends_of_each_run() -> None:
    events = [
        Data(
            frame=i,
            ts_ns=i,
            sender=Side.CLIENT,
            receiver=Side.SERVER,
            length=1,
            receiver_state="ESTABLISHED",
            sender_state="ESTABLISHED",
            idle_ms=0,
        )
        for i in range(1, 1001)
    ]
    rst = Rst(
        frame=1001,
        ts_ns=1001,
        sender=Side.SERVER,
        receiver=Side.CLIENT,
        accepted=True,
        disposition="reset",
        receiver_state="ESTABLISHED",
        sender_state="ESTABLISHED",
        has_ack=False,
        sender_sent_data=False,
        sender_received_data=True,
        sender_received_since_send=1,
        sender_sent_fin=False,
        receiver_sent_fin=False,
        after_unanswered_keepalives=False,
        receiver_state_proven=True,
        ttl=64,
        ttl_delta=0,
        ttl_baseline=True,
        ip_id=0,
        ip_id_fit="unknown",
        df_fit="unknown",
        timestamps=False,
        timestamps_in_use=False,
        from_capture_host=False,
        idle_ms=0,
        crossed_fin=False,
    )
    kept = compact([*events, rst])
    frames = [e.frame for e in kept]
    assert frames == list(range(1, 65)) + list(range(937, 1001)) + [1001]


def test_a_long_chatty_connection_is_bounded() -> None:
    table = FlowTable()
    table.add_segment(_seg(1, 0, C, 40000, S, 80, 100, 0, SYN))
    table.add_segment(_seg(2, 0, S, 80, C, 40000, 500, 101, SYN | ACK))
    cseq, sseq, frame = 101, 501, 2
    for turn in range(6000):  # 12,000 data runs: request, response, request, ...
        frame += 1
        table.add_segment(_seg(frame, turn, C, 40000, S, 80, cseq, sseq, PSH | ACK, 10))
        cseq += 10
        frame += 1
        table.add_segment(_seg(frame, turn, S, 80, C, 40000, sseq, cseq, PSH | ACK, 10))
        sseq += 10
    (t,) = table.tcp.values()
    assert len(t.events) <= MAX_EVENTS_PER_FLOW
    assert t.conn.client.bytes_sent == 60_000  # the counters stay exact


def test_finished_connections_are_released() -> None:
    table = FlowTable()
    frame = 0
    done = []
    for i in range(10_000):  # ten thousand refused connections, one a millisecond
        frame += 2
        done += table.add_segment(_seg(frame - 1, i / 1000, C, 1024 + i % 60000, S, 80, 7, 0, SYN))
        done += table.add_segment(
            _seg(frame, i / 1000, S, 80, C, 1024 + i % 60000, 0, 8, RST | ACK)
        )
    # Two minutes later (more than TIME_WAIT), one more packet: the sweep releases them all.
    for k in range(5000):
        done += table.add_segment(_seg(frame + 1 + k, 400, C, 9, S, 9, 1, 0, ACK))
    assert len(table.tcp) <= 1 + 1
    assert len(done) == 10_000
    assert len(table._tombstones) <= 2  # the closed ones' were swept after two minutes


def test_a_straggler_after_release_is_late_not_a_new_connection() -> None:
    # Handshake, FIN both ways, last ACK; then, 30 s later (after the 10 s grace, within the
    # 120 s linger), the server's stray RST. It must not start a mid-stream "connection" whose
    # lone RST would be reported as a reset.
    table = FlowTable()
    segs = [
        _seg(1, 0.0, C, 40000, S, 80, 100, 0, SYN),
        _seg(2, 0.0, S, 80, C, 40000, 500, 101, SYN | ACK),
        _seg(3, 0.0, C, 40000, S, 80, 101, 501, ACK),
        _seg(4, 0.1, C, 40000, S, 80, 101, 501, ACK | 0x01),  # FIN
        _seg(5, 0.1, S, 80, C, 40000, 501, 102, ACK | 0x01),  # FIN
        _seg(6, 0.1, C, 40000, S, 80, 102, 502, ACK),
        _seg(7, 30.0, S, 80, C, 40000, 502, 0, RST),
    ]
    done = []
    for seg in segs:
        done += table.add_segment(seg)
    done += table.finish(30 * 10**9)
    assert [(r.end_reason, r.packets) for r in done] == [("closed", 6)]
    assert table.stats.late_segments == 1


def test_unanswered_attempts_beyond_the_cap_are_released_oldest_first() -> None:
    table = FlowTable(max_attempts=100)
    done = []
    # An answered connection first: it is not an attempt any more and is never evicted.
    done += table.add_segment(_seg(1, 0, C, 999, S, 80, 1, 0, SYN))
    done += table.add_segment(_seg(2, 0, S, 80, C, 999, 5, 2, SYN | ACK))
    for i in range(250):  # a flood: one SYN each from a new port, never answered
        done += table.add_segment(_seg(3 + i, 1 + i / 100, C, 2000 + i, S, 80, 7, 0, SYN))
    assert table.stats.evicted_attempts == 150
    assert [r.client for r in done] == [f"10.0.0.1:{2000 + i}" for i in range(150)]
    assert {r.end_reason for r in done} == {"evicted"}
    # An evicted attempt ends when it was released: nothing came back until then.
    assert done[0].events[-1].ts_ns == int((1 + 100 / 100) * 1e9)
    assert len(table.tcp) == 1 + 100 and len(table._attempts) == 100
    assert "10.0.0.1:999" in {r.client for r in table.finish(int(10e9))}


def test_a_flood_costs_the_cap_not_the_count(builtin_rules, monkeypatch) -> None:
    # Through the whole pipeline: the report counts every attempt, warns about the early
    # diagnosis, and claims no errno for any of them.
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from floods import write

    from pcapdiag.api import analyze
    from pcapdiag.track import flows

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "flood.pcap"
        write(path, "syn-flood", 3000)
        monkeypatch.setattr(flows, "MAX_ATTEMPTS", 500)
        report = analyze([str(path)], builtin_rules)
    # (the last 100 SYNs, 10 ms apart, came within the capture's last second: not judged)
    assert report.finding_count == 2900 and report.counts_by_errno() == {"none": 2900}
    assert report.evicted_attempts == 2500
    assert any("2500 unanswered connection attempts" in w.message for w in report.warnings)


def _refused(table: FlowTable, frame: int, ts_s: float, isn: int) -> list:
    done = table.add_segment(_seg(frame, ts_s, C, 5555, S, 80, isn, 0, SYN))
    return done + table.add_segment(_seg(frame + 1, ts_s, S, 80, C, 5555, 0, isn + 1, RST | ACK))


def test_reused_ports_count_up_within_the_linger_time_only() -> None:
    # Three refused connects on the same ports: 30 s apart (instances 1, 2), then 200 s later,
    # past the 120 s linger time: numbering starts again, whether or not the tombstone was
    # swept yet (the sweep runs on packet counts; the decision must not depend on it).
    for filler in (0, 20_000):
        table = FlowTable()
        done = _refused(table, 1, 0, 100) + _refused(table, 3, 30, 200)
        for k in range(filler):  # other traffic: lets the sweep run between 30 s and 230 s
            done += table.add_segment(_seg(10 + k, 31 + k / 100, C, 9, S, 9, 1, 0, ACK))
        done += _refused(table, 50_000, 230, 300)
        done += table.finish(240 * 10**9)
        got = [(r.instance, r.first_frame) for r in done if r.client == "10.0.0.1:5555"]
        assert sorted(got, key=lambda x: x[1]) == [(1, 1), (2, 3), (1, 50_000)], filler


def test_a_refused_attempt_takes_late_segments_for_three_seconds_only() -> None:
    # SYN refused by RST|ACK, then the RST again (a duplicate frame): 2 s later it is still
    # the connection's (its grace, ATTEMPT_GRACE_NS, is 3 s); 5 s later it is a straggler of
    # a released connection. An established connection keeps the 10 s grace.
    for late_s, in_flow in ((2.0, True), (5.0, False)):
        table = FlowTable()
        done = _refused(table, 1, 0, 100)
        rst = _seg(3, late_s, S, 80, C, 5555, 0, 101, RST | ACK)
        done += table.add_segment(rst)
        # Other traffic afterwards, so that the sweep runs past the grace.
        for k in range(5000):
            done += table.add_segment(
                _seg(10 + k, late_s + 0.001 + k / 1000, C, 9, S, 9, 1, 0, ACK)
            )
        done += table.finish(60 * 10**9)
        (rec,) = [r for r in done if r.client == "10.0.0.1:5555"]
        assert (3 in rec.frames) == in_flow, late_s
        assert table.stats.late_segments == (0 if in_flow else 1)
