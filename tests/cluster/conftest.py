"""A real Dask cluster (a LocalCluster of two worker processes, reached over TCP like a
remote scheduler) and a real S3-compatible server (moto's standalone server over HTTP on
loopback) for the tests of --cluster and of captures by URL.

The server is started first: the workers are processes of their own, which take the
endpoint and the (fake) credentials from the environment they are started with, as workers
of a real fleet take theirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "fleet-captures"

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "pcapdiag-test",
    "AWS_SECRET_ACCESS_KEY": "pcapdiag-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, the environment pointing S3 clients at it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL_S3")}
    try:
        _wait_for_port(port, proc, "moto's S3 server")
        os.environ.update(S3_ENV, AWS_ENDPOINT_URL_S3=endpoint)
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def scheduler(s3_endpoint: str) -> Iterator[str]:
    """The address (tcp://127.0.0.1:PORT) of a LocalCluster of two single-thread worker
    processes, started once for the session, after the S3 server (see the module's
    docstring)."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address
