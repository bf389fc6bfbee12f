"""ARP and NDP runs (track/neighbours.py): what counts as an unanswered resolution, what
answers one, and which SYN a run held up."""

from __future__ import annotations

import ipaddress

from pcapdiag.decode.packets import ACK, RST, SYN, Neighbour, Segment
from pcapdiag.track.events import NeighbourRequest
from pcapdiag.track.flows import FlowRecord, FlowTable, neighbour_record

S = 1_000_000_000
R, T, G, OFF = "10.0.0.1", "10.0.0.99", "10.0.0.254", "192.0.2.10"


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


class Wire:
    """Packets into a flow table, numbered as frames."""

    def __init__(self) -> None:
        self.table = FlowTable()
        self.frame = 0

    def _next(self) -> int:
        self.frame += 1
        return self.frame

    def ask(self, t: float, sender: str = R, target: str = T, family: int = 4) -> None:
        pkt = Neighbour(self._next(), int(t * S), family, False, a(sender), a(target))
        self.table.add_neighbour(pkt)

    def reply(self, t: float, sender: str = T, target: str = R, family: int = 4) -> None:
        pkt = Neighbour(self._next(), int(t * S), family, True, a(sender), a(target))
        self.table.add_neighbour(pkt)

    def syn(self, t: float, dst: str = T, sport: int = 40000, flags: int = SYN) -> None:
        src, sp, dp = (R, sport, 80) if not flags & (ACK | RST) else (dst, 80, sport)
        if flags & (ACK | RST):
            dst = R
        seg = Segment(self._next(), int(t * S), 4, a(src), a(dst), 64, sp, dp, 1000, 0, flags, 0, 0)
        self.table.add_segment(seg)

    def runs(self, end: float) -> list[FlowRecord]:
        list(self.table.finish(int(end * S)))
        return [neighbour_record(run) for run in self.table.neighbours.finish(int(end * S))]


def first(rec: FlowRecord) -> NeighbourRequest:
    ev = rec.events[0]
    assert isinstance(ev, NeighbourRequest)
    return ev


def test_three_unanswered_requests_make_one_run() -> None:
    w = Wire()
    for t in (0, 1, 2):
        w.ask(t)
    (rec,) = w.runs(end=4)
    assert (rec.client, rec.server, rec.client_packets) == ("10.0.0.1:0", "10.0.0.99:0", 3)
    assert [e.name for e in rec.events] == ["neighbour_request"] * 3 + ["end"]
    assert [e.number for e in rec.events[:3]] == [1, 2, 3]  # type: ignore[attr-defined]
    ev = first(rec)
    assert (ev.requester, ev.target, ev.targets, ev.attempt, ev.silence_ms) == (
        R,
        T,
        1,
        "none",
        2000,
    )
    assert list(rec.frames) == [1, 2, 3] and rec.end_reason == "capture-end"


def test_a_reply_for_the_target_answers_the_run() -> None:
    w = Wire()
    w.ask(0)
    w.ask(1)
    w.reply(1.001)
    assert w.runs(end=5) == []


def test_a_reply_to_someone_else_answers_too() -> None:
    # The target is there and answers: the requester's unicast reply may simply not have
    # been captured (a capture on a third host sees broadcasts, not unicast replies).
    w = Wire()
    w.ask(0)
    w.reply(0.5, target="10.0.0.5")
    w.ask(1)  # a new run starts, answered by nothing: one request, not a failure pattern
    (rec,) = w.runs(end=5)
    assert rec.client_packets == 1 and rec.instance == 2


def test_the_target_asking_shows_it_is_there() -> None:
    w = Wire()
    w.ask(0)
    w.ask(0.5, sender=T, target="10.0.0.5")
    assert [r.server for r in w.runs(end=5)] == ["10.0.0.5:0"]  # only the target's own run


def test_probes_gratuitous_requests_and_dad_are_not_requests() -> None:
    w = Wire()
    for t in (0, 1, 2):
        w.ask(t, sender="0.0.0.0", target="10.0.0.50")  # RFC 5227 probe
        w.ask(t, sender="10.0.0.7", target="10.0.0.7")  # gratuitous
        w.ask(t, sender="::", target="fd00::5", family=6)  # duplicate address detection
    assert w.runs(end=5) == []


def test_a_gratuitous_request_from_the_target_answers() -> None:
    w = Wire()
    w.ask(0)
    w.ask(0.2, sender=T, target=T)
    assert w.runs(end=5) == []


def test_a_long_silence_starts_another_run() -> None:
    w = Wire()
    w.ask(0)
    w.ask(1)
    w.ask(30)
    first_run, second = w.runs(end=31)
    assert (first_run.instance, first_run.end_reason, first_run.client_packets) == (1, "expired", 2)
    assert first(first_run).silence_ms == 29_000
    assert (second.instance, second.end_reason, second.client_packets) == (2, "capture-end", 1)


def test_a_reply_long_after_the_run_does_not_answer_it() -> None:
    w = Wire()
    for t in (0, 1, 2):
        w.ask(t)
    w.reply(20)
    (rec,) = w.runs(end=21)
    assert rec.end_reason == "expired"


def test_a_syn_to_the_target_before_the_requests() -> None:
    # A stale entry: the SYN leaves to the old address, the probes follow.
    w = Wire()
    w.syn(0)
    for t in (0.01, 1, 2):
        w.ask(t)
    ev = first(w.runs(end=4)[0])
    assert (ev.attempt, ev.attempt_frame, ev.attempt_to) == ("to-target", 1, "10.0.0.99:80")


def test_a_syn_through_the_gateway() -> None:
    w = Wire()
    for t in (0, 1, 2):
        w.ask(t, target=G)
    w.syn(2.5, dst=OFF)
    ev = first(w.runs(end=4)[0])
    assert (ev.attempt, ev.attempt_to) == ("via-target", "192.0.2.10:80")


def test_an_answered_syn_is_no_attempt() -> None:
    w = Wire()
    w.syn(0)
    w.syn(0.01, dst=T, flags=SYN | ACK)
    for t in (0.02, 1, 2):
        w.ask(t)
    assert first(w.runs(end=4)[0]).attempt == "none"


def test_a_syn_refused_is_no_attempt() -> None:
    w = Wire()
    w.syn(0)
    w.syn(0.01, dst=T, flags=RST | ACK)  # the target is there: it refuses
    for t in (0.02, 1, 2):
        w.ask(t)
    assert first(w.runs(end=4)[0]).attempt == "none"


def test_a_syn_to_an_address_asked_for_is_not_via_the_target() -> None:
    w = Wire()
    w.ask(0, target="10.0.0.5")
    for t in (0, 1, 2):
        w.ask(t)
    w.syn(1, dst="10.0.0.5")  # on the link (it was asked for): not routed through T
    attempts = {r.server: first(r).attempt for r in w.runs(end=4)}
    assert attempts == {"10.0.0.5:0": "to-target", "10.0.0.99:0": "none"}


def test_a_syn_long_before_the_run_is_not_its_attempt() -> None:
    w = Wire()
    w.syn(0)
    for t in (20, 21, 22):
        w.ask(t)
    assert first(w.runs(end=24)[0]).attempt == "none"


def test_a_sweep_counts_its_targets() -> None:
    w = Wire()
    for t in (0, 1, 2):
        for i in range(20):
            w.ask(t + i / 100, target=f"10.0.0.{100 + i}")
    runs = w.runs(end=4)
    assert len(runs) == 20 and {first(r).targets for r in runs} == {20}


def test_ndp_runs() -> None:
    w = Wire()
    for t in (0, 1, 2):
        w.ask(t, sender="fd00::1", target="fd00::99", family=6)
    (rec,) = w.runs(end=2)
    assert (rec.client, rec.server) == ("[fd00::1]:0", "[fd00::99]:0")
    assert first(rec).silence_ms == 0


def test_old_unanswered_syns_do_not_crowd_out_the_one_a_run_needs() -> None:
    # A busy host's failed attempts of long ago (a hundred, more than a requester's list
    # holds) are forgotten once no run can take them; the SYN of the run that comes later
    # is still seen.
    w = Wire()
    w.ask(0, target="10.0.0.5")
    w.reply(0.001, sender="10.0.0.5")
    for i in range(100):
        w.syn(1 + i / 100, dst=OFF, sport=30000 + i)
    w.syn(100, sport=41000)
    for t in (100.01, 101, 102):
        w.ask(t)
    ev = first(w.runs(end=104)[0])
    assert (ev.attempt, ev.attempt_to) == ("to-target", "10.0.0.99:80")
