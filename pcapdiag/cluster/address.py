"""Which cluster --cluster names, and the Dask client that runs on it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# How long a run waits for a scheduler to answer, and for a started cluster's workers.
CONNECT_TIMEOUT_S = 30


class ClusterError(Exception):
    """A cluster that cannot be used: a bad address, no scheduler there, no workers, Dask
    not installed (the message says which)."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A running scheduler's `address` (tcp://host:8786), or `workers` processes to start on
    this machine (local[:N])."""

    address: str | None = None
    workers: int | None = None

    def __str__(self) -> str:
        return self.address if self.address is not None else f"local:{self.workers}"


def parse_cluster(spec: str) -> ClusterSpec:
    """--cluster's value: `local` (a worker per CPU this process may use), `local:N`, or a
    scheduler's address (`tcp://host:8786`, `host:8786`, any protocol Dask speaks)."""
    if spec == "local":
        return ClusterSpec(workers=_cpus())
    if spec.startswith("local:"):
        count = spec.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ClusterError(f"--cluster {spec}: local:N needs a number of workers, 1 or more")
        return ClusterSpec(workers=int(count))
    host = spec.partition("://")[2] if "://" in spec else spec
    if not host or host.startswith(":"):
        raise ClusterError(
            f"--cluster {spec}: not a scheduler address (tcp://host:8786) nor local[:N]"
        )
    return ClusterSpec(address=spec)


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Any]:
    """A dask.distributed Client on the cluster `spec` names, with its workers up; a started
    cluster is shut down on the way out, a running one is left running."""
    try:
        import dask.config
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "--cluster needs dask.distributed: pip install 'pcapdiag[cluster]'"
        ) from None
    # Dask's own log lines (a worker started, a connection closed) are not this tool's output.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if spec.workers is not None:
        # One thread a worker: the analysis holds the GIL, so more threads would only wait.
        # Without Dask's statistical profiler, which samples the task's stack every 10 ms
        # and cost the analysis 15 to 20% here (the workers take this config with them).
        with (
            dask.config.set({"distributed.worker.profile.enabled": False}),
            LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                # A free port for the scheduler's HTTP server (health, and the dashboard
                # when bokeh is installed): the default 8787 may be taken, with a warning.
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            ) as cluster,
            Client(cluster) as client,
        ):
            client.wait_for_workers(spec.workers, timeout=CONNECT_TIMEOUT_S)
            yield client
        return
    try:
        client = Client(spec.address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"--cluster {spec.address}: no scheduler answers ({exc})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(
                f"--cluster {spec.address}: the scheduler has no workers "
                f"(none joined within {CONNECT_TIMEOUT_S} s)"
            ) from None
        yield client


def worker_threads(client: Any) -> int:
    """The threads of every worker of the cluster: how many tasks run at once."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sum(w.get("nthreads", 1) for w in workers.values()) or 1


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
