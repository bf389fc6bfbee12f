"""RSTs on the fast paths: a RST without TCP options is decoded there (Python and C alike)
with its IPv4 Identification, one with options goes to the general decoder, which reads them;
every path gives the same Segment. Frames are built packet by packet: a RST with a chosen IP
ID (0x1234) and one with a timestamps option."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from pcapdiag.accel.fast_decode import decode_fast
from pcapdiag.api import analyze
from pcapdiag.decode.link import decode
from pcapdiag.io.records import Frame
from pcapdiag.settings import Settings

RST_ID = 0x1234


def _frame(options: list) -> Frame:
    pkt = (
        Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
        / IP(src="10.0.0.2", dst="10.0.0.1", id=RST_ID, ttl=61)
        / TCP(sport=80, dport=40000, seq=5001, ack=1001, flags="RA", window=0, options=options)
    )
    data = bytes(pkt)
    return Frame(1, 0, 1, data, len(data))


@pytest.mark.parametrize("options", [[], [("Timestamp", (7, 9))]], ids=["bare", "timestamps"])
def test_the_fast_decoder_gives_the_general_decoders_rst(options: list) -> None:
    frame = _frame(options)
    fast, general = decode_fast(frame), decode(frame)
    assert fast == general
    assert general.ip_id == RST_ID  # type: ignore[union-attr]
    assert (general.options is not None) == bool(options)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "settings",
    [Settings(), Settings(accelerate=False), Settings(accelerate=False, fast_decode=False)],
    ids=["c-batches", "python-fast", "general"],
)
def test_every_path_reads_a_refusing_rsts_ip_id(
    settings: Settings, builtin_rules, tmp_path
) -> None:
    # A SYN answered by the RST|ACK above: the RST is its sender's only packet, so the
    # finding keeps it for the report's end (findings/hosts.py), IP ID included.
    syn = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64)
        / TCP(sport=40000, dport=80, seq=1000, flags="S", options=[("MSS", 1460)])
    )
    rst = Ether(_frame([]).data)
    syn.time, rst.time = 1_700_000_000.0, 1_700_000_000.001
    path = tmp_path / "refused.pcap"
    wrpcap(str(path), [syn, rst])
    (f,) = analyze([str(path)], builtin_rules, settings=settings).findings
    assert f.rst_claim is not None and f.rst_claim.ip_id == RST_ID
