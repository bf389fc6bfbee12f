"""Captures in object storage: listed by the client, fetched in ranges by the workers, the
report the one a local run makes of the same files (but for where the files are named)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcapdiag.api import Cluster, analyze
from pcapdiag.errors import CaptureError
from pcapdiag.findings.model import Report
from pcapdiag.io import remote
from pcapdiag.io.sources import expand_sources
from pcapdiag.render.text import iter_json, to_text
from tests.cluster.conftest import BUCKET

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples" / "demo.pcap"
RECORDED = sorted((ROOT / "samples" / "recorded").glob("*/client.pcap"))[:5]


@pytest.fixture(scope="module")
def fleet(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A day of captures in the bucket: key -> the local file uploaded there. One is gzip'd,
    one is larger than remote.FETCH (so that it is fetched in several ranges)."""
    import boto3

    tmp = tmp_path_factory.mktemp("fleet")
    gz = tmp / "demo.pcap.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes()))
    big = tmp / "big.pcap"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "generate.py"),
            "--frames",
            "20000",
            "--seed",
            "5",
            "--out",
            str(big),
        ],
        check=True,
        capture_output=True,
    )
    assert big.stat().st_size > remote.FETCH
    files = {"day/a-demo.pcap": DEMO, "day/b-demo.pcap.gz": gz, "day/c-big.pcap": big}
    for i, path in enumerate(RECORDED):
        files[f"day/host{i}/client.pcap"] = path
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for key, path in files.items():
        s3.upload_file(str(path), BUCKET, key)
    s3.put_object(Bucket=BUCKET, Key="day/README.txt", Body=b"not a capture")
    yield files


def _as_urls(report: Report, files: dict[str, Path]) -> tuple[str, str]:
    """The JSON and text of a local report with each file named by its URL."""
    json_text = "".join(iter_json(report))
    text = to_text(report)
    for key, path in files.items():
        json_text = json_text.replace(f'"{path}', f'"s3://{BUCKET}/{key}')
        text = text.replace(str(path), f"s3://{BUCKET}/{key}")
    return json_text, text


def test_a_prefix_lists_its_captures(fleet: dict[str, Path]) -> None:
    urls = expand_sources([f"s3://{BUCKET}/day/"])
    assert urls == sorted(f"s3://{BUCKET}/{k}" for k in fleet)  # README.txt is no capture
    assert expand_sources([f"s3://{BUCKET}/day/host*/client.pcap"]) == [
        f"s3://{BUCKET}/day/host{i}/client.pcap" for i in range(len(RECORDED))
    ]
    with pytest.raises(CaptureError, match="no capture matches"):
        expand_sources([f"s3://{BUCKET}/day/*.pcapng"])


def test_the_report_from_s3_through_the_cluster_is_the_local_one(
    fleet: dict[str, Path], scheduler: str, builtin_rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = sorted(fleet)
    local = analyze([str(fleet[k]) for k in keys], builtin_rules)

    # The workers fetch the objects: this process lists them, and never opens one.
    def refuse(url: str) -> None:
        raise AssertionError(f"the client fetched {url}")

    monkeypatch.setattr(remote, "open_remote", refuse)
    remote_report = analyze([f"s3://{BUCKET}/day/"], builtin_rules, cluster=Cluster(scheduler))
    assert [c.path for c in remote_report.captures] == [f"s3://{BUCKET}/{k}" for k in keys]
    # The sha256 is the object's, taken as the worker fetched it.
    assert [c.sha256 for c in remote_report.captures] == [c.sha256 for c in local.captures]
    assert all(c.sha256 for c in remote_report.captures)
    json_text, text = _as_urls(local, fleet)
    assert "".join(iter_json(remote_report)) == json_text
    assert to_text(remote_report) == text


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (start, end) of every range request s3fs makes in this process."""
    import s3fs

    asked: list[tuple[int, int]] = []
    fetch = s3fs.core.S3File._fetch_range

    def recorded(self: s3fs.core.S3File, start: int, end: int) -> bytes:
        asked.append((start, end))
        return fetch(self, start, end)

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", recorded)
    return asked


def test_a_worker_fetches_in_ranges(fleet: dict[str, Path], ranges: list[tuple[int, int]]) -> None:
    # What a worker runs for each object: range requests of about remote.FETCH bytes that
    # together cover the object once, never the object in one request.
    reader = remote.open_remote(f"s3://{BUCKET}/day/c-big.pcap")
    try:
        frames = sum(1 for _ in reader)
    finally:
        reader.close()
    size = fleet["day/c-big.pcap"].stat().st_size
    assert frames == 20000
    assert len(ranges) >= size // remote.FETCH
    assert all(end - start <= 2 * remote.FETCH for start, end in ranges)
    assert sorted(ranges)[0][0] == 0 and max(end for _s, end in ranges) >= size


def test_a_missing_object_fails_its_capture_only(
    fleet: dict[str, Path], scheduler: str, builtin_rules
) -> None:
    missing = f"s3://{BUCKET}/day/gone.pcap"
    report = analyze(
        [f"s3://{BUCKET}/day/a-demo.pcap", missing], builtin_rules, cluster=Cluster(scheduler)
    )
    [failed] = report.failed_captures
    assert failed.message.startswith(f"{missing}: not analysed, failed on worker tcp://")
    assert "not found" in failed.message
    assert [c.path for c in report.captures] == [f"s3://{BUCKET}/day/a-demo.pcap"]
    assert any(f.rule == "PD-TCP-006" for f in report.findings)


def test_the_cli_reads_a_url_without_a_cluster(fleet: dict[str, Path], capsys) -> None:
    from tests.cluster.test_cluster import _run

    code, local, _ = _run(capsys, "analyze", "--format", "json", DEMO)
    code_url, remote_out, err = _run(
        capsys, "analyze", "--format", "json", f"s3://{BUCKET}/day/a-demo.pcap"
    )
    assert (code, code_url, err) == (0, 0, "")
    assert remote_out == local.replace(f'"{DEMO}', f'"s3://{BUCKET}/day/a-demo.pcap')


def test_a_file_outside_the_span_costs_two_ranges(
    fleet: dict[str, Path], builtin_rules, ranges: list[tuple[int, int]]
) -> None:
    # --since a day after the big object ends: its head and tail are read (64 and 256 KiB,
    # io/probe.py), never the object, and the report says it was not read.
    from pcapdiag.io.probe import probe_path
    from pcapdiag.selection import Selection, TimeBound

    big = fleet["day/c-big.pcap"]
    last = probe_path(str(big)).last_ts_ns
    assert last is not None
    url = f"s3://{BUCKET}/day/c-big.pcap"
    span = Selection(since=TimeBound(at_ns=last + 86_400 * 10**9))
    report = analyze([url], builtin_rules, selection=span)
    assert report.skipped == [url] and report.captures == []
    assert len(ranges) == 2 and sum(end - start for start, end in ranges) <= 320 << 10
