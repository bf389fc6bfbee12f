"""json.dumps(value, indent=2) text, faster.

The standard library encodes with its C accelerator only when `indent` is None; an indented
report of thousands of findings goes through the much slower pure-Python generator encoder.
Two ways to the very same text (tests/render/test_jsontext.py checks both against
json.dumps on generated values):
- with the compiled accelerator: the C encoder's compact text (separators "," and ":"),
  laid out with newlines and indentation by accel/_jsonindent.c (about 5x faster on a
  report's findings);
- without it: a Python encoder appending pieces to a list, with the C string escaper of the
  json module (about 2x faster than json.dumps with indent).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string  # type: ignore[attr-defined]
from typing import Any

try:
    from pcapdiag.accel import _jsonindent  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler
    _jsonindent = None

_int = int.__repr__
_INF = float("inf")
_compact = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any, depth: int = 0) -> str:
    """json.dumps(value, indent=2, ensure_ascii=True), as it appears `depth` levels deep in
    an indented document (its inner lines indented 2 * depth more spaces)."""
    if _jsonindent is not None:
        return str(_jsonindent.indent(_compact(value), depth))
    return dumps_python(value, depth)


def dumps_python(value: Any, depth: int = 0) -> str:
    """dumps() without the compiled accelerator."""
    out: list[str] = []
    _encode(value, "\n" + "  " * depth, out)
    return "".join(out)


def _float(f: float) -> str:
    # As json.encoder.JSONEncoder with allow_nan=True.
    if f != f:
        return "NaN"
    if f == _INF:
        return "Infinity"
    if f == -_INF:
        return "-Infinity"
    return float.__repr__(f)


def _encode(o: Any, nl: str, out: list[str]) -> None:
    if isinstance(o, str):
        out.append(_string(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(_int(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = nl + "  "
        opener = "[" + inner
        for v in o:
            out.append(opener)
            opener = "," + inner
            _encode(v, inner, out)
        out.append(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = nl + "  "
        opener = "{" + inner
        after = "," + inner
        append = out.append
        for k, v in o.items():
            # The common keys and leaves inline: a call less for each.
            key = _string(k) if type(k) is str else _key(k)
            t = type(v)
            if t is str:
                append(opener + key + ": " + _string(v))
            elif t is int:
                append(opener + key + ": " + _int(v))
            elif v is None:
                append(opener + key + ": null")
            elif t is bool:
                append(opener + key + (": true" if v else ": false"))
            else:
                append(opener + key + ": ")
                _encode(v, inner, out)
            opener = after
        out.append(nl + "}")
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _key(k: Any) -> str:
    # json.dumps turns these key types into strings; anything else is an error there too.
    if isinstance(k, str):
        return _string(k)
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return _string(_int(k))
    if isinstance(k, float):
        return _string(_float(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")
