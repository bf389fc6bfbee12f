"""The hot path (decode_fast + the tracker's steady-state shortcut) gives exactly the report
the general path gives, on every capture the project has and every public one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pcapdiag.track.connection as tracker
from pcapdiag.api import analyze
from pcapdiag.errors import CaptureError
from pcapdiag.settings import Settings
from tests.support.paths import public_captures_dir

ROOT = Path(__file__).resolve().parents[2]
OURS = sorted(
    p
    for pattern in (
        "rules/*/*.pcap",
        "samples/*.pcap",
        "samples/recorded/*/*.pcap",
        "tests/captures/*.pcap",
    )
    for p in ROOT.glob(pattern)
)
PUBLIC_DIR = public_captures_dir()
PUBLIC = (
    sorted(p for p in PUBLIC_DIR.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz"))
    if PUBLIC_DIR.is_dir()
    else []
)


def _report(path: Path, rules, fast: bool, monkeypatch) -> str:
    settings = Settings(fast_decode=fast, tracker_fast_path=fast)
    try:
        report = analyze([str(path)], rules, keep_flows=True, settings=settings)
    except CaptureError as exc:
        return f"CaptureError: {exc}"
    return json.dumps(report.to_dict(), sort_keys=True)


@pytest.mark.parametrize("path", OURS + PUBLIC, ids=lambda p: str(p.name))
def test_fast_and_general_paths_agree(path: Path, builtin_rules, monkeypatch) -> None:
    fast = _report(path, builtin_rules, True, monkeypatch)
    general = _report(path, builtin_rules, False, monkeypatch)
    assert fast == general


def test_the_fast_path_is_taken(builtin_rules, monkeypatch) -> None:
    # The comparison above must not pass because the fast path never runs.
    calls = {"n": 0}
    real = tracker.Connection._steady_segment

    def counting(self, seg, s, r):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return real(self, seg, s, r)

    monkeypatch.setattr(tracker.Connection, "_steady_segment", counting)
    # The C first pass would set the healthy flows aside before the tracker sees them.
    analyze([str(ROOT / "samples/demo.pcap")], builtin_rules, settings=Settings(accelerate=False))
    assert calls["n"] >= 5  # the in-order ACK and data segments of the healthy flows
