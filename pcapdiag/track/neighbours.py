"""Neighbour resolution (ARP, NDP): which requests for an address on the requester's own
link went unanswered, as flow records of proto "neighbour" (sans-IO).

Linux sends a packet to an on-link address (the destination itself, or the gateway of its
route) only once it knows that address's link-layer address. Until then the packet waits in
the neighbour entry's queue and the kernel asks: mcast_solicit (3) broadcast ARP requests or
multicast NDP solicitations, retrans_time_ms (1 s) apart (net/core/neighbour.c
neigh_timer_handler()). With no answer the entry goes FAILED, the queued packets are dropped
and each one's socket is told "host unreachable" (neigh_invalidate() -> arp_error_report() /
ndisc_error_report()): a connect() fails with EHOSTUNREACH. The SYN itself never reaches the
wire, unless the entry was stale and the SYN left to the old address first.

A run is what one such resolution leaves on the wire: the requests of one requester for one
target with no reply for the target between them and no silence longer than RUN_GAP_NS. A
reply for the target (from anyone to anyone: the target is there and answers), or any ARP
request the target itself sends, answers every run for it open at the time; an answered run
is forgotten. Not requests, because no socket waits on them: an ARP probe (sender 0.0.0.0,
RFC 5227 section 2.1.1), an NDP solicitation from :: (duplicate address detection, RFC 4862
section 5.4) and a gratuitous request (a host announcing its own address: sender = target).

Unanswered runs are kept to the end of the capture (at most MAX_RUNS) and become records
then, because two facts about a run are known only once the capture has been read: how many
addresses its requester asked for in vain (a sweep asks for a whole subnet; `targets`), and
whether the requester sent a SYN the resolution stood in the way of (`attempt`). Under
--jobs every worker follows every ARP and NDP frame but sees only its share of the SYNs:
the tables are merged (`merge`) before the runs are judged, so that the runs come out the
same as in one process. A SYN counts
only while nothing answers it: the C first pass sets aside the plain connections, SYN and
SYN-ACK alike, and a SYN its SYN-ACK answered must weigh the same as one never seen. SYNs
are held per requester, and for SYN_BEFORE_NS among the recent ones before their host's
first request (UDP datagrams are not noted: the first pass sets aside one-way UDP flows
too).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from pcapdiag.decode.packets import ACK, RST, Neighbour, Segment, format_addr, format_endpoint
from pcapdiag.slots import compact_pickle
from pcapdiag.track.events import NeighbourRequest, Side

# A resolution's requests come retrans_time_ms apart (1 s on Linux, also Windows' and BSD's
# order of magnitude); a longer silence ends the run, the next request starts another.
RUN_GAP_NS = 10 * 1_000_000_000
# Runs kept for the end of the capture; past this, later runs are only counted (a flood of
# requests for a /8).
MAX_RUNS = 4096
# Request events a run keeps (the count and the frames stay exact).
MAX_REQUEST_EVENTS = 64
# Addresses remembered per requester (what it asked for: on its link).
MAX_ASKED = 4096
# Unanswered SYNs remembered per requester.
MAX_SYNS = 64
# Recent SYNs of hosts that have not asked for anything yet, held at most (a SYN flood:
# beyond it, new ones are not held).
MAX_RECENT_SYNS = 4096
# A SYN belongs to a run from this long before its first request (a stale entry: the SYN
# left to the old link-layer address, delay_first_probe_time 5 s before the unicast probes)
# to this long after its last (the kernel gives up retrans_time_ms after it).
SYN_BEFORE_NS = 10 * 1_000_000_000
SYN_AFTER_NS = 1_000_000_000

_ZERO4 = bytes(4)
_ZERO6 = bytes(16)


@dataclass(slots=True)
class _Run:
    requester: bytes
    target: bytes
    instance: int
    frames: array[int] = field(default_factory=lambda: array("I"))
    stamps: list[int] = field(default_factory=list)  # of the first MAX_REQUEST_EVENTS
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    last_frame: int = 0
    ended_ns: int = 0  # capture time of the packet that ended it, or of the capture's end


@compact_pickle
@dataclass(slots=True)
class _Syn:
    frame: int
    ts_ns: int
    dst: bytes
    sport: int
    dport: int


@dataclass(frozen=True, slots=True)
class RunSummary:
    """An unanswered run as the flow table turns it into a record."""

    requester: bytes
    target: bytes
    instance: int
    frames: array[int]
    events: tuple[NeighbourRequest, ...]
    first_ts_ns: int
    last_ts_ns: int
    last_frame: int
    ended_ns: int
    end_reason: str


class NeighbourTable:
    def __init__(self) -> None:
        self._open: dict[tuple[bytes, bytes], _Run] = {}  # (requester, target) -> its run
        self._asking: dict[bytes, set[bytes]] = {}  # target -> requesters with an open run
        self._done: list[tuple[_Run, str]] = []  # unanswered runs that ended, and why
        self._instances: dict[tuple[bytes, bytes], int] = {}
        self.requesters: set[bytes] = set()  # every address that sent a request
        self._asked: dict[bytes, set[bytes]] = {}  # requester -> every address it asked for
        self._syns: dict[bytes, list[_Syn]] = {}  # requester -> its unanswered SYNs
        # (src, sport, dst, dport) -> the SYN, of the last SYN_BEFORE_NS, oldest first
        self._recent: dict[tuple[bytes, int, bytes, int], _Syn] = {}
        self.dropped_runs = 0  # unanswered runs beyond MAX_RUNS
        # Set when the capture has been read: where it came from, and when it ended.
        self.sources: tuple[str, ...] = ()
        self.end_ts_ns = 0

    # -- input --------------------------------------------------------------------------------

    def add(self, pkt: Neighbour) -> None:
        zero = _ZERO4 if pkt.family == 4 else _ZERO6
        if pkt.reply:
            self._answered(pkt.sender, pkt.ts_ns)
            return
        if pkt.sender == pkt.target:
            self._answered(pkt.sender, pkt.ts_ns)  # gratuitous: the host announces itself
            return
        if pkt.sender == zero:
            return  # a probe or duplicate address detection: no socket waits on it
        # A host that asks is a host that is there: its own runs stay, others' for it end.
        self._answered(pkt.sender, pkt.ts_ns)
        self._request(pkt)

    def note_syn(self, seg: Segment) -> None:
        """A SYN, SYN-ACK or RST. A SYN from a host that has not asked for anything yet waits
        SYN_BEFORE_NS among the recent ones (a stale entry's SYN leaves before its probes);
        a SYN-ACK or RST answers the SYN it goes back to (the host is there)."""
        if seg.flags & (ACK | RST):
            self._recent.pop((seg.dst, seg.dport, seg.src, seg.sport), None)
            syns = self._syns.get(seg.dst)
            if syns:
                self._syns[seg.dst] = [
                    s
                    for s in syns
                    if not (s.dst == seg.src and s.dport == seg.sport and s.sport == seg.dport)
                ]
            return
        if seg.src not in self.requesters:
            recent = self._recent
            key = (seg.src, seg.sport, seg.dst, seg.dport)
            while recent:
                oldest = next(iter(recent))
                if seg.ts_ns - recent[oldest].ts_ns <= SYN_BEFORE_NS:
                    break
                del recent[oldest]
            if key not in recent and len(recent) < MAX_RECENT_SYNS:
                recent[key] = _Syn(seg.frame, seg.ts_ns, seg.dst, seg.sport, seg.dport)
            return
        self._keep(seg.src, _Syn(seg.frame, seg.ts_ns, seg.dst, seg.sport, seg.dport))

    def _keep(self, requester: bytes, syn: _Syn) -> None:
        syns = self._syns.setdefault(requester, [])
        for s in syns:
            if s.dst == syn.dst and s.sport == syn.sport and s.dport == syn.dport:
                return  # the same attempt's retransmission
        if len(syns) >= MAX_SYNS:
            syns[:] = [s for s in syns if self._may_matter(requester, s, syn.ts_ns)]
        if len(syns) < MAX_SYNS:
            syns.append(syn)

    def _may_matter(self, requester: bytes, syn: _Syn, now_ns: int) -> bool:
        """Whether a run of `requester` may still take `syn` as its attempt: one does
        already, or one may yet begin within SYN_BEFORE_NS of it. (Only unanswered SYNs
        that matter make a requester's list full, whatever the first pass set aside: a
        busy host's failed attempts of long ago must not crowd out the one a run needs.)"""
        if now_ns - syn.ts_ns <= SYN_BEFORE_NS:
            return True
        runs = [r for r, _ in self._done if r.requester == requester]
        runs += [r for (who, _), r in self._open.items() if who == requester]
        return any(
            r.first_ts_ns - SYN_BEFORE_NS <= syn.ts_ns <= r.last_ts_ns + SYN_AFTER_NS for r in runs
        )

    def merge(self, other: NeighbourTable) -> None:
        """Take in another worker's SYNs (its runs are the same as this table's: every worker
        reads every ARP and NDP frame)."""
        for requester, theirs in other._syns.items():
            for syn in sorted(theirs, key=lambda s: s.frame):
                self._keep(requester, syn)
        for syns in self._syns.values():
            syns.sort(key=lambda s: s.frame)

    def finish(self, end_ts_ns: int | None = None) -> list[RunSummary]:
        """The capture ended (at `end_ts_ns`, default `self.end_ts_ns`): every unanswered
        run, in order of its first request."""
        end = self.end_ts_ns if end_ts_ns is None else end_ts_ns
        for run in list(self._open.values()):
            self._end(run, "capture-end", max(end, run.last_ts_ns))
        self._open.clear()
        self._asking.clear()
        runs = sorted(self._done, key=lambda d: d[0].frames[0])
        self._done = []
        unanswered: dict[bytes, set[bytes]] = {}
        for run, _ in runs:
            unanswered.setdefault(run.requester, set()).add(run.target)
        return [self._summary(run, why, len(unanswered[run.requester])) for run, why in runs]

    # -- internals ----------------------------------------------------------------------------

    def _request(self, pkt: Neighbour) -> None:
        key = (pkt.sender, pkt.target)
        if pkt.sender not in self.requesters:
            self.requesters.add(pkt.sender)
            for k, syn in list(self._recent.items()):
                if k[0] == pkt.sender:
                    del self._recent[k]
                    self._keep(pkt.sender, syn)
        asked = self._asked.setdefault(pkt.sender, set())
        if len(asked) < MAX_ASKED:  # beyond it, a sweep: its runs are no one's connect()
            asked.add(pkt.target)
        run = self._open.get(key)
        if run is not None and pkt.ts_ns - run.last_ts_ns > RUN_GAP_NS:
            self._end(run, "expired", pkt.ts_ns)
            run = None
        if run is None:
            instance = self._instances.get(key, 0) + 1
            self._instances[key] = instance
            run = _Run(pkt.sender, pkt.target, instance, first_ts_ns=pkt.ts_ns)
            self._open[key] = run
            self._asking.setdefault(pkt.target, set()).add(pkt.sender)
        run.frames.append(pkt.frame)
        if len(run.stamps) < MAX_REQUEST_EVENTS:
            run.stamps.append(pkt.ts_ns)
        run.last_ts_ns = pkt.ts_ns
        run.last_frame = pkt.frame

    def _answered(self, target: bytes, ts_ns: int) -> None:
        """`target` showed itself: the runs asking for it are answered (and forgotten), but
        one silent longer than RUN_GAP_NS had already ended unanswered."""
        for requester in self._asking.pop(target, ()):
            run = self._open.pop((requester, target))
            if ts_ns - run.last_ts_ns > RUN_GAP_NS:
                self._end(run, "expired", ts_ns)

    def _end(self, run: _Run, why: str, now_ns: int) -> None:
        run.ended_ns = now_ns
        key = (run.requester, run.target)
        if self._open.get(key) is run:
            del self._open[key]
            asking = self._asking.get(run.target)
            if asking is not None:
                asking.discard(run.requester)
                if not asking:
                    del self._asking[run.target]
        if len(self._done) >= MAX_RUNS:
            self.dropped_runs += 1
            return
        self._done.append((run, why))

    def _summary(self, run: _Run, why: str, targets: int) -> RunSummary:
        attempt, syn = self._attempt(run)
        to = format_endpoint(syn.dst, syn.dport) if syn is not None else ""
        requester, target = format_addr(run.requester), format_addr(run.target)
        silence = (run.ended_ns - run.last_ts_ns) // 1_000_000
        events = tuple(
            NeighbourRequest(
                frame=frame,
                ts_ns=ts,
                sender=Side.CLIENT,
                receiver=Side.SERVER,
                requester=requester,
                target=target,
                number=i + 1,
                targets=targets,
                attempt=attempt,
                attempt_frame=syn.frame if syn is not None else 0,
                attempt_to=to,
                silence_ms=silence,
            )
            for i, (frame, ts) in enumerate(zip(run.frames, run.stamps, strict=False))
        )
        return RunSummary(
            run.requester,
            run.target,
            run.instance,
            run.frames,
            events,
            run.first_ts_ns,
            run.last_ts_ns,
            run.last_frame,
            run.ended_ns,
            why,
        )

    def _attempt(self, run: _Run) -> tuple[str, _Syn | None]:
        """The unanswered SYN the run stood in the way of: one to the target first, else one
        to an address the requester never asked for (off its link: via a gateway)."""
        lo, hi = run.first_ts_ns - SYN_BEFORE_NS, run.last_ts_ns + SYN_AFTER_NS
        near = [s for s in self._syns.get(run.requester, ()) if lo <= s.ts_ns <= hi]
        for s in near:
            if s.dst == run.target:
                return "to-target", s
        asked = self._asked.get(run.requester, set())
        for s in near:
            if s.dst not in asked:
                return "via-target", s
        return "none", None
