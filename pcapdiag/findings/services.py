"""Health per service: every TCP connection and UDP flow counted by its server's endpoint
(address and port), with the failed calls among them. A human report opens with this table
(render/overview.py): on a busy capture thousands of connections fail, and the first
question is which services they went to.

Connections are counted wherever the report counts them: the flows Python judges
(session.judge), the plain ones the accelerator's first pass sets aside (accel.triage
Plan.services) and the failing ones it counts by class (findings/samples.count_in), so that
the table's connections add up to the report's TCP connections and UDP flows. A connection
fails when a rule finds anything in it; its findings are counted as failed calls when they
claim an errno (Report.failed_calls: not at low confidence), as other findings when not (a
SYN flood's unanswered attempts, a zero-window stall). Not part of the JSON document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pcapdiag.slots import compact_pickle

# (side, call, errno): what an application saw, as the report's index lines say it.
Call = tuple[str, str, str]


@compact_pickle
@dataclass(slots=True)
class Service:
    capture: str
    proto: str
    server: str  # "address:port" ("[v6]:port")
    connections: int = 0
    failed: int = 0  # connections with a finding
    calls: dict[Call, int] = field(default_factory=dict)  # failed calls by what failed
    others: int = 0  # findings that claim no errno
    first_failure_ns: int | None = None  # the first and last finding's evidence time
    last_failure_ns: int | None = None

    @property
    def failed_calls(self) -> int:
        return sum(self.calls.values())

    def rank(self) -> tuple[object, ...]:
        """The health table's order: the most failed connections first, then the most
        failed calls, then the first to fail, then by name (a stable order)."""
        first = self.first_failure_ns if self.first_failure_ns is not None else 0
        return (-self.failed, -self.failed_calls, first, self.capture, self.proto, self.server)

    def add_failures(
        self, n: int, calls: Iterable[Call | None], first_ns: int, last_ns: int
    ) -> None:
        """`n` connections that failed alike: each with a finding per item of `calls` (its
        failed call, None when it claims no errno), the first at `first_ns` and the last at
        `last_ns`."""
        calls = list(calls)
        if not calls or n <= 0:
            return
        self.failed += n
        for call in calls:
            if call is None:
                self.others += n
            else:
                self.calls[call] = self.calls.get(call, 0) + n
        self._failed_between(first_ns, last_ns)

    def _failed_between(self, first_ns: int, last_ns: int) -> None:
        if self.first_failure_ns is None or first_ns < self.first_failure_ns:
            self.first_failure_ns = first_ns
        if self.last_failure_ns is None or last_ns > self.last_failure_ns:
            self.last_failure_ns = last_ns

    def merge(self, other: Service) -> None:
        self.connections += other.connections
        self.failed += other.failed
        self.others += other.others
        for call, n in other.calls.items():
            self.calls[call] = self.calls.get(call, 0) + n
        if other.first_failure_ns is not None and other.last_failure_ns is not None:
            self._failed_between(other.first_failure_ns, other.last_failure_ns)


class ServiceTable:
    """Services by (capture label, protocol, server endpoint)."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str, str], Service] = {}

    def get(self, capture: str, proto: str, server: str) -> Service:
        key = (capture, proto, server)
        svc = self.by.get(key)
        if svc is None:
            svc = self.by[key] = Service(capture, proto, server)
        return svc

    def merge(self, other: ServiceTable) -> None:
        for key, svc in other.by.items():
            mine = self.by.get(key)
            if mine is None:
                self.by[key] = svc
            else:
                mine.merge(svc)

    def ranked(self) -> list[Service]:
        return sorted(self.by.values(), key=Service.rank)

    def failing(self) -> list[Service]:
        """The services with a failed connection, the most failed first."""
        return [s for s in self.ranked() if s.failed]

    @property
    def connections(self) -> int:
        return sum(s.connections for s in self.by.values())
