"""Run the test cases written inside rule files (`tests:`), as `pcapdiag rules test` does.

A case names a capture beside the rule, the platform (default linux) and the findings *of
that rule* it expects, each by side, call, errno and evidence frames. An empty `expect` means
the rule must not fire. All rules given are run, so that overrides apply exactly as a user of
`pcapdiag analyze` would see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pcapdiag.api import analyze
from pcapdiag.findings.model import Finding
from pcapdiag.rules.model import UNSET, Expected, Rule, RuleTest


@dataclass(frozen=True, slots=True)
class CaseResult:
    rule: str
    name: str
    ok: bool
    problems: tuple[str, ...]


def run_rule_tests(rules: Sequence[Rule], only: str | None = None) -> list[CaseResult]:
    results: list[CaseResult] = []
    for rule in rules:
        if only is not None and only not in (rule.id, rule.name):
            continue
        for case in rule.tests:
            results.append(run_case(rule, rules, case))
    return results


def run_case(rule: Rule, rules: Sequence[Rule], case: RuleTest) -> CaseResult:
    platform = case.platform
    capture = rule.path.parent / case.capture
    report = analyze([str(capture)], rules, platform=platform, keep_flows=False)
    got = [f for f in report.findings if f.rule == rule.id]
    problems: list[str] = []
    expected = case.expect
    if len(got) != len(expected):
        problems.append(
            f"expected {len(expected)} finding(s) of {rule.id}, got {len(got)}"
            + "".join(f"\n    got: {describe(f, platform)}" for f in got)
        )
    for exp, finding in zip(expected, got, strict=False):
        problems += _compare(exp, finding, platform)
    if report.damaged:
        problems.append("the test capture is damaged")
    return CaseResult(rule.id, case.name, not problems, tuple(problems))


def _compare(exp: Expected, f: Finding, platform: str) -> list[str]:
    prim = f.primary(platform)
    # (what, expected, actual); frames are shown as lists, as the rule file writes them
    pairs = (
        ("side", exp.side, f.side),
        ("call", exp.call, prim.call if prim else None),
        ("errno", exp.errno, prim.errno if prim else None),
        ("frames", exp.frames if exp.frames is UNSET else list(exp.frames), list(f.frames)),
        ("client", exp.client, f.flow.client),
        ("server", exp.server, f.flow.server),
    )
    return [
        f"{what}: expected {want!r}, got {got!r}"
        for what, want, got in pairs
        if want is not UNSET and want != got
    ]


def describe(f: Finding, platform: str) -> str:
    prim = f.primary(platform)
    call = f"{prim.call} {prim.errno}" if prim else "no errno"
    return f"{f.rule} {f.side} {call} frames {list(f.frames)}"
