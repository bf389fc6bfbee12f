"""Capture quality: what the capture itself leaves out or adds, with a stable code each, how
many connections (or frames) it touches, and what it does to the findings it touches.

Codes (documented in the README; each is produced by a test capture derived from a
recording, tests/support/derive_captures.py):
- started-mid-flow: a TCP connection whose first captured segment is not its SYN. Its roles
  may be guessed from the ports, and its times count from its first packet captured.
- one-direction: every captured segment of a TCP connection came from one side, and their
  ACKs cover data the capture never showed, so the other side was sending: its packets are
  missing (a one-way tap, an asymmetric route). Nothing may be concluded from their absence.
- capture-gap: a segment acknowledged or followed by data the capture never shows: the
  capture lost packets (or the path reordered them beyond the capture's view).
- duplicate-frames: the same segment captured twice within a millisecond (a span port, a
  capture on two interfaces): dropped, not counted as retransmissions.
- offload-oversize: data segments larger than the MSS the receiver announced, sent by the
  capturing host: segmentation offload (TSO/GSO) hands the capture one big segment that the
  NIC splits later. Not a path MTU problem.
- ended-before-outcome: a timeout still running when the capture ended: the kernel had not
  given up yet (the rule's doubt says when it would).
- bad-checksum-local: the capturing host's own SYN has a wrong TCP checksum: checksum
  offload fills it in after the capture. pcapdiag never uses checksums; this says why
  Wireshark marks those frames. Checked on SYNs only (the general decoder reads them whole;
  the fast paths never verify a checksum).
- tcp-fragments: frames that are IP fragments of TCP segments without the TCP header (IPv4
  fragments after the first, RFC 791; IPv6 ones, RFC 8200 section 4.5; or a first fragment
  too short to hold the header, RFC 1858). pcapdiag does not reassemble fragments, so their
  bytes are left out of their connection: its data may look missing (a capture gap), and a
  first fragment that holds the TCP header is read with its own bytes only.

started-mid-flow, one-direction and capture-gap are counted over every TCP connection of
the capture (the accelerator's first pass counts those it sets aside: accel/triage.Plan);
tcp-fragments over every frame (the first pass reads no such frame, so Python decodes each
one either way); the others over the connections with findings, the only ones both the
accelerator and the Python path follow segment by segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapdiag.findings.vantage import Vantage
from pcapdiag.track.flows import FlowRecord

STARTED_MID_FLOW = "started-mid-flow"
ONE_DIRECTION = "one-direction"
CAPTURE_GAP = "capture-gap"
DUPLICATE_FRAMES = "duplicate-frames"
OFFLOAD_OVERSIZE = "offload-oversize"
ENDED_BEFORE_OUTCOME = "ended-before-outcome"
BAD_CHECKSUM_LOCAL = "bad-checksum-local"
TCP_FRAGMENTS = "tcp-fragments"
CODES = (
    STARTED_MID_FLOW,
    ONE_DIRECTION,
    CAPTURE_GAP,
    DUPLICATE_FRAMES,
    OFFLOAD_OVERSIZE,
    ENDED_BEFORE_OUTCOME,
    BAD_CHECKSUM_LOCAL,
    TCP_FRAGMENTS,
)


@dataclass(slots=True)
class Tally:
    count: int = 0
    frame: int | None = None  # the first frame that shows it (the smallest: shards agree)

    def add(self, frame: int | None, n: int = 1) -> None:
        self.count += n
        if frame is not None and (self.frame is None or frame < self.frame):
            self.frame = frame


@dataclass(slots=True)
class QualityCounts:
    """Tallies by code; a worker's merge into one report's (--jobs)."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(self, code: str, frame: int | None, n: int = 1) -> None:
        if n:
            self.tallies.setdefault(code, Tally()).add(frame, n)

    def merge(self, other: QualityCounts) -> None:
        for code, t in other.tallies.items():
            self.add(code, t.frame, t.count)

    def items(self) -> list[tuple[str, Tally]]:
        return [(c, self.tallies[c]) for c in CODES if c in self.tallies]


def connection_issues(flow: FlowRecord) -> list[tuple[str, int | None]]:
    """What every TCP connection is counted for: (code, first frame)."""
    if flow.proto != "tcp":
        return []
    out: list[tuple[str, int | None]] = []
    if not flow.seen_from_start:
        out.append((STARTED_MID_FLOW, flow.first_frame))
    if flow.one_direction:
        out.append((ONE_DIRECTION, flow.first_frame))
    if flow.gap_frame is not None:
        out.append((CAPTURE_GAP, flow.gap_frame))
    return out


def finding_issues(flow: FlowRecord, vantage: Vantage) -> list[tuple[str, int | None, int]]:
    """What a connection with findings is counted for besides: (code, first frame, count)."""
    out: list[tuple[str, int | None, int]] = []
    if flow.duplicates:
        out.append((DUPLICATE_FRAMES, flow.first_duplicate, flow.duplicates))
    oversize = _oversize(flow, vantage)
    if oversize is not None:
        out.append((OFFLOAD_OVERSIZE, oversize, 1))
    local = _local_side(vantage)
    bad = flow.host(local).bad_checksum_frame if local else None
    if bad is not None:
        out.append((BAD_CHECKSUM_LOCAL, bad, 1))
    return out


def _local_side(vantage: Vantage) -> str | None:
    return {"client-host": "client", "server-host": "server"}.get(vantage.where)


def _oversize(flow: FlowRecord, vantage: Vantage) -> int | None:
    """The first frame of a data segment larger than the MSS its receiver announced, sent by
    the host that took the capture (only there does offload show)."""
    local = _local_side(vantage)
    if local is None:
        return None
    mss = flow.host("server" if local == "client" else "client").syn_mss
    if not mss:
        return None
    for ev in flow.events:
        sent = ev.sender == local and ev.name in ("data", "retransmission")
        if sent and getattr(ev, "length", 0) > mss:
            return ev.frame
    return None


def doubts(flow: FlowRecord, side: str) -> list[tuple[str, str, str]]:
    """(code, level, reason) for each capture-quality issue that lowers a finding's
    confidence."""
    out: list[tuple[str, str, str]] = []
    if flow.one_direction:
        seen = "client" if flow.client_packets else "server"
        other = "server" if seen == "client" else "client"
        out.append(
            (
                ONE_DIRECTION,
                "medium",
                f"only the {seen}'s packets of this connection were captured: what the "
                f"{other} sent is missing, not absent",
            )
        )
    if flow.gap_frame is not None:
        out.append(
            (
                CAPTURE_GAP,
                "medium",
                f"the capture lost packets of this connection (frame {flow.gap_frame} shows "
                "data it never captured)",
            )
        )
    return out


def describe(code: str, t: Tally) -> str:
    """The warning's message."""
    first = f" (first: frame {t.frame})" if t.frame is not None else ""
    n = t.count
    if code == STARTED_MID_FLOW:
        return (
            f"{n} TCP connection{_s(n)} began before the capture{first}: roles may be guessed "
            "from the ports, and times count from the first packet captured"
        )
    if code == ONE_DIRECTION:
        return (
            f"{n} TCP connection{_s(n)} captured in one direction only{first}: the other "
            "side's packets are missing, so nothing is concluded from their absence"
        )
    if code == CAPTURE_GAP:
        return (
            f"{n} TCP connection{_s(n)} lost packets in the capture{first}: findings on "
            "them are medium confidence at most"
        )
    if code == DUPLICATE_FRAMES:
        return (
            f"{n} frame{_s(n)} of connections with findings captured twice{first}, as a span "
            "port does: not counted as retransmissions"
        )
    if code == OFFLOAD_OVERSIZE:
        return (
            f"{n} connection{_s(n)} with findings {'carries' if n == 1 else 'carry'} segments "
            "larger than the receiver's "
            f"MSS from the capturing host{first}: segmentation offload, not a path MTU problem"
        )
    if code == TCP_FRAGMENTS:
        if n == 1:
            what, carried, whose = "was an IP fragment of a TCP segment", "it carries", "its"
        else:
            what, carried, whose = "were IP fragments of TCP segments", "they carry", "their"
        return (
            f"{n} frame{_s(n)} {what}{first}, which pcapdiag does not reassemble: the bytes "
            f"{carried} are left out of {whose} connection{_s(n)}, whose data may look "
            "missing (a first fragment holding the TCP header is read with its own bytes only)"
        )
    if code == BAD_CHECKSUM_LOCAL:
        return (
            f"{n} connection{_s(n)} with findings {'has' if n == 1 else 'have'} the capturing "
            f"host's own SYN with a bad TCP checksum{first}: checksum offload, ignored"
        )
    return (
        f"{n} finding{_s(n)} {'is a timeout' if n == 1 else 'are timeouts'} still running "
        f"when the capture ended{first}: the kernel had not given up yet (see each finding)"
    )


def _s(n: int) -> str:
    return "" if n == 1 else "s"
