"""The README shows real output and the commands CI really runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pcapdiag.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _block_after(marker: str) -> list[str]:
    tail = README.split(marker, 1)[1]
    body = tail.split("```text\n", 1)[1].split("```", 1)[0]
    return body.rstrip("\n").split("\n")


def test_demo_output_is_what_pcapdiag_prints() -> None:
    shown = _block_after("<!-- demo-output")
    out = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "samples/demo.pcap"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[: len(shown)] == shown


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert test_command in ci_lines


def test_every_rule_is_in_the_readme_table() -> None:
    for rule in load_rules():
        assert f"| {rule.id} {rule.name} |" in README, rule.id


def test_recorded_table_is_current() -> None:
    sys.path.insert(0, str(ROOT / "samples"))
    from record.table import readme_table

    shown = README.split("<!-- recorded-table -->\n", 1)[1].split("<!-- /recorded-table -->")[0]
    assert shown == readme_table(ROOT / "samples/recorded")
