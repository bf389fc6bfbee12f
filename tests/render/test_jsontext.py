"""pcapdiag.jsontext gives exactly json.dumps(value, indent=2) text."""

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


@settings(max_examples=400)
@given(values, st.integers(min_value=0, max_value=3))
def test_same_text_as_json_dumps(value, depth) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=True).replace("\n", "\n" + "  " * depth)
    assert jsontext.dumps(value, depth) == expected


def test_unserialisable_values_are_refused_as_json_does() -> None:
    for bad in ({"a": object()}, [b"bytes"], {(1, 2): 3}):
        with pytest.raises(TypeError):
            json.dumps(bad, indent=2)
        with pytest.raises(TypeError):
            jsontext.dumps(bad)
