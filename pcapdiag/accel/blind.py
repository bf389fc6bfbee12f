"""Whether the rules in use are blind to plain (or repaired) connections: then the first pass
may set them aside, for no rule could say anything about them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from pcapdiag.rules.engine import test
from pcapdiag.rules.loader import Rule
from pcapdiag.track.plain import (
    PLAIN_END,
    PLAIN_EVENTS,
    PLAIN_UDP_END,
    PLAIN_UDP_EVENTS,
    REPAIRED_BY,
    REPAIRED_EVENTS,
)


def blind_to_plain(
    rules: Iterable[Rule], params: dict[str, dict[str, Any]], *, repaired: bool = False
) -> bool:
    """Whether no rule can match a plain connection or UDP flow (with `repaired`, a repaired
    connection too): each rule needs an event a plain one never has, or an `end` whose state
    or reason a plain one never ends with, or (repaired) the absence of the answer that a
    repaired connection always has after a retransmission or keepalive the rule binds."""
    return all(_rule_blind(r, {**r.params, **params.get(r.id, {})}, repaired) for r in rules)


def _rule_blind(rule: Rule, p: dict[str, Any], repaired: bool = False) -> bool:
    if rule.proto == "tcp":
        events, end = (REPAIRED_EVENTS if repaired else PLAIN_EVENTS), PLAIN_END
    elif rule.proto == "udp":
        events, end = PLAIN_UDP_EVENTS, PLAIN_UDP_END
    else:
        return False  # a protocol this module knows nothing of
    if any(name not in events for name in rule.step_events):
        return True
    match = rule.data["match"]
    steps = match["sequence"]
    if any(
        step["event"] == "end" and "where" in step and _excludes_end(step["where"], end, p)
        for step in steps
    ):
        return True
    return (
        repaired
        and rule.proto == "tcp"
        and any(_answer_required_absent(clause, steps) for clause in match.get("absent", ()))
    )


def _answer_required_absent(clause: dict[str, Any], steps: list[dict[str, Any]]) -> bool:
    """Whether an `absent` clause forbids what a repaired connection always has: the answer
    to a retransmission or keepalive bound by a step, between that step and the end, from
    anyone or from that event's receiver, whatever its fields (no `where`)."""
    after, until = clause["between"]
    if until != "end" or "where" in clause:
        return False
    bound = next((step["event"] for step in steps if step.get("as") == after), None)
    if bound not in REPAIRED_BY or clause["event"] != REPAIRED_BY[bound]:
        return False
    sender = clause.get("from", "any")
    return sender == "any" or sender == {"receiver_of": after}


def _excludes_end(
    where: dict[str, Any], plain_end: dict[str, tuple[str, ...]], p: dict[str, Any]
) -> bool:
    fields = set(_fields(where))
    if not fields <= plain_end.keys():
        return False  # a field we cannot vouch for
    names = sorted(fields)
    for values in itertools.product(*(plain_end[n] for n in names)):
        end = dict(zip(names, values, strict=True))
        if test(where, end.__getitem__, p):
            return False
    return True


def _fields(pred: dict[str, Any]) -> Iterable[str]:
    for key in ("all", "any"):
        for sub in pred.get(key, ()):
            yield from _fields(sub)
    if "not" in pred:
        yield from _fields(pred["not"])
    if "field" in pred:
        yield pred["field"]
