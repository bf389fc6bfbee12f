"""Report data: findings built from rule matches, flow summaries, capture metadata.

`Report.to_dict()` is the JSON contract `pcapdiag.report/v1`. The schema version changes only
when the format does, independently of the package version.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pcapdiag import __version__
from pcapdiag.decode.icmp import describe_kind
from pcapdiag.errnos import PLATFORMS, errno_message, errno_number, is_defined
from pcapdiag.io.records import Damage
from pcapdiag.rules.engine import Match, test
from pcapdiag.rules.loader import Rule
from pcapdiag.track.events import Event, IcmpErrorEvent
from pcapdiag.track.flows import FlowRecord

REPORT_SCHEMA = "pcapdiag.report/v1"
SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
MAX_EVIDENCE_PER_COUNT = 12
# How every report format words what a call returns; "error" is followed by the errno.
OUTCOME_WORDS = {"error": "fails with", "eof": "returns 0 (end of file)", "ok": "succeeds"}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(ts_ns: int) -> str:
    """ISO 8601 UTC with microseconds (the capture's own clock). A pcapng timestamp can lie
    outside what a calendar date holds (years 1 to 9999): it is clamped to that range, so a
    report is always written (the capture's odd clock shows as year 1 or 9999)."""
    try:
        dt = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    except OverflowError:
        dt = datetime.min.replace(tzinfo=UTC) if ts_ns < 0 else datetime.max.replace(tzinfo=UTC)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Effect:
    call: str
    errno: str | None
    result: str  # error | eof | ok
    then: str | None = None
    note: str | None = None

    @property
    def outcome(self) -> str:
        """ "error", "eof" or "ok": what the renderers put into words (OUTCOME_WORDS)."""
        if self.result == "eof":
            return "eof"
        if self.result == "ok" or self.errno is None:
            return "ok"
        return "error"

    def to_dict(self, platform: str) -> dict[str, Any]:
        return {
            "call": self.call,
            "result": self.result,
            "errno": errno_ref(platform, self.errno),
            "then": self.then,
            "note": self.note,
        }


def errno_ref(platform: str, name: str | None) -> dict[str, Any] | None:
    """A new dict each call: callers may add to it."""
    if name is None or not is_defined(platform, name):
        return None
    return {
        "name": name,
        "number": errno_number(platform, name),
        "message": errno_message(platform, name),
    }


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    rule: str
    rev: int
    rule_name: str
    severity: str
    title: str
    flow: FlowRecord
    side: str
    effects: dict[str, tuple[Effect, ...]]  # platform -> what each call returns
    frames: tuple[int, ...]
    first_ts_ns: int
    last_ts_ns: int
    cause: str
    next_steps: str | None
    notes: tuple[str, ...]
    capture: str = ""  # the capture file the frame numbers refer to ("a + b" when merged)
    sources: tuple[str, ...] = ()  # the file(s) behind `capture`, to read the packets again

    def primary(self, platform: str) -> Effect | None:
        """The first call that fails (or the first effect, when none fails)."""
        effects = self.effects.get(platform, ())
        for eff in effects:
            if eff.errno is not None:
                return eff
        return effects[0] if effects else None

    @property
    def flow_filter(self) -> str:
        return wireshark_flow_filter(self.flow)

    @property
    def evidence_filter(self) -> str:
        return "frame.number in {" + " ".join(str(f) for f in self.frames) + "}"

    def to_dict(self, platform: str) -> dict[str, Any]:
        prim = self.primary(platform)
        return {
            "id": self.id,
            "capture": self.capture,
            "rule": self.rule,
            "rev": self.rev,
            "rule_name": self.rule_name,
            "severity": self.severity,
            "title": self.title,
            "flow": {
                "proto": self.flow.proto,
                "client": self.flow.client,
                "server": self.flow.server,
                "instance": self.flow.instance,
                "roles": self.flow.roles,
            },
            "side": self.side,
            "call": prim.call if prim else None,
            "errno": errno_ref(platform, prim.errno if prim else None),
            "errno_by_platform": {
                p: (
                    {**(errno_ref(p, e.errno) or {}), "call": e.call}
                    if (e := self.primary(p)) is not None and e.errno is not None
                    else None
                )
                for p in PLATFORMS
            },
            "effects": [e.to_dict(platform) for e in self.effects.get(platform, ())],
            "frames": list(self.frames),
            "first_time": iso_time(self.first_ts_ns),
            "last_time": iso_time(self.last_ts_ns),
            "cause": self.cause,
            "next_steps": self.next_steps,
            "notes": list(self.notes),
            "wireshark_filter": self.flow_filter,
            "evidence_filter": self.evidence_filter,
        }


def finding_order(f: Finding) -> tuple[object, ...]:
    """The order of findings in every report: by time, then evidence, rule and id."""
    return (f.first_ts_ns, f.frames, f.rule, f.id)


def alike_key(f: Finding, platform: str) -> tuple[object, ...]:
    """Findings alike: in the same capture, the same rule, side, errno and server address (a
    port scan: one client, many ports; a SYN flood: many clients, one port)."""
    prim = f.primary(platform)
    return (f.capture, f.rule, f.side, prim.errno if prim else None, _host(f.flow.server))


def alike_key_of_group(g: FindingGroup, platform: str) -> tuple[object, ...]:
    return (g.capture, g.rule, g.side, g.errno(platform), g.server)


def _host(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


# Distinct clients of a group are counted exactly up to this many (a spoofed SYN flood has
# one per attempt; holding them all would cost what the grouping saves).
MAX_COUNTED_CLIENTS = 4096


@dataclass(slots=True)
class FindingGroup:
    """Findings alike (see `alike_key`), counted: the report lists the first `listed` of
    them in full and summarises the group in one line."""

    capture: str
    rule: str
    proto: str
    side: str
    severity: str
    title: str
    server: str  # the server's address (without port)
    primary: dict[str, Effect | None]  # platform -> the first failing call
    count: int
    first_ts_ns: int
    last_ts_ns: int
    clients: set[str] | None  # None once more than MAX_COUNTED_CLIENTS
    server_ports: set[int]
    listed: int = 0

    @classmethod
    def first(cls, f: Finding, platform: str) -> FindingGroup:
        return cls(
            capture=f.capture,
            rule=f.rule,
            proto=f.flow.proto,
            side=f.side,
            severity=f.severity,
            title=f.title,
            server=_host(f.flow.server),
            primary={p: f.primary(p) for p in PLATFORMS},
            count=1,
            first_ts_ns=f.first_ts_ns,
            last_ts_ns=f.last_ts_ns,
            clients={_host(f.flow.client)},
            server_ports={int(f.flow.server.rpartition(":")[2])},
        )

    def count_in(self, f: Finding) -> None:
        self.count += 1
        self.first_ts_ns = min(self.first_ts_ns, f.first_ts_ns)
        self.last_ts_ns = max(self.last_ts_ns, f.last_ts_ns)
        if self.clients is not None:
            self.clients.add(_host(f.flow.client))
            if len(self.clients) > MAX_COUNTED_CLIENTS:
                self.clients = None
        self.server_ports.add(int(f.flow.server.rpartition(":")[2]))

    def merge(self, other: FindingGroup) -> None:
        self.count += other.count
        self.first_ts_ns = min(self.first_ts_ns, other.first_ts_ns)
        self.last_ts_ns = max(self.last_ts_ns, other.last_ts_ns)
        if self.clients is None or other.clients is None:
            self.clients = None
        else:
            self.clients |= other.clients
            if len(self.clients) > MAX_COUNTED_CLIENTS:
                self.clients = None
        self.server_ports |= other.server_ports

    @property
    def unlisted(self) -> int:
        return self.count - self.listed

    def errno(self, platform: str) -> str | None:
        prim = self.primary.get(platform)
        return prim.errno if prim else None

    def client_count(self) -> str:
        """How many distinct clients, in words ("12" or "more than 4096")."""
        if self.clients is None:
            return f"more than {MAX_COUNTED_CLIENTS:,}"
        return f"{len(self.clients):,}"

    def describe(self, platform: str) -> str:
        """One line: "1,000,000 findings alike: ... from 1,000,000 clients to 10.0.0.1:80"."""
        prim = self.primary.get(platform)
        if prim is not None and prim.errno is not None:
            what = f"{self.side} {prim.call}() {OUTCOME_WORDS['error']} {prim.errno}"
        else:
            what = f"{self.title}, no errno"
        clients = (
            f"client {next(iter(self.clients))}"
            if self.clients is not None and len(self.clients) == 1
            else f"{self.client_count()} clients"
        )
        ports = self.server_ports
        server = (
            f"{self.server}:{next(iter(ports))}"
            if len(ports) == 1
            else f"{self.server} ({len(ports):,} ports)"
        )
        return f"{self.count:,} alike: {what}, {clients} to {server} ({self.rule})"

    def to_dict(self, platform: str) -> dict[str, Any]:
        prim = self.primary.get(platform)
        return {
            "capture": self.capture,
            "rule": self.rule,
            "side": self.side,
            "severity": self.severity,
            "title": self.title,
            "call": prim.call if prim else None,
            "errno": errno_ref(platform, prim.errno if prim else None),
            "server": self.server,
            "server_ports": len(self.server_ports),
            "clients": len(self.clients) if self.clients is not None else None,
            "count": self.count,
            "listed": self.listed,
            "first_time": iso_time(self.first_ts_ns),
            "last_time": iso_time(self.last_ts_ns),
        }


def wireshark_flow_filter(flow: FlowRecord) -> str:
    """A display filter showing the flow (and ICMP errors quoting it, whose inner headers
    Wireshark also matches)."""
    caddr, cport = _split(flow.client)
    saddr, sport = _split(flow.server)
    ipf = "ipv6.addr" if ":" in caddr else "ip.addr"
    proto = flow.proto
    return f"{ipf}=={caddr} && {ipf}=={saddr} && {proto}.port=={cport} && {proto}.port=={sport}"


def _split(endpoint: str) -> tuple[str, str]:
    addr, _, port = endpoint.rpartition(":")
    return addr.strip("[]"), port


def build_finding(
    rule: Rule,
    flow: FlowRecord,
    match: Match,
    *,
    capture: str = "",
    sources: tuple[str, ...] = (),
    keep: FlowRecord | None = None,
) -> Finding:
    """The finding a match makes. `keep` is the flow the finding holds (default `flow`):
    a copy without events, so that a finding stays small."""
    outcome = rule.data["outcome"]
    ctx = _context(rule, flow, match)
    effects: dict[str, tuple[Effect, ...]] = {}
    for platform, items in outcome["effects"].items():
        effects[platform] = tuple(_effect(item, match) for item in items)
    evidence: list[Event] = []
    for ref in outcome["evidence"]:
        name, _, pick = ref.partition(".")
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
    times = [ev.ts_ns for ev in evidence] or [flow.first_ts_ns]
    notes = tuple(
        render_template(n["text"], ctx).strip()
        for n in outcome.get("notes", ())
        if "when" not in n or test(n["when"], lambda f: ctx[f], rule.params)
    )
    if flow.roles == "guessed":
        notes += (f"Client and server roles are guessed: {flow.roles_reason}.",)
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
        side=match.side.value,
        effects=effects,
        frames=frames,
        first_ts_ns=min(times),
        last_ts_ns=max(times),
        cause=render_template(outcome["cause"], ctx).strip(),
        next_steps=(
            render_template(outcome["next_steps"], ctx).strip() if "next_steps" in outcome else None
        ),
        notes=notes,
        capture=capture,
        sources=sources,
    )


def _effect(item: dict[str, Any], match: Match) -> Effect:
    name = item.get("errno")
    if "errno_from" in item:
        src = item["errno_from"]
        value = getattr(match.bindings[src["binding"]], src["field"])
        name = src["map"].get(str(value))
    result = item.get("result", "error" if name else "ok")
    return Effect(
        call=item["call"], errno=name, result=result, then=item.get("then"), note=item.get("note")
    )


def _context(rule: Rule, flow: FlowRecord, match: Match) -> _Context:
    return _Context(rule, flow, match)


class _Context(Mapping[str, Any]):
    """Values a cause/note template may use: {client}, {server}, {side}, {peer}, {proto},
    {b.frame}, {b.t} (seconds since the flow's first packet), {b.<field>} for each binding b,
    {b.description} for an ICMP error, {c.count}, {c.frames}, {c.gaps} for each count c,
    {elapsed.a.b} (seconds from binding a to binding b) and {params.name}.

    Each value is worked out when a template asks for it: a template names a handful of the
    hundreds of values a match offers, and a flood makes a finding per connection."""

    __slots__ = ("_flow", "_match", "_rule")

    def __init__(self, rule: Rule, flow: FlowRecord, match: Match) -> None:
        self._rule = rule
        self._flow = flow
        self._match = match

    def __getitem__(self, key: str) -> Any:
        flow, match = self._flow, self._match
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
        head, _, rest = key.partition(".")
        if not rest:
            raise KeyError(key)
        if head == "params":
            return self._rule.params[rest]
        if head == "elapsed":
            a, _, b = rest.partition(".")
            bound = match.bindings
            if a not in bound or b not in bound:
                raise KeyError(key)
            return round((bound[b].ts_ns - bound[a].ts_ns) / 1e9, 3)
        ev = match.bindings.get(head)
        if ev is not None:
            return _binding_value(ev, rest, flow.first_ts_ns, key)
        evs = match.counts.get(head)
        if evs is not None:
            return _count_value(evs, rest, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def _keys(self) -> list[str]:
        out = ["client", "server", "side", "peer", "proto"]
        out += [f"params.{n}" for n in self._rule.params]
        for name, ev in self._match.bindings.items():
            out += [f"{name}.frame", f"{name}.t"]
            out += [f"{name}.{f}" for f in ev.__dataclass_fields__ if f not in ("frame", "ts_ns")]
            if isinstance(ev, IcmpErrorEvent):
                out.append(f"{name}.description")
        for name in self._match.counts:
            out += [f"{name}.count", f"{name}.frames", f"{name}.gaps"]
        names = list(self._match.bindings)
        out += [f"elapsed.{a}.{b}" for a in names for b in names]
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


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


def _count_value(evs: tuple[Event, ...], field_name: str, key: str) -> Any:
    if field_name == "count":
        return len(evs)
    if field_name == "frames":
        return ", ".join(str(e.frame) for e in evs[:12]) + (", ..." if len(evs) > 12 else "")
    if field_name == "gaps":
        gaps = [(b.ts_ns - a.ts_ns) / 1e9 for a, b in itertools.pairwise(evs[:13])]
        return ", ".join(f"{g:.1f} s" for g in gaps) or "none"
    raise KeyError(key)


def render_template(template: str, ctx: Mapping[str, Any]) -> str:
    """Fill `{name}` placeholders from `ctx` only: no attribute access, no indexing, no
    format specs beyond what str.format does with a plain value. Unknown names stay as
    written, so a typo shows in the output instead of crashing."""
    out: list[str] = []
    for literal, fname, spec in _parsed(template):
        out.append(literal)
        if fname is None:
            continue
        try:
            value = ctx[fname]
        except KeyError:
            out.append("{" + fname + "}")
            continue
        try:
            out.append(format(value, spec))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _parsed(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """A template's pieces (literal text, placeholder name or None, format spec): the same
    few templates are filled for every finding of a rule."""
    return tuple(
        (literal, fname, spec or "")
        for literal, fname, spec, _conv in string.Formatter().parse(template)
    )


@dataclass(slots=True)
class CaptureInfo:
    path: str
    size: int | None
    sha256: str | None
    format: str
    compressed: bool
    linktypes: list[int]
    frames: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    damage: Damage | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "compressed": self.compressed,
            "linktypes": self.linktypes,
            "frames": self.frames,
            "first_time": iso_time(self.first_ts_ns) if self.first_ts_ns is not None else None,
            "last_time": iso_time(self.last_ts_ns) if self.last_ts_ns is not None else None,
            "damage": (
                {
                    "offset": self.damage.offset,
                    "frame": self.damage.frame,
                    "message": self.damage.message,
                }
                if self.damage
                else None
            ),
        }


@dataclass(frozen=True, slots=True)
class FlowSummary:
    proto: str
    client: str
    server: str
    instance: int
    roles: str
    first_frame: int
    first_ts_ns: int
    last_ts_ns: int
    packets: int
    client_bytes: int
    server_bytes: int
    client_state: str
    server_state: str
    history: str
    end_reason: str
    failed: bool

    @classmethod
    def of(cls, flow: FlowRecord, failed: bool) -> FlowSummary:
        return cls(
            flow.proto,
            flow.client,
            flow.server,
            flow.instance,
            flow.roles,
            flow.first_frame,
            flow.first_ts_ns,
            flow.last_ts_ns,
            flow.packets,
            flow.client_bytes,
            flow.server_bytes,
            flow.client_state,
            flow.server_state,
            flow.history,
            flow.end_reason,
            failed,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "proto": self.proto,
            "client": self.client,
            "server": self.server,
            "instance": self.instance,
            "roles": self.roles,
            "first_frame": self.first_frame,
            "first_time": iso_time(self.first_ts_ns),
            "duration_s": round((self.last_ts_ns - self.first_ts_ns) / 1e9, 6),
            "packets": self.packets,
            "client_bytes": self.client_bytes,
            "server_bytes": self.server_bytes,
            "client_state": self.client_state,
            "server_state": self.server_state,
            "history": self.history,
            "end_reason": self.end_reason,
            "failed": self.failed,
        }


@dataclass(slots=True)
class ReportWarning:
    frame: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "message": self.message}


@dataclass(slots=True)
class Report:
    platform: str
    captures: list[CaptureInfo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # those listed in full
    # Findings alike, counted (those with more than one member); a group's first `listed`
    # members are in `findings`, the rest only in its count.
    groups: list[FindingGroup] = field(default_factory=list)
    flows: list[FlowSummary] = field(default_factory=list)
    warnings: list[ReportWarning] = field(default_factory=list)
    undecodable: int = 0
    other_frames: int = 0
    tcp_connections: int = 0
    udp_flows: int = 0
    orphan_icmp: int = 0
    evicted_attempts: int = 0  # unanswered connection attempts released early (a SYN flood)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.captures)

    @property
    def damaged(self) -> bool:
        return any(c.damage is not None for c in self.captures)

    @property
    def finding_count(self) -> int:
        """Every finding, listed in full or only counted in a group."""
        return len(self.findings) + sum(g.unlisted for g in self.groups)

    def counts_by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.rule] = out.get(f.rule, 0) + 1
        for g in self.groups:
            out[g.rule] = out.get(g.rule, 0) + g.unlisted
        return dict(sorted(out.items()))

    def counts_by_errno(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            prim = f.primary(self.platform)
            name = prim.errno if prim and prim.errno else "none"
            out[name] = out.get(name, 0) + 1
        for g in self.groups:
            name = g.errno(self.platform) or "none"
            out[name] = out.get(name, 0) + g.unlisted
        return {k: v for k, v in sorted(out.items()) if v}

    def failed_calls(self) -> int:
        """Findings where a call fails with an errno (the rest are other findings)."""
        listed = sum(1 for f in self.findings if (pr := f.primary(self.platform)) and pr.errno)
        return listed + sum(g.unlisted for g in self.groups if g.errno(self.platform))

    def to_dict(self, *, lists: bool = True) -> dict[str, Any]:
        """The JSON document (pcapdiag.report/v1). Without `lists`, the findings, groups and
        flows are left as empty lists, in their places (render.iter_json writes them)."""
        return {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "pcapdiag", "version": __version__},
            "platform": self.platform,
            "captures": [c.to_dict() for c in self.captures],
            "summary": {
                "frames": self.frames,
                "tcp_connections": self.tcp_connections,
                "udp_flows": self.udp_flows,
                "undecodable_frames": self.undecodable,
                "other_frames": self.other_frames,
                "orphan_icmp_errors": self.orphan_icmp,
                "findings": self.finding_count,
                "findings_listed": len(self.findings),
                "by_rule": self.counts_by_rule(),
                "by_errno": self.counts_by_errno(),
            },
            "warnings": [w.to_dict() for w in self.warnings],
            "findings": [f.to_dict(self.platform) for f in self.findings] if lists else [],
            "groups": [g.to_dict(self.platform) for g in self.groups] if lists else [],
            "flows": [s.to_dict() for s in self.flows] if lists else [],
        }
