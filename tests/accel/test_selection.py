"""A selection of packets with the accelerator's first pass (pcapdiag/selection.py,
accel/_triage.c sel_*): the pass sets aside the frames a selection leaves out, without
counting them, as Python leaves them out; the report, the services included, is the same as
without the pass, on bench/generate.py's realistic capture (hundreds of failures of every
kind, IPv6, VLANs, DNS) for selections of every kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.io.reader import open_capture
from pcapdiag.render.text import to_json
from pcapdiag.selection import Selection, parse_host, parse_time
from pcapdiag.settings import NO_ACCEL, Settings

triage = pytest.importorskip("pcapdiag.accel.triage")
if not triage.available():
    pytest.skip("the accelerator is not built", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("selection") / "gen.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench/generate.py"), "--frames", "60000", "--out", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def _some_ends(path: Path, builtin_rules) -> tuple[str, str]:
    """A failing connection's server and client address (the first finding's)."""
    f = analyze([str(path)], builtin_rules).findings[0]
    return f.flow.server.rpartition(":")[0], f.flow.client.rpartition(":")[0]


def _everything(report) -> tuple[object, object]:
    doc = json.loads(to_json(report))
    for cap in doc["captures"]:
        cap.pop("sha256", None)
    services = {
        key: (s.connections, s.failed, s.others, sorted(s.calls.items()), s.first_failure_ns)
        for key, s in report.services.by.items()
    }
    return doc, services


SELECTIONS = {
    "server": lambda server, client: Selection(hosts=frozenset({parse_host(server)})),
    "client": lambda server, client: Selection(hosts=frozenset({parse_host(client)})),
    "ports": lambda server, client: Selection(ports=frozenset({443, 53})),
    "since": lambda server, client: Selection(since=parse_time("20s")),
    "until": lambda server, client: Selection(until=parse_time("30s")),
    "span": lambda server, client: Selection(
        since=parse_time("2023-11-14T22:13:30Z"), until=parse_time("2023-11-14T22:13:50Z")
    ),
    "server-port": lambda server, client: Selection(
        hosts=frozenset({parse_host(server)}), ports=frozenset({443})
    ),
}


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_the_same_report_with_and_without_the_pass(generated, builtin_rules, name) -> None:
    selection = SELECTIONS[name](*_some_ends(generated, builtin_rules))
    with_pass, without = (
        _everything(analyze([str(generated)], builtin_rules, selection=selection, settings=s))
        for s in (Settings(), NO_ACCEL)
    )
    assert with_pass == without
    assert with_pass[0]["summary"]["tcp_connections"] > 0


def test_the_pass_runs_and_sets_the_rest_aside(generated, builtin_rules) -> None:
    # Port 53 only: the TCP frames are set aside, none of them counted (own: the plain
    # flows' frames only, which count toward the flow table's sweeps).
    selection = Selection(ports=frozenset({53}))
    with open_capture(str(generated)) as reader:
        (plan,) = triage.first_pass(reader, builtin_rules, {}, 1, None, selection=selection)
    skipped = sum(bin(b).count("1") for b in plan.bits)
    own = sum(bin(b).count("1") for b in plan.own)
    assert plan.plain == 0 and plan.plain_udp > 0
    # Most of the 60,000 frames are TCP (bench/generate.py: DNS is a small share).
    assert skipped > own > 0 and skipped > 30_000
