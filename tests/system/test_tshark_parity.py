"""pcapdiag and tshark agree on the committed test captures: the same number of frames, and the
same packets per TCP connection and per UDP flow (ICMP error frames are in neither count:
pcapdiag attaches them to the flow they quote without counting them in `packets`)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pcapdiag.api import analyze

ROOT = Path(__file__).resolve().parents[2]
NOT_ICMP = "!icmp && !icmpv6"

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def captures() -> list[Path]:
    found = sorted(ROOT.glob("rules/*/*.pcap")) + sorted(ROOT.glob("tests/captures/*.pcap"))
    samples = ROOT / "samples"
    if samples.is_dir():
        found += sorted(
            p
            for p in samples.rglob("*")
            if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".pcap.gz"))
        )
    return found


CAPTURES = captures()
IDS = [str(p.relative_to(ROOT)) for p in CAPTURES]


def tshark(*args: str) -> list[list[str]]:
    proc = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [ln.split("\t") for ln in proc.stdout.splitlines() if ln.strip()]


def tshark_streams(path: Path) -> tuple[Counter[str], Counter[str]]:
    """(tcp.stream -> frames, udp.stream -> frames) over the frames that are not ICMP."""
    rows = tshark(
        "-r",
        str(path),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "tcp.stream",
        "-e",
        "udp.stream",
        "-Y",
        NOT_ICMP,
    )
    tcp: Counter[str] = Counter()
    udp: Counter[str] = Counter()
    for row in rows:
        row += [""] * (3 - len(row))
        if row[1]:
            tcp[row[1]] += 1
        elif row[2]:
            udp[row[2]] += 1
    return tcp, udp


def tshark_frames(path: Path) -> int:
    return len(tshark("-r", str(path), "-T", "fields", "-e", "frame.number"))


_OURS: dict[Path, tuple[int, list[int], list[int]]] = {}


def ours(path: Path, rules) -> tuple[int, list[int], list[int]]:
    """(frames, sorted packets per TCP connection, sorted packets per UDP flow)."""
    if path not in _OURS:
        rep = analyze([str(path)], rules, keep_flows=True)
        tcp = sorted(f.packets for f in rep.flows if f.proto == "tcp")
        udp = sorted(f.packets for f in rep.flows if f.proto == "udp")
        _OURS[path] = (rep.frames, tcp, udp)
    return _OURS[path]


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 29


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_frame_count(path: Path, builtin_rules) -> None:
    frames, _, _ = ours(path, builtin_rules)
    assert frames == tshark_frames(path)


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_packets_per_connection(path: Path, builtin_rules) -> None:
    _, tcp, udp = ours(path, builtin_rules)
    ts_tcp, ts_udp = tshark_streams(path)
    assert tcp == sorted(ts_tcp.values())
    assert udp == sorted(ts_udp.values())


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_packets_per_connection_without_icmp(path: Path, builtin_rules, tmp_path: Path) -> None:
    """The same comparison with the ICMP frames removed before tshark tracks streams (so the
    quoted headers cannot influence it); holds for every capture."""
    stripped = tmp_path / "no-icmp.pcap"
    tshark("-r", str(path), "-Y", NOT_ICMP, "-F", "pcap", "-w", str(stripped))
    _, tcp, udp = ours(path, builtin_rules)
    ts_tcp, ts_udp = tshark_streams(stripped)
    assert tcp == sorted(ts_tcp.values())
    assert udp == sorted(ts_udp.values())
