"""Reading captures back with tshark, the reference for what Wireshark shows (frame numbers,
times, lengths, packet comments)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None,
    reason="tshark is not installed (Debian: apt-get install tshark); CI installs it",
)


def tshark(*args: str | Path) -> str:
    """tshark's standard output; a failed run fails the test with its standard error."""
    proc = subprocess.run(
        ["tshark", *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fields(path: Path, *names: str, display_filter: str | None = None) -> list[list[str]]:
    """One row per frame: the fields asked for, tab-separated by tshark."""
    args: list[str | Path] = ["-r", path, "-T", "fields"]
    if display_filter is not None:
        args += ["-Y", display_filter]
    for name in names:
        args += ["-e", name]
    return [line.split("\t") for line in tshark(*args).splitlines()]


def comments(path: Path) -> dict[int, list[str]]:
    """Each commented frame's comments, one by one (tshark's JSON keeps them apart, where its
    fields output would join them with commas)."""
    rows = json.loads(tshark("-r", path, "-T", "json", "-e", "frame.number", "-e", "frame.comment"))
    out: dict[int, list[str]] = {}
    for row in rows:
        layers = row["_source"]["layers"]
        if "frame.comment" in layers:
            out[int(layers["frame.number"][0])] = layers["frame.comment"]
    return out
