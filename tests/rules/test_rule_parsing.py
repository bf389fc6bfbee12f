"""Rule files parsed by libyaml (the fast path of yamlfile.parse) give the same data and the
same line numbers as the pure-Python LineLoader, which alone reports errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pcapdiag.rules import yamlfile

RULE_FILES = sorted((Path(__file__).resolve().parents[2] / "rules").glob("*/rule.yaml"))


def _with_lines(d: Any) -> Any:
    if isinstance(d, dict):
        return (d.line, d.lines, {k: _with_lines(v) for k, v in d.items()})
    if isinstance(d, list):
        return [_with_lines(v) for v in d]
    return d


@pytest.mark.skipif(yamlfile._CSafeLoader is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.parent.name)
def test_libyaml_and_python_parsers_agree(path: Path) -> None:
    text = path.read_text()
    fast = yamlfile.parse(text)
    slow = yaml.load(text, Loader=yamlfile.LineLoader)
    assert _with_lines(fast) == _with_lines(slow)


def test_an_alias_is_refused_on_the_fast_path_too() -> None:
    text = "a: &x {b: 1}\nc: *x\n"
    with pytest.raises(yaml.constructor.ConstructorError, match="aliases are not allowed"):
        yamlfile.parse(text)
