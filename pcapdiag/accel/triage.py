"""A first pass in C that sets aside the plain TCP connections and UDP flows of a pcap file.

Most connections of a busy link open, exchange data in order and close: every rule is silent
about them, and following each of their frames through the Python tracker is most of the time
a run takes. `_triage.c` reads the file once, very fast, and marks the frames of the
connections it can prove plain (the exact test is at the top of that file); the analysis then
skips those frames in runs and counts the connections. When the rules allow it (see
blind_to_plain), a connection whose only surprises are repairs, retransmitted data later
acknowledged and keepalive probes answered, counts as plain too. So does a connection that
began before the capture did (no SYN seen: on a busy link, most of them at first) when, from
its first segment on, the tracker would find in it only what track/plain.py allows such a
connection (MIDSTREAM_*) and the rules are blind to that too. Everything else, including
every connection with an unanswered retransmission, a RST, a lone SYN or an ICMP error about
it, goes through the tracker as before, and the report is the same as without this pass
(tests/accel/test_triage.py compares them). Under --jobs one pass plans for every worker.

The pass is used only when all of this holds, and otherwise silently not:
- the C extension was built (see hatch_build.py) and the analysis's Settings ask for it;
- the input is an uncompressed pcap or pcapng file of Ethernet frames, mapped in memory;
- every rule in use needs, to match, something a plain connection never has (checked from
  the rules themselves: a custom rule about healthy connections turns the pass off);
  UDP flows no ICMP error names are set aside the same way (the UDP rule needs one);
- the C pass did not meet a frame that might carry TCP in a way it does not decode (GRE,
  VXLAN, IPv6 extension headers), the unanswered attempts never approached the flow
  table's cap (its early releases depend on every attempt being counted) unless the pass
  followed the cap itself (failure shapes, below), and it never had to remember more than
  1,000,000 port pairs at once (the Python flow table, which releases what it can, then
  reads everything, and memory stays bounded).

Failure shapes: with a list of findings alike short enough (max_alike) and one worker, the
pass also records refused connections (a bare SYN, RST|ACK), SYNs an ICMP error answered (a
bare SYN, an error quoting it that aborts the connect) and lone SYNs (a bare SYN and nothing
else) by class (ShapeClass): the first ones of the classes that differ only in their times
(an outage's refusals, those near the capture's end included), and a few of each class, are
read as exemplars, the others set aside and counted into their exemplars' findings
(findings/samples.py, which checks that no group's list needed one of them). The pass
then follows the flow table's cap on unanswered attempts over every attempt, those set aside
included, and tells Python's table, which applies no cap of its own, at which frames it
releases its oldest (Plan.evict), stepping aside when it cannot tell which one that is.

With a selection of packets (pcapdiag/selection.py: hosts, ports, a span of capture time),
the pass applies it too: the frames it leaves out are set aside without being counted, as
Python leaves them out (Plan.bits, not Plan.own).

Frames the pass does not set aside are read in batches in C too (batches.py): the common TCP
segments are built there, the rest decoded in Python as before.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pcapdiag.accel import shared
from pcapdiag.accel.blind import blind_to_plain
from pcapdiag.accel.timing import boundaries
from pcapdiag.io.reader import MAX_CAPLEN, CaptureReader
from pcapdiag.rules.model import Rule
from pcapdiag.selection import Selection, TimeBound
from pcapdiag.track.flows import UDP_IDLE_NS, FlowTable

try:
    from pcapdiag.accel import _triage  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: every frame goes through Python
    _triage = None


# The failure shapes the first pass counts (_triage.c: SH_REFUSED, SH_LONE, SH_ICMP).
REFUSED, LONE, ICMP = 1, 2, 3


Span = tuple[int, int]
PortShare = tuple[int, int, Span, Span | None, Span]

# How the pass names the service of a plain flow: a TCP server's endpoint, the two endpoints
# of a TCP connection seen mid-stream, the first sender's second (the tracker guesses which
# is the server: track/connection.py looks_like_server_port), or a UDP server's endpoint.
SERVICE_KNOWN, SERVICE_GUESSED, SERVICE_UDP = 0, 1, 2


@dataclass(frozen=True, slots=True)
class ShapeClass:
    """Failing connections of one shape (REFUSED: a bare SYN, then RST|ACK from the server;
    ICMP: a bare SYN, then an ICMP or ICMPv6 error quoting it that aborts the connect; LONE:
    a bare SYN and nothing else until the flow table's cap released it or the capture ended;
    the RST or the ICMP error is the SYN's answer) alike in everything the tracker reads of
    them but who and when, counted by the first pass without being read: the analysis judges
    its `examples` (the first ones by time, frames left to Python) and counts these in with
    the findings they make."""

    kind: int
    examples: frozenset[int]  # the SYN frames of its exemplars
    count: int  # connections set aside
    syn_ts_ns: tuple[int, int]  # their first and last SYN's time
    answer_ts_ns: tuple[int, int] | None  # ... answer's (None: a lone SYN)
    end_ts_ns: tuple[int, int]  # ... end's, as the tracker ends them
    first_frames: tuple[int, int]  # their first SYN's frame, their first answer's (0: none)
    clients: list[bytes] | None  # their distinct client addresses (None: too many to count)
    # Each server port's share of them: (port, how many, the first and last time of their
    # SYNs, answers (None: lone SYNs) and ends), for the health table per service.
    shares: tuple[PortShare, ...]
    # least[moment][k]: (time, frame) of the first of them by that moment's time (0: SYN,
    # 1: answer, 2: end), then by frame k (0: the SYN's, 1: the answer's); None where it has
    # none.
    least: tuple[tuple[tuple[int, int] | None, ...], ...]

    @property
    def ports(self) -> list[int]:
        """The server's ports they went to."""
        return [share[0] for share in self.shares]


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of the first pass over one file for one worker: which frames are set
    aside (accel.batches reads the file by it) and what the report counts for them."""

    bits: bytes  # bit n - 1 set: frame n is skipped (a plain connection's, another worker's)
    own: bytes  # bit n - 1 set: frame n belongs to one of this worker's plain connections
    plain: int  # this worker's plain TCP connections set aside
    plain_udp: int  # this worker's plain UDP flows set aside
    records: int  # records the pass read
    # Of the plain TCP connections: seen mid-stream (begun before the capture), and of these
    # those seen from one side only (the report's capture-quality counts).
    plain_midstream: int = 0
    plain_one_direction: int = 0
    midstream_frame: int | None = None  # the first frame of each (None: none)
    one_direction_frame: int | None = None
    # Every host's first SYN / SYN-ACK (frame, TTL) in the whole file, for every worker
    # alike (track/hosts.py); None: more hosts than it holds.
    hosts: dict[bytes, tuple[int, int]] | None = None
    counted: tuple[ShapeClass, ...] = ()  # failing connections counted, not read
    # With failure shapes, the pass followed the flow table's cap on unanswered attempts:
    # Python's table applies none of its own, but releases its oldest attempt at each frame
    # `evict` marks (bit n - 1: frame n), and counts `evicted` more released unseen.
    follows_cap: bool = False
    evict: bytes = b""
    evicted: int = 0
    # This worker's plain flows by service: (SERVICE_KNOWN or SERVICE_UDP, server address,
    # port, None, 0, count) or (SERVICE_GUESSED, other address, port, first sender's address,
    # port, count).
    services: tuple[tuple[int, bytes, int, bytes | None, int, int], ...] = ()


def available() -> bool:
    """Whether the C pass was built (without a C compiler, pcapdiag is pure Python) from the
    definitions in force (a module built before track/plain.py or a decoder constant changed
    must not judge connections by the old ones: the analysis then reads every frame)."""
    return _triage is not None and getattr(_triage, "SHARED_DIGEST", None) == shared.digest()


_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _selection_args(
    selection: Selection | None,
) -> tuple[bytes, bytes, int, int, bool, bool, bool]:
    """A selection as _triage.c takes it: the hosts (each its length, then the address in
    16 bytes), a bitmap of the ports (empty: any), the span's bounds (each absolute or an
    offset from the first frame's time) and whether there is a span."""
    if selection is None:
        return b"", b"", _I64_MIN, _I64_MAX, False, False, False
    hosts = b"".join(bytes([len(h)]) + h.ljust(16, b"\0") for h in sorted(selection.hosts))
    ports = bytearray(65536 // 8) if selection.ports else bytearray()
    for port in selection.ports:
        ports[port >> 3] |= 1 << (port & 7)
    lo, lo_rel = _bound(selection.since, _I64_MIN)
    hi, hi_rel = _bound(selection.until, _I64_MAX)
    timed = selection.since is not None or selection.until is not None
    return hosts, bytes(ports), lo, hi, lo_rel, hi_rel, timed


def _bound(bound: TimeBound | None, open_end: int) -> tuple[int, bool]:
    if bound is None:
        return open_end, False
    if bound.offset_ns is not None:
        return bound.offset_ns, True
    assert bound.at_ns is not None
    return bound.at_ns, False


def first_pass(
    reader: CaptureReader,
    rules: Sequence[Rule],
    params: dict[str, dict[str, Any]],
    workers: int = 1,
    table: FlowTable | None = None,
    max_alike: int | None = None,
    max_clients: int = 0,
    shared: bool = True,
    selection: Selection | None = None,
) -> list[Plan] | None:
    """Run the C pass over `reader`'s file before it is read: one Plan for each of the
    `workers` of --jobs (worker k's at k), or None when the pass does not apply (see the
    module's docstring). Each worker skips the TCP and UDP frames of the other workers' flows
    too (shard.py decides the same). The timeouts and cap the pass applies are those of
    `table` (a flow table with the defaults if None), which every worker's table shares.
    With `max_alike` (the findings alike a report lists), `max_clients` (the distinct clients
    a group counts) and one worker, failing connections of a common shape beyond the first
    max_alike of their class are counted, not read (ShapeClass); `shared`: the first
    max_alike over the classes that differ only in their times, and a few of each class.
    With a `selection` of packets, the frames it leaves out are set aside without being
    counted (nor counted toward the flow table's sweeps), as Python leaves them out."""
    if table is None:
        table = FlowTable()
    if not available() or not blind_to_plain(rules, params):
        return None
    repairs = blind_to_plain(rules, params, repaired=True)
    # Connections seen mid-stream, with the same repairs as the others or none at all.
    midstream = blind_to_plain(rules, params, repaired=repairs, midstream=True)
    buf = reader.whole_file()
    if buf is None:
        return None
    pcapng = reader.format == "pcapng"  # the C pass checks each interface's link type
    if not pcapng and reader.linktypes != [1]:
        return None
    assert _triage is not None
    result = _triage.triage(
        buf,
        pcapng,
        reader.byte_order == "big",
        reader.nanosecond,
        MAX_CAPLEN,
        table.linger_ns,
        table.idle_ns,
        table.max_attempts,
        UDP_IDLE_NS,
        True,  # an mmap: pages read may be given back
        workers,
        repairs,
        midstream,
        max_alike or 0,
        table.attempt_grace_ns,
        max_clients,
        array("q", boundaries(rules, params) if max_alike else ()),
        shared,
        table.grace_ns,
        *_selection_args(selection),
    )
    if result is None:
        return None
    plans, records, hosts, shapes, evict, evicted = result
    counted = tuple(
        ShapeClass(
            kind, frozenset(ex), n, syn, rst, end, (f_syn, f_rst), clients, tuple(shares), least
        )
        for kind, ex, n, syn, rst, end, f_syn, f_rst, clients, shares, least in shapes
    )
    return [
        Plan(
            bits,
            own,
            plain,
            plain_udp,
            records,
            mid,
            oneway,
            mid_at or None,
            oneway_at or None,
            hosts,
            counted,
            evicted >= 0,
            evict,
            max(evicted, 0),
            tuple(services),
        )
        for bits, own, plain, plain_udp, mid, oneway, mid_at, oneway_at, services in plans
    ]
