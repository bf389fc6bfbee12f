"""pcapdiag against the real kernel: recordings of real sockets failing in network namespaces
(samples/record.py), each with a truth file listing every socket call and what it returned.

For each capture (client.pcap, server.pcap) and each socket of the host where it was taken:
the first errno pcapdiag reports for that connection and side must be exactly the first errno
the real socket returned (and its call), with the origin the scenario records or unknown, and
a socket that saw no error gets no errno. Where
the capture alone cannot show the truth, truth.json says so (`capture_limits`, with a reason)
and states what pcapdiag must report instead (`expect`).

PCAPDIAG_RECORDINGS points the test at another set (CI re-records into a temporary folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pcapdiag.api import analyze

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = Path(os.environ.get("PCAPDIAG_RECORDINGS", ROOT / "samples/recorded"))
TRUTHS = sorted(RECORDINGS.glob("*/truth.json"))
CASES = [
    (t, host)
    for t in TRUTHS
    for host in ("client", "server")
    # a host with no socket of its own (a router REJECT test: the server never sees the SYN)
    if any(
        s["host"] == host and s["role"] != "listener" for s in json.loads(t.read_text())["sockets"]
    )
]


def _first_error(sock: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in sock["calls"] if c["result"] == "error"), None)


def _check_socket(sock: dict[str, Any], instance: int, truth: dict[str, Any], report) -> str:
    """'' when pcapdiag is right about this socket, else what is wrong. The errno is the one
    the finding names on its own platform (inferred with --platform auto): it must be
    Linux's, and a claim about the capturing host's own socket is never low confidence."""
    side = "client" if sock["role"] == "client" else "server"
    client, server = (
        (sock["local"], sock["remote"]) if side == "client" else (sock["remote"], sock["local"])
    )
    mine = [
        f
        for f in report.findings
        if f.flow.proto == sock["proto"]
        and (f.flow.client, f.flow.server, f.flow.instance) == (client, server, instance)
        and f.side == side
        and (p := f.primary()) is not None
        and p.errno is not None
    ]
    if not mine and sock["proto"] == "tcp" and side == "client":
        # A connect() whose SYN never reached the wire (it waited for an ARP / NDP answer
        # that never came): the finding is on the requester's neighbour run, for the
        # destination itself or the gateway of the route to it (PD-NET-001).
        local = sock["local"].rpartition(":")[0]
        mine = [
            f
            for f in report.findings
            if f.flow.proto == "neighbour"
            and f.flow.client.rpartition(":")[0] == local
            and (p := f.primary()) is not None
            and p.errno is not None
        ]
    mine.sort(key=lambda f: (f.first_ts_ns, f.frames))
    got = mine[0].primary() if mine else None
    limit = truth.get("capture_limits", {}).get(f"{sock['host']} {sock['local']}", {})
    if "expect" in limit:
        want = limit["expect"]
    else:
        first = _first_error(sock)
        want = (
            {"errno": None} if first is None else {"call": first["call"], "errno": first["errno"]}
        )
    label = f"{sock['host']} {sock['role']} {sock['local']} -> {sock['remote']}"
    if want["errno"] is None:
        return "" if got is None else f"{label}: no error expected, pcapdiag says {got.errno}"
    if got is None:
        return f"{label}: expected {want}, pcapdiag reports no errno"
    if got.errno != want["errno"] or ("call" in want and got.call != want["call"]):
        return f"{label}: expected {want}, pcapdiag says {got.call} {got.errno} ({mine[0].rule})"
    f = mine[0]
    # Who caused it: the truth's origin, or unknown when the capture cannot tell; never the
    # wrong one (truth.json "origin", from the scenario: samples/record/scenarios.py).
    origin = truth.get("origin_by_host", {}).get(sock["host"], truth.get("origin"))
    if origin is not None and f.origin.actor not in (origin, "unknown"):
        return f"{label}: origin {f.origin.actor} ({f.origin.why}), the truth says {origin}"
    if f.platform.name != "linux":
        return f"{label}: taken for {f.platform.name} ({f.platform.why})"
    if f.confidence.level == "low":
        return f"{label}: {got.errno} at low confidence: {'; '.join(f.confidence.reasons)}"
    return ""


@pytest.mark.parametrize("platform", ["auto", "linux"])
@pytest.mark.parametrize(
    ("truth_path", "host"), CASES, ids=[f"{t.parent.name}:{h}" for t, h in CASES]
)
def test_pcapdiag_agrees_with_the_kernel(
    truth_path: Path, host: str, platform: str, builtin_rules
) -> None:
    truth = json.loads(truth_path.read_text())
    sockets = [s for s in truth["sockets"] if s["host"] == host and s["role"] != "listener"]
    pcap = truth_path.parent / f"{host}.pcap"
    report = analyze([str(pcap)], builtin_rules, platform=platform)
    assert not report.damaged
    seen: dict[tuple[str, str, str], int] = {}
    problems = []
    for sock in sockets:
        key = (sock["proto"], sock["local"], sock["remote"])
        seen[key] = instance = seen.get(key, 0) + 1  # port reuse: 2nd socket, 2nd connection
        problems.append(_check_socket(sock, instance, truth, report))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_every_failing_scenario_records_its_origin() -> None:
    for t in TRUTHS:
        truth = json.loads(t.read_text())
        failed = any(c["result"] == "error" for s in truth["sockets"] for c in s["calls"])
        if failed:
            assert truth.get("origin") in ("peer", "local", "network"), t.parent.name
            for actor in truth.get("origin_by_host", {}).values():
                assert actor in ("peer", "local", "network"), t.parent.name


def test_the_recorded_set_covers_the_scenarios() -> None:
    names = {t.parent.name for t in TRUTHS}
    required = {
        "orderly-close",
        "half-close",
        "lossy-transfer",
        "keepalive-answered",
        "refused",
        "reject-port-unreachable",
        "reject-host-unreachable",
        "reject-net-unreachable",
        "reject-proto-unreachable",
        "reject-host-prohibited",
        "reject-net-prohibited",
        "reject-admin-prohibited",
        "reject-no-route-v6",
        "reject-adm-prohibited-v6",
        "reject-addr-unreachable-v6",
        "reject-port-unreachable-v6",
        "reject-policy-fail-v6",
        "reject-reject-route-v6",
        "syn-timeout",
        "data-timeout",
        "data-timeout-icmp",
        "keepalive-timeout",
        "user-timeout",
        "linger0-close",
        "close-unread",
        "epipe",
        "peer-lost-state",
        "rst-before-accept",
        "server-killed",
        "server-killed-unread",
        "udp-closed",
        "port-reuse",
        "listener-closed-queued",
        "shutdown-then-rst",
        "close-then-timeout",
        "shutdown-then-timeout",
    }
    assert required <= names, sorted(required - names)


@pytest.mark.parametrize("truth_path", TRUTHS, ids=[t.parent.name for t in TRUTHS])
def test_syn_cookies_only_where_the_listener_used_them(truth_path: Path, builtin_rules) -> None:
    # tcp_syncookies=2 (the syncookies scenarios): every SYN-ACK is a cookie's, and Linux
    # leaves its TSval 0-63 ms behind the clock, uniformly: a lag under 3 ms (about 1 in 20
    # connections) is not counted, so of three connections at least one must be found, on
    # the server's host, and on the client's where the TSval holds the options (no random
    # offset: syncookies-ts-nooffset). No other scenario's listener used cookies (their SYN
    # queues never filled: the backlog scenarios overflow the accept queue, where Linux
    # drops SYNs instead), so none may be claimed there.
    name = truth_path.parent.name
    for host in ("client", "server"):
        pcap = truth_path.parent / f"{host}.pcap"
        found = [f for f in analyze([str(pcap)], builtin_rules).findings if f.rule == "PD-TCP-022"]
        if name == "syncookies-ts-nooffset" or (name == "syncookies" and host == "server"):
            assert found, f"{pcap}: no cookie found"
            assert all(f.primary() is None for f in found)
        else:
            assert not found, [f.cause for f in found]
