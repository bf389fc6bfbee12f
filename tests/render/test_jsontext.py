"""pcapdiag.jsontext gives exactly json.dumps(value, indent=2) text, with the compiled
accelerator (accel/_jsonindent.c) and without it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapdiag.render import jsontext

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=30,
)


compiled = pytest.mark.skipif(
    jsontext._jsonindent is None, reason="built without a C compiler (PCAPDIAG_PURE=1)"
)


@settings(max_examples=400)
@given(values, st.integers(min_value=0, max_value=3))
def test_same_text_as_json_dumps(value, depth) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=True).replace("\n", "\n" + "  " * depth)
    assert jsontext.dumps_python(value, depth) == expected
    assert jsontext.dumps(value, depth) == expected


# Strings full of the punctuation the compiled layout goes by, escaped quotes and backslashes.
tricky = st.text(alphabet='{}[],:"\\ \n\tx\u00e9\u2028', max_size=12)


@compiled
@settings(max_examples=400)
@given(
    st.recursive(
        tricky | st.integers(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
        max_leaves=20,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_compiled_layout_reads_strings_as_strings(value, depth) -> None:
    expected = json.dumps(value, indent=2).replace("\n", "\n" + "  " * depth)
    assert jsontext.dumps(value, depth) == expected


@compiled
def test_compiled_layout_refuses_what_is_not_compact_ascii_json() -> None:
    indent = jsontext._jsonindent.indent
    assert indent('{"a":[1,{}]}', 0) == '{\n  "a": [\n    1,\n    {}\n  ]\n}'
    for bad in ("[1", "]", '{"a":1}}', '"open', "\u00e9"):
        with pytest.raises(ValueError):
            indent(bad, 0)


def test_unserialisable_values_are_refused_as_json_does() -> None:
    for bad in ({"a": object()}, [b"bytes"], {(1, 2): 3}):
        with pytest.raises(TypeError):
            json.dumps(bad, indent=2)
        with pytest.raises(TypeError):
            jsontext.dumps(bad)
        with pytest.raises(TypeError):
            jsontext.dumps_python(bad)
