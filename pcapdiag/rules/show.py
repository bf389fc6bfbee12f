"""`pcapdiag rules show`: a rule file as its user has it, citing no file they do not have.

A built-in rule is named as one, not by its path inside site-packages or a checkout. A line
that names a file of pcapdiag's source repository (a recording, a capture builder, a document)
that is not there, as in an installed package, is marked with a YAML comment saying so: the
text stays the rule's own, and it still loads as the same rule (`rules show ID > mine.yaml`
is a way to start one's own). Test captures need no mark: a rule loads only with every one
of them beside it (rules/loader.py), and the wheel installs the built-in rules' with them.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pcapdiag import __version__
from pcapdiag.rules.loader import builtin_rules_dir
from pcapdiag.rules.model import Rule

# Paths of pcapdiag's own repository and the documents beside it, as rules cite them (kernel
# sources such as "net/ipv4/tcp_input.c" are cited, not expected on the reader's disk).
_REPO_PATH = re.compile(r"(?<![\w./-])(?:\.\./|\./)*(?:samples|tests|docs|bench|shared)/[\w./-]*\w")


def show(rule: Rule) -> str:
    """The rule file's text under a header line, its absent files marked."""
    text = rule.path.read_text(encoding="utf-8")
    marked = mark_absent(text, _roots(rule.path))
    if yaml.safe_load(marked) != yaml.safe_load(text):
        marked = text  # a comment would have changed what the file says: leave it as it is
    return _header(rule) + "\n" + marked


def _header(rule: Rule) -> str:
    if _is_builtin(rule.path):
        return f"# built-in rule {rule.id} ({rule.name}), as installed with pcapdiag {__version__}"
    return f"# {rule.path}"


def _is_builtin(path: Path) -> bool:
    return path.resolve().is_relative_to(builtin_rules_dir().resolve())


def _roots(path: Path) -> tuple[Path, ...]:
    """Where a cited path may be found: the rule file's directory and the two above it (in a
    checkout, rules/<name>/, rules/ and the root that holds samples/, tests/ and docs/)."""
    return tuple(path.parents)[:3]


def mark_absent(text: str, roots: tuple[Path, ...]) -> str:
    """`text` with a comment at the end of each line that names a file none of `roots` has."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        named = [p for p in _REPO_PATH.findall(body) if not any((r / p).exists() for r in roots)]
        if named:
            line = f"{body}  # not installed: {', '.join(dict.fromkeys(named))}" + line[len(body) :]
        out.append(line)
    return "".join(out)
