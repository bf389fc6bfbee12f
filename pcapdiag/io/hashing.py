"""The sha256 of capture files, computed beside the analysis (the report carries it)."""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Callable, Iterable


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
    """hash_files(sources) on a thread of its own; result() waits for it. `where(source)`:
    the path to read a source from (the source itself by default)."""

    def __init__(self, sources: Iterable[str], where: Callable[[str], str] = str) -> None:
        self._sources = tuple(sources)
        self._where = where
        self._hashes: dict[str, str | None] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        paths = {src: self._where(src) for src in self._sources}
        found = hash_files(paths.values())
        self._hashes = {src: found[path] for src, path in paths.items()}

    def result(self) -> dict[str, str | None]:
        self._thread.join()
        return self._hashes


def file_sha256(source: str) -> str | None:
    """The sha256 of a capture file (hex), None for standard input or what is not a file."""
    if source == "-" or not os.path.isfile(source):
        return None
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return h.hexdigest()
        # Hashed where the pages lie (the reader maps the same file): read() would copy
        # every byte through the kernel, which cost a third of the hashing's time. In large
        # pieces: the hashing thread takes the GIL once per update, and each time may wait a
        # switch interval for the analysis to let it go.
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm, memoryview(mm) as view:
            for start in range(0, size, _HASH_CHUNK):
                h.update(view[start : start + _HASH_CHUNK])
    return h.hexdigest()


_HASH_CHUNK = 16 << 20
