"""Every report format, for every committed and public capture, is byte for byte what was
recorded in tests/data/golden/reports.json (see tests/support/golden.py: how they are made and
re-recorded after an intended change of output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import golden

WANT = json.loads(golden.GOLDEN.read_text(encoding="utf-8"))
CASES = list(golden.captures())


def test_every_recorded_capture_is_still_there() -> None:
    keys = {key for key, _, _ in CASES}
    committed = {k for k in WANT if not k.startswith("public/")}
    assert committed <= keys
    if golden.public_dir().is_dir():
        assert set(WANT) == keys


@pytest.mark.parametrize(("key", "workdir", "rel"), CASES, ids=[c[0] for c in CASES])
def test_reports_are_as_recorded(key: str, workdir: Path, rel: str, tmp_path: Path) -> None:
    assert key in WANT, f"{key}: no golden report recorded (python -m tests.support.golden --write)"
    want = WANT[key]
    got = {
        name: f"{c} {golden.hashlib.sha256(d).hexdigest()}"
        for name, args in golden.VARIANTS
        for c, d in [golden.run(workdir, rel, args, tmp_path)]
    }
    got["export"] = golden.export_digest(workdir, rel, tmp_path)
    assert got == want
