"""Expectation files: a missing finding names the nearest actual one (findings/expect.py).

The facts below are written by hand in the shape finding_facts() gives; the report ones come
from samples/demo.pcap, whose findings samples/demo.expect.yaml lists from its construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pcapdiag.api import analyze
from pcapdiag.cli import main
from pcapdiag.findings.expect import check, nearest
from pcapdiag.settings import NO_ACCEL

DEMO = Path(__file__).resolve().parents[2] / "samples" / "demo.pcap"


def fact(rule: str, errno: str | None, client: str, server: str = "10.0.0.2:80") -> dict[str, Any]:
    return {
        "rule": rule,
        "errno": errno,
        "side": "client",
        "client": client,
        "server": server,
        "confidence": "high",
    }


RESET = fact("PD-TCP-004", "ECONNRESET", "10.0.0.1:1")
PIPE = fact("PD-TCP-006", "EPIPE", "10.0.0.1:2")
REFUSED = fact("PD-TCP-001", "ECONNREFUSED", "10.0.0.1:3")


def test_fewest_differences_win_over_sharing_the_connection() -> None:
    # The entry's own connection had another failure (2 keys differ); a reset elsewhere
    # differs only in its client.
    want = {"rule": "PD-TCP-004", "errno": "ECONNRESET", "client": "10.0.0.1:2"}
    assert nearest([PIPE, RESET], want) == (RESET, ["client"])


@pytest.mark.parametrize(
    ("facts", "picked"),
    [
        # one key differs in each: the same rule first, then the same errno, then the
        # same connection, then the first in the report's order
        ([fact("X", "ECONNRESET", "10.0.0.1:9"), fact("PD-TCP-004", "EPIPE", "10.0.0.1:9")], 1),
        ([fact("X", "EPIPE", "10.0.0.1:1"), fact("X", "ECONNRESET", "10.0.0.1:9")], 1),
        ([fact("PD-TCP-004", "EPIPE", "c"), fact("PD-TCP-004", "ETIMEDOUT", "d")], 0),
    ],
)
def test_ties_go_to_rule_then_errno_then_connection_then_order(
    facts: list[dict[str, Any]], picked: int
) -> None:
    want = {"rule": "PD-TCP-004", "errno": "ECONNRESET"}
    if facts[0]["rule"] == "X":
        want["client"] = "10.0.0.1:1"
    got = nearest(facts, want)
    assert got is not None and got[0] is facts[picked]


def test_a_connection_is_every_end_the_entry_names() -> None:
    # Only the server is named: the same server is the same connection.
    want = {"rule": "PD-TCP-009", "server": "10.0.0.2:80"}
    assert nearest([REFUSED], want) == (REFUSED, ["rule"])
    # Nothing shared (rule, errno, server): no nearest.
    assert nearest([REFUSED], {"rule": "PD-TCP-009", "server": "10.0.0.9:1"}) is None


def test_matches_are_never_the_nearest() -> None:
    # Two wanted, one found: the one found is not offered as the nearest of the other.
    assert nearest([RESET], {"rule": "PD-TCP-004"}) is None


def test_check_names_the_nearest_finding_of_a_report() -> None:
    report = analyze([str(DEMO)], load(), settings=NO_ACCEL)
    # demo.expect.yaml: the client's connect from 10.0.0.1:40001 is refused (ECONNREFUSED)
    wrong_errno = {"rule": "PD-TCP-001", "client": "10.0.0.1:40001", "errno": "ETIMEDOUT"}
    # 10.0.0.1:40003's send() is EPIPE (PD-TCP-006); the reset is 10.0.0.1:40004's
    wrong_conn = {"rule": "PD-TCP-004", "client": "10.0.0.1:40003", "errno": "ECONNRESET"}
    unrelated = {"rule": "PD-TCP-012", "errno": "ETIMEDOUT"}
    problems = check(report, {"findings": [wrong_errno, wrong_conn, unrelated]})
    assert len(problems) == 3
    first, second = (p.splitlines() for p in problems[:2])
    assert first[0] == (
        "- missing (0 of 1 found): rule=PD-TCP-001 errno=ETIMEDOUT client=10.0.0.1:40001"
    )
    assert first[1].startswith("  nearest: rule=PD-TCP-001 side=client call=connect ")
    assert "errno=ECONNREFUSED" in first[1] and "client=10.0.0.1:40001" in first[1]
    assert first[1].endswith(" (differs in errno)")
    assert "client=10.0.0.1:40004" in second[1] and second[1].endswith("(differs in client)")
    assert problems[2] == "- missing (0 of 1 found): rule=PD-TCP-012 errno=ETIMEDOUT"


def test_the_check_command_prints_the_nearest_under_its_difference(tmp_path: Path, capsys) -> None:
    expect = tmp_path / "e.yaml"
    expect.write_text(
        f"capture: {DEMO}\nfindings:\n"
        "  - {rule: PD-TCP-001, client: '10.0.0.1:40001', errno: ETIMEDOUT}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["check", "--expect", str(expect)])
    assert exc.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("- missing (0 of 1 found)")
    assert lines[1].startswith("  nearest: rule=PD-TCP-001") and "(differs in errno)" in lines[1]
    assert lines[2].startswith("FAIL: 1 difference")  # one difference, printed on two lines
    assert len(lines) == 3


def load() -> list[Any]:
    from pcapdiag.rules.loader import load_rules

    return load_rules()
