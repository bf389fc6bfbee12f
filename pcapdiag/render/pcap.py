"""--export DIR: the packets of each failed flow as a small pcap named after the finding id, to
attach to a ticket. Frame numbers in the report refer to the original capture, not to these
files (a README.txt written beside them says so, with the original numbers).

The packets are read from the capture by the second pass (api.export_findings); this module
only writes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import dpkt

from pcapdiag.findings.model import Report

_MAX_PCAP_SECONDS = 0xFFFFFFFF


class Packet(Protocol):
    """What a pcap record is written from (a frame as the capture reader gives it)."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def linktype(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def orig_len(self) -> int: ...


def write_findings(
    report: Report, packets: Mapping[str, Sequence[Packet]], directory: Path
) -> list[Path]:
    """Write one pcap per finding of `report` with packets (by finding id) and the index;
    returns the pcap files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = ["pcapdiag export: one capture per finding; frame numbers below are the original's."]
    for f in report.findings:
        frames = packets.get(f.id, ())
        if not frames:
            continue
        path = directory / f"{f.id}.pcap"
        clamped = _write_pcap(path, frames)
        written.append(path)
        index.append(
            f"{path.name}: {f.rule} {f.side} {f.flow.client} -> {f.flow.server}; "
            f"original frames {', '.join(map(str, f.flow.frames))} of {f.capture}"
            + (f"; {clamped} timestamps outside 1970-2106 clamped" if clamped else "")
        )
    (directory / "README.txt").write_text("\n".join(index) + "\n", encoding="utf-8")
    return written


def _write_pcap(path: Path, frames: Sequence[Packet]) -> int:
    """One nanosecond pcap of the frames of the first frame's link type (a pcap file has only
    one); returns how many timestamps had to be clamped."""
    clamped = 0
    linktype = frames[0].linktype
    with path.open("wb") as fh:
        # dpkt writes the nanosecond pcap header; records go through its header packer
        # directly, because writepkt() takes a float time (which would round nanoseconds
        # away) and writes the captured length as the wire length.
        writer = dpkt.pcap.Writer(fh, snaplen=262144, linktype=linktype, nano=True)
        for fr in frames:
            if fr.linktype != linktype:
                continue
            sec, ns = divmod(fr.ts_ns, 1_000_000_000)
            if not 0 <= sec <= _MAX_PCAP_SECONDS:
                # pcap keeps unsigned 32-bit seconds (1970 to 2106); a pcapng timestamp
                # outside that is clamped and said so.
                sec, ns = min(max(sec, 0), _MAX_PCAP_SECONDS), 0
                clamped += 1
            fh.write(writer._pack_hdr(sec, ns, len(fr.data), fr.orig_len) + fr.data)
    return clamped
