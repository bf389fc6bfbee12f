"""What part of a capture an analysis looks at: hosts, ports and a span of capture time,
applied to the packets as they are read, and rules and errnos, applied to the findings as
they are made. Frames left out are skipped, not removed: every frame keeps its number in the
file, so that the report's Wireshark filters still find the same packets (a `tcpdump` pipe
would renumber them).

A packet is kept when one of its addresses is a selected host and one of its ports a
selected port (each test only when asked for); an ICMP or ICMPv6 error is judged by the
packet it quotes, as the tracker matches it to a connection (RFC 792, RFC 4443 2.4), and an
ARP or NDP exchange by the addresses it asks for and from. Frames outside the time span are
skipped whatever they carry: the analysis then sees what a capture started at `since` and
stopped at `until` would have held, connections cut at either end included.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pcapdiag.decode.packets import Datagram, Decoded, IcmpError, Neighbour, Segment


class SelectionError(ValueError):
    """A selection option that cannot be read (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class TimeBound:
    """A point in capture time: `at_ns` since the epoch, or `offset_ns` after the capture's
    first frame (a relative bound: `--since 30s`)."""

    at_ns: int | None = None
    offset_ns: int | None = None

    def resolve(self, first_ts_ns: int) -> int:
        if self.at_ns is not None:
            return self.at_ns
        assert self.offset_ns is not None
        return first_ts_ns + self.offset_ns


@dataclass(frozen=True, slots=True)
class Selection:
    hosts: frozenset[bytes] = frozenset()  # packed addresses (4 or 16 bytes)
    ports: frozenset[int] = frozenset()
    since: TimeBound | None = None
    until: TimeBound | None = None
    rules: frozenset[str] = frozenset()  # rule ids or names
    errnos: frozenset[str] = frozenset()  # errno names, upper case

    @property
    def packets(self) -> bool:
        """Whether packets are selected (hosts, ports or time), not only findings."""
        return bool(self.hosts or self.ports or self.since or self.until)

    @property
    def findings(self) -> bool:
        return bool(self.rules or self.errnos)

    def __bool__(self) -> bool:
        return self.packets or self.findings

    def keeps(self, pkt: Decoded) -> bool:
        """Whether a decoded packet is one the selection looks at (hosts and ports; the time
        span is tested on the frame before it is decoded: TimeWindow)."""
        if type(pkt) is Segment or type(pkt) is Datagram:
            return self._flow(pkt.src, pkt.dst, pkt.sport, pkt.dport)
        if type(pkt) is IcmpError:
            q = pkt.quoted
            if q.sport is None or q.dport is None:
                return not self.ports and self._hosts(q.src, q.dst)
            return self._flow(q.src, q.dst, q.sport, q.dport)
        if type(pkt) is Neighbour:
            return not self.ports and self._hosts(pkt.sender, pkt.target)
        # Frames of nothing the analysis follows (other protocols, undecodable frames) are
        # not the selection's: they are left out, as a capture filter would leave them.
        return False

    def _hosts(self, a: bytes, b: bytes) -> bool:
        return not self.hosts or a in self.hosts or b in self.hosts

    def _flow(self, src: bytes, dst: bytes, sport: int, dport: int) -> bool:
        if self.ports and sport not in self.ports and dport not in self.ports:
            return False
        return self._hosts(src, dst)

    def keeps_finding(self, rule_id: str, rule_name: str, errno: str | None) -> bool:
        """Whether a finding of this rule naming this errno (for its platform) is selected."""
        if self.rules and rule_id not in self.rules and rule_name not in self.rules:
            return False
        return not self.errnos or (errno is not None and errno in self.errnos)


@dataclass(slots=True)
class TimeWindow:
    """The time span of a selection for one capture, its relative bounds resolved at the
    capture's first frame."""

    since: TimeBound | None
    until: TimeBound | None
    lo: int | None = field(default=None, init=False)
    hi: int | None = field(default=None, init=False)
    started: bool = field(default=False, init=False)

    def keeps(self, ts_ns: int) -> bool:
        if not self.started:
            self.started = True
            self.lo = self.since.resolve(ts_ns) if self.since else None
            self.hi = self.until.resolve(ts_ns) if self.until else None
        if self.lo is not None and ts_ns < self.lo:
            return False
        return self.hi is None or ts_ns <= self.hi


def parse_host(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text.strip().strip("[]")).packed
    except ValueError:
        raise SelectionError(f"{text!r} is not an IPv4 or IPv6 address") from None


# A relative time: a number and a unit, e.g. 30s, 1.5m, 250ms, +2h.
_RELATIVE = re.compile(r"^\+?(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ns|us|ms|s|m|h)$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_time(text: str) -> TimeBound:
    """A capture time: ISO 8601 (`2026-12-07T02:00:00Z`; without a zone, UTC, as the
    report's times are) or relative to the capture's first frame (`30s`, `+1.5m`, `250ms`,
    units ns, us, ms, s, m, h)."""
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        value = m.group("n")
        whole, _, frac = value.partition(".")
        unit = _UNIT_NS[m.group("unit")]
        # Exact in integers: 1.5m is 90 s to the nanosecond, not a float's neighbour.
        offset = int(whole) * unit + (int(frac) * unit // 10 ** len(frac) if frac else 0)
        return TimeBound(offset_ns=offset)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SelectionError(
            f"{text!r} is neither an ISO 8601 time (2026-12-07T02:00:00Z) nor a time after "
            "the capture's start (30s, 1.5m, 250ms)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return TimeBound(at_ns=(delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000)
