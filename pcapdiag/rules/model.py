"""A rule as the program uses it: typed, frozen objects made once from a validated rule file
(convert.py), read by the engine, the finding builder, the accelerator's blindness check and
the rule tests. The names follow the rule file (schemas/rule-v1.schema.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from pcapdiag.rules.predicates import Predicate, Value
from pcapdiag.track.events import Event, Side

if TYPE_CHECKING:  # the engine reads rules and must not reach file access (sans-IO)
    from pathlib import Path

# Fields of the flow record that `match.flow` predicates may test.
FLOW_FIELDS = (
    "proto",
    "roles",
    "handshake",
    "client_packets",
    "server_packets",
    "client_bytes",
    "server_bytes",
    "client_state",
    "server_state",
    "end_reason",
)
# Bindings every pattern has: before the first event, and the flow's closing `end` event.
RESERVED_BINDINGS = ("start", "end")

SideKind: TypeAlias = Literal["client", "server", "any", "sender_of", "receiver_of"]


@dataclass(frozen=True, slots=True)
class SideSpec:
    """A side as a rule names it: client, server, any (either), or the side that sent
    (`sender_of`) or received (`receiver_of`) the event bound to `binding`."""

    kind: SideKind
    binding: str | None = None

    def resolve(self, bound: Mapping[str, Event]) -> Side | None:
        """The side meant, given the events bound so far; None for `any`, and for the
        sender of an event no endpoint sent (an ICMP error from a router)."""
        kind = self.kind
        if kind == "client":
            return Side.CLIENT
        if kind == "server":
            return Side.SERVER
        if kind == "sender_of":
            return bound[self.binding].sender  # type: ignore[index]
        if kind == "receiver_of":
            return bound[self.binding].receiver  # type: ignore[index]
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """`within` / `not_within` of a step: at most / at least `ms` after the event bound to
    `after`."""

    after: str
    ms: Value


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the sequence: the next event named `event` (from `sender`'s side, with
    `where` true, inside the windows), bound to the name `binding`. `sender` None: from
    either side (written `any`, or left out)."""

    binding: str
    event: str
    sender: SideSpec | None = None
    where: Predicate | None = None
    within: Window | None = None
    not_within: Window | None = None


@dataclass(frozen=True, slots=True)
class Absent:
    """No event named `event` (from `sender`, with `where` true) strictly between the two
    bindings of `between`."""

    event: str
    between: tuple[str, str]
    sender: SideSpec | None = None
    where: Predicate | None = None


@dataclass(frozen=True, slots=True)
class Count:
    """The events named `event` (from `sender`, with `where` true) strictly between the two
    bindings, counted as `name`; the match needs their number to be at least `ge`, at most
    `le`, exactly `eq` (those given)."""

    name: str
    event: str
    between: tuple[str, str]
    sender: SideSpec | None = None
    where: Predicate | None = None
    ge: Value | None = None
    le: Value | None = None
    eq: Value | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    """A rule's `match`: an optional test of the flow record, the sequence of steps, and the
    absences and counts checked once every step is bound."""

    sequence: tuple[Step, ...]
    flow: Predicate | None = None
    absent: tuple[Absent, ...] = ()
    counts: tuple[Count, ...] = ()
    # The event names the sequence needs, each once: a flow without one of them cannot
    # match (read for every flow).
    step_events: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # The same as a set: what a flow's event names must include (session._diagnose tests
    # it before evaluating the rule at all).
    needs: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        events = tuple(dict.fromkeys(step.event for step in self.sequence))
        object.__setattr__(self, "step_events", events)
        object.__setattr__(self, "needs", frozenset(events))


@dataclass(frozen=True, slots=True)
class ErrnoFrom:
    """The errno chosen by the value of a bound event's field (`map`: value -> errno name;
    a value not in it: no errno)."""

    binding: str
    field: str
    map: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EffectSpec:
    """What one call returns on one platform: `errno` (None: no error), or the errno picked
    by `errno_from`; `result` (error, eof or ok) when written, else error with an errno and
    ok without."""

    call: str
    errno: str | None = None
    errno_from: ErrnoFrom | None = None
    result: str | None = None
    then: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A note added to the finding (a template), when `when` holds of the finding's
    template context (always, when None)."""

    text: str
    when: Predicate | None = None


@dataclass(frozen=True, slots=True)
class Doubt:
    """What lowers the finding's confidence to `level` (medium or low) when `when` holds of
    the finding's template context; `reason` (a template) says why, in the report."""

    level: str
    reason: str
    when: Predicate | None = None
    quality: str | None = None  # the capture-quality code it stands for (findings/quality.py)


@dataclass(frozen=True, slots=True)
class OriginSpec:
    """Who caused the failure, when `when` holds of the finding's template context: the
    `actor` (peer, local, network or unknown), how sure (`confidence`), and `why` (a
    template naming the evidence). A rule lists them in order; the first that holds wins."""

    actor: str
    confidence: str
    why: str
    when: Predicate | None = None


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """A binding or a count whose frames prove the finding; `pick` first or last cites one
    event of a count."""

    name: str
    pick: Literal["first", "last"] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    side: SideSpec
    effects: Mapping[str, tuple[EffectSpec, ...]]  # platform -> calls, as written
    cause: str
    evidence: tuple[EvidenceRef, ...]
    next_steps: str | None = None
    notes: tuple[Note, ...] = ()
    doubts: tuple[Doubt, ...] = ()
    origins: tuple[OriginSpec, ...] = ()


class _Unset(Enum):
    UNSET = "unset"


# An expectation a test case leaves out (a call or an errno may be expected to be None).
UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Expected:
    """One finding a rule test expects; only the values given are compared."""

    side: str | _Unset = UNSET
    call: str | _Unset | None = UNSET
    errno: str | _Unset | None = UNSET
    frames: tuple[int, ...] | _Unset = UNSET
    client: str | _Unset = UNSET
    server: str | _Unset = UNSET


@dataclass(frozen=True, slots=True)
class RuleTest:
    """A test case of the rule: its findings in `capture` (beside the rule file), as
    analysed for `platform`; no finding expected when `expect` is empty."""

    name: str
    capture: str
    why: str
    expect: tuple[Expected, ...]
    platform: str = "linux"


@dataclass(frozen=True, slots=True)
class Rule:
    """A loaded, validated rule."""

    id: str
    rev: int
    name: str
    title: str
    severity: str
    status: str
    proto: str
    path: Path
    description: str
    references: tuple[str, ...]
    match: Pattern
    outcome: Outcome
    tests: tuple[RuleTest, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)  # name -> default value
    overrides: tuple[str, ...] = ()  # rules whose finding on the same flow and side it replaces

    @property
    def step_events(self) -> tuple[str, ...]:
        return self.match.step_events
