"""Second pass: the packets of the findings' flows, read again from their captures.

The first pass keeps only the frame numbers of each flow, so that memory stays bounded by the
open flows, not by the capture. What needs the packets themselves (ladder diagrams, --export)
reads each capture once more: one pass for all of its findings, which stops after the last
frame any of them needs. Standard input cannot be read twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from pcapdiag.errors import CaptureError
from pcapdiag.findings.ladder import LadderReplay, LadderRow, finding_sources
from pcapdiag.findings.model import Finding
from pcapdiag.io.records import Frame
from pcapdiag.io.sources import merged_frames

# A flow of one capture, by the frame numbers the first pass kept for it: several findings
# on one flow share its packets.
_Flow = tuple[int, ...]


def ladders(findings: Iterable[Finding]) -> dict[str, list[LadderRow]]:
    """The ladder rows of each finding's flow, by finding id. A finding whose capture cannot
    be read again (standard input, a file that went away) gets none: the renderers then say
    so instead of drawing a diagram."""
    out: dict[str, list[LadderRow]] = {}
    for sources, flows in _by_capture(findings).items():
        if "-" in sources:
            continue
        replays = {flow: LadderReplay() for flow in flows}
        wanted: dict[int, list[LadderReplay]] = {}
        for flow, replay in replays.items():
            for number in set(flow):
                wanted.setdefault(number, []).append(replay)
        seen = 0
        try:
            for frame in _frames(sources, wanted):
                seen = frame.number
                for replay in wanted[frame.number]:
                    replay.add(frame)
        except (CaptureError, OSError):
            # Flows whose packets were all read before the failure keep their rows.
            replays = {flow: r for flow, r in replays.items() if max(flow, default=0) <= seen}
        for flow, replay in replays.items():
            for finding_id in flows[flow]:
                out[finding_id] = replay.rows
    return out


def finding_frames(findings: Iterable[Finding]) -> dict[str, list[Frame]]:
    """The frames of each finding's flow, in capture order, by finding id. Raises
    CaptureError when a capture cannot be read again (standard input, a file gone)."""
    out: dict[str, list[Frame]] = {}
    for sources, flows in _by_capture(findings).items():
        wanted = {number for flow in flows for number in flow}
        got = {frame.number: frame for frame in _frames(sources, wanted)}
        for flow, ids in flows.items():
            frames = [got[n] for n in sorted(set(flow)) if n in got]
            for finding_id in ids:
                out[finding_id] = frames
    return out


def _by_capture(findings: Iterable[Finding]) -> dict[tuple[str, ...], dict[_Flow, list[str]]]:
    """Finding ids by flow, by capture (in the order the findings come)."""
    out: dict[tuple[str, ...], dict[_Flow, list[str]]] = {}
    for f in findings:
        sources = finding_sources(f)
        if sources:
            out.setdefault(sources, {}).setdefault(tuple(f.flow.frames), []).append(f.id)
    return out


def _frames(sources: Sequence[str], wanted: Iterable[int]) -> Iterator[Frame]:
    """The frames numbered in `wanted`, in file order; several sources are read as one merged
    capture (numbers running on across files, as the first pass numbered them)."""
    if "-" in sources:
        raise CaptureError("standard input cannot be read twice: save the capture to a file")
    want = set(wanted)
    if not want:
        return
    last = max(want)
    for frame in merged_frames(tuple(sources)):
        if frame.number in want:
            yield frame
        if frame.number >= last:
            break
