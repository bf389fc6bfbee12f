"""The README shows real output and the commands CI really runs; the documents it links to
exist, and the generated parts of docs/ are current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pcapdiag.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
# The README is for a user: what the tool is, how to run it, what it says. Design notes,
# measurements and history belong in docs/ and CHANGELOG.md.
README_MAX_BYTES = 12 * 1024


def _block_after(marker: str) -> list[str]:
    tail = README.split(marker, 1)[1]
    body = tail.split("```text\n", 1)[1].split("```", 1)[0]
    return body.rstrip("\n").split("\n")


def test_demo_output_is_what_pcapdiag_prints() -> None:
    # The output's first lines exactly, then runs of lines in order, "…" where lines are
    # left out.
    shown = _block_after("<!-- demo-output")
    out = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "samples/demo.pcap"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    runs = "\n".join(shown).split("\n…\n")
    first = runs[0].split("\n")
    assert out[: len(first)] == first
    at = len(first)
    for run in runs[1:]:
        lines = run.split("\n")
        starts = [k for k in range(at, len(out)) if out[k : k + len(lines)] == lines]
        assert starts, lines[0]
        at = starts[0] + len(lines)


def test_join_output_is_what_pcapdiag_prints() -> None:
    # An excerpt: the lines shown, in order, with "…" where lines are left out.
    shown = _block_after("<!-- join-output")
    command = shown[0].removeprefix("$ ").split(" && ")
    where = ROOT / command[0].removeprefix("cd ")
    args = command[1].split()[1:]
    out = subprocess.run(
        [sys.executable, "-m", "pcapdiag", *args],
        cwd=where,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert shown[1] == out[0]
    at = 0
    for line in shown[1:]:
        if line == "…":
            continue
        assert line in out[at:], line
        at = out.index(line, at) + 1


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert test_command in ci_lines


def test_every_rule_is_in_the_rules_table() -> None:
    rules_doc = (ROOT / "docs/rules.md").read_text()
    for rule in load_rules():
        assert f"| {rule.id} {rule.name} |" in rules_doc, rule.id


def test_readme_stays_short() -> None:
    assert len(README.encode()) <= README_MAX_BYTES


def test_recorded_table_is_current() -> None:
    sys.path.insert(0, str(ROOT / "samples"))
    from record.table import readme_table

    text = (ROOT / "docs/recordings.md").read_text()
    shown = text.split("<!-- recorded-table -->\n", 1)[1].split("<!-- /recorded-table -->")[0]
    assert shown == readme_table(ROOT / "samples/recorded")


@pytest.mark.parametrize(
    "doc", [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "fuzz/README.md", *DOCS]
)
def test_relative_links_and_paths_exist(doc: Path) -> None:
    """Every relative link, and every repository path written in backquotes, names a file or
    directory that exists (`pcapdiag/x.py`, `tests/...`: moved files leave no stale names)."""
    text = doc.read_text()
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if "://" not in target and not (doc.parent / target).exists():
            missing.append(target)
    for path in re.findall(r"`((?:pcapdiag|tests|bench|fuzz|samples|rules|docs)/[\w./-]+)`", text):
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{doc.relative_to(ROOT)}: {missing}"


def test_performance_results_are_written_by_the_benchmark(tmp_path: Path) -> None:
    """docs/performance.md has the one section bench/run.py --write-docs replaces, and the
    writer changes nothing outside it."""
    sys.path.insert(0, str(ROOT / "bench"))
    import run

    text = (ROOT / "docs/performance.md").read_text()
    assert text.count(run.RESULTS_BEGIN) == 1 and text.count(run.RESULTS_END) == 1
    copy = tmp_path / "performance.md"
    copy.write_text(text)
    run.write_docs(copy, "| a | table |\n")
    head, tail = text.split(run.RESULTS_BEGIN)[0], text.split(run.RESULTS_END)[1]
    assert copy.read_text() == f"{head}{run.RESULTS_BEGIN}\n| a | table |\n{run.RESULTS_END}{tail}"
