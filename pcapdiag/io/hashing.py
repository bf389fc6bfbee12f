"""The sha256 of capture files, computed beside the analysis (the report carries it)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable


def hash_files(sources: Iterable[str]) -> dict[str, str | None]:
    """The sha256 of each capture file; None for standard input, what is not a file, or a
    file that cannot be read (its reader reports why)."""
    hashes: dict[str, str | None] = {}
    for src in sources:
        try:
            hashes[src] = file_sha256(src)
        except OSError:
            hashes[src] = None
    return hashes


class _Hashing:
    """hash_files(sources) on a thread of its own; result() waits for it."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._sources = tuple(sources)
        self._hashes: dict[str, str | None] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._hashes = hash_files(self._sources)

    def result(self) -> dict[str, str | None]:
        self._thread.join()
        return self._hashes


def file_sha256(source: str) -> str | None:
    """The sha256 of a capture file (hex), None for standard input or what is not a file."""
    if source == "-" or not os.path.isfile(source):
        return None
    h = hashlib.sha256()
    # Large reads into one buffer: the hashing thread takes the GIL once per read, and each
    # time may wait a switch interval (sys.getswitchinterval()) for the analysis to let it
    # go: with small reads, the hash of a large file would finish well after the analysis.
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    with open(source, "rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


_HASH_CHUNK = 16 << 20
