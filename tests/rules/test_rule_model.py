"""Rules as typed, frozen objects: what a rule file becomes (convert.py), how its predicates,
side specs and `$param` references evaluate, and that nothing of the file's data is kept."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pcapdiag.api import analyze
from pcapdiag.rules.compile import clause
from pcapdiag.rules.convert import pattern_of, predicate_of, side_of, value_of
from pcapdiag.rules.model import (
    UNSET,
    Count,
    EvidenceRef,
    Expected,
    Rule,
    SideSpec,
    Step,
    Window,
)
from pcapdiag.rules.predicates import All, AnyOf, Compare, Not, Param
from pcapdiag.rules.yamlfile import LineDict
from pcapdiag.ruletest import run_case
from pcapdiag.track.events import Side

ROOT = Path(__file__).resolve().parents[2]


def _by_name(rules: list[Rule], name: str) -> Rule:
    return next(r for r in rules if r.name == name)


def test_a_rule_file_becomes_typed_objects(builtin_rules) -> None:
    rule = _by_name(builtin_rules, "data-timeout")
    assert rule.params == {"min_retransmissions": 3}
    first, *more = rule.match.sequence
    assert first == Step(
        binding="first", event="retransmission", where=Compare("kind", "eq", "data")
    )
    assert not more and rule.step_events == ("retransmission",)
    recovered, rst, handshake, fin, fin_again = rule.match.absent
    assert recovered.sender == SideSpec("receiver_of", "first")
    assert rst.sender is None and rst.where == Compare("accepted", "eq", True)
    assert handshake.between == ("first", "end")
    # A side that sent its FIN had closed: no ETIMEDOUT is claimed for it.
    assert fin.event == "fin" and fin.sender == SideSpec("sender_of", "first")
    assert fin_again.where == Compare("kind", "eq", "fin")
    (retx,) = rule.match.counts
    assert retx == Count(
        name="retx",
        event="retransmission",
        between=("start", "end"),
        sender=SideSpec("sender_of", "first"),
        where=Compare("kind", "eq", "data"),
        ge=Param("min_retransmissions"),
    )
    out = rule.outcome
    assert out.side == SideSpec("sender_of", "first")
    assert out.evidence == (EvidenceRef("first"), EvidenceRef("retx"))
    # The note on a capture that ends too soon depends on the platform the finding names.
    assert out.notes[0].when == All(
        (Compare("end.reason", "eq", "capture-end"), Compare("platform", "eq", "linux"))
    )
    assert [e.errno for e in out.effects["linux"]] == ["ETIMEDOUT", "ETIMEDOUT"]
    positive, negative, *_ = rule.tests
    assert negative.expect == () and positive.platform == "linux"
    (want,) = positive.expect
    assert (want.side, want.call, want.frames) == ("client", "recv", (7, 8, 9, 10, 11))
    assert want.client is UNSET and want.server is UNSET


def test_a_doubt_is_typed(builtin_rules) -> None:
    unproven, unjudged = _by_name(builtin_rules, "rst-established").outcome.doubts
    assert (unproven.level, unjudged.level) == ("medium", "low")
    assert unproven.when == Compare("rst.receiver_state_proven", "eq", False)
    assert unjudged.when == Compare("rst.disposition", "eq", "unjudged")
    assert "could not be verified" in unjudged.reason and unjudged.quality is None
    (ended,) = _by_name(builtin_rules, "data-timeout").outcome.doubts
    assert ended.quality == "ended-before-outcome"


def test_a_window_and_a_pick_of_a_count(builtin_rules) -> None:
    syn = _by_name(builtin_rules, "syn-unanswered").match.sequence
    assert any(s.not_within == Window("syn", Param("min_silence_ms")) for s in syn)
    picks = {ref.pick for r in builtin_rules for ref in r.outcome.evidence if ref.pick is not None}
    assert picks <= {"first", "last"}


def test_a_rule_keeps_nothing_of_the_file_and_is_frozen(builtin_rules) -> None:
    def walk(obj: Any) -> Any:
        yield obj
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                yield from walk(getattr(obj, f.name))
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from walk(v)
        elif isinstance(obj, tuple | list):
            for v in obj:
                yield from walk(v)

    for rule in builtin_rules:
        assert not any(isinstance(o, LineDict | list) for o in walk(rule)), rule.name
        assert pickle.loads(pickle.dumps(rule)) == rule
    with pytest.raises(dataclasses.FrozenInstanceError):
        builtin_rules[0].severity = "low"


def test_values_and_parameters() -> None:
    assert value_of("$min_ms") == Param("min_ms") and str(Param("min_ms")) == "$min_ms"
    assert value_of("ESTABLISHED") == "ESTABLISHED" and value_of(3) == 3
    pred = Compare("length", "ge", Param("n"))
    assert pred.test({"length": 5}.__getitem__, {"n": 5})
    assert not pred.test({"length": 5}.__getitem__, {"n": 6})
    one_of = Compare("state", "in", ("CLOSED", Param("s")))
    assert one_of.test({"state": "LISTEN"}.__getitem__, {"s": "LISTEN"})
    assert not one_of.test({"state": "LISTEN"}.__getitem__, {"s": "SYN_SENT"})
    with pytest.raises(ValueError, match="operator"):
        Compare("x", "like", 1)


def test_a_predicate_tree() -> None:
    raw = {
        "all": [
            {"field": "a", "eq": 1},
            {"any": [{"field": "b", "lt": 5}, {"field": "c", "in": ["x", "y"]}]},
            {"not": {"field": "d", "ne": None}},
        ]
    }
    tree = predicate_of(raw)
    assert tree == All(
        (
            Compare("a", "eq", 1),
            AnyOf((Compare("b", "lt", 5), Compare("c", "in", ("x", "y")))),
            Not(Compare("d", "ne", None)),
        )
    )
    assert list(tree.fields()) == ["a", "b", "c", "d"]

    def holds(**values: Any) -> bool:
        return tree.test(values.__getitem__, {})

    assert holds(a=1, b=4, c="z", d=None)
    assert holds(a=1, b=9, c="y", d=None)
    assert not holds(a=1, b=9, c="z", d=None)  # neither alternative
    assert not holds(a=2, b=4, c="x", d=None)
    assert not holds(a=1, b=4, c="x", d=0)  # d ne None: the `not` fails
    # A field the getter does not know makes its comparison false (and its negation true).
    assert not Compare("zz", "eq", None).test({}.__getitem__, {})
    assert Not(Compare("zz", "eq", None)).test({}.__getitem__, {})
    # Ordered comparisons: false for a missing value and for values that do not order.
    assert not Compare("b", "lt", 5).test({"b": None}.__getitem__, {})
    assert not Compare("b", "lt", 5).test({"b": "four"}.__getitem__, {})
    assert Compare("b", "ne", 5).test({"b": None}.__getitem__, {})


def _ev(sender: Side | None, receiver: Side | None) -> Any:
    return SimpleNamespace(sender=sender, receiver=receiver)


def test_each_side_spec() -> None:
    rst = _ev(Side.SERVER, Side.CLIENT)
    icmp = _ev(None, Side.CLIENT)  # from a router: no endpoint sent it
    bound = {"rst": rst, "icmp": icmp}
    assert side_of("client").resolve(bound) is Side.CLIENT
    assert side_of("server").resolve(bound) is Side.SERVER
    assert side_of("any").resolve(bound) is None
    assert side_of({"sender_of": "rst"}) == SideSpec("sender_of", "rst")
    assert side_of({"sender_of": "rst"}).resolve(bound) is Side.SERVER
    assert side_of({"receiver_of": "rst"}).resolve(bound) is Side.CLIENT
    assert side_of({"sender_of": "icmp"}).resolve(bound) is None
    # `from: any` and no `from` do not restrict the side; `from: {sender_of: icmp}` admits
    # only what no endpoint sent, as the ICMP error.
    steps = pattern_of(
        {
            "sequence": [
                {"as": "a", "event": "rst", "from": "any"},
                {"as": "b", "event": "rst"},
                {"as": "c", "event": "rst", "from": "client"},
                {"as": "d", "event": "icmp_error", "from": {"sender_of": "icmp"}},
            ]
        }
    ).sequence
    assert steps[0].sender is None and steps[1].sender is None
    events = (rst, _ev(Side.CLIENT, Side.SERVER), icmp)
    tests = [clause(step, {}) for step in steps]
    admitted = [tuple(t is None or t(ev, bound) for ev in events) for t in tests]
    assert admitted == [(1, 1, 1), (1, 1, 1), (0, 1, 0), (0, 0, 1)]


def test_a_param_of_the_caller_overrides_the_default(builtin_rules) -> None:
    rule = _by_name(builtin_rules, "data-timeout")
    capture = str(ROOT / "rules/data-timeout/retransmissions-then-silence.pcap")

    def findings(params: dict[str, Any] | None) -> int:
        report = analyze([capture], [rule], params={rule.id: params} if params else None)
        return len(report.findings)

    # Five retransmissions, never acknowledged; the rule needs min_retransmissions (3).
    assert findings(None) == 1
    assert findings({"min_retransmissions": 5}) == 1
    assert findings({"min_retransmissions": 6}) == 0


def test_a_rule_test_compares_only_what_it_gives(builtin_rules) -> None:
    rule = _by_name(builtin_rules, "syn-refused")
    case = next(c for c in rule.tests if c.expect)
    assert run_case(rule, builtin_rules, case).ok
    wrong = dataclasses.replace(case, expect=(Expected(side="server", frames=(1, 2)),))
    result = run_case(rule, builtin_rules, wrong)
    assert result.problems == ("side: expected 'server', got 'client'",)
    no_errno = dataclasses.replace(case, expect=(Expected(call="connect", errno=None),))
    assert run_case(rule, builtin_rules, no_errno).problems == (
        "errno: expected None, got 'ECONNREFUSED'",
    )
