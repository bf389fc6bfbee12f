"""The built-in rules: schema-valid, self-documenting, and their own test cases pass."""

from __future__ import annotations

import json

import pytest

from pcapdiag.rules.loader import builtin_rules_dir, load_rules, rule_files
from pcapdiag.ruletest import run_case
from pcapdiag.track.events import EVENT_TYPES

RULES = load_rules()
CASES = [(r, c) for r in RULES for c in r.tests]


def test_every_rule_file_loads() -> None:
    assert len(RULES) == len(rule_files(builtin_rules_dir())) >= 13


@pytest.mark.parametrize(("rule", "case"), CASES, ids=[f"{r.name}:{c.name}" for r, c in CASES])
def test_rule_case(rule, case) -> None:
    result = run_case(rule, RULES, case)
    assert result.ok, "\n".join(result.problems)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_has_positive_and_negative_cases(rule) -> None:
    cases = rule.tests
    assert any(c.expect for c in cases), "no positive case"
    assert any(not c.expect for c in cases), "no negative case"


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_documents_itself(rule) -> None:
    assert rule.path.parent.name == rule.name
    assert len(rule.description) > 80
    assert rule.references


def test_ids_are_unique() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))


def test_schema_event_names_match_the_tracker_vocabulary() -> None:
    # The schema's closed list of event names must be exactly the events the tracker emits
    # (h11's lesson: a derived artefact that is not checked drifts).
    from importlib import resources

    schema = json.loads(
        resources.files("pcapdiag").joinpath("schemas/rule-v1.schema.json").read_text()
    )
    assert sorted(schema["$defs"]["event"]["enum"]) == sorted(EVENT_TYPES)


def test_linux_errnos_follow_the_kernel_tables(builtin_rules) -> None:
    # Spot checks against ../shared/docs/errno-semantics.md sections 1.3, 1.6 and 7.
    by_name = {r.name: r for r in builtin_rules}
    icmp = by_name["syn-icmp-unreachable"].outcome.effects["linux"][0].errno_from
    assert icmp is not None
    m = icmp.map
    assert m["v4:port-unreachable"] == "ECONNREFUSED"
    assert m["v4:host-prohibited"] == "EHOSTUNREACH"
    assert m["v4:protocol-unreachable"] == "ENOPROTOOPT"
    assert m["v4:net-unreachable"] == "ENETUNREACH"
    assert m["v6:admin-prohibited"] == "EACCES"
    assert m["v6:no-route"] == "ENETUNREACH"
    assert m["v6:address-unreachable"] == "EHOSTUNREACH"
    udp_from = by_name["udp-icmp-error"].outcome.effects["linux"][0].errno_from
    assert udp_from is not None
    udp = udp_from.map
    # icmp_err_convert marks net and host unreachable not fatal: never reported to UDP sockets
    assert "v4:host-unreachable" not in udp and "v4:net-unreachable" not in udp
