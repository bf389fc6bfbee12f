"""The packets --join reads again are the same with the accelerator's batches as without
(join/packets.py read): every frame, and a sparse set of frames (what a joined finding wants
of a long file), on the project's captures and the public ones (pcap and pcapng, link types
the batches hand back to the Python reader)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pcapdiag.accel import triage
from pcapdiag.io.reader import open_capture
from pcapdiag.join.packets import read
from tests.support.paths import public_captures_dir

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(
    p
    for pattern in ("rules/*/*.pcap", "samples/*.pcap", "samples/recorded/*/*.pcap")
    for p in ROOT.glob(pattern)
)
PUBLIC_DIR = public_captures_dir()
PUBLIC = sorted(
    p
    for p in (PUBLIC_DIR.glob("**/*") if PUBLIC_DIR.is_dir() else ())
    if p.suffix in (".pcap", ".pcapng", ".cap", ".gz") and p.stat().st_size < 20_000_000
)

needs_accel = pytest.mark.skipif(not triage.available(), reason="accelerator not built")


def _frame_count(path: Path) -> int:
    with open_capture(str(path)) as reader:
        return sum(1 for _ in reader.records())


@needs_accel
@pytest.mark.parametrize("path", CAPTURES + PUBLIC, ids=lambda p: p.name)
def test_batches_read_the_same_packets(path: Path) -> None:
    n = _frame_count(path)
    every = set(range(1, n + 1))
    sparse = set(random.Random(path.name).sample(sorted(every), n // 7))
    for frames in (every, sparse):
        slow = read(str(path), frames, fast=False)
        fast = read(str(path), frames, fast=True)
        assert fast == slow
        assert set(slow) <= frames


def test_nothing_wanted_reads_nothing() -> None:
    assert read(str(CAPTURES[0]), set(), fast=True) == {}
