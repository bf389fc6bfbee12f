"""--export DIR: the packets of each failed flow as a small pcap named after the finding id, to
attach to a ticket. Frame numbers in the report refer to the original capture, not to these
files (a README.txt written beside them says so, with the original numbers)."""

from __future__ import annotations

from pathlib import Path

import dpkt

from pcapdiag.findings.ladder import read_frames
from pcapdiag.findings.model import Report

_MAX_PCAP_SECONDS = 0xFFFFFFFF


def export_findings(report: Report, directory: Path) -> list[Path]:
    """Write one pcap per finding; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = ["pcapdiag export: one capture per finding; frame numbers below are the original's."]
    for f in report.findings:
        frames = list(read_frames(f.sources, f.flow.frames))
        if not frames:
            continue
        path = directory / f"{f.id}.pcap"
        clamped = 0
        linktype = frames[0].linktype
        with path.open("wb") as fh:
            # dpkt writes the nanosecond pcap header; records go through its header packer
            # directly, because writepkt() takes a float time (which would round nanoseconds
            # away) and writes the captured length as the wire length.
            writer = dpkt.pcap.Writer(fh, snaplen=262144, linktype=linktype, nano=True)
            for fr in frames:
                if fr.linktype == linktype:  # a pcap file has one link type
                    sec, ns = divmod(fr.ts_ns, 1_000_000_000)
                    if not 0 <= sec <= _MAX_PCAP_SECONDS:
                        # pcap keeps unsigned 32-bit seconds (1970 to 2106); a pcapng
                        # timestamp outside that is clamped and said so.
                        sec, ns = min(max(sec, 0), _MAX_PCAP_SECONDS), 0
                        clamped += 1
                    fh.write(writer._pack_hdr(sec, ns, len(fr.data), fr.orig_len) + fr.data)
        written.append(path)
        index.append(
            f"{path.name}: {f.rule} {f.side} {f.flow.client} -> {f.flow.server}; "
            f"original frames {', '.join(map(str, f.flow.frames))} of {f.capture}"
            + (f"; {clamped} timestamps outside 1970-2106 clamped" if clamped else "")
        )
    (directory / "README.txt").write_text("\n".join(index) + "\n", encoding="utf-8")
    return written
