"""Fixtures shared by every stage's tests: the built-in rules, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def builtin_rules():
    from pcapdiag.rules.loader import load_rules

    return load_rules()
