"""--jobs N gives byte-for-byte the report --jobs 1 gives (flows sharded by 4-tuple)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import public_captures_dir

from pcapdiag.api import analyze
from pcapdiag.errors import CaptureError
from pcapdiag.render import to_json

ROOT = Path(__file__).resolve().parent.parent
OURS = sorted(
    p
    for pattern in (
        "rules/*/*.pcap",
        "samples/*.pcap",
        "samples/recorded/*/client.pcap",
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


def _json(paths: list[Path], rules, jobs: int) -> str:
    try:
        return to_json(analyze([str(p) for p in paths], rules, jobs=jobs, keep_flows=True))
    except CaptureError as exc:
        return f"CaptureError: {exc}"


def test_every_capture_in_one_run_is_the_same_with_2_and_3_jobs(builtin_rules) -> None:
    # One run over all captures keeps the number of worker pools (and the test) small.
    paths = OURS + [p for p in PUBLIC if p.stat().st_size > 24]  # (the two empty files)
    one = _json(paths, builtin_rules, 1)
    assert one == _json(paths, builtin_rules, 2)
    assert one == _json(paths, builtin_rules, 3)


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name)
def test_each_public_capture_with_2_jobs(path: Path, builtin_rules) -> None:
    assert _json([path], builtin_rules, 1) == _json([path], builtin_rules, 2)


def test_jobs_are_really_used(builtin_rules) -> None:
    # The merged report must hold flows from more than one worker, or the test above proves
    # nothing: the demo's six flows do not all hash to one shard.
    from pcapdiag.capture import open_capture
    from pcapdiag.decode import decode
    from pcapdiag.shard import shard_of

    shards = {shard_of(decode(f), 2) for f in open_capture(str(ROOT / "samples/demo.pcap"))}
    assert shards == {0, 1}


@pytest.mark.parametrize("n", [2, 3, 7])
def test_quick_shard_agrees_with_the_decoded_shard(n: int) -> None:
    from pcapdiag.capture import open_capture
    from pcapdiag.decode import decode
    from pcapdiag.shard import quick_shard, shard_of

    checked = 0
    for path in OURS + PUBLIC:
        try:
            frames = list(open_capture(str(path)))
        except CaptureError:
            continue
        for frame in frames:
            quick = quick_shard(frame, n)
            if quick is not None:
                assert quick == shard_of(decode(frame), n), (path, frame.number)
                checked += 1
    assert checked > 1000
