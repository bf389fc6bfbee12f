"""A first pass in C that sets aside the plain TCP connections and UDP flows of a pcap file.

Most connections of a busy link open, exchange data in order and close: every rule is silent
about them, and following each of their frames through the Python tracker is most of the time
a run takes. `_triage.c` reads the file once, very fast, and marks the frames of the
connections it can prove plain (the exact test is at the top of that file); the analysis then
skips those frames in runs and counts the connections. When the rules allow it (see
blind_to_plain), a connection whose only surprises are repairs, retransmitted data later
acknowledged and keepalive probes answered, counts as plain too. Everything else, including
every connection with an unanswered retransmission, a RST, a lone SYN or an ICMP error about
it, goes through the tracker as before, and the report is the same as without this pass
(tests/test_triage.py compares them). Under --jobs one pass plans for every worker.

The pass is used only when all of this holds, and otherwise silently not:
- the C extension was built (see hatch_build.py), ENABLED is set and PCAPDIAG_PURE=1 is not
  in the environment;
- the input is an uncompressed pcap or pcapng file of Ethernet frames, mapped in memory;
- every rule in use needs, to match, something a plain connection never has (checked from
  the rules themselves: a custom rule about healthy connections turns the pass off);
  UDP flows no ICMP error names are set aside the same way (the UDP rule needs one);
- the C pass did not meet a frame that might carry TCP in a way it does not decode (GRE,
  VXLAN, IPv6 extension headers), the unanswered attempts never approached the flow
  table's cap (its early releases depend on every attempt being counted), and it never had
  to remember more than 500,000 port pairs at once (a scan or a flood: the Python flow
  table, which releases what it can, then reads everything, and memory stays bounded).

Frames the pass does not set aside are read in batches in C too (`_triage.batch`): the
common TCP segments are built there, the rest decoded by decode.py as before.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pcapdiag.accel import fast_decode as decode_fast
from pcapdiag.decode.packets import Segment
from pcapdiag.io.reader import MAX_CAPLEN, CaptureReader
from pcapdiag.rules.engine import test
from pcapdiag.rules.loader import Rule
from pcapdiag.track.flows import UDP_IDLE_NS, FlowTable, Released

try:
    from pcapdiag.accel import _triage  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: every frame goes through Python
    _triage = None

ENABLED = True

# What the Python tracker makes of a plain connection (checked by tests/test_triage.py on the
# benchmark's captures): these events, ending with these states and reason.
PLAIN_EVENTS = frozenset({"syn", "synack", "handshake", "data", "fin", "end"})
# A repaired connection is plain but for the two repairs of a healthy connection: data sent
# again and then acknowledged, keepalive probes answered. Its events are these, and each event
# named in REPAIRED_BY is followed, before the end, by the event it names, sent by its receiver:
# every `retransmission` by a `recovered` (an ACK past snd_una), every `keepalive` by a
# `keepalive_ack` (tracker.Connection._on_ack).
REPAIRED_EVENTS = PLAIN_EVENTS | {"retransmission", "recovered", "keepalive", "keepalive_ack"}
REPAIRED_BY = {"retransmission": "recovered", "keepalive": "keepalive_ack"}
# A plain connection is closed, or still open past its handshake when the capture ends.
_AFTER_HANDSHAKE = (
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSED",
)
PLAIN_END = {
    "client_state": _AFTER_HANDSHAKE,
    "server_state": ("SYN_RECEIVED", *_AFTER_HANDSHAKE),
    "reason": ("closed", "capture-end"),
}
# A plain UDP flow: datagrams and its end, no ICMP error about it.
PLAIN_UDP_EVENTS = frozenset({"datagram", "end"})
PLAIN_UDP_END = {
    "client_state": ("UDP",),
    "server_state": ("UDP",),
    "reason": ("expired", "capture-end"),
}


@dataclass(slots=True)
class Plan:
    """The outcome of the first pass over one file for one worker: what the reader skips (a
    capture.SkipPlan, once `table` is the worker's flow table) and what the report counts
    for it."""

    bits: bytes  # bit n - 1 set: frame n is skipped (a plain connection's, another worker's)
    own: bytes  # bit n - 1 set: frame n belongs to one of this worker's plain connections
    plain: int  # this worker's plain TCP connections set aside
    plain_udp: int  # this worker's plain UDP flows set aside
    records: int  # records the pass read
    table: FlowTable  # where the reader's runs of skipped frames go (see skipped_run)

    segment_type: type | None = Segment  # frames of the common kind decoded in C

    @property
    def skipped_run(self) -> Callable[[int, Sequence[int], int], Released | None]:
        """What the reader calls for each run of skipped frames: FlowTable.skip_run."""
        return self.table.skip_run


def available() -> bool:
    """Whether the C pass can run: built, enabled, and not turned off by PCAPDIAG_PURE=1 in
    the environment (to compare reports or time the pure-Python path)."""
    return ENABLED and _triage is not None and os.environ.get("PCAPDIAG_PURE") != "1"


def first_pass(
    reader: CaptureReader,
    table: FlowTable,
    rules: Sequence[Rule],
    params: dict[str, dict[str, Any]],
    workers: int = 1,
) -> list[Plan] | None:
    """Run the C pass over `reader`'s file before it is read: one Plan for each of the
    `workers` of --jobs (worker k's at k), or None when the pass does not apply (see the
    module's docstring). Each worker skips the TCP and UDP frames of the other workers' flows
    too (shard.py decides the same). The plans send skipped runs to `table` (a worker binds
    its own with dataclasses.replace); its timeouts and cap are those the pass applies."""
    if not available() or not blind_to_plain(rules, params):
        return None
    repairs = blind_to_plain(rules, params, repaired=True)
    buf = reader.whole_file()
    if buf is None:
        return None
    pcapng = reader.format == "pcapng"  # the C pass checks each interface's link type
    if not pcapng and reader.linktypes != [1]:
        return None
    assert _triage is not None
    result = _triage.triage(
        buf,
        pcapng,
        reader.byte_order == "big",
        reader.nanosecond,
        MAX_CAPLEN,
        table.linger_ns,
        table.idle_ns,
        table.max_attempts,
        UDP_IDLE_NS,
        True,  # an mmap: pages read may be given back
        workers,
        repairs,
    )
    if result is None:
        return None
    plans, records = result
    segment_type = Segment if decode_fast.ENABLED else None
    return [
        Plan(bits, own, plain, plain_udp, records, table, segment_type)
        for bits, own, plain, plain_udp in plans
    ]


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
