"""Rule files: safe YAML -> JSON Schema -> semantic checks -> the typed, frozen `Rule`.

Every problem is collected with its location (`path:line`), and all of them are raised at once
as one `RuleError`, so `pcapdiag rules check` can list them all. The YAML is read by
yamlfile.py, the semantic checks are checks.py's, and a valid file's data becomes a `Rule`
(model.py) in convert.py, once: nothing keeps the file's data after that.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pcapdiag.errors import RuleError
from pcapdiag.rules.checks import cross_rule_problems, semantic_problems
from pcapdiag.rules.convert import rule_of
from pcapdiag.rules.model import Rule
from pcapdiag.rules.yamlfile import LineDict, parse

if TYPE_CHECKING:
    import jsonschema

RULE_SCHEMA_ID = "pcapdiag.rule/v1"
MAX_RULE_FILE_BYTES = 256 * 1024


@functools.cache
def _schema_text() -> str:
    return resources.files("pcapdiag").joinpath("schemas/rule-v1.schema.json").read_text()


def _schema() -> dict[str, Any]:
    return json.loads(_schema_text())  # type: ignore[no-any-return]


# Digests of rule files already validated against this very schema (see validated_digest):
# the built-in rules, listed in VALIDATED_FILE beside them and kept current by
# tests/rules/test_rules_validated.py, which validates each one. A file listed there is not
# validated again at every start: jsonschema alone takes a fifth of a small run's time to
# import. Any other file, or a listed one changed by a byte, is validated.
VALIDATED_FILE = "validated.sha256"


def validated_digest(text: str) -> str:
    """What identifies a rule file's text as validated by the current schema."""
    return hashlib.sha256(f"{_schema_text()}\0{text}".encode()).hexdigest()


@functools.cache
def _validated() -> frozenset[str]:
    try:
        listed = (builtin_rules_dir() / VALIDATED_FILE).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(line.strip() for line in listed.splitlines() if line.strip())


def schema_problems(path: Path, data: Any) -> list[str]:
    """What the rule schema finds wrong in a rule file's data, each with path:line."""
    import jsonschema  # here: its import is a cost that already-validated rules skip

    return [
        f"{path}:{_line_of(data, list(err.absolute_path))}: {_schema_message(err)}"
        for err in sorted(
            jsonschema.Draft202012Validator(_schema()).iter_errors(data),
            key=lambda e: list(map(str, e.absolute_path)),
        )
    ]


def builtin_rules_dir() -> Path:
    """The built-in rules: inside the installed wheel, or `rules/` of a source checkout."""
    packaged = Path(str(resources.files("pcapdiag"))) / "_builtin_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yaml") if p.is_file())


def load_rules(dirs: Iterable[Path] | None = None, *, builtin: bool = True) -> list[Rule]:
    """Load the built-in rules plus every `*.yaml` under `dirs`; RuleError lists all problems."""
    paths: list[Path] = []
    if builtin:
        paths += rule_files(builtin_rules_dir())
    for d in dirs or ():
        if d.is_file():
            paths.append(d)
        elif d.is_dir():
            paths += rule_files(d)
        else:
            raise RuleError([f"{d}: no such rule file or directory"])
    problems: list[str] = []
    loaded: list[tuple[Rule, LineDict]] = []
    for path in paths:
        data, errs = _valid_data(path)
        problems += errs
        if data is not None:
            loaded.append((rule_of(path, data), data))
    problems += cross_rule_problems(loaded)
    if problems:
        raise RuleError(problems)
    return [rule for rule, _ in loaded]


def load_rule_file(path: Path) -> tuple[Rule | None, list[str]]:
    """Load one rule file: the rule, or None and the problems found (each with path:line)."""
    data, problems = _valid_data(path)
    return (None if data is None else rule_of(path, data)), problems


def _valid_data(path: Path) -> tuple[LineDict | None, list[str]]:
    """A rule file's data, valid by the schema and the semantic checks; or None and the
    problems found."""
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            return None, [
                f"{path}:1: rule file is {size} bytes, over the {MAX_RULE_FILE_BYTES} limit"
            ]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}:1: cannot read rule file: {exc}"]
    try:
        data = parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and cmark.line + 1 != line:
            what += f" ({context} at line {cmark.line + 1})"
        return None, [f"{path}:{line}: YAML error: {what}"]
    if not isinstance(data, LineDict):
        return None, [f"{path}:1: a rule file must be a YAML mapping"]
    if validated_digest(text) not in _validated():
        problems = schema_problems(path, data)
        if problems:
            return None, problems
    problems = list(semantic_problems(path, data))
    if problems:
        return None, problems
    return data, []


def _schema_message(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "oneOf" and err.context:
        best = min(err.context, key=lambda e: len(list(e.absolute_path)))
        return f"{where}: {best.message}"
    return f"{where}: {err.message}"


def _line_of(data: Any, path: list[Any]) -> int:
    """Best line for a JSON path into the loaded YAML: the deepest mapping key found."""
    line = data.line if isinstance(data, LineDict) else 1
    node = data
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, LineDict):
                line = node.line
        else:
            break
    return line
