"""The progress line on stderr for long runs (rich), only when stderr is a terminal.

The CLI owns the clock here: the core reports frames, bytes and open flows from the capture,
and this display turns them into MB/s and a bar when the total size is known.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pcapdiag.cluster import ClusterTally

Callback = Callable[[int, int, int | None], None]


@contextmanager
def progress_display(total_bytes: int | None, enabled: bool) -> Iterator[Callback | None]:
    """Yields the callback to give `analyze(progress=...)`, or None when nothing is shown
    (stderr not a terminal, --quiet)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich is imported only when a bar is shown: it costs a run's start-up otherwise.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = [
        TextColumn("{task.fields[frames]:>12,} frames"),
        TransferSpeedColumn(),
        TextColumn("{task.fields[open]:>9} open flows"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    ]
    # Redrawn by each update, not by a thread of rich's: --jobs forks workers meanwhile, and a
    # process that forks should hold no other thread.
    with Progress(*columns, console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("analyse", total=total_bytes, frames=0, open="0")

        def update(frames: int, nbytes: int, open_flows: int | None) -> None:
            # Under --jobs no process holds every open flow: none is shown.
            held = "-" if open_flows is None else f"{open_flows:,}"
            bar.update(task, completed=nbytes, frames=frames, open=held, refresh=True)

        yield update


@contextmanager
def cluster_progress_display(enabled: bool) -> Iterator[Callable[[ClusterTally], None] | None]:
    """The progress line of a --cluster run: captures done of all, frames and MB/s, updated
    as each capture's tasks end (a capture's frames count once it is done). None when
    nothing is shown (stderr not a terminal, --quiet)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [
        TextColumn("captures"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[frames]:>12,} frames"),
        TextColumn("{task.fields[rate]:>10}"),
        TextColumn("{task.fields[workers]} workers"),
        TimeElapsedColumn(),
    ]
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("cluster", total=None, frames=0, rate="", workers="-")

        def update(tally: ClusterTally) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{tally.bytes / elapsed / 1e6:.1f} MB/s" if elapsed > 0 else ""
            bar.update(
                task,
                total=tally.files_total,
                completed=tally.files_done,
                frames=tally.frames,
                rate=rate,
                workers=tally.workers,
            )

        yield update
