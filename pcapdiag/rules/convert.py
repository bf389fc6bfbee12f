"""A validated rule file's data turned into the typed rule (model.py), once, when it is loaded.

The data has passed the rule schema and the semantic checks (loader.py): every key this module
reads without a default is required there, every name it copies is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcapdiag.rules.model import (
    UNSET,
    Absent,
    Count,
    Doubt,
    EffectSpec,
    ErrnoFrom,
    EvidenceRef,
    Expected,
    Note,
    OriginSpec,
    Outcome,
    Pattern,
    Rule,
    RuleTest,
    SideSpec,
    Step,
    Window,
)
from pcapdiag.rules.predicates import All, AnyOf, Compare, Not, Param, Predicate, Value


def rule_of(path: Path, data: Mapping[str, Any]) -> Rule:
    return Rule(
        id=data["id"],
        rev=data["rev"],
        name=data["name"],
        title=data["title"],
        severity=data["severity"],
        status=data["status"],
        proto=data["proto"],
        path=path,
        description=data["description"],
        references=tuple(data["references"]),
        match=pattern_of(data["match"]),
        outcome=outcome_of(data["outcome"]),
        tests=tuple(rule_test_of(t) for t in data["tests"]),
        params={k: v["default"] for k, v in data.get("params", {}).items()},
        overrides=tuple(data.get("overrides", ())),
    )


def value_of(raw: Any) -> Value:
    """A value as written: `$name` is a reference to the rule's parameter `name`."""
    if isinstance(raw, str) and raw.startswith("$"):
        return Param(raw[1:])
    return raw  # type: ignore[no-any-return]


def predicate_of(raw: Mapping[str, Any]) -> Predicate:
    """`all`, `any`, `not`, or `field` and exactly one operator."""
    if "all" in raw:
        return All(tuple(predicate_of(sub) for sub in raw["all"]))
    if "any" in raw:
        return AnyOf(tuple(predicate_of(sub) for sub in raw["any"]))
    if "not" in raw:
        return Not(predicate_of(raw["not"]))
    ((op, written),) = ((k, v) for k, v in raw.items() if k != "field")
    if op == "in":
        return Compare(raw["field"], op, tuple(value_of(v) for v in written))
    return Compare(raw["field"], op, value_of(written))


def side_of(raw: str | Mapping[str, str]) -> SideSpec:
    if isinstance(raw, str):
        return SideSpec(raw)  # type: ignore[arg-type]
    if "sender_of" in raw:
        return SideSpec("sender_of", raw["sender_of"])
    return SideSpec("receiver_of", raw["receiver_of"])


def _sender(raw: Mapping[str, Any]) -> SideSpec | None:
    """A step's or clause's `from`: None when it does not restrict the side (`any`)."""
    spec = raw.get("from", "any")
    return None if spec == "any" else side_of(spec)


def _where(raw: Mapping[str, Any]) -> Predicate | None:
    return predicate_of(raw["where"]) if "where" in raw else None


def _window(raw: Mapping[str, Any] | None) -> Window | None:
    return None if raw is None else Window(after=raw["after"], ms=value_of(raw["ms"]))


def _bound(raw: Mapping[str, Any], key: str) -> Value | None:
    return value_of(raw[key]) if key in raw else None


def pattern_of(raw: Mapping[str, Any]) -> Pattern:
    return Pattern(
        sequence=tuple(
            Step(
                binding=s["as"],
                event=s["event"],
                sender=_sender(s),
                where=_where(s),
                within=_window(s.get("within")),
                not_within=_window(s.get("not_within")),
            )
            for s in raw["sequence"]
        ),
        flow=predicate_of(raw["flow"]) if "flow" in raw else None,
        absent=tuple(
            Absent(
                event=c["event"],
                between=(c["between"][0], c["between"][1]),
                sender=_sender(c),
                where=_where(c),
            )
            for c in raw.get("absent", ())
        ),
        counts=tuple(
            Count(
                name=c["as"],
                event=c["event"],
                between=(c["between"][0], c["between"][1]),
                sender=_sender(c),
                where=_where(c),
                ge=_bound(c, "ge"),
                le=_bound(c, "le"),
                eq=_bound(c, "eq"),
            )
            for c in raw.get("counts", ())
        ),
    )


def effect_of(raw: Mapping[str, Any]) -> EffectSpec:
    src = raw.get("errno_from")
    return EffectSpec(
        call=raw["call"],
        errno=raw.get("errno"),
        errno_from=(
            None
            if src is None
            else ErrnoFrom(binding=src["binding"], field=src["field"], map=dict(src["map"]))
        ),
        result=raw.get("result"),
        then=raw.get("then"),
        note=raw.get("note"),
    )


def outcome_of(raw: Mapping[str, Any]) -> Outcome:
    evidence = []
    for ref in raw["evidence"]:
        name, _, pick = ref.partition(".")
        evidence.append(EvidenceRef(name, pick or None))  # type: ignore[arg-type]
    return Outcome(
        side=side_of(raw["side"]),
        effects={
            platform: tuple(effect_of(e) for e in items)
            for platform, items in raw["effects"].items()
        },
        cause=raw["cause"],
        evidence=tuple(evidence),
        next_steps=raw.get("next_steps"),
        notes=tuple(
            Note(text=n["text"], when=predicate_of(n["when"]) if "when" in n else None)
            for n in raw.get("notes", ())
        ),
        origins=tuple(
            OriginSpec(
                actor=o["actor"],
                confidence=o["confidence"],
                why=o["why"],
                when=predicate_of(o["when"]) if "when" in o else None,
            )
            for o in raw.get("origin", ())
        ),
        doubts=tuple(
            Doubt(
                level=d["level"],
                reason=d["reason"],
                when=predicate_of(d["when"]) if "when" in d else None,
                quality=d.get("quality"),
            )
            for d in raw.get("doubts", ())
        ),
    )


def rule_test_of(raw: Mapping[str, Any]) -> RuleTest:
    return RuleTest(
        name=raw["name"],
        capture=raw["capture"],
        why=raw["why"],
        expect=tuple(_expected(e) for e in raw["expect"]),
        platform=raw.get("platform", "linux"),
    )


def _expected(raw: Mapping[str, Any]) -> Expected:
    return Expected(
        side=raw.get("side", UNSET),
        call=raw.get("call", UNSET),
        errno=raw.get("errno", UNSET),
        frames=tuple(raw["frames"]) if "frames" in raw else UNSET,
        client=raw.get("client", UNSET),
        server=raw.get("server", UNSET),
    )
