"""Second pass over a capture: the packets of one flow, for ladder diagrams and exports.

The first pass keeps only frame numbers per flow (memory stays bounded by open flows); when a
report needs the packets of a failed flow, they are read again from the file and replayed
through a fresh tracker, which gives each endpoint's state after every packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pcapdiag.decode.icmp import describe_kind, icmp_kind
from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import ACK, FIN, PSH, RST, SYN, Datagram, IcmpError, Segment
from pcapdiag.errors import CaptureError
from pcapdiag.io.records import Frame
from pcapdiag.io.sources import merged_frames
from pcapdiag.track.connection import Connection

_FLAG_NAMES = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"))


def read_frames(sources: str | tuple[str, ...], wanted: Iterable[int]) -> Iterator[Frame]:
    """The frames whose numbers are in `wanted`, in file order; several sources are read as
    one merged capture (numbers running on across files, see api.merged_frames)."""
    if isinstance(sources, str):
        sources = (sources,)
    if "-" in sources:
        raise CaptureError("standard input cannot be read twice: save the capture to a file")
    want = set(wanted)
    if not want:
        return
    last = max(want)
    for frame in merged_frames(sources):
        if frame.number in want:
            yield frame
        if frame.number >= last:
            break


@dataclass(frozen=True, slots=True)
class LadderRow:
    """One packet of a flow as a ladder diagram draws it."""

    frame: int
    ts_ns: int
    direction: str  # "c2s", "s2c", or "net2c" / "net2s" for an ICMP error from a router
    label: str  # flags, or the ICMP error in words
    seq: int | None  # relative to the sender's ISN (Wireshark's relative sequence numbers)
    ack: int | None
    length: int
    client_state: str  # after this packet
    server_state: str


def ladder_rows(source: str | tuple[str, ...], frames: Iterable[int]) -> list[LadderRow]:
    """Replay the frames of one flow (as listed in its FlowRecord) into ladder rows."""
    rows: list[LadderRow] = []
    conn: Connection | None = None
    udp_client: tuple[bytes, int] | None = None
    for frame in read_frames(source, frames):
        pkt = decode(frame)
        if isinstance(pkt, Segment):
            if conn is None:
                conn, sender = Connection.from_first_segment(pkt)
            else:
                side = conn.side_of(pkt.src, pkt.sport)
                if side is None:
                    continue
                sender = side
            s = conn.endpoint(sender)
            r = conn.endpoint(sender.peer)
            base_s = s.isn if s.isn is not None else (s.snd_una if s.snd_una is not None else None)
            base_r = r.isn if r.isn is not None else (r.snd_una if r.snd_una is not None else None)
            conn.receive(pkt, sender)
            base_s = s.isn if base_s is None else base_s
            base_r = r.isn if base_r is None else base_r
            rows.append(
                LadderRow(
                    frame=pkt.frame,
                    ts_ns=pkt.ts_ns,
                    direction="c2s" if sender.value == "client" else "s2c",
                    label=" ".join(n for bit, n in _FLAG_NAMES if pkt.flags & bit) or "none",
                    seq=(s.seq(pkt.seq) - base_s) if base_s is not None else None,
                    ack=(
                        (r.seq(pkt.ack) - base_r)
                        if pkt.flags & ACK and base_r is not None
                        else None
                    ),
                    length=pkt.payload_len,
                    client_state=conn.client.state.value,
                    server_state=conn.server.state.value,
                )
            )
        elif isinstance(pkt, IcmpError) and conn is not None:
            q = pkt.quoted
            side = conn.side_of(q.src, q.sport or 0)
            if side is None:
                continue
            conn.icmp(pkt, side)
            rows.append(
                LadderRow(
                    frame=pkt.frame,
                    ts_ns=pkt.ts_ns,
                    direction=f"net2{side.value[0]}",
                    label=describe_kind(icmp_kind(pkt.family, pkt.type, pkt.code)),
                    seq=None,
                    ack=None,
                    length=0,
                    client_state=conn.client.state.value,
                    server_state=conn.server.state.value,
                )
            )
        elif isinstance(pkt, Datagram | IcmpError):
            if isinstance(pkt, Datagram):
                if udp_client is None:
                    udp_client = (pkt.src, pkt.sport)
                direction = "c2s" if (pkt.src, pkt.sport) == udp_client else "s2c"
                label, length = "UDP", pkt.payload_len
            else:
                to_client = udp_client is None or (pkt.quoted.src, pkt.quoted.sport) == udp_client
                direction = "net2c" if to_client else "net2s"
                label = describe_kind(icmp_kind(pkt.family, pkt.type, pkt.code))
                length = 0
            rows.append(
                LadderRow(
                    frame=pkt.frame,
                    ts_ns=pkt.ts_ns,
                    direction=direction,
                    label=label,
                    seq=None,
                    ack=None,
                    length=length,
                    client_state="UDP",
                    server_state="UDP",
                )
            )
    return rows
