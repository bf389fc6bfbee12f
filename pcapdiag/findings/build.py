"""A finding made of a rule's outcome and one match of its pattern in a flow: the effects
per platform, the evidence frames, and the cause, next steps and notes filled from the match
(the template context)."""

from __future__ import annotations

import hashlib
import itertools
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pcapdiag.decode.icmp import describe_kind
from pcapdiag.findings import quality
from pcapdiag.findings.confidence import Confidence, assess
from pcapdiag.findings.hosts import claim_of
from pcapdiag.findings.model import UNKNOWN_ORIGIN, Effect, Finding, Origin, primary_effect
from pcapdiag.findings.platform import AUTO, PlatformGuess, forced, infer
from pcapdiag.findings.plural import Count, Listed
from pcapdiag.findings.templates import render_template
from pcapdiag.findings.vantage import CLIENT_HOST, SERVER_HOST, Vantage, vantage
from pcapdiag.rules.engine import Match
from pcapdiag.rules.model import EffectSpec, Rule
from pcapdiag.track.events import Event, IcmpErrorEvent
from pcapdiag.track.flows import FlowRecord

MAX_EVIDENCE_PER_COUNT = 12


@dataclass(slots=True)
class Head:
    """What a finding's group and the report's counts need of it, worked out before the rest
    (findings/collect.py: a finding that will only be counted is never built in full): its
    side, platform, effects, vantage, confidence, capture-quality codes and evidence."""

    side: str
    guess: PlatformGuess
    effects: dict[str, tuple[Effect, ...]]
    seen_from: Vantage
    confidence: Confidence
    codes: tuple[str, ...]
    frames: tuple[int, ...]
    first_ts_ns: int
    last_ts_ns: int
    ctx: _Context
    # The evidence events at first_ts_ns and last_ts_ns (None: no evidence, the flow's first
    # packet's time): which packets a finding's times come from (findings/samples.py).
    first_event: Event | None = None
    last_event: Event | None = None

    def primary_errno(self) -> str | None:
        prim = primary_effect(self.effects, self.guess.name)
        return prim.errno if prim else None

    def failed_call(self) -> tuple[str, str, str] | None:
        """(side, call, errno) when the finding claims a call fails (an errno, not at low
        confidence: Report.failed_calls), else None."""
        if self.confidence.level == "low":
            return None
        prim = primary_effect(self.effects, self.guess.name)
        if prim is None or not prim.errno:
            return None
        return (self.side, prim.call, prim.errno)


def finding_head(rule: Rule, flow: FlowRecord, match: Match, platform: str = "linux") -> Head:
    """The head of the finding a match makes (see Head); `platform` as build_finding's."""
    outcome = rule.outcome
    side = match.side.value
    guess = infer(flow, side) if platform == AUTO else forced(platform)
    ctx = _Context(rule, flow, match, guess.name)
    effects = _static_effects(outcome)
    if effects is None:
        effects = {}
        for name, specs in outcome.effects.items():
            effects[name] = tuple(_effect(spec, match) for spec in specs)
    seen_from = vantage(flow)
    held = [
        d for d in outcome.doubts if d.when is None or d.when.test(ctx.__getitem__, rule.params)
    ]
    doubts = [(d.level, render_template(d.reason, ctx).strip()) for d in held]
    flaws = quality.doubts(flow, side)
    confidence = assess(
        flow, side, guess, seen_from, effects, doubts, [(lvl, why) for _, lvl, why in flaws]
    )
    codes = (
        tuple(sorted({d.quality for d in held if d.quality} | {c for c, _, _ in flaws}))
        if held or flaws
        else ()
    )
    evidence: list[Event] = []
    for ref in outcome.evidence:
        name, pick = ref.name, ref.pick
        if name in match.bindings:
            evidence.append(match.bindings[name])
            continue
        hits = match.counts.get(name, ())
        if pick == "first":
            hits = hits[:1]
        elif pick == "last":
            hits = hits[-1:]
        elif len(hits) > MAX_EVIDENCE_PER_COUNT:
            # A long run (a million retransmissions) is cited by its two ends.
            half = MAX_EVIDENCE_PER_COUNT // 2
            hits = hits[:half] + hits[-half:]
        evidence.extend(hits)
    frames = tuple(sorted({ev.frame for ev in evidence}))
    if not evidence:
        t = flow.first_ts_ns
        return Head(side, guess, effects, seen_from, confidence, codes, frames, t, t, ctx)
    first = min(evidence, key=_when)
    last = max(evidence, key=_when)
    return Head(
        side,
        guess,
        effects,
        seen_from,
        confidence,
        codes,
        frames,
        first.ts_ns,
        last.ts_ns,
        ctx,
        first,
        last,
    )


def _when(ev: Event) -> tuple[int, int]:
    return ev.ts_ns, ev.frame


# By id of a rule's outcome (the outcome held too, so that its id is never another's): the
# effects of an outcome none of whose effects depends on the match, made once and shared by
# all its findings (read-only: a flood's findings would otherwise each hold their own).
_STATIC: dict[int, tuple[object, dict[str, tuple[Effect, ...]] | None]] = {}


def _static_effects(outcome: Any) -> dict[str, tuple[Effect, ...]] | None:
    hit = _STATIC.get(id(outcome))
    if hit is not None and hit[0] is outcome:
        return hit[1]
    specs = [spec for specs in outcome.effects.values() for spec in specs]
    static = None
    if all(spec.errno_from is None for spec in specs):
        static = {
            name: tuple(_effect(spec, None) for spec in specs)
            for name, specs in outcome.effects.items()
        }
    _STATIC[id(outcome)] = (outcome, static)
    return static


def build_finding(
    rule: Rule,
    flow: FlowRecord,
    match: Match,
    *,
    capture: str = "",
    sources: tuple[str, ...] = (),
    keep: FlowRecord | None = None,
    platform: str = "linux",
    head: Head | None = None,
) -> Finding:
    """The finding a match makes. `keep` is the flow the finding holds (default `flow`):
    a copy without events, so that a finding stays small. `platform` names the errnos;
    "auto" infers the side's platform from its packets. `head`: its head, when already
    worked out (finding_head with the same arguments)."""
    if head is None:
        head = finding_head(rule, flow, match, platform)
    outcome = rule.outcome
    ctx = head.ctx
    frames = head.frames
    notes = tuple(
        sys.intern(render_template(n.text, ctx).strip())
        for n in outcome.notes
        if n.when is None or n.when.test(ctx.__getitem__, rule.params)
    )
    origin = _origin(rule, ctx)
    key = f"{rule.id}|{flow.proto}|{flow.client}|{flow.server}|{flow.instance}|{match.side}"
    key += f"|{frames[0] if frames else 0}"
    fid = "F-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return Finding(
        id=fid,
        rule=rule.id,
        rev=rule.rev,
        rule_name=rule.name,
        severity=rule.severity,
        title=rule.title,
        flow=flow if keep is None else keep,
        side=head.side,
        effects=head.effects,
        frames=frames,
        first_ts_ns=head.first_ts_ns,
        last_ts_ns=head.last_ts_ns,
        cause=render_template(outcome.cause, ctx).strip(),
        # Interned: a rule's advice is mostly the same words for every finding of a flood.
        next_steps=(
            sys.intern(render_template(outcome.next_steps, ctx).strip())
            if outcome.next_steps is not None
            else None
        ),
        notes=notes,
        capture=capture,
        sources=sources,
        platform=head.guess,
        confidence=head.confidence,
        vantage=head.seen_from,
        quality=head.codes,
        origin=origin,
        rst_claim=claim_of(rule, flow, match, origin),
    )


def _origin(rule: Rule, ctx: _Context) -> Origin:
    """The rule's first origin whose condition holds; unknown when none does."""
    for o in rule.outcome.origins:
        if o.when is None or o.when.test(ctx.__getitem__, rule.params):
            return Origin(o.actor, o.confidence, sys.intern(render_template(o.why, ctx).strip()))
    if rule.outcome.origins:
        return Origin("unknown", "low", "the capture does not show who caused it")
    return UNKNOWN_ORIGIN


def _effect(spec: EffectSpec, match: Match | None) -> Effect:
    name = spec.errno
    src = spec.errno_from
    if src is not None:
        assert match is not None
        value = getattr(match.bindings[src.binding], src.field)
        name = src.map.get(str(value))
    if src is not None and spec.result == "pending":
        # A map with a pending fallback: the codes it names end the call; the rest leave it
        # waiting (a soft error).
        result = "error" if name else "pending"
    else:
        result = spec.result if spec.result is not None else ("error" if name else "ok")
    return Effect(call=spec.call, errno=name, result=result, then=spec.then, note=spec.note)


class _Context(Mapping[str, Any]):
    """Values a cause/note template may use: {client}, {server}, {side}, {peer}, {proto},
    {b.frame}, {b.t} (seconds since the flow's first packet), {b.<field>} for each binding b,
    {b.description} for an ICMP error, {c.count}, {c.frames}, {c.gaps}, {c.apart} for each
    count c (findings/plural.py: {c.count:time|times}, {c.frames:frame|frames}),
    {elapsed.a.b} (seconds from binding a to binding b), {params.name}, {platform} (whose
    errnos the finding names: linux, freebsd, macos, windows) and {since_start} ("into the
    connection", or words saying the capture began after it did: what {b.t} counts from).

    Each value is worked out when a template asks for it: a template names a handful of the
    hundreds of values a match offers, and a flood makes a finding per connection."""

    __slots__ = ("_flow", "_match", "_platform", "_rule")

    def __init__(self, rule: Rule, flow: FlowRecord, match: Match, platform: str) -> None:
        self._rule = rule
        self._flow = flow
        self._match = match
        self._platform = platform

    def __getitem__(self, key: str) -> Any:
        flow, match = self._flow, self._match
        # Most keys a rule asks for are a binding's field: those first (the names below
        # come before a binding's, as they always have).
        head, _, rest = key.partition(".")
        if rest and head not in ("params", "elapsed"):
            ev = match.bindings.get(head)
            if ev is not None:
                return _binding_value(ev, rest, flow.first_ts_ns, key)
            evs = match.counts.get(head)
            if evs is not None:
                return _count_value(evs, rest, flow.first_ts_ns, key)
        if key == "client":
            return flow.client
        if key == "server":
            return flow.server
        if key == "side":
            return match.side.value
        if key == "peer":
            return match.side.peer.value
        if key == "proto":
            return flow.proto.upper()
        if key == "platform":
            return self._platform
        if key == "since_start":
            return _since_start(flow)
        if key == "capture_point":
            return _capture_point(flow, match.side.value)
        if key == "peer_platform":
            # The other side's platform as its own packets show it (Linux when they do not
            # decide): what a rule needs to read the peer's packets, a RST's options say.
            return infer(flow, match.side.peer.value).name
        if head == "params" and rest:
            return self._rule.params[rest]
        if head == "elapsed" and rest:
            a, _, b = rest.partition(".")
            bound = match.bindings
            if a not in bound or b not in bound:
                raise KeyError(key)
            return round((bound[b].ts_ns - bound[a].ts_ns) / 1e9, 3)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def _keys(self) -> list[str]:
        out = ["client", "server", "side", "peer", "proto", "platform", "since_start"]
        out += ["capture_point", "peer_platform"]
        out += [f"params.{n}" for n in self._rule.params]
        for name, ev in self._match.bindings.items():
            out += [f"{name}.frame", f"{name}.t"]
            out += [f"{name}.{f}" for f in ev.__dataclass_fields__ if f not in ("frame", "ts_ns")]
            if isinstance(ev, IcmpErrorEvent):
                out.append(f"{name}.description")
        for name in self._match.counts:
            out += [f"{name}.count", f"{name}.frames", f"{name}.gaps", f"{name}.apart"]
            for ev in self._match.counts[name][:1]:
                fields = ("t", *(f for f in ev.__dataclass_fields__ if f != "ts_ns"))
                out += [f"{name}.{pick}.{f}" for pick in ("first", "last") for f in fields]
        names = list(self._match.bindings)
        out += [f"elapsed.{a}.{b}" for a in names for b in names]
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


def _capture_point(flow: FlowRecord, side: str) -> str:
    """Where the capture was taken, from the finding's side: side-host (its own host),
    peer-host (the other end's: what reached that host is what its kernel got), same-host
    (both ends on one host), path, unknown (findings/vantage.py)."""
    where = vantage(flow).where
    if where in (CLIENT_HOST, SERVER_HOST):
        return "side-host" if where == f"{side}-host" else "peer-host"
    return where


def _since_start(flow: FlowRecord) -> str:
    """What a flow's times count from, in words: its SYN, or its first packet captured."""
    if flow.seen_from_start:
        return "into the connection"
    return "after the connection's first packet captured"


def _binding_value(ev: Event, field_name: str, t0: int, key: str) -> Any:
    if field_name == "frame":
        return ev.frame
    if field_name == "t":
        return round((ev.ts_ns - t0) / 1e9, 3)
    if field_name == "description" and isinstance(ev, IcmpErrorEvent):
        return describe_kind(ev.kind)
    if field_name == "ts_ns" or field_name not in ev.__dataclass_fields__:
        raise KeyError(key)
    v = getattr(ev, field_name)
    return v.value if hasattr(v, "value") else v


def _count_value(evs: tuple[Event, ...], field_name: str, t0: int, key: str) -> Any:
    """{c.count}, {c.frames}, {c.gaps}, {c.apart}, and {c.first.<field>} / {c.last.<field>}:
    a field of the first or last event counted (none counted: left unfilled). The count and
    the frames know their number, for a singular or plural word (plural.py); {c.apart} is
    " (0.2 s, 0.4 s apart)", or nothing for fewer than two events, which have no gap."""
    pick, _, rest = field_name.partition(".")
    if pick in ("first", "last") and rest:
        if not evs:
            raise KeyError(key)
        return _binding_value(evs[0] if pick == "first" else evs[-1], rest, t0, key)
    if field_name == "count":
        return Count(len(evs))
    if field_name == "frames":
        shown = ", ".join(str(e.frame) for e in evs[:12]) + (", ..." if len(evs) > 12 else "")
        return Listed(shown, len(evs))
    if field_name in ("gaps", "apart"):
        gaps = [(b.ts_ns - a.ts_ns) / 1e9 for a, b in itertools.pairwise(evs[:13])]
        said = ", ".join(f"{g:.1f} s" for g in gaps)
        if field_name == "apart":
            return f" ({said} apart)" if said else ""
        return said or "none"
    raise KeyError(key)
