"""The built-in rules listed as validated (rules/validated.sha256) are exactly the built-in
rule files as they are, each valid by the rule schema; anything else is validated when it is
loaded. Run with PCAPDIAG_UPDATE_VALIDATED=1 after changing a built-in rule or the schema:
the file is rewritten, but only when every rule is valid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from pcapdiag.rules.loader import (
    VALIDATED_FILE,
    builtin_rules_dir,
    load_rule_file,
    rule_files,
    schema_problems,
    validated_digest,
)
from pcapdiag.rules.yamlfile import parse


def test_the_validated_list_is_exactly_the_builtin_rules_each_valid() -> None:
    files = rule_files(builtin_rules_dir())
    assert len(files) >= 14
    for path in files:
        # Validated here in full, whatever the list says.
        assert schema_problems(path, parse(path.read_text(encoding="utf-8"))) == []
    digests = sorted(validated_digest(p.read_text(encoding="utf-8")) for p in files)
    listed_path = builtin_rules_dir() / VALIDATED_FILE
    if os.environ.get("PCAPDIAG_UPDATE_VALIDATED") == "1":
        listed_path.write_text("".join(d + "\n" for d in digests), encoding="ascii")
    listed = sorted(listed_path.read_text(encoding="ascii").split())
    assert listed == digests, (
        f"{listed_path} is out of date: run PCAPDIAG_UPDATE_VALIDATED=1 pytest {__file__}"
    )


def test_a_changed_builtin_rule_is_validated_again(tmp_path) -> None:
    # The same text as a listed rule but for one byte: not listed, so the schema sees it.
    path = rule_files(builtin_rules_dir())[0]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["severity"] = "catastrophic"
    changed = tmp_path / "rule.yaml"
    changed.write_text(yaml.safe_dump(data), encoding="utf-8")
    rule, problems = load_rule_file(changed)
    assert rule is None
    assert any("severity" in p for p in problems), problems


def test_an_analysis_with_the_builtin_rules_does_not_import_jsonschema(tmp_path) -> None:
    code = (
        "import sys\n"
        "from pcapdiag.cli import main\n"
        "try:\n"
        "    main(['analyze', '--quiet', 'samples/demo.pcap', '-o', sys.argv[1]])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'jsonschema' not in sys.modules, 'jsonschema was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out.txt")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text()
