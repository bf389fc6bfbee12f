"""Connections counted without being read: what an exemplar contributes to a report, and the
same counted in for the connections alike in it that the accelerator set aside.

The first pass (accel/_triage.c) sorts failing connections of common shapes (refused, lone
SYNs) into classes whose members agree on everything the tracker reads of them but who and
when (accel.triage.ShapeClass). The
analysis judges a class's first connections, its exemplars, as any other; each leaves a
Sample: its findings' groups and places in time, its capture-quality counts, all relative to
its first packet, identity-free. Every exemplar of a class must leave the same Sample (checked:
were they to differ, the class would not be one, and counting would be wrong). The others are
then counted into the same groups, as FindingCollector.count_only counts findings that are
never listed, with the class's times, clients and ports, once it is checked that each of
those groups lists only findings that sort before all of them (ListingShort if not: the first
pass, which chooses the exemplars of classes alike but for their times together, guessed
wrong that they make the same findings).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pcapdiag.decode.packets import format_endpoint
from pcapdiag.findings import quality
from pcapdiag.findings.collect import FindingCollector
from pcapdiag.findings.model import Report, alike_key_at, host_of
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:
    from pcapdiag.findings.build import Head
    from pcapdiag.rules.engine import Match
    from pcapdiag.rules.model import Rule
    from pcapdiag.track.events import Event


_END = -1


class SampleMismatch(RuntimeError):
    """Exemplars of one class made different findings: the class's key misses something the
    analysis reads (a bug of the first pass, never a property of the capture)."""


class ListingShort(RuntimeError):
    """A group's list of findings would hold a connection the first pass counted without
    reading: the analysis must run again with each class's own exemplars."""


# ShapeClass.least's index of each moment a finding's time comes from (Sample.findings).
_MOMENT = {0: 0, 1: 1, -1: 2}


@dataclass(frozen=True, slots=True)
class Sample:
    server: str  # the server's address (every connection of a class has it)
    # (rule, side, platform, errno, confidence, where its evidence's first and last times
    # come from: the connection's packet at that index, or its end, -1; and the index of
    # its first frame, None without any) of each finding
    findings: tuple[tuple[str, str, str, str | None, str, int, int, int | None], ...]
    # (code, the index in the connection's frames of the frame it names, count)
    issues: tuple[tuple[str, int | None, int], ...]
    # The failed call (side, call, errno; None: no errno claimed) of each of its findings,
    # with where the finding's time comes from (as in `findings`): the report's services
    # count them (findings/services.py)
    calls: tuple[tuple[tuple[str, str, str] | None, int], ...] = ()


def _position(rec: FlowRecord, frame: int | None) -> int | None:
    if frame is None:
        return None
    try:
        return list(rec.frames).index(frame)
    except ValueError:
        raise SampleMismatch(f"frame {frame} is not one of its connection's") from None


def _source(rec: FlowRecord, ev: Event | None) -> int:
    """Where a finding's time comes from: the index of its packet in the connection, or -1
    for its end (None: no evidence, the first packet)."""
    if ev is None:
        return 0
    if ev.name == "end":
        return _END
    pos = _position(rec, ev.frame)
    assert pos is not None
    return pos


def sample_of(
    rec: FlowRecord,
    matched: Sequence[tuple[Rule, Match, Head]],
    issues: Sequence[tuple[str, int | None, int]],
) -> Sample:
    """What `rec`, an exemplar, contributed: `matched` its findings' heads (session._diagnose)
    and `issues` the capture-quality counts judge() made of it, (code, frame, count)."""
    findings = tuple(
        (
            rule.id,
            head.side,
            head.guess.name,
            head.primary_errno(),
            head.confidence.level,
            _source(rec, head.first_event),
            _source(rec, head.last_event),
            _position(rec, head.frames[0] if head.frames else None),
        )
        for rule, _m, head in matched
    )
    host = host_of(rec.server)
    calls = tuple((head.failed_call(), _source(rec, head.first_event)) for _r, _m, head in matched)
    return Sample(host, findings, tuple((c, _position(rec, f), n) for c, f, n in issues), calls)


def count_in(
    klass: Any,
    samples: Sequence[Sample],
    capture: str,
    report: Report,
    collector: FindingCollector,
) -> None:
    """Count `klass` (an accel.triage.ShapeClass) into the report as its exemplars'
    `samples` say."""
    if not samples:
        raise SampleMismatch("a class of failing connections has no exemplar")
    first = samples[0]
    if any(s != first for s in samples[1:]):
        raise SampleMismatch("the exemplars of a class of failing connections differ")
    spans = {0: klass.syn_ts_ns, _END: klass.end_ts_ns}
    if klass.answer_ts_ns is not None:
        spans[1] = klass.answer_ts_ns
    counted = []
    for rule, side, platform, errno, confidence, lo, hi, k in first.findings:
        if lo not in spans or hi not in spans:
            raise SampleMismatch("a finding's time comes from no moment of its connection")
        key = alike_key_at(capture, rule, side, platform, errno, confidence, first.server)
        # Where the findings counted here would sort in their group (finding_order): from
        # the least (time, first frame) of theirs in that order.
        least = klass.least[_MOMENT[lo]][0 if k is None else k]
        if least is None:
            raise SampleMismatch("a finding's first frame is no frame of its connection")
        if not collector.lists_before(key, (least[0], () if k is None else (least[1],))):
            raise ListingShort(f"the list of findings {rule} of {first.server} is short")
        counted.append((key, spans[lo][0], spans[hi][1]))
    n = klass.count
    report.tcp_connections += n
    for code, pos, each in first.issues:
        frame = klass.first_frames[pos] if pos is not None else None
        report.quality.add(code, frame, each * n)
    clients = None if klass.clients is None else {_host(a) for a in klass.clients}
    by_port = {port: k for port, k, *_times in klass.shares}
    for key, first_ts_ns, last_ts_ns in counted:
        collector.count_many(key, n, first_ts_ns, last_ts_ns, clients, by_port)
    _count_services(klass, first, capture, report)


def _count_services(klass: Any, sample: Sample, capture: str, report: Report) -> None:
    """Count `klass` into the report's services, port by port, with its exemplars'
    findings, each at its moment's times among that port's connections."""
    calls = [call for call, _lo in sample.calls]
    for port, n, syn, answer, end in klass.shares:
        service = report.services.get(capture, "tcp", f"{sample.server}:{port}")
        service.connections += n
        if not calls:
            continue
        spans = {0: syn, 1: answer, _END: end}
        times = [spans[lo] for _call, lo in sample.calls]
        if any(t is None for t in times):
            raise SampleMismatch("a finding's time comes from no moment of its connection")
        first = min(t[0] for t in times if t is not None)
        last = max(t[1] for t in times if t is not None)
        service.add_failures(n, calls, first, last)


@functools.lru_cache(maxsize=1 << 16)
def _host(addr: bytes) -> str:
    """A client's address as a group counts it: an outage's clients come back in the classes
    of every server they were refused by, so each is formatted once."""
    return format_endpoint(addr, 0).rpartition(":")[0]


def issues_of(
    rec: FlowRecord, matched: Sequence[tuple[Rule, Match, Head]]
) -> list[tuple[str, int | None, int]]:
    """The capture-quality counts judge() adds for one connection, (code, frame, count)."""
    out = [(code, frame, 1) for code, frame in quality.connection_issues(rec)]
    if matched:
        out += quality.finding_issues(rec, matched[0][2].seen_from)
    for _rule, _m, head in matched:
        if quality.ENDED_BEFORE_OUTCOME in head.codes:
            out.append((quality.ENDED_BEFORE_OUTCOME, head.frames[0] if head.frames else None, 1))
    return out
