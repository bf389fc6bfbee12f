"""The package is laid out by stage, and imports point one way: cli -> api -> session -> stages,
each stage importing only the stages before it. The accelerator sits beside the pipeline:
the tool works, with the same reports, when it is gone."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import imports

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "pcapdiag"

# Each module's (or package's) place in the pipeline: it may import only what ranks lower,
# and what shares its package. accel ranks beside the stages it reads (io to rules): only the
# session and the api use it.
RANK = {
    "errors": 0,
    "errnos": 0,
    "settings": 0,
    "slots": 0,
    "io": 1,
    "decode": 2,
    "selection": 3,
    "track": 3,
    "rules": 4,
    "accel": 5,
    "findings": 6,
    "join": 7,
    "render": 7,
    "evidence": 8,
    "firstpass": 8,
    "annotate": 8,
    "session": 8,
    "cluster": 9,
    "api": 10,
    "ruletest": 11,
    "cli": 12,
    "__main__": 13,
}
STAGES = ["io", "decode", "track", "rules", "findings", "render", "accel"]


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to: io, decode, ..., api, cli."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[str, int]]:
    """(pcapdiag unit, line) of every pcapdiag import in a file, at any depth, but not those
    under `if TYPE_CHECKING:` (they never run)."""
    out = []
    for name, _level, line in imports(path, runtime_only=True):
        parts = name.split(".")
        if parts[0] == "pcapdiag" and len(parts) > 1:
            out.append((parts[1], line))
    return out


FILES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


def test_every_unit_has_a_rank() -> None:
    assert {_unit(p) for p in FILES} <= set(RANK)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_pipeline(path: Path) -> None:
    unit = _unit(path)
    bad = [
        f"{path.relative_to(PKG)}:{line} imports pcapdiag.{other}"
        for other, line in _imports(path)
        if other != unit and other != "__version__" and RANK.get(other, 99) >= RANK[unit]
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The checker itself must catch an import that points up, inside a function too.
    src = tmp_path / "x.py"
    src.write_text(
        "from pcapdiag.decode.packets import Segment\n"
        "def f():\n"
        "    from pcapdiag.session import Analysis\n"
        "    import pcapdiag.api\n",
        encoding="utf-8",
    )
    assert [u for u, _ in _imports(src)] == ["decode", "session", "api"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_is_for(stage: str) -> None:
    init = PKG / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc, f"{stage}/__init__.py has no docstring"
    # One responsibility, said in a sentence or two.
    assert len(doc) < 240


CAPTURES = ["samples/demo.pcap", "tests/captures/port-reuse.pcap", "rules/syn-refused/refused.pcap"]


def _report(pythonpath: Path, capture: str, *args: str) -> dict[str, object]:
    """The JSON report of the package found first in `pythonpath` (run from there, as the
    working directory comes first on sys.path)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    path = str(ROOT / capture)
    done = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "--format", "json", "-q", path, *args],
        cwd=pythonpath,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_tool_works_without_the_accelerator(tmp_path: Path) -> None:
    """A copy of the package with accel/ deleted gives the very same reports, --jobs too."""
    copy = tmp_path / "pcapdiag"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(copy / "accel")
    (tmp_path / "rules").symlink_to(ROOT / "rules")  # the built-in rules of a source checkout
    probe = subprocess.run(
        [sys.executable, "-c", "import pcapdiag.accel"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0  # the copy really has no accelerator
    for capture in CAPTURES:
        assert (ROOT / capture).is_file(), capture
        want = _report(ROOT, capture)
        assert _report(tmp_path, capture) == want
        assert _report(tmp_path, capture, "--jobs", "2") == want
