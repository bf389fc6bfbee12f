"""How sure a finding is: high, medium or low, and every reason it is not high.

A finding starts high: the packets show it. Each doubt lowers it and says why; the lowest
level any doubt sets is the finding's. Doubts a rule knows of are data in the rule
(`outcome.doubts`); those that hold for every rule are here:
- the client and server roles are guessed (no SYN captured);
- the failing side's host did not take the capture: what reached its kernel is inferred
  from what was sent towards it (a segment captured is not a segment delivered);
- the errno depends on a platform the capture does not decide;
- the capture lost packets of the flow, or saw only one direction of it (capture quality).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pcapdiag.findings.platform import NAMES, PlatformGuess
from pcapdiag.findings.vantage import Vantage
from pcapdiag.slots import compact_pickle
from pcapdiag.track.flows import FlowRecord

if TYPE_CHECKING:
    from pcapdiag.findings.model import Effect

LEVELS = ("low", "medium", "high")  # in increasing order


def at_least(level: str, floor: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


@compact_pickle
@dataclass(frozen=True, slots=True)
class Confidence:
    level: str
    reasons: tuple[str, ...] = ()


HIGH = Confidence("high")


def assess(
    flow: FlowRecord,
    side: str,
    platform: PlatformGuess,
    vantage: Vantage,
    effects: Mapping[str, Sequence[Effect]],
    rule_doubts: Iterable[tuple[str, str]],
    quality: Iterable[tuple[str, str]] = (),
) -> Confidence:
    """The finding's confidence. `effects` are what the calls return on each platform;
    `rule_doubts` and `quality` are (level, reason) pairs."""
    doubts: list[tuple[str, str]] = list(rule_doubts)
    # A UDP flow's roles are always the first sender's; no finding's side depends on them.
    if flow.roles == "guessed" and flow.proto == "tcp":
        doubts.append(("medium", f"client and server roles are guessed: {flow.roles_reason}"))
    if vantage.is_far(side):
        host = "server" if side == "client" else "client"
        where = "on the path" if vantage.where == "path" else f"on the {host}'s host"
        doubts.append(
            (
                "medium",
                f"the capture was taken {where} ({vantage.why}): what reached the {side} is "
                "inferred",
            )
        )
    if platform.inferred and not platform.decided:
        mine = _first_errno(effects.get(platform.name, ()))
        other = sorted(
            {
                NAMES[p]
                for p in platform.candidates
                if p != platform.name and _first_errno(effects.get(p, ())) != mine
            }
        )
        if other:
            doubts.append(
                (
                    "medium",
                    f"the errno differs on {', '.join(other)}, and the platform is not "
                    f"decided ({platform.why})",
                )
            )
    doubts += quality
    if not doubts:
        return HIGH
    level = min((lvl for lvl, _ in doubts), key=LEVELS.index)
    reasons: list[str] = []
    for _, reason in doubts:
        if reason not in reasons:
            reasons.append(reason)
    return Confidence(level, tuple(reasons))


def _first_errno(effects: Sequence[Effect]) -> str | None:
    return next((e.errno for e in effects if e.errno is not None), None)
