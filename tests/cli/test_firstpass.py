"""Which engine runs (pcapdiag/firstpass.py): `--version` says whether the compiled first pass
is active; without it, `analyze` on a capture over 64 MB says once on standard error how
much slower that is and how to build it, unless --quiet or --no-accel."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag import __version__, firstpass
from pcapdiag.accel import triage
from tests.cli.test_cli import run

ROOT = Path(__file__).resolve().parents[2]
REFUSED = ROOT / "rules" / "syn-refused" / "refused.pcap"


def test_version_says_the_compiled_pass_is_active(capsys) -> None:
    assert triage.available()  # this checkout is built (tests/accel/test_triage.py)
    code, out, _ = run(capsys, "--version")
    assert (code, out) == (0, f"pcapdiag {__version__}\nfirst pass: compiled (C), active\n")


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (firstpass.MISSING, "first pass: not built: "),
        (firstpass.STALE, "first pass: built from other"),
    ],
)
def test_version_says_when_it_is_not(state: str, said: str, capsys, monkeypatch) -> None:
    monkeypatch.setattr(firstpass, "state", lambda: state)
    code, out, _ = run(capsys, "--version")
    second = out.splitlines()[1]
    assert code == 0 and second.startswith(said)
    assert f"about {firstpass.SLOWDOWN}x slower" in second
    assert "apt-get install gcc python3-dev" in second and "reinstall pcapdiag" in second


def test_the_state_follows_the_extension(monkeypatch) -> None:
    assert firstpass.state() == firstpass.ACTIVE
    monkeypatch.setattr(triage, "available", lambda: False)
    assert firstpass.state() == firstpass.STALE  # built, from other definitions
    monkeypatch.setattr(triage, "_triage", None)
    assert firstpass.state() == firstpass.MISSING


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """A capture just over 64 MB on disk: refused.pcap, then zeros (read as damage after
    its two frames: exit 4, and only the note matters here). Sparse, so cheap to make."""
    path = tmp_path / "big.pcap"
    with path.open("wb") as fh:
        fh.write(REFUSED.read_bytes())
        fh.truncate(firstpass.NOTE_FROM_BYTES + 1)
    return path


@pytest.mark.parametrize(
    ("flags", "noted"),
    [((), True), (("--quiet",), False), (("--no-accel",), False)],
)
def test_a_large_capture_without_the_pass_is_noted_once(
    flags: tuple[str, ...], noted: bool, big: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(firstpass, "state", lambda: firstpass.MISSING)
    # Not read past the note: the point is what is said before reading.
    monkeypatch.setattr("pcapdiag.cli.run_analysis", _stop)
    _, _, err = run(capsys, "analyze", *flags, big)
    notes = [ln for ln in err.splitlines() if "compiled first pass" in ln]
    if not noted:
        assert notes == []
        return
    (note,) = notes
    assert note.startswith("pcapdiag: the compiled first pass is not built, so every frame of ")
    assert "these 67 MB is read in Python: " in note
    assert f"about {firstpass.SLOWDOWN}x slower (docs/performance.md: {firstpass.MEASURED})" in note
    assert "apt-get install gcc python3-dev" in note


def test_no_note_when_the_pass_runs_or_the_capture_is_small(big: Path, capsys, monkeypatch):
    monkeypatch.setattr("pcapdiag.cli.run_analysis", _stop)
    assert "compiled first pass" not in run(capsys, "analyze", big)[2]  # active here
    monkeypatch.setattr(firstpass, "state", lambda: firstpass.MISSING)
    assert "compiled first pass" not in run(capsys, "analyze", REFUSED)[2]


def _stop(*_a: object, **_kw: object) -> None:
    raise KeyboardInterrupt  # exit 130, after the note if there was one
