"""Captures of poor quality derived from real recordings (samples/recorded/, Linux 6.18), one
per capture-quality warning code, each made the way a real capture goes wrong: one direction
removed (a one-way tap), the start cut (a capture started late), a frame removed (a drop),
every frame captured twice (a span port), the end cut (a capture stopped early), a SYN-ACK's
MSS lowered below the segments the capturing host then sends (as segmentation offload shows
them). Run `python -m tests.support.derive_captures` to rewrite them; a test checks that the
committed files are exactly what this script writes.

Frames are read and written with dpkt (pcap, microsecond timestamps, as recorded); no packet
is made up: every frame is a recorded one, dropped, copied or (for the MSS) with two option
bytes changed.
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
