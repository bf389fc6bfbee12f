"""Predicate.on (an object's attributes: what the rule engine tests events with) gives what
Predicate.test gives with a getter of those attributes: every `where` of every built-in rule,
on every event of the flows of the recordings and the rule captures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import Datagram, IcmpError, Segment
from pcapdiag.io.reader import Record, open_capture
from pcapdiag.io.records import Frame
from pcapdiag.rules.predicates import Predicate
from pcapdiag.track.flows import FlowRecord, FlowTable

ROOT = Path(__file__).resolve().parents[2]


def _wheres(rules) -> list[tuple[Predicate, dict]]:
    out = []
    for r in rules:
        pattern = r.match
        for clause in (*pattern.sequence, *pattern.absent, *pattern.counts):
            if clause.where is not None:
                out.append((clause.where, r.params))
    return out


def _flows(path: Path) -> Iterator[FlowRecord]:
    table = FlowTable()
    with open_capture(str(path)) as reader:
        for rec in reader.records():
            assert isinstance(rec, Record)
            data = bytes(rec.buf[rec.start : rec.stop])
            pkt = decode(Frame(rec.number, rec.ts_ns, rec.linktype, data, rec.orig_len))
            if isinstance(pkt, Segment):
                yield from table.add_segment(pkt)
            elif isinstance(pkt, Datagram):
                yield from table.add_datagram(pkt)
            elif isinstance(pkt, IcmpError):
                yield from table.add_icmp(pkt)
        yield from table.finish(reader.last_ts_ns)


def test_on_agrees_with_test(builtin_rules) -> None:
    wheres = _wheres(builtin_rules)
    assert len(wheres) > 20
    captures = sorted(ROOT.glob("samples/recorded/*/*.pcap")) + sorted(ROOT.glob("rules/*/*.pcap"))
    checked = held = 0
    for path in captures:
        for flow in _flows(path):
            for ev in flow.events:
                for where, params in wheres:
                    got = where.on(ev, params)
                    assert got == where.test(lambda f, ev=ev: getattr(ev, f), params)
                    checked += 1
                    held += got
    assert checked > 10_000 and held > 100
