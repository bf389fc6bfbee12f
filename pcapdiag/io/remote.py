"""Captures where they live: URLs that fsspec knows (s3://, gs://, https://, ...) and glob
patterns over them.

Each worker of a cluster fetches its own captures, in ranges of FETCH bytes, into a temporary
file of its own machine, hashing the bytes as they come: the report's sha256 is that of the
object, as for a local file, and the file is then read as a local one (mapped whole, so that
the accelerator's first pass reads it too). Nothing goes through the machine that started the
run but the listing. Credentials come from each filesystem's own environment and
configuration (for S3: AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config, AWS_ENDPOINT_URL...;
fsspec's FSSPEC_<PROTOCOL>_<OPTION> variables), never from pcapdiag's command line.
"""

from __future__ import annotations

import glob
import hashlib
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pcapdiag.errors import CaptureError
from pcapdiag.io.reader import CaptureReader, open_error, open_file

if TYPE_CHECKING:
    from pcapdiag.io.probe import Probe

# Bytes asked for in one range request: large enough that the round trip is a small part of
# each, small enough that a worker's buffer stays small.
FETCH = 8 << 20
# What a probe of the first and last timestamps reads at a time (io/probe.py reads at most
# 256 KiB at each end).
PROBE_BLOCK = 256 << 10


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of `url`; CaptureError when fsspec (or the filesystem's
    own package, s3fs for s3://) is not installed."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise CaptureError(
            f"{url}: reading URLs needs fsspec: pip install 'pcapdiag[cluster]'"
        ) from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise CaptureError(f"{url}: {exc}") from None


def open_remote(url: str) -> CaptureReader:
    """Fetch the capture at `url` into a temporary file (deleted when the reader closes) and
    open it as a local capture, its sha256 taken on the way."""
    fs, path = _filesystem(url)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the reader
    try:
        digest = _fetch(url, fs, path, spool.write)
        spool.flush()
        spool.seek(0)
        reader = open_file(url, spool)
    except BaseException:
        spool.close()
        raise
    reader.sha256 = digest
    return reader


def _fetch(url: str, fs: Any, path: str, write: Callable[[bytes], Any]) -> str:
    """Copy the object at `path` of `fs` to `write`, FETCH bytes at a time (a range request
    each); the sha256 of it all. What the filesystem raises becomes a CaptureError naming
    the URL."""
    h = hashlib.sha256()
    try:
        with fs.open(path, "rb", block_size=FETCH) as fh:
            while chunk := fh.read(FETCH):
                h.update(chunk)
                write(chunk)
    except OSError as exc:
        raise open_error(url, exc) from None
    return h.hexdigest()


def expand_url(url: str, suffixes: tuple[str, ...]) -> list[str]:
    """The captures `url` names: itself, the objects a glob pattern matches, or those under a
    prefix ending in "/" or naming a directory (by suffix), each as a URL, sorted."""
    fs, path = _filesystem(url)
    try:
        if glob.has_magic(path):
            found = fs.glob(path, detail=True)
        elif url.endswith("/") or fs.isdir(path):
            listed = fs.find(path, detail=True)
            found = {p: info for p, info in listed.items() if p.lower().endswith(suffixes)}
            if not found:
                raise CaptureError(f"{url}: holds no capture files")
        else:
            return [url]
    except CaptureError:
        raise
    except PermissionError:
        raise CaptureError(f"{url}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{url}: cannot list ({exc})") from None
    if not found:
        raise CaptureError(f"{url}: no capture matches")
    urls = {fs.unstrip_protocol(p): info.get("size") for p, info in found.items()}
    _LISTED_SIZES.update((u, int(n)) for u, n in urls.items() if n is not None)
    return sorted(urls)


# The sizes a listing gave (expand_url), so that the run's sizes cost no request per object.
_LISTED_SIZES: dict[str, int] = {}


def size_of(url: str) -> int | None:
    """The bytes of the object at `url` (from its listing, else asked for), None when the
    filesystem does not say."""
    if url in _LISTED_SIZES:
        return _LISTED_SIZES[url]
    fs, path = _filesystem(url)
    try:
        size = fs.size(path)
    except (OSError, ValueError):
        return None
    return int(size) if size is not None else None


def probe_url(url: str) -> Probe:
    """io/probe.py's first and last timestamps of the object at `url`, from a range at its
    head and one at its tail (never the whole object)."""
    from pcapdiag.io.probe import probe_file

    fs, path = _filesystem(url)
    try:
        with fs.open(path, "rb", block_size=PROBE_BLOCK, cache_type="none") as fh:
            return probe_file(fh, int(fh.size))
    except OSError as exc:
        raise open_error(url, exc) from None
