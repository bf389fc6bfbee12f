"""Where the tests find the repository and the public captures."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def public_captures_dir() -> Path:
    return Path(os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", ROOT.parent / "shared/captures/public"))
