"""--annotate: a copy of the capture as pcapng, frame for frame, with a packet comment on each
evidence frame of each listed finding, so that Wireshark shows the findings in its packet list
and `frame.comment contains "pcapdiag"` finds them.

The copy keeps what a frame number points at: every frame, in order, with its timestamp,
original length, link type and bytes, so that frame N of the copy is frame N of the capture
and the report's frame numbers and display filters hold in both. What the reader does not
carry over (interface names and statistics, name resolution, comments already in the file)
is not copied. Blocks that Wireshark numbers as frames without them being packets (Custom
Blocks, systemd Journal Export Blocks) are not copied either: each is replaced by a
placeholder Custom Block, which Wireshark numbers in its place.

The capture is read once more, after the analysis (as for --export: evidence.py); standard
input cannot be read twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pcapdiag import __version__
from pcapdiag.errors import CaptureError
from pcapdiag.findings.model import Finding
from pcapdiag.io.reader import CaptureReader, open_capture
from pcapdiag.io.records import Damage
from pcapdiag.render.pcapng import PcapngWriter

PLACEHOLDER = (
    "pcapdiag: a block of the original capture that is not a packet (a custom block or a "
    "systemd journal entry) stood here; it is not copied, and this placeholder keeps the "
    "frame numbers of the packets after it"
)
_NS_PER_US = 1000
# C0 and C1 control characters: a comment is one line of text in Wireshark's packet list and
# in tshark's output (rule titles come from rule files, which may be anyone's).
_CONTROLS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], " ")


@dataclass(frozen=True, slots=True)
class Annotation:
    """What was written: the copy's frame count as Wireshark numbers them, the comments and
    the frames that carry them, and what had to be done to keep the numbers and times."""

    path: Path
    frames: int
    comments: int
    commented_frames: int
    placeholders: int  # numbered blocks that are not packets, replaced (see module doc)
    clamped: int  # timestamps outside what pcapng holds (before 1970), set to its nearest
    damage: Damage | None  # where the capture stops being readable: copied up to there


def comment_text(f: Finding) -> str:
    """One line naming the finding, the failing call and its errno, and the rule:
    "pcapdiag F-…: client connect() -> ECONNREFUSED (PD-TCP-001)"; a finding without an
    errno gives its title instead, and one less than sure says how sure it is."""
    prim = f.primary()
    if prim is None or prim.errno is None:
        what = f"{f.side}, no errno: {f.title}"
    else:
        what = f"{f.side} {prim.call}() -> {prim.errno}"
    sure = "" if f.confidence.level == "high" else f", {f.confidence.level} confidence"
    return f"pcapdiag {f.id}: {what} ({f.rule}{sure})".translate(_CONTROLS)


def frame_comments(findings: Iterable[Finding]) -> dict[int, list[str]]:
    """The comments of each evidence frame, by frame number: one per finding that cites the
    frame, in the order of the findings."""
    out: dict[int, list[str]] = {}
    for f in findings:
        text = comment_text(f)
        for number in sorted(set(f.frames)):
            out.setdefault(number, []).append(text)
    return out


def write_annotated(
    source: str,
    comments: Mapping[int, Sequence[str]],
    out: Path,
    *,
    frames: int | None = None,
) -> Annotation:
    """Copy the capture `source` to `out` as pcapng, with `comments` on the frames they are
    keyed by. `frames`, when given, is how many frames the analysis counted: a capture that
    now has another count changed in between, and its copy would not match the report.

    Raises CaptureError when the capture cannot be read (again), and ValueError when `out`
    is the capture itself (writing it would destroy what is being read). A capture damaged
    part-way is copied up to the damage (`Annotation.damage`). No partial copy is left
    behind by an error."""
    if source == "-":
        raise CaptureError("standard input cannot be read twice: save the capture to a file")
    if out.exists() and os.path.exists(source) and os.path.samefile(out, source):
        raise ValueError(f"{out} is the capture itself: write the copy to another file")
    reader = open_capture(source)
    try:
        with out.open("wb", buffering=1 << 20) as fh:
            result = _copy(reader, comments, PcapngWriter(fh, f"pcapdiag {__version__}"), out)
        if frames is not None and result.frames != frames:
            raise CaptureError(
                f"{source}: changed since it was analysed ({frames} frames then, "
                f"{result.frames} now): analyse it again"
            )
    except BaseException:
        reader.close()
        out.unlink(missing_ok=True)
        raise
    return result


def _copy(
    reader: CaptureReader, comments: Mapping[int, Sequence[str]], writer: PcapngWriter, out: Path
) -> Annotation:
    # Output interfaces by input interface: (section, interface id, link type) -> (id,
    # nanosecond?). A pcap file is one section with one interface.
    interfaces: dict[tuple[int, int, int], tuple[int, bool]] = {}
    snaplen = reader.snaplen or 0  # pcapng: per interface, not kept by the reader; 0: none
    number = placeholders = clamped = written = commented = 0
    for frame in reader:
        # The reader uses up a number for each block Wireshark numbers that is no packet,
        # and yields no frame for it: a placeholder takes that number here.
        while number + 1 < frame.number:
            writer.placeholder(PLACEHOLDER)
            number += 1
            placeholders += 1
        key = (reader.sections, frame.interface, frame.linktype)
        iface = interfaces.get(key)
        if iface is None or (frame.ts_ns % _NS_PER_US and not iface[1]):
            # Microseconds (pcapng's default) unless the capture keeps finer times: the
            # reader sets `nanosecond` when it reads the header (pcap) or an interface (pcapng)
            # finer than a microsecond, before any of its frames. A finer time on an interface
            # described in microseconds would still get one in nanoseconds of its own.
            nano = reader.nanosecond or frame.ts_ns % _NS_PER_US != 0
            iface = (writer.add_interface(frame.linktype, snaplen, nano), nano)
            interfaces[key] = iface
        notes = comments.get(frame.number, ())
        if not writer.packet(iface[0], frame.ts_ns, frame.data, frame.orig_len, notes):
            clamped += 1
        if notes:
            written += len(notes)
            commented += 1
        number = frame.number
    while number < reader.numbered:  # numbered blocks after the last packet
        writer.placeholder(PLACEHOLDER)
        number += 1
        placeholders += 1
    return Annotation(out, number, written, commented, placeholders, clamped, reader.damage)
