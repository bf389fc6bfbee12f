"""The placeholders of a rule's cause, next steps and notes, filled from a mapping."""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from typing import Any


def render_template(template: str, ctx: Mapping[str, Any]) -> str:
    """Fill `{name}` placeholders from `ctx` only: no attribute access, no indexing, no
    format specs beyond what str.format does with a plain value. Unknown names stay as
    written, so a typo shows in the output instead of crashing."""
    out: list[str] = []
    for literal, fname, spec in _parsed(template):
        out.append(literal)
        if fname is None:
            continue
        try:
            value = ctx[fname]
        except KeyError:
            out.append("{" + fname + "}")
            continue
        try:
            out.append(format(value, spec))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _parsed(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """A template's pieces (literal text, placeholder name or None, format spec): the same
    few templates are filled for every finding of a rule."""
    return tuple(
        (literal, fname, spec or "")
        for literal, fname, spec, _conv in string.Formatter().parse(template)
    )
