"""Whether the rules in use are blind to plain (or repaired) connections: then the first pass
may set them aside, for no rule could say anything about them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from pcapdiag.rules.model import Absent, Rule, SideSpec, Step
from pcapdiag.rules.predicates import Predicate
from pcapdiag.track.plain import (
    MIDSTREAM_EVENTS,
    MIDSTREAM_FIELDS,
    MIDSTREAM_REPAIRED_EVENTS,
    PLAIN_END,
    PLAIN_EVENTS,
    PLAIN_UDP_END,
    PLAIN_UDP_EVENTS,
    REPAIRED_BY,
    REPAIRED_EVENTS,
    REPAIRED_FIELDS,
)


def blind_to_plain(
    rules: Iterable[Rule],
    params: dict[str, dict[str, Any]],
    *,
    repaired: bool = False,
    midstream: bool = False,
) -> bool:
    """Whether no rule can match a plain connection or UDP flow (with `repaired`, a repaired
    connection too; with `midstream`, such a connection seen mid-stream, track/plain.py
    MIDSTREAM_*): each rule needs an event a plain one never has, or an `end` (or, mid-stream,
    an `anomaly`) whose fields a plain one never has, or (repaired) the absence of the answer
    that a repaired connection always has after a retransmission or keepalive the rule binds."""
    return all(
        _rule_blind(r, {**r.params, **params.get(r.id, {})}, repaired, midstream) for r in rules
    )


def _rule_blind(
    rule: Rule, p: dict[str, Any], repaired: bool = False, midstream: bool = False
) -> bool:
    fields: dict[str, dict[str, tuple[str, ...]]]
    if rule.proto == "tcp" and midstream:
        events = MIDSTREAM_REPAIRED_EVENTS if repaired else MIDSTREAM_EVENTS
        fields = {**MIDSTREAM_FIELDS, **REPAIRED_FIELDS} if repaired else MIDSTREAM_FIELDS
    elif rule.proto == "tcp":
        events, fields = (REPAIRED_EVENTS if repaired else PLAIN_EVENTS), {"end": PLAIN_END}
        if repaired:
            fields = {**fields, **REPAIRED_FIELDS}
    elif rule.proto == "udp":
        events, fields = PLAIN_UDP_EVENTS, {"end": PLAIN_UDP_END}
    else:
        # A neighbour rule's flows are ARP / NDP runs, never a connection or a UDP flow; of
        # any other protocol this module knows nothing.
        return rule.proto == "neighbour"
    if any(name not in events for name in rule.step_events):
        return True
    steps = rule.match.sequence
    if any(
        step.event in fields
        and step.where is not None
        and _excludes_end(step.where, fields[step.event], p)
        for step in steps
    ):
        return True
    return (
        repaired
        and rule.proto == "tcp"
        and any(_answer_required_absent(absent, steps) for absent in rule.match.absent)
    )


def _answer_required_absent(absent: Absent, steps: tuple[Step, ...]) -> bool:
    """Whether an `absent` clause forbids what a repaired connection always has: the answer
    to a retransmission or keepalive bound by a step, between that step and the end, from
    anyone or from that event's receiver, whatever its fields (no `where`)."""
    after, until = absent.between
    if until != "end" or absent.where is not None:
        return False
    bound = next((step.event for step in steps if step.binding == after), None)
    if bound not in REPAIRED_BY or absent.event != REPAIRED_BY[bound]:
        return False
    return absent.sender is None or absent.sender == SideSpec("receiver_of", after)


def _excludes_end(
    where: Predicate, plain_end: dict[str, tuple[str, ...]], p: dict[str, Any]
) -> bool:
    """Whether `where` is false for every combination of the values a plain connection's
    event may carry (`plain_end`: field -> values)."""
    fields = set(where.fields())
    if not fields <= plain_end.keys():
        return False  # a field we cannot vouch for
    names = sorted(fields)
    for values in itertools.product(*(plain_end[n] for n in names)):
        end = dict(zip(names, values, strict=True))
        if where.test(end.__getitem__, p):
            return False
    return True
