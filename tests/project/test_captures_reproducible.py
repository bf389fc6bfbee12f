"""The committed test captures are exactly what tests/build_captures.py writes, so each one is
explained by its builder's docstring and can be regenerated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.build_captures import CAPTURES, ROOT


@pytest.mark.parametrize("rel", sorted(CAPTURES))
def test_committed_capture_matches_builder(rel: str, tmp_path: Path) -> None:
    out = tmp_path / Path(rel).name
    CAPTURES[rel]().write(out)
    hint = f"rebuild {rel}: python -m tests.support.build_captures"
    assert out.read_bytes() == (ROOT / rel).read_bytes(), hint


@pytest.mark.parametrize("rel", sorted(CAPTURES))
def test_builder_explains_itself(rel: str) -> None:
    doc = CAPTURES[rel].__doc__ or ""
    assert len(doc) > 60 and "Frame" in doc
