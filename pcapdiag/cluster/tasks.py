"""What a worker of the cluster runs: one capture (or merged group), or one share of its
flows, through session.analyze_shard, as one process of a local run would."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pcapdiag
from pcapdiag.errors import CaptureError
from pcapdiag.findings.collect import FindingCollector
from pcapdiag.findings.model import Report
from pcapdiag.io.hashing import _Hashing
from pcapdiag.io.reader import is_url
from pcapdiag.session import Analysis, analyze_shard


@dataclass(slots=True)
class Part:
    """What one task made: its report and findings, or why it could not."""

    group: int  # the capture's (or merged group's) place among the run's
    shard: tuple[int, int]  # (share, shares)
    worker: str  # the worker's address, for the message of a failure
    report: Report | None = None
    collector: FindingCollector | None = None
    error: str | None = None


def analyze_task(
    analysis: Analysis, group: int, sources: Sequence[str], shard: tuple[int, int]
) -> Part:
    """Share `shard` of the capture `sources` (one file, or a merged group in order). Share 0
    of several hashes the files too (a whole capture is hashed by analyze_shard itself)."""
    part = Part(group, shard, _worker_address())
    k, n = shard
    # As in api.run_analysis: the objects made per packet hold no reference cycles, and the
    # cyclic collector would only cost time.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        local = [s for s in sources if not is_url(s)]
        wanted = n > 1 and k == 0 and analysis.hash_captures
        hashing = _Hashing(local, analysis.where) if wanted else None
        report, collector = analyze_shard(analysis, [list(sources)], shard=shard if n > 1 else None)
        if hashing is not None:
            hashes = hashing.result()
            for info in report.captures:
                if info.sha256 is None:
                    info.sha256 = hashes.get(info.path)
        collector.trim()  # what can still be listed: less to send
        part.report, part.collector = report, collector
    except CaptureError as exc:
        part.error = str(exc)
    except MemoryError:
        part.error = "out of memory"
    except Exception as exc:  # a bug: reported with the capture, the run goes on
        part.error = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        if gc_was_on:
            gc.enable()
    return part


def code_identity() -> str:
    """pcapdiag's version and a digest of its code (the Python modules and compiled
    accelerator of this installation): what a worker must share with the client, whose
    parts it would otherwise send back in another shape. Computed once per process."""
    global _IDENTITY
    if _IDENTITY is None:
        h = hashlib.sha256()
        root = Path(pcapdiag.__file__).parent
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".so", ".pyd") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        _IDENTITY = f"{pcapdiag.__version__}+{h.hexdigest()[:12]}"
    return _IDENTITY


_IDENTITY: str | None = None


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "this process"
