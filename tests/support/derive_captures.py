"""Captures of poor quality derived from real recordings (samples/recorded/, Linux 6.18), one
per capture-quality warning code, each made the way a real capture goes wrong: one direction
removed (a one-way tap), the start cut (a capture started late), a frame removed (a drop),
every frame captured twice (a span port), the end cut (a capture stopped early), a SYN-ACK's
MSS lowered below the segments the capturing host then sends (as segmentation offload shows
them), data segments split into IP fragments. Run `python -m tests.support.derive_captures` to
rewrite them; a test checks that the committed files are exactly what this script writes.

Frames are read and written with dpkt (pcap, microsecond timestamps, as recorded); no packet
is made up: every frame is a recorded one, dropped, copied, (for the MSS) with two option
bytes changed, or (for fragments) its IP packet split by scapy as a router or its host would
split it.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "samples" / "recorded"
OUT = ROOT / "tests" / "captures" / "quality"
CLIENT = bytes([10, 91, 1, 2])  # the recordings' client address (samples/record/topo.py)
SERVER = bytes([10, 91, 2, 2])

Frame = tuple[float, bytes]


@dataclass(frozen=True)
class Derived:
    name: str  # tests/captures/quality/<name>.pcap
    source: str  # samples/recorded/<source>
    code: str  # the warning code it must produce
    why: str
    make: Callable[[list[Frame]], list[Frame]]


def _ip(buf: bytes) -> dpkt.ip.IP | None:
    eth = dpkt.ethernet.Ethernet(buf)
    return eth.data if isinstance(eth.data, dpkt.ip.IP) else None


def _sent_by(buf: bytes, addr: bytes) -> bool:
    ip = _ip(buf)
    return ip is not None and ip.src == addr


def _is_tcp(buf: bytes) -> bool:
    ip = _ip(buf)
    return ip is not None and isinstance(ip.data, dpkt.tcp.TCP)


def only_client(frames: list[Frame]) -> list[Frame]:
    return [(t, b) for t, b in frames if not _sent_by(b, SERVER)]


def only_server_after_handshake(frames: list[Frame]) -> list[Frame]:
    """The server's segments after its SYN-ACK: a one-way tap started mid-transfer."""
    return [
        (t, b)
        for t, b in frames
        if _sent_by(b, SERVER) and not dpkt.ethernet.Ethernet(b).data.data.flags & dpkt.tcp.TH_SYN
    ]


def without_handshake(frames: list[Frame]) -> list[Frame]:
    """Drop every frame before the first TCP segment carrying data."""
    for i, (_, b) in enumerate(frames):
        ip = _ip(b)
        if ip is not None and isinstance(ip.data, dpkt.tcp.TCP) and ip.data.data:
            return frames[i:]
    raise ValueError("no data segment")


def without_frame(number: int) -> Callable[[list[Frame]], list[Frame]]:
    return lambda frames: frames[: number - 1] + frames[number:]


def every_tcp_frame_twice(frames: list[Frame]) -> list[Frame]:
    """Each TCP frame again 20 microseconds later, as a span port mirroring both directions of
    a link delivers it."""
    out: list[Frame] = []
    for t, b in frames:
        out.append((t, b))
        if _is_tcp(b):
            out.append((t + 0.00002, b))
    return out


def first_frames(n: int) -> Callable[[list[Frame]], list[Frame]]:
    return lambda frames: frames[:n]


def synack_mss(mss: int) -> Callable[[list[Frame]], list[Frame]]:
    """The server's SYN-ACK announces `mss` (the MSS option's value rewritten; checksums are
    left as they were: pcapdiag does not check them)."""

    def make(frames: list[Frame]) -> list[Frame]:
        out: list[Frame] = []
        for t, b in frames:
            eth = dpkt.ethernet.Ethernet(b)
            ip = eth.data
            tcp = ip.data if isinstance(ip, dpkt.ip.IP) else None
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.flags & dpkt.tcp.TH_SYN and ip.src == SERVER:
                opts = bytearray(tcp.opts)
                at = opts.index(2)  # MSS (kind 2, length 4) comes first in Linux's SYN-ACK
                opts[at + 2 : at + 4] = struct.pack("!H", mss)
                raw = bytearray(b)
                start = len(raw) - len(bytes(ip)) + ip.hl * 4 + 20
                raw[start : start + len(opts)] = opts
                b = bytes(raw)
            out.append((t, b))
        return out

    return make


def fragmented_client_data(frames: list[Frame]) -> list[Frame]:
    """Each of the client's data segments in two IP fragments, the first holding the TCP
    header and 48 bytes of data (80 bytes, a multiple of 8 as RFC 791 and RFC 8200 section
    4.5 require), the second the rest, 10 microseconds later. IPv4: the DF bit cleared, as a
    middlebox that clears it lets a router split the packet onto a smaller-MTU link (RFC 791
    section 2.3). IPv6: a Fragment header added, as only the sending host fragments (RFC 8200
    section 4.5), with Identification 1."""
    # scapy only here: it splits a packet and fills in the lengths and checksums.
    from scapy.layers.inet import IP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
    from scapy.layers.l2 import Ether

    out: list[Frame] = []
    for t, b in frames:
        eth = Ether(b)
        if IP in eth and eth[IP].src == "10.91.1.2" and eth[IP].haslayer("TCP"):
            ip = eth[IP]
            if len(ip["TCP"].payload):
                whole = ip.copy()
                whole.flags = 0  # DF cleared
                del whole.chksum
                parts = fragment(whole, fragsize=80)
                out += [
                    (t + i * 0.00001, bytes(Ether(src=eth.src, dst=eth.dst) / part))
                    for i, part in enumerate(parts)
                ]
                continue
        if IPv6 in eth and eth[IPv6].src == "fd91:1::2" and eth[IPv6].nh == 6:
            ip6 = eth[IPv6]
            if len(ip6["TCP"].payload):
                head = IPv6(bytes(ip6)[:40])
                head.nh, head.plen = 44, None
                whole6 = head / IPv6ExtHdrFragment(nh=6, id=1) / ip6["TCP"].copy()
                parts = fragment6(whole6, 40 + 8 + 80)
                out += [
                    (t + i * 0.00001, bytes(Ether(src=eth.src, dst=eth.dst) / part))
                    for i, part in enumerate(parts)
                ]
                continue
        out.append((t, b))
    return out


def offloaded_client_checksums(frames: list[Frame]) -> list[Frame]:
    """The client's TCP checksums as checksum offload leaves them in a capture on the sending
    host: the pseudo-header's sum only (Linux __tcp_v4_send_check(): the NIC adds the rest
    after the capture)."""
    out: list[Frame] = []
    for t, b in frames:
        ip = _ip(b)
        if ip is not None and ip.src == CLIENT and isinstance(ip.data, dpkt.tcp.TCP):
            length = len(bytes(ip.data))
            words = (*struct.unpack("!4H", ip.src + ip.dst), 6, length)
            total = sum(words)
            while total > 0xFFFF:
                total = (total & 0xFFFF) + (total >> 16)
            raw = bytearray(b)
            at = len(raw) - len(bytes(ip)) + ip.hl * 4 + 16  # the TCP checksum field
            raw[at : at + 2] = struct.pack("!H", total)
            b = bytes(raw)
        out.append((t, b))
    return out


DERIVED = [
    Derived(
        "one-direction",
        "data-timeout",
        "one-direction",
        "the server's packets removed, as a tap that sees one direction only: the client's "
        "ACKs still cover the server's reply",
        only_client,
    ),
    Derived(
        "one-direction-mid-stream",
        "lossy-transfer",
        "one-direction",
        "only the server's ACKs after the handshake, as a one-way tap started mid-transfer: a "
        "connection the accelerator sets aside as plain, so its first pass counts it",
        only_server_after_handshake,
    ),
    Derived(
        "started-mid-flow",
        "close-unread",
        "started-mid-flow",
        "everything before the first data segment removed, as a capture started late",
        without_handshake,
    ),
    Derived(
        "capture-gap",
        "lossy-transfer",
        "capture-gap",
        "frame 8 (a full-size data segment of the client) removed, as a capture drop",
        without_frame(8),
    ),
    Derived(
        "duplicate-frames",
        "data-timeout",
        "duplicate-frames",
        "every TCP frame captured twice, 20 microseconds apart, as on a span port",
        every_tcp_frame_twice,
    ),
    Derived(
        "ended-before-outcome",
        "data-timeout",
        "ended-before-outcome",
        "the capture stopped after the third retransmission (frame 13), long before the kernel "
        "gives up",
        first_frames(13),
    ),
    Derived(
        "bad-checksum-local",
        "epipe",
        "bad-checksum-local",
        "every TCP checksum of the client, the capturing host, left as checksum offload leaves "
        "it (the pseudo-header's sum only)",
        offloaded_client_checksums,
    ),
    Derived(
        "offload-oversize",
        "epipe",
        "offload-oversize",
        "the server's SYN-ACK announces MSS 64, so the client's 100-byte writes exceed it as "
        "segmentation offload shows larger segments to a capture on the sending host",
        synack_mss(64),
    ),
    Derived(
        "tcp-fragments",
        "epipe",
        "tcp-fragments",
        "the client's two 100-byte writes each in two IPv4 fragments, DF cleared on the way and "
        "split by a router onto a smaller-MTU link",
        fragmented_client_data,
    ),
    Derived(
        "tcp-fragments-v6",
        "epipe-v6",
        "tcp-fragments",
        "the client's two 100-byte writes each in two IPv6 fragments, as the client's host "
        "splits a packet larger than the path MTU it has set for the route",
        fragmented_client_data,
    ),
]


def read(path: Path) -> tuple[int, list[Frame]]:
    with path.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        return reader.datalink(), [(t, bytes(b)) for t, b in reader]


def write(path: Path, linktype: int, frames: list[Frame]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=262144, linktype=linktype)
        for t, b in frames:
            writer.writepkt(b, ts=t)


def build_all(out: Path = OUT) -> list[Path]:
    written = []
    for d in DERIVED:
        linktype, frames = read(RECORDED / d.source / "client.pcap")
        path = out / f"{d.name}.pcap"
        write(path, linktype, d.make(frames))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build_all(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(p)
