"""Where frames come from: capture files, directories of them, and merged rotations."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcapdiag.errors import CaptureError
from pcapdiag.io.reader import is_url, open_capture
from pcapdiag.io.records import Frame

if TYPE_CHECKING:
    from pcapdiag.io.probe import Probe

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".gz")


def expand_sources(sources: Sequence[str]) -> list[str]:
    """Directories stand for the capture files in them (by suffix, sorted by name); a glob
    pattern that names no file for the captures it matches (sorted); a URL for the captures
    it names (io/remote.py: an object, a prefix or a pattern)."""
    out: list[str] = []
    for src in sources:
        if is_url(src):
            from pcapdiag.io.remote import expand_url  # fsspec: only for URLs

            out += expand_url(src, CAPTURE_SUFFIXES)
        elif src != "-" and not os.path.exists(src) and glob.has_magic(src):
            matched = sorted(p for p in glob.glob(src) if os.path.isfile(p))
            if not matched:
                raise CaptureError(f"{src}: no capture file matches")
            out += matched
        elif src != "-" and os.path.isdir(src):
            found = sorted(
                str(p)
                for p in Path(src).iterdir()
                if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
            )
            if not found:
                raise CaptureError(f"{src}: directory holds no capture files")
            out += found
        else:
            out.append(src)
    return out


def order_by_start(files: list[str]) -> list[str]:
    """The pieces of a rotation in the order of their first frames (as given on a tie)."""
    if "-" in files:
        raise CaptureError("--merge needs files: standard input cannot be merged")

    def start(path: str) -> int:
        # From the file's first bytes (io/probe.py: a range request for a URL); what the
        # probe cannot read (gzip) from its first frame.
        probe = probe_source(path)
        if probe is not None and probe.first_ts_ns is not None:
            return probe.first_ts_ns
        for frame in open_capture(path):
            return frame.ts_ns
        return 0

    return sorted(files, key=start)


def by_directory(files: Sequence[str]) -> list[list[str]]:
    """The files grouped by the directory (or URL prefix) they are in, in the order the
    directories first come: one host's rotated files each, for --merge-by-dir."""
    groups: dict[str, list[str]] = {}
    for src in files:
        folder = src.rpartition("/")[0] if is_url(src) else os.path.dirname(src)
        groups.setdefault(folder, []).append(src)
    return list(groups.values())


def merged_frames(sources: tuple[str, ...], readers: list[Any] | None = None) -> Iterator[Frame]:
    """The frames of `sources` one after the other, numbered on across files."""
    offset = 0
    for src in sources:
        reader = open_capture(src)
        if readers is not None:
            readers.append(reader)
        try:
            last = 0
            for frame in reader:
                last = frame.number
                yield frame if offset == 0 else replace(frame, number=frame.number + offset)
            offset += max(last, getattr(reader, "numbered", last))
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()


def group_size(group: Sequence[str]) -> int | None:
    """The bytes of a capture's files (None: one is standard input or of unknown size)."""
    total = 0
    for src in group:
        if is_url(src):
            from pcapdiag.io.remote import size_of

            size = size_of(src)
        elif src != "-" and os.path.isfile(src):
            size = os.path.getsize(src)
        else:
            size = None
        if size is None:
            return None
        total += size
    return total


def probe_source(source: str) -> Probe | None:
    """The first and last timestamps of a capture from its first and last bytes (io/probe.py;
    for a URL, two range requests); None for standard input or what cannot be probed (the
    analysis then reads it, and says why if it cannot)."""
    from pcapdiag.io.probe import probe_path

    if source == "-":
        return None
    try:
        if is_url(source):
            from pcapdiag.io.remote import probe_url

            return probe_url(source)
        return probe_path(source)
    except (CaptureError, OSError):
        return None
