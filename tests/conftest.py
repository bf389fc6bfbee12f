"""Shared test helpers: paths, the built-in rules loaded once, and a public-captures locator."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def public_captures_dir() -> Path:
    return Path(os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", ROOT.parent / "shared/captures/public"))


@pytest.fixture(scope="session")
def builtin_rules():
    from pcapdiag.rules.loader import load_rules

    return load_rules()
