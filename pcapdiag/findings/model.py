"""The report model every renderer draws: findings (each with what the calls of one side
return per platform), groups of findings alike, capture metadata, flow summaries, warnings,
and the orders and keys that arrange them. What the JSON report looks like is said in
contract.py, which each `to_dict` here calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pcapdiag.errnos import PLATFORMS
from pcapdiag.findings import contract
from pcapdiag.findings.confidence import HIGH, LEVELS, Confidence
from pcapdiag.findings.crossing import TwoViews
from pcapdiag.findings.platform import LINUX, PlatformGuess
from pcapdiag.findings.quality import QualityCounts
from pcapdiag.findings.services import ServiceTable
from pcapdiag.findings.vantage import NOWHERE, Vantage
from pcapdiag.io.records import Damage
from pcapdiag.slots import compact_pickle
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:
    from pcapdiag.findings.hosts import RstClaim
    from pcapdiag.findings.ladder import LadderRow
    from pcapdiag.track.hosts import HostBaselines
    from pcapdiag.track.neighbours import NeighbourTable

SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
# How every report format words what a call returns; "error" is followed by the errno.
OUTCOME_WORDS = {
    "error": "fails with",
    "eof": "returns 0 (end of file)",
    "ok": "succeeds",
    "pending": "has not returned when the capture ends",
}


@compact_pickle
@dataclass(frozen=True, slots=True)
class Effect:
    call: str
    errno: str | None
    result: str  # error | eof | ok | pending
    then: str | None = None
    note: str | None = None

    @property
    def outcome(self) -> str:
        """ "error", "eof", "ok" or "pending": what the renderers put into words
        (OUTCOME_WORDS)."""
        if self.result in ("eof", "pending"):
            return self.result
        if self.result == "ok" or self.errno is None:
            return "ok"
        return "error"

    def to_dict(self, platform: str) -> dict[str, Any]:
        return contract.effect_dict(self, platform)


@compact_pickle
@dataclass(frozen=True, slots=True)
class Origin:
    """Who caused a failure: `actor` peer (the other endpoint's host), local (the failing
    socket's own host), network (a device between them) or unknown, how sure, and why."""

    actor: str
    confidence: str
    why: str


UNKNOWN_ORIGIN = Origin("unknown", "low", "the rule names no origin")


@compact_pickle
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
    # The platform whose errnos the finding names (asked for, or inferred for the side's
    # host), how sure it is, and where the capture was taken.
    platform: PlatformGuess = LINUX
    confidence: Confidence = HIGH
    vantage: Vantage = NOWHERE
    quality: tuple[str, ...] = ()  # capture-quality codes that touch it (findings/quality.py)
    origin: Origin = UNKNOWN_ORIGIN  # who caused it: the peer, the local host, the network
    # A RST with nothing to compare its TTL with in its own connection: findings/hosts.py
    # decides `origin` from the capture's other connections at the report's end.
    rst_claim: RstClaim | None = None
    # (capture, frame) of every packet that proves it, in every view of a joined report
    # (join/combine.py); empty: its own frames in its own capture.
    evidence: tuple[tuple[str, int], ...] = ()

    def primary(self, platform: str | None = None) -> Effect | None:
        """The first call that fails (or the first effect, when none fails), on `platform`
        (by default the finding's own)."""
        return primary_effect(self.effects, platform or self.platform.name)

    @property
    def flow_filter(self) -> str:
        return wireshark_flow_filter(self.flow)

    @property
    def evidence_filter(self) -> str:
        return "frame.number in {" + " ".join(str(f) for f in self.frames) + "}"

    @property
    def own_effects(self) -> tuple[Effect, ...]:
        """What each call returns on the finding's platform."""
        return self.effects.get(self.platform.name, ())

    @property
    def claimed_errno(self) -> str | None:
        """The errno the finding claims: its first failing call's, unless the finding is
        only a low-confidence possibility (then it is listed, not counted)."""
        prim = self.primary()
        if prim is None or prim.errno is None or self.confidence.level == "low":
            return None
        return prim.errno

    def to_dict(self) -> dict[str, Any]:
        return contract.finding_dict(self)


def finding_order(f: Finding) -> tuple[object, ...]:
    """The order of findings in every report: by time, then evidence, rule and id."""
    return (f.first_ts_ns, f.frames, f.rule, f.id)


def primary_effect(effects: Mapping[str, Sequence[Effect]], platform: str) -> Effect | None:
    """The first call that fails on `platform` (or its first effect, when none fails)."""
    mine = effects.get(platform, ())
    for eff in mine:
        if eff.errno is not None:
            return eff
    return mine[0] if mine else None


def alike_key(f: Finding) -> tuple[object, ...]:
    """Findings alike: in the same capture, the same rule, side, platform, errno, confidence
    and server address (a port scan: one client, many ports; a SYN flood: many clients, one
    port)."""
    prim = f.primary()
    return alike_key_of(
        f.capture,
        f.rule,
        f.side,
        f.platform.name,
        prim.errno if prim else None,
        f.confidence.level,
        f.flow.server,
    )


def alike_key_of(
    capture: str,
    rule: str,
    side: str,
    platform: str,
    errno: str | None,
    confidence: str,
    server: str,
) -> tuple[object, ...]:
    """alike_key from its parts (`server` the server's endpoint, address and port)."""
    return alike_key_at(capture, rule, side, platform, errno, confidence, host_of(server))


def alike_key_at(
    capture: str,
    rule: str,
    side: str,
    platform: str,
    errno: str | None,
    confidence: str,
    host: str,
) -> tuple[object, ...]:
    """alike_key from its parts, `host` the server's address (without its port)."""
    return (capture, rule, side, platform, errno, confidence, host)


def alike_key_of_group(g: FindingGroup) -> tuple[object, ...]:
    return alike_key_at(g.capture, g.rule, g.side, g.platform, g.errno(), g.confidence, g.server)


def host_of(endpoint: str) -> str:
    """The address of an endpoint as the report writes it ("10.0.0.2", "[::1]")."""
    return endpoint.rpartition(":")[0]


def port_of(endpoint: str) -> int:
    """The port of an endpoint as the report writes it ("10.0.0.2:80" -> 80)."""
    return int(endpoint.rpartition(":")[2])


# Distinct clients of a group are counted exactly up to this many (a spoofed SYN flood has
# one per attempt; holding them all would cost what the grouping saves).
MAX_COUNTED_CLIENTS = 4096
# The shapes of FindingGroup.kind: a scan is one client on at least SCAN_PORTS of a server's
# ports; a flood, attempts left unanswered from at least FLOOD_CLIENTS clients (spoofed
# sources, a botnet); an outage, calls of at least OUTAGE_CLIENTS clients failing with an
# errno (a service down, a firewall rejecting everyone).
SCAN_PORTS = 10
FLOOD_CLIENTS = 100
OUTAGE_CLIENTS = 10
GROUP_KINDS = ("flood", "scan", "outage")


@compact_pickle
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
    platform: str  # the platform whose errnos the group's findings name
    confidence: str  # the group's findings' confidence level
    primary: dict[str, Effect | None]  # platform -> the first failing call
    count: int
    first_ts_ns: int
    last_ts_ns: int
    clients: set[str] | None  # None once more than MAX_COUNTED_CLIENTS
    by_port: dict[int, int]  # the server's ports: how many of its findings went to each
    listed: int = 0

    @classmethod
    def first(cls, f: Finding) -> FindingGroup:
        return cls(
            capture=f.capture,
            rule=f.rule,
            proto=f.flow.proto,
            side=f.side,
            severity=f.severity,
            title=f.title,
            server=host_of(f.flow.server),
            platform=f.platform.name,
            confidence=f.confidence.level,
            primary={p: f.primary(p) for p in PLATFORMS},
            count=1,
            first_ts_ns=f.first_ts_ns,
            last_ts_ns=f.last_ts_ns,
            clients={host_of(f.flow.client)},
            by_port={port_of(f.flow.server): 1},
        )

    def count_in(self, f: Finding) -> None:
        self.count_parts(f.first_ts_ns, f.last_ts_ns, f.flow.client, f.flow.server)

    def count_parts(self, first_ts_ns: int, last_ts_ns: int, client: str, server: str) -> None:
        """Count in a finding of these times and endpoints (built or not)."""
        self.count += 1
        self.first_ts_ns = min(self.first_ts_ns, first_ts_ns)
        self.last_ts_ns = max(self.last_ts_ns, last_ts_ns)
        if self.clients is not None:
            self.clients.add(host_of(client))
            if len(self.clients) > MAX_COUNTED_CLIENTS:
                self.clients = None
        port = port_of(server)
        self.by_port[port] = self.by_port.get(port, 0) + 1

    def count_many(
        self,
        n: int,
        first_ts_ns: int,
        last_ts_ns: int,
        clients: set[str] | None,
        by_port: Mapping[int, int],
    ) -> None:
        """Count in `n` findings never built (the first pass counted their connections):
        their times, distinct client addresses (None: more than are counted) and how many
        went to each of the server's ports."""
        self.count += n
        self.first_ts_ns = min(self.first_ts_ns, first_ts_ns)
        self.last_ts_ns = max(self.last_ts_ns, last_ts_ns)
        if self.clients is None or clients is None:
            self.clients = None
        else:
            self.clients |= clients
            if len(self.clients) > MAX_COUNTED_CLIENTS:
                self.clients = None
        for port, k in by_port.items():
            self.by_port[port] = self.by_port.get(port, 0) + k

    def merge(self, other: FindingGroup) -> None:
        self.count_many(
            other.count, other.first_ts_ns, other.last_ts_ns, other.clients, other.by_port
        )

    @property
    def server_ports(self) -> set[int]:
        return set(self.by_port)

    @property
    def unlisted(self) -> int:
        return self.count - self.listed

    @property
    def kind(self) -> str | None:
        """The shape of the group, when it has one: `scan` (one client, many of the server's
        ports), `flood` (attempts from many clients, no errno: unanswered), `outage` (calls
        of many clients failing with an errno). None: findings alike, no more."""
        clients = len(self.clients) if self.clients is not None else MAX_COUNTED_CLIENTS + 1
        if clients == 1 and len(self.server_ports) >= SCAN_PORTS:
            return "scan"
        if self.errno() is None and clients >= FLOOD_CLIENTS:
            return "flood"
        if self.errno() is not None and clients >= OUTAGE_CLIENTS:
            return "outage"
        return None

    @property
    def span_ns(self) -> int:
        return self.last_ts_ns - self.first_ts_ns

    @property
    def rate_per_s(self) -> float | None:
        """Findings a second over the group's span (None: all at one instant)."""
        return self.count / (self.span_ns / 1e9) if self.span_ns > 0 else None

    def errno(self, platform: str | None = None) -> str | None:
        prim = self.primary.get(platform or self.platform)
        return prim.errno if prim else None

    @property
    def claimed_errno(self) -> str | None:
        return None if self.confidence == "low" else self.errno()

    def client_count(self) -> str:
        """How many distinct clients, in words ("12" or "more than 4096")."""
        if self.clients is None:
            return f"more than {MAX_COUNTED_CLIENTS:,}"
        return f"{len(self.clients):,}"

    def describe(self) -> str:
        """One line: "1,000,000 findings alike: ... from 1,000,000 clients to 10.0.0.1:80"."""
        prim = self.primary.get(self.platform)
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
        shape = ""
        if self.kind is not None:
            rate = self.rate_per_s
            shape = f" ({self.kind}" + (
                f", {_span_words(self.span_ns)}, {_rate_words(rate)} a second)" if rate else ")"
            )
        return f"{self.count:,} alike{shape}: {what}, {clients} to {server} ({self.rule})"

    def to_dict(self) -> dict[str, Any]:
        return contract.group_dict(self)


def _rate_words(rate: float) -> str:
    """50, 1,200; below 10 a second with two figures (0.37, 2.5), not rounded to 0."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"


def wireshark_flow_filter(flow: FlowRecord) -> str:
    """A display filter showing the flow (and ICMP errors quoting it, whose inner headers
    Wireshark also matches)."""
    caddr, cport = _split(flow.client)
    saddr, sport = _split(flow.server)
    if flow.proto == "neighbour":
        if ":" in caddr:  # NDP: the solicitations for the target, and any advertisement
            return f"icmpv6.nd.ns.target_address=={saddr} || icmpv6.nd.na.target_address=={saddr}"
        return f"arp.dst.proto_ipv4=={saddr} || arp.src.proto_ipv4=={saddr}"
    ipf = "ipv6.addr" if ":" in caddr else "ip.addr"
    proto = flow.proto
    return f"{ipf}=={caddr} && {ipf}=={saddr} && {proto}.port=={cport} && {proto}.port=={sport}"


def _split(endpoint: str) -> tuple[str, str]:
    addr, _, port = endpoint.rpartition(":")
    return addr.strip("[]"), port


# The warning code of a capture whose task failed on a cluster (the report is then partial).
CAPTURE_FAILED = "capture-failed"


@compact_pickle
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
        return contract.capture_dict(self)


# What the reports call the state of a side that sent nothing while the tracker holds it in
# LISTEN (a SYN nothing answered, or answered by an ICMP error from the way): no packet shows
# that anything listens there, so no report claims it.
UNKNOWN_STATE = "unknown"


def shown_state(state: str, packets: int) -> str:
    """A side's final TCP state as the reports show it (UNKNOWN_STATE for a silent LISTEN)."""
    return UNKNOWN_STATE if state == "LISTEN" and packets == 0 else state


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
    client_packets: int = 0
    server_packets: int = 0
    conn_state: str = ""  # Zeek's (track/zeek.py); empty for a neighbour run

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
            shown_state(flow.client_state, flow.client_packets),
            shown_state(flow.server_state, flow.server_packets),
            flow.history,
            flow.end_reason,
            failed,
            flow.client_packets,
            flow.server_packets,
            flow.conn_state,
        )

    def to_dict(self) -> dict[str, Any]:
        return contract.flow_dict(self)


@dataclass(slots=True)
class ReportWarning:
    frame: int | None
    message: str
    code: str = "note"  # stable: damaged-capture, undecodable-frame, a quality code, ...
    count: int = 1  # what it counts (frames, connections or findings: the message says)

    def to_dict(self) -> dict[str, Any]:
        return contract.warning_dict(self)


@dataclass(slots=True)
class Report:
    platform: str
    captures: list[CaptureInfo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # those listed in full
    # Files left unread: wholly outside --since/--until by their first and last timestamps
    # (session._Session._outside_window). Told in a warning, not listed in `captures`.
    skipped: list[str] = field(default_factory=list)
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
    quality: QualityCounts = field(default_factory=QualityCounts)  # capture quality by code
    # Connections and failed calls by service (findings/services.py): the human reports'
    # health table. Not part of the JSON document.
    services: ServiceTable = field(default_factory=ServiceTable)
    # The ladder rows of listed findings' flows by finding id, when asked for (second pass,
    # evidence.py): drawn by Markdown and HTML, not part of the JSON document.
    ladders: dict[str, list[LadderRow]] = field(default_factory=dict)
    # Each capture's host TTL baselines (track/hosts.py), by capture label: what
    # findings/hosts.py attributes lone RSTs with. Not part of the JSON document.
    hosts: dict[str, HostBaselines] = field(default_factory=dict)
    # Each capture's ARP / NDP runs and the SYNs they held up (track/neighbours.py), by
    # capture label, judged once every worker's share is in (session.finish_neighbours).
    # Not part of the JSON document.
    neighbours: dict[str, NeighbourTable] = field(default_factory=dict)
    # Each capture's finished flows with their events, by capture label, kept for --join
    # (session.Analysis.keep_records). Not part of the JSON document.
    records: dict[str, list[FlowRecord]] = field(default_factory=dict)
    # What --join found (join.JoinSummary: each view's clock, the connections shared), None
    # for captures analysed alone.
    join: Any = None
    # Under --join, by finding id: each packet of its connection as it left one host's view
    # and arrived, or not, at the other's (findings/crossing.py), drawn by Markdown and
    # HTML. Not part of the JSON document.
    crossings: dict[str, TwoViews] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.captures)

    @property
    def damaged(self) -> bool:
        return any(c.damage is not None for c in self.captures)

    @property
    def failed_captures(self) -> list[ReportWarning]:
        """The warnings of captures whose analysis failed on a cluster (pcapdiag.cluster):
        the report is then partial, without their findings."""
        return [w for w in self.warnings if w.code == CAPTURE_FAILED]

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
        """Findings by the errno they claim ("none": no errno, or only a low-confidence
        possibility)."""
        out: dict[str, int] = {}
        for f in self.findings:
            name = f.claimed_errno or "none"
            out[name] = out.get(name, 0) + 1
        for g in self.groups:
            name = g.claimed_errno or "none"
            out[name] = out.get(name, 0) + g.unlisted
        return {k: v for k, v in sorted(out.items()) if v}

    def counts_by_confidence(self) -> dict[str, int]:
        out = dict.fromkeys(reversed(LEVELS), 0)
        for f in self.findings:
            out[f.confidence.level] += 1
        for g in self.groups:
            out[g.confidence] += g.unlisted
        return out

    def failed_calls(self) -> int:
        """Findings that claim a call fails with an errno (the rest are other findings)."""
        listed = sum(1 for f in self.findings if f.claimed_errno)
        return listed + sum(g.unlisted for g in self.groups if g.claimed_errno)

    def unconfirmed_calls(self) -> int:
        """Findings naming an errno at low confidence: listed, not counted as failed calls."""
        listed = sum(
            1
            for f in self.findings
            if f.confidence.level == "low" and (p := f.primary()) is not None and p.errno
        )
        return listed + sum(
            g.unlisted for g in self.groups if g.confidence == "low" and g.errno() is not None
        )

    def to_dict(self, *, lists: bool = True) -> dict[str, Any]:
        """The JSON document (contract.report_dict)."""
        return contract.report_dict(self, lists=lists)


def _span_words(ns: int) -> str:
    """A group's time span in words: "over 0.2 s", "over 20 s", "over 3 min"."""
    s = ns / 1e9
    if s < 10:
        return f"over {s:.1f} s"
    if s < 600:
        return f"over {s:.0f} s"
    return f"over {s / 60:.0f} min"
