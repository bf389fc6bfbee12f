"""IP fragments of TCP segments are counted alike with and without the C first pass.

pcapdiag does not reassemble fragments: each frame that carries part of a TCP segment but not
its header is counted under the tcp-fragments warning (findings/quality.py). The first pass
reads no such frame as a segment, so Python decodes each one either way; these captures make
sure of it beside connections the pass does set aside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

import pcapdiag.accel.triage as triage
from pcapdiag.api import analyze
from pcapdiag.io.reader import open_capture
from pcapdiag.settings import NO_ACCEL, Settings
from tests.support.scenario import Talk


def healthy(cport: int, t0: float, client: str, server: str) -> Talk:
    """A request answered and both sides closed: the first pass sets it aside as plain."""
    t = Talk(client=client, server=server, cport=cport, t=t0)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


def split(pkt: Packet) -> list[Packet]:
    """A data segment in IP fragments of 80 bytes of IP payload (a multiple of 8, RFC 791
    and RFC 8200 section 4.5): the TCP header with 48 bytes, then the rest."""
    eth = Ether(src=pkt.src, dst=pkt.dst)
    if IP in pkt:
        whole = pkt[IP].copy()
        whole.flags = 0  # a packet with DF set is never split (RFC 791 section 2.3)
        parts = fragment(whole, fragsize=80)
    else:
        head = pkt[IPv6].copy()
        tcp = head.payload
        head.remove_payload()
        head.nh, head.plen = 44, None
        parts = fragment6(head / IPv6ExtHdrFragment(nh=6, id=7) / tcp, 40 + 8 + 80)
    out = []
    for i, part in enumerate(parts):
        frame = eth / part
        frame.time = pkt.time + i * 0.00001
        out.append(frame)
    return out


def fragmented_upload(client: str, server: str) -> Talk:
    """A client's 200-byte write sent in fragments (the path's MTU below the segment, the
    sender not told or not caring), answered with a RST: frames of a connection the pass
    hands to Python, between two plain connections it sets aside."""
    t = Talk(client=client, server=server, cport=40100, t=1_700_000_000.5)
    t.handshake()
    data = t.tcp("c", "PA", b"x" * 200)
    t.tcp("s", "RA", seq=t.nxt["s"], ack=t.nxt["c"])
    at = t.packets.index(data)
    t.packets[at : at + 1] = split(data)
    return t


@pytest.mark.parametrize(
    ("client", "server"), [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")], ids=["v4", "v6"]
)
def test_fragments_are_counted_alike_with_and_without_the_pass(
    client: str, server: str, tmp_path: Path, builtin_rules
) -> None:
    talks = [
        healthy(40001, 1_700_000_000.0, client, server),
        fragmented_upload(client, server),
        healthy(40002, 1_700_000_001.0, client, server),
    ]
    path = tmp_path / "fragments.pcap"
    Talk.merged(talks).write(path)
    # Frames: 1-8 healthy, 9-11 handshake, 12-14 the write in three fragments (80 + 80 + 60
    # bytes of the 220-byte segment: 12 holds the TCP header, 13 and 14 do not), 15 RST,
    # 16-23 healthy.
    reports = [
        analyze([str(path)], builtin_rules, settings=s, jobs=j)
        for s, j in ((NO_ACCEL, 1), (Settings(), 1), (Settings(), 2))
    ]
    for report in reports:
        (warning,) = [w for w in report.warnings if w.code == "tcp-fragments"]
        assert (warning.count, warning.frame) == (2, 13)
        assert warning.message.startswith("2 frames were IP fragments of TCP segments (first: ")
    docs = [r.to_dict() for r in reports]
    for doc in docs:
        doc["captures"][0]["sha256"] = None
    assert json.dumps(docs[1], sort_keys=True) == json.dumps(docs[0], sort_keys=True)
    assert json.dumps(docs[2], sort_keys=True) == json.dumps(docs[0], sort_keys=True)
    if client.count(".") == 3:
        # IPv4: the pass ran and set the two healthy connections aside. (An IPv6 Fragment
        # header makes it step aside for the whole file: Python walks extension headers.)
        reader = open_capture(str(path))
        try:
            (plan,) = triage.first_pass(reader, builtin_rules, {}, 1, None)
        finally:
            reader.close()
        assert plan is not None and plan.plain == 2
