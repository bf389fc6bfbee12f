"""What a human report shows first, whatever its format: the health of each service (its
connections and what failed), then the findings by kind (rule, errno and server port), each
kind with one worked example. A busy capture has thousands of failing connections; the
report must still fit a screen or two, and the JSON keeps every finding.

This module arranges; text.py, markdown.py, html.py and terminal.py draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapdiag.errnos import errno_message, is_defined
from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.model import (
    Finding,
    FindingGroup,
    Report,
    alike_key,
    alike_key_of_group,
    host_of,
    port_of,
)
from pcapdiag.findings.services import Service

# Services with failures listed in the health table by default (--top); the rest are
# counted in one line.
DEFAULT_TOP = 20
# Past this many ports of one server, findings alike are one kind (see _many_ports).
MANY_PORTS = 100


@dataclass(slots=True)
class ServiceRows:
    """The health table: the `shown` failing services, and the rest counted."""

    shown: list[Service]
    rest: int  # failing services not shown
    rest_failed: int  # their failed connections
    failing: int  # every failing service
    total: int  # every service


def service_rows(report: Report, top: int | None = DEFAULT_TOP) -> ServiceRows:
    """The failing services, most failed connections first; `top` None shows every one."""
    failing = report.services.failing()
    shown = failing if top is None else failing[:top]
    rest = failing[len(shown) :]
    return ServiceRows(
        shown, len(rest), sum(s.failed for s in rest), len(failing), len(report.services.by)
    )


def what_failed(service: Service, most: int = 2) -> str:
    """The service's failed calls in a few words, the most frequent first: "client connect()
    ECONNREFUSED x1,200, client recv() ECONNRESET x3 (+2 kinds)"."""
    calls = sorted(service.calls.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{side} {call}() {errno} x{n:,}" for (side, call, errno), n in calls[:most]]
    more = len(calls) - most
    if service.others:
        parts.append(f"no errno x{service.others:,}")
    text = ", ".join(parts)
    if more > 0:
        text += f" (+{more} more {'kind' if more == 1 else 'kinds'})"
    return text


def service_row(service: Service) -> tuple[str, str, str, str, str, str, str]:
    """A row of the health table as text, unescaped: the service, its protocol,
    connections (empty for an ARP / NDP target), failed connections, first and last
    failure (ISO 8601, empty when none) and what failed."""
    first, last = service.first_failure_ns, service.last_failure_ns
    return (
        service_name(service),
        service.proto,
        f"{service.connections:,}" if service.proto != "neighbour" else "",
        f"{service.failed:,}",
        iso_time(first) if first is not None else "",
        iso_time(last) if last is not None else "",
        what_failed(service),
    )


def service_name(service: Service) -> str:
    """`10.0.0.2:8080`, or for an ARP / NDP target (no port) `10.0.0.9 (ARP/NDP)`."""
    if service.proto == "neighbour":
        return f"{host_of(service.server)} (ARP/NDP)"
    return service.server


@dataclass(slots=True)
class Kind:
    """Findings of one rule, side and errno to one server port, listed or counted."""

    rule: str
    side: str
    errno: str | None
    port: int | None  # None: many ports of each server (a scan)
    count: int = 0
    servers: set[str] = field(default_factory=set)
    listed: list[tuple[int, Finding]] = field(default_factory=list)  # (number, finding)
    ports: int = 0  # with port None: how many ports
    group: FindingGroup | None = None  # a group it counts findings of (says what they are)

    @property
    def example(self) -> tuple[int, Finding]:
        return self.listed[0]


def errno_text(platform: str, name: str | None) -> str:
    """`ECONNREFUSED ("Connection refused")`: the errno and its message on `platform`."""
    if name is None:
        return "no error"
    if is_defined(platform, name):
        return f'{name} ("{errno_message(platform, name)}")'
    return name


def kind_what(kind: Kind) -> str:
    """Who saw what: `client connect() -> ECONNREFUSED ("Connection refused")`, as its
    example says it (capture text: the renderers escape it)."""
    if not kind.listed:
        g = kind.group
        assert g is not None  # a kind without a listed finding counts a group's
        prim = g.primary.get(g.platform)
        if prim is not None and prim.errno is not None:
            return f"{g.side} {prim.call}() -> {errno_text(g.platform, prim.errno)}"
        return f"{g.side}: {g.title} (no errno)"
    f = kind.example[1]
    prim = f.primary()
    if prim is not None and prim.errno is not None:
        return f"{f.side} {prim.call}() -> {errno_text(f.platform.name, prim.errno)}"
    return f"{f.side}: {f.title} (no errno)"


def kind_where(kind: Kind) -> str:
    """`to port 443 of 209 servers`, `to 10.0.0.2:8080`, `to 2,000 ports of 10.0.0.1`."""
    servers = len(kind.servers)
    if kind.port is None:
        return f"to {kind.ports:,} ports of " + (
            f"{servers:,} servers" if servers > 1 else next(iter(kind.servers))
        )
    if servers > 1:
        return f"to port {kind.port} of {servers:,} servers"
    return f"to {next(iter(kind.servers))}:{kind.port}"


def kinds(report: Report) -> list[Kind]:
    """The report's findings by (capture, rule, side, errno, server port), the most numerous
    kind first; each holds its listed findings with their numbers in report.findings (from
    1) and counts the unlisted ones of its groups (FindingGroup.by_port)."""
    by: dict[tuple[object, ...], Kind] = {}
    grouped = {alike_key_of_group(g): g for g in report.groups}
    for i, f in enumerate(report.findings, 1):
        group = grouped.get(alike_key(f))
        port = None if group is not None and _many_ports(group) else port_of(f.flow.server)
        kind = _kind_of(by, f.capture, f.rule, f.side, _errno(f), port)
        kind.listed.append((i, f))
        if group is None:
            kind.count += 1
            kind.servers.add(host_of(f.flow.server))
    for g in grouped.values():
        shares = {None: g.count} if _many_ports(g) else g.by_port
        for port, n in shares.items():
            kind = _kind_of(by, g.capture, g.rule, g.side, g.errno(), port)
            kind.count += n
            kind.servers.add(g.server)
            kind.group = kind.group or g
            kind.ports += len(g.by_port) if port is None else 0
    # A group lists its first findings by time, which may all have gone to other ports: the
    # findings of such a port are still counted, in a kind without an example of its own.
    out = [k for k in by.values() if k.listed]
    unseen = [k for k in by.values() if not k.listed]
    out.sort(key=lambda k: (-k.count, k.example[0]))
    return out + sorted(unseen, key=lambda k: (-k.count, k.rule, k.port or 0))


def _many_ports(g: FindingGroup) -> bool:
    """A group of findings to many of a server's ports (a scan) is one kind, not one per
    port: a scan's shape, or more ports than a server offers services (an outage's 40 ports
    are 40 kinds)."""
    return g.kind == "scan" or len(g.by_port) > MANY_PORTS


def _kind_of(
    by: dict[tuple[object, ...], Kind],
    capture: str,
    rule: str,
    side: str,
    errno: str | None,
    port: int | None,
) -> Kind:
    key = (capture, rule, side, errno, port)
    kind = by.get(key)
    if kind is None:
        kind = by[key] = Kind(rule, side, errno, port)
    return kind


def _errno(f: Finding) -> str | None:
    prim = f.primary()
    return prim.errno if prim else None


@dataclass(slots=True)
class ShapeRows:
    """The floods, scans and outages (groups of findings alike that take a shape), the
    `shown` most numerous and the rest counted."""

    shown: list[FindingGroup]
    rest: int
    rest_findings: int


def shape_rows(report: Report, top: int | None = DEFAULT_TOP) -> ShapeRows:
    shaped = sorted(
        (g for g in report.groups if g.kind is not None),
        key=lambda g: (-g.count, g.first_ts_ns, g.server),
    )
    shown = shaped if top is None else shaped[:top]
    rest = shaped[len(shown) :]
    return ShapeRows(shown, len(rest), sum(g.count for g in rest))


@dataclass(slots=True)
class KindsPlan:
    """What a human report shows of the findings: the kinds listed (`shown`, the rest only
    counted), each rule's example among them (rule -> its number), and the details in
    order: findings in full (number, finding, whether its advice is given: once per kind)
    or the count of a kind's findings only counted."""

    kinds: int
    shown: list[Kind]
    rest: list[Kind]
    examples: dict[str, int]
    details: list[tuple[int, Finding, bool] | int]
    all_findings: bool


def kinds_plan(report: Report, top: int | None, all_findings: bool) -> KindsPlan:
    """The kinds of finding, the `top` most numerous listed (None, or `all_findings`: all),
    then a worked example of each rule among them; with `all_findings`, every listed
    finding in full instead, kind by kind."""
    every = kinds(report)
    shown = every if top is None or all_findings else every[:top]
    examples: dict[str, int] = {}
    for kind in shown:
        if kind.listed:
            examples.setdefault(kind.rule, kind.example[0])
    details: list[tuple[int, Finding, bool] | int] = []
    if all_findings:
        for kind in shown:
            details += [(i, f, n == 0) for n, (i, f) in enumerate(kind.listed)]
            if kind.count > len(kind.listed):
                details.append(kind.count - len(kind.listed))
    else:
        first = {kind.example[0]: kind.example[1] for kind in shown if kind.listed}
        details += [(i, first[i], True) for i in sorted(set(examples.values()))]
    return KindsPlan(len(every), shown, every[len(shown) :], examples, details, all_findings)
