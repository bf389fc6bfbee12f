"""`pcapdiag rules show` cites no file its user lacks (rules/show.py).

An installed package holds the built-in rules and their test captures
(pcapdiag/_builtin_rules, from pyproject's force-include), not the repository's samples/,
tests/ or docs/, nor the shared documents beside it: the installed layout is made here by
copying rules/ alone into a directory of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pcapdiag import __version__
from pcapdiag.cli import main
from pcapdiag.rules import show as show_module
from pcapdiag.rules.loader import load_rules
from pcapdiag.rules.show import show

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rules/ as a wheel installs it: site-packages/pcapdiag/_builtin_rules, nothing else."""
    where = tmp_path / "site-packages" / "pcapdiag" / "_builtin_rules"
    shutil.copytree(ROOT / "rules", where)
    monkeypatch.setattr(show_module, "builtin_rules_dir", lambda: where)
    return where


def test_an_installed_rule_cites_no_missing_file(installed: Path) -> None:
    rules = load_rules([installed], builtin=False)
    marked = 0
    for rule in rules:
        out = show(rule)
        head, _, body = out.partition("\n")
        assert head == (
            f"# built-in rule {rule.id} ({rule.name}), as installed with pcapdiag {__version__}"
        )
        assert str(installed) not in out and str(ROOT) not in out
        for line in body.splitlines():
            cited = show_module._REPO_PATH.findall(line.partition("  # not installed")[0])
            if cited:
                # e.g. "../shared/docs/errno-semantics.md", "samples/recorded": marked
                assert f"  # not installed: {', '.join(dict.fromkeys(cited))}" in line, line
                marked += 1
        # Test captures are installed beside their rules: none is marked.
        assert not any("capture:" in ln and "not installed" in ln for ln in body.splitlines())
        # The comments change nothing the file says.
        assert yaml.safe_load(body) == yaml.safe_load(rule.path.read_text(encoding="utf-8"))
    assert marked >= 10  # the references to recordings and the errno document


def test_a_checkout_marks_only_what_it_lacks() -> None:
    # In a checkout samples/ and tests/ are there: nothing is marked but, where the checkout
    # has no shared/ beside it, the documents there.
    for rule in load_rules():
        for line in show(rule).splitlines():
            _, _, named = line.partition("  # not installed: ")
            assert all(n.startswith("../shared/") for n in named.split(", ") if n), line


def test_a_users_rule_keeps_its_path(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "rules" / "syn-refused", mine)
    text = (mine / "rule.yaml").read_text(encoding="utf-8")
    text = text.replace("PD-TCP-001", "PD-MINE-001").replace("name: syn-refused", "name: mine")
    text = text.replace("references:\n", "references:\n  - docs/our-outage.md\n", 1)
    (mine / "rule.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["rules", "show", "PD-MINE-001", "--rules", str(mine)])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# {mine / 'rule.yaml'}"  # the user's own file, named as it is
    assert "  - docs/our-outage.md  # not installed: docs/our-outage.md" in lines
    # Once the document is there (beside the rule's directory), nothing is marked.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "our-outage.md").write_text("notes\n")
    (rule,) = (r for r in load_rules([mine], builtin=False) if r.id == "PD-MINE-001")
    assert "  - docs/our-outage.md\n" in show(rule)
