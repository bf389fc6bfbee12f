"""Predicate.on (an object's attributes) gives what Predicate.test gives with a getter of those
attributes, and the predicates the rule engine compiles (rules/compile.py) what Predicate.on
gives: every `where` of every built-in rule, on every event of the flows of the recordings and
the rule captures, and generated comparisons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import Datagram, IcmpError, Segment
from pcapdiag.io.reader import Record, open_capture
from pcapdiag.io.records import Frame
from pcapdiag.rules.compile import predicate
from pcapdiag.rules.predicates import OPS, All, AnyOf, Compare, Not, Param, Predicate
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


def test_compiled_predicates_agree_with_the_tree(builtin_rules) -> None:
    # The engine calls predicates compiled once per analysis (rules/compile.py): on every
    # event of the same flows they must say what the tree says, with each rule's defaults
    # and with every number parameter moved (as --param does).
    wheres = _wheres(builtin_rules)
    variants = []
    for where, params in wheres:
        variants.append((where, params))
        moved = {k: v + 1 for k, v in params.items() if isinstance(v, int | float)}
        if moved:
            variants.append((where, {**params, **moved}))
    compiled = [(where, params, predicate(where, params)) for where, params in variants]
    captures = sorted(ROOT.glob("samples/recorded/*/*.pcap")) + sorted(ROOT.glob("rules/*/*.pcap"))
    checked = held = 0
    for path in captures:
        for flow in _flows(path):
            for ev in flow.events:
                for where, params, test in compiled:
                    got = test(ev)
                    assert got == where.on(ev, params), (where, ev)
                    checked += 1
                    held += got
    assert checked > 20_000 and held > 100


_VALUES = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", 1.5])


@settings(max_examples=500)
@given(
    st.sampled_from(OPS),
    _VALUES,
    _VALUES | st.just(Param("x")),
    st.lists(_VALUES, max_size=3),
    st.booleans(),
)
def test_a_compiled_comparison_is_the_trees(op, actual, value, values, missing) -> None:
    # Any operator, any pair of values (None, numbers, strings, unordered pairs), a field
    # the object lacks, a parameter: the compiled comparison and Compare.on agree.
    want = tuple(values) if op == "in" else value
    cmp = Compare("f", op, want)
    obj = SimpleNamespace() if missing else SimpleNamespace(f=actual)
    params = {"x": actual if isinstance(actual, int) else 2}
    for pred in (cmp, Not(cmp), All((cmp, Not(cmp))), AnyOf((cmp, Not(cmp))), All((cmp,))):
        assert predicate(pred, params)(obj) == pred.on(obj, params), pred
