"""Flow table: demultiplexes decoded packets into TCP connections and UDP flows (sans-IO).

A TCP connection is the 4-tuple plus an instance number: a SYN with a new initial sequence
number after the previous connection on the same ports has finished (or was still only
connecting) starts the next instance, as Wireshark's "reused ports" does. Instances count up
while each connection on the ports starts within `linger_ns` of the previous one's end (or
replaces it); after a longer pause numbering starts again at 1. ICMP errors are
routed to the flow named by the datagram they quote.

Memory is held per open flow. A flow that has ended is handed back to the caller as a
`FlowRecord` (with its events) and forgotten: when a new connection replaces it, `linger_ns`
after both ends closed, after `idle_ns` without a packet, or at the end of the capture.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pcapdiag.decode.icmp import icmp_kind
from pcapdiag.decode.packets import (
    ACK,
    RST,
    SYN,
    Datagram,
    IcmpError,
    Neighbour,
    Segment,
    format_addr,
    format_endpoint,
)
from pcapdiag.slots import compact_pickle
from pcapdiag.track.connection import ROLES_FROM_SYN, Connection, same_host
from pcapdiag.track.events import Datagram as DatagramEvent
from pcapdiag.track.events import End, Event, IcmpErrorEvent, Side
from pcapdiag.track.fingerprint import NOT_SEEN, Fingerprint
from pcapdiag.track.hosts import HostBaselines
from pcapdiag.track.neighbours import NeighbourTable, RunSummary
from pcapdiag.track.zeek import udp_conn_state, udp_history

# TIME_WAIT lasts 60 s on Linux (TCP_TIMEWAIT_LEN); late segments within twice that still
# belong to the connection that just closed.
DEFAULT_LINGER_NS = 120 * 1_000_000_000
# A connection whose both ends closed is diagnosed and released this long after (its late
# segments usually come within a round trip or two); for the rest of the linger time only a
# small tombstone stays, so that a later stray segment is counted as late, not taken for a
# new connection seen mid-stream.
DEFAULT_GRACE_NS = 10 * 1_000_000_000
# ... and a connection its ends closed before its handshake completed (a SYN refused by RST,
# an attempt reset: _ended_early) this long after: its late segments are a SYN
# retransmission that crossed the answer (Linux retransmits after 1 s, then 3 s: RFC 6298
# section 2; Windows sends its SYN again after a RST, about 2 s in all: Microsoft KB 175523)
# or a duplicate frame.
# In an outage ten thousand are refused a second, and each held for the full grace would keep
# a hundred thousand connections' state at once (400 MB, bench/floods.py).
ATTEMPT_GRACE_NS = 3 * 1_000_000_000
# Longer than Linux's default keepalive idle time (tcp_keepalive_time = 7200 s) plus a few
# probe intervals, so that a connection kept alive by default keepalives is never split.
DEFAULT_IDLE_NS = 7800 * 1_000_000_000
UDP_IDLE_NS = 300 * 1_000_000_000
# UDP flows keep at most this many datagram events (DNS floods); the count stays exact.
MAX_UDP_EVENTS = 64
_SWEEP_EVERY = 4096
# The full scan for idle flows runs at most this often, in capture time.
IDLE_SCAN_NS = 60 * 1_000_000_000

# Connection attempts (a client's SYN seen, nothing yet from the server) held at once at most.
# Past this the oldest attempt is diagnosed and released early (end reason "evicted"), as
# Linux conntrack frees unreplied entries first when its table is full (early_drop in
# net/netfilter/nf_conntrack_core.c): a SYN flood of a million spoofed sources costs this
# many attempts' memory, not a million. A busy server's capture has far fewer unanswered
# attempts open at any time; a real client's SYN retransmission after its attempt was evicted
# starts a new record.
MAX_ATTEMPTS = 20_000

# A flow holding more events than this (a long, chatty or lossy connection) has its repetitive
# events thinned: see `compact`.
MAX_EVENTS_PER_FLOW = 4096
_BULK_EVENTS = frozenset(
    {
        "data",
        "retransmission",
        "recovered",
        "keepalive",
        "keepalive_ack",
        "zero_window",
        "window_open",
        "zero_window_probe",
        "anomaly",
        "datagram",
    }
)
_KEEP_EACH_END = 64

Key = bytes
# The segments the neighbour table hears of (a SYN it may pin on a run, an answer to one).
_SYN_OR_RST = SYN | RST


def compact(events: list[Event]) -> list[Event]:
    """Thin a long event list: every rare event (syn, synack, handshake, fin, rst, icmp_error)
    stays, and of each repetitive kind and sender the first and the last 64 stay. Rules look
    at rare events, at whether a repetitive one happened between two of them, and at the
    first and last of a run, which all survive; only counts above 64 become lower bounds."""
    groups: dict[tuple[str, object], list[int]] = {}
    for i, ev in enumerate(events):
        if ev.name in _BULK_EVENTS:
            groups.setdefault((ev.name, ev.sender), []).append(i)
    drop: set[int] = set()
    for idx in groups.values():
        if len(idx) > 2 * _KEEP_EACH_END:
            drop.update(idx[_KEEP_EACH_END:-_KEEP_EACH_END])
    return [ev for i, ev in enumerate(events) if i not in drop]


def flow_key(src: bytes, sport: int, dst: bytes, dport: int) -> Key:
    """The same key for both directions: the two endpoints (address and port bytes) in
    order. One bytes object of 12 (IPv4) or 36 bytes (IPv6): a flow table remembers a key for
    every connection of the last minutes (instances, tombstones), and nested tuples of bytes
    and ints cost several times more."""
    a = src + sport.to_bytes(2, "big")
    b = dst + dport.to_bytes(2, "big")
    return a + b if a <= b else b + a


def _ended_early(conn: Connection) -> bool:
    """Whether a connection ended (refused, reset) during its handshake by its ends' own
    packets, which ATTEMPT_GRACE_NS then covers. One an ICMP error ended (no packet from the
    server) keeps the full grace: BSD and macOS send their SYN again after it, seconds
    later, as part of the same attempt (syn-icmp-retried)."""
    return conn.handshake != "complete" and conn.server.packets > 0


# Events a handshake takes at most: SYN, its retransmissions, SYN-ACK, the ACK.
HANDSHAKE_EVENTS = 8


@compact_pickle
@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A finished flow: what the rule engine and the report see."""

    proto: str  # "tcp" | "udp" | "neighbour" (an unanswered ARP / NDP run: track/neighbours.py)
    client: str  # "ip:port" ("[ip]:port" for IPv6); port 0 for "neighbour": no port is involved
    server: str
    instance: int
    roles: str  # "known" | "guessed"
    roles_reason: str
    handshake: str  # "complete" | "partial" | "none" (always "none" for UDP)
    first_frame: int
    first_ts_ns: int
    last_ts_ns: int
    client_packets: int
    server_packets: int
    client_bytes: int
    server_bytes: int
    client_state: str
    server_state: str
    history: str
    end_reason: str
    events: tuple[Event, ...]
    frames: array[int]  # frame numbers of the flow's packets (and ICMP errors about it)
    client_host: Fingerprint = NOT_SEEN  # what the client's packets look like
    server_host: Fingerprint = NOT_SEEN
    # Capture quality (findings/quality.py): only one side's packets were captured while
    # they acknowledge data of the other's the capture never shows; the first frame that
    # shows a segment the capture lost; frames captured twice.
    one_direction: bool = False
    one_host: bool = False  # both ends on one host (loopback): track.connection.same_host
    gap_frame: int | None = None
    duplicates: int = 0
    first_duplicate: int | None = None
    # Zeek's conn_state (track/zeek.py: S0, SF, REJ, ...); empty for a neighbour run, which
    # Zeek's conn.log has no line for.
    conn_state: str = ""

    def without_events(self) -> FlowRecord:
        """A copy without the events (what a finding keeps: it stays small). Field by field:
        dataclasses.replace() calls __init__ through keyword arguments, which cost 17 us a
        flow in a flood of a hundred thousand failing ones; this costs a few."""
        new = object.__new__(FlowRecord)
        for name in _RECORD_FIELDS:
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, "events", ())
        return new

    def handshake_only(self) -> FlowRecord:
        """A copy with the events of its handshake only (up to the client's ACK that ends it,
        at most HANDSHAKE_EVENTS) and its ICMP errors: what --join keeps of a flow without
        findings, for the clocks (join/clock.py), the vantage (findings/vantage.py) and the
        ICMP errors another view received (join/facts.py icmp_sent)."""
        kept = []
        for ev in self.events[:HANDSHAKE_EVENTS]:
            kept.append(ev)
            if ev.name == "handshake":
                break
        # And the ICMP errors about it: the other view may have received them.
        kept += [ev for ev in self.events[len(kept) :] if ev.name == "icmp_error"]
        new = self.without_events()
        object.__setattr__(new, "events", tuple(kept))
        return new

    @property
    def seen_from_start(self) -> bool:
        """Whether the capture holds the connection from its client's first SYN on."""
        return self.proto == "tcp" and self.roles_reason == ROLES_FROM_SYN

    def host(self, side: str) -> Fingerprint:
        return self.client_host if side == "client" else self.server_host

    @property
    def packets(self) -> int:
        return self.client_packets + self.server_packets


_RECORD_FIELDS = tuple(f for f in FlowRecord.__slots__ if f != "events")


def _frame_list() -> array[int]:
    return array("I")  # 4 bytes a frame, not a Python int object each


@dataclass(slots=True)
class _Tcp:
    conn: Connection
    key: Key
    queued: bool = False  # in FlowTable._finished
    attempt: bool = False  # in FlowTable._attempts: a SYN and no answer yet
    events: list[Event] = field(default_factory=list)
    frames: array[int] = field(default_factory=_frame_list)
    last_frame: int = 0


@dataclass(slots=True)
class _Udp:
    client: tuple[bytes, int]
    server: tuple[bytes, int]
    first_frame: int
    first_ts_ns: int
    last_ts_ns: int
    events: list[Event] = field(default_factory=list)
    frames: array[int] = field(default_factory=_frame_list)
    client_packets: int = 0
    server_packets: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    last_frame: int = 0
    client_ttl: int | None = None
    server_ttl: int | None = None


@dataclass(slots=True)
class SkippedRun:
    """A run of frames that went by unseen (the accelerator proved their flows plain and set
    them aside): `count` of them segments of this table's plain connections, whose
    timestamps are stamps[index:index + count]."""

    count: int
    stamps: Sequence[int]
    index: int


@dataclass(slots=True, frozen=True)
class EvictOldest:
    """The cap on unanswered attempts released the oldest one here, at `ts_ns`: what the
    accelerator's first pass, which followed the cap over every attempt (those it counted
    unseen too), tells a table that applies no cap of its own."""

    ts_ns: int


@dataclass(slots=True)
class FlowStats:
    tcp_connections: int = 0
    udp_flows: int = 0
    orphan_icmp: int = 0  # ICMP errors quoting a packet of no known flow
    late_segments: int = 0  # segments of connections that had closed and been released
    evicted_attempts: int = 0  # unanswered attempts released early (see MAX_ATTEMPTS)


class FlowTable:
    def __init__(
        self,
        *,
        linger_ns: int = DEFAULT_LINGER_NS,
        idle_ns: int = DEFAULT_IDLE_NS,
        grace_ns: int = DEFAULT_GRACE_NS,
        attempt_grace_ns: int = ATTEMPT_GRACE_NS,
        max_attempts: int | None = None,
        fast_path: bool = True,
    ):
        self.linger_ns = linger_ns
        self.grace_ns = grace_ns
        self.attempt_grace_ns = min(grace_ns, attempt_grace_ns)
        # 4-tuple -> (when its last connection finished, that connection's instance number):
        # a released connection's tombstone, kept for linger_ns. It is all that is remembered
        # of the ports' past, so that memory grows with the connections of the last two
        # minutes at most, not with every connection seen.
        self._tombstones: dict[Key, tuple[int, int]] = {}
        self.idle_ns = idle_ns
        self.tcp: dict[Key, _Tcp] = {}
        # (src, sport, dst, dport) as a packet carries it -> its connection and sender side:
        # one dictionary lookup a packet, with no canonical key to build.
        self._by_direction: dict[tuple[bytes, int, bytes, int], tuple[_Tcp, Side]] = {}
        self.udp: dict[Key, _Udp] = {}
        self.stats = FlowStats()
        self.hosts = HostBaselines()  # TTL of each host's first SYN / SYN-ACK (track/hosts.py)
        self.neighbours = NeighbourTable()  # ARP and NDP requests and their answers
        self._since_sweep = 0
        self._finished: deque[tuple[int, _Tcp]] = deque()  # (finished at, flow), in order
        # The same for those that ended before their handshake completed (their own grace).
        self._ended_early: deque[tuple[int, _Tcp]] = deque()
        # Unanswered connection attempts, oldest first. An OrderedDict, not a dict: taking the
        # oldest out of a dict scans the holes its earlier deletions left, which made a SYN
        # flood quadratic; OrderedDict.popitem(last=False) is O(1).
        self._attempts: OrderedDict[Key, _Tcp] = OrderedDict()
        self.max_attempts = MAX_ATTEMPTS if max_attempts is None else max_attempts
        self.fast_path = fast_path  # the connections' inline path for steady segments
        self._next_idle_scan = 0

    # -- input --------------------------------------------------------------------------------

    def add_segment(self, seg: Segment) -> list[FlowRecord]:
        self._since_sweep += 1
        if seg.flags & _SYN_OR_RST:  # one test for the common segment, as before
            if seg.flags & SYN:
                self.hosts.note(seg.src, seg.frame, seg.ttl)
            self.neighbours.note_syn(seg)
        done: list[FlowRecord] = (
            self._maybe_sweep(seg.ts_ns) if self._since_sweep >= _SWEEP_EVERY else []
        )
        hit = self._by_direction.get((seg.src, seg.sport, seg.dst, seg.dport))
        previous = 0  # the instance number of a connection this segment's replaces
        if hit is not None:
            conn = hit[0].conn
            now = seg.ts_ns
            ended_at = conn.finished_ts_ns
            # `_gone`, inlined for the common answer (still taking packets): this runs for
            # every segment.
            if (
                ended_at is not None and now - ended_at > self._grace(conn)
            ) or now - conn.last_ts_ns > self.idle_ns:
                done.append(self._close_tcp(hit[0].key, hit[0], self._gone(conn, now) or ""))
                hit = None
            elif seg.flags & SYN and self._starts_new_connection(conn, seg):
                done.append(self._close_tcp(hit[0].key, hit[0], "replaced"))
                previous = conn.instance
                hit = None
        if hit is None:
            key = flow_key(seg.src, seg.sport, seg.dst, seg.dport)
            tomb = self._tombstones.pop(key, None)
            # Decided from capture time alone (not from whether the sweep has removed the
            # tombstone yet), so that every worker of --jobs numbers alike.
            recent = tomb is not None and seg.ts_ns - tomb[0] <= self.linger_ns
            if recent and not (seg.flags & SYN and not seg.flags & ACK):
                assert tomb is not None
                self._tombstones[key] = tomb
                self.stats.late_segments += 1  # a straggler of a connection that closed
                return done
            if recent:
                assert tomb is not None
                previous = tomb[1]
            instance = previous + 1
            conn, sender = Connection.from_first_segment(seg, instance, self.fast_path)
            t = _Tcp(conn, key)
            self.tcp[key] = t
            c, sv = conn.client, conn.server
            self._by_direction[(c.addr, c.port, sv.addr, sv.port)] = (t, Side.CLIENT)
            self._by_direction[(sv.addr, sv.port, c.addr, c.port)] = (t, Side.SERVER)
            self.stats.tcp_connections += 1
            if seg.flags & SYN and not seg.flags & ACK:
                t.attempt = True
                self._attempts[key] = t
                if len(self._attempts) > self.max_attempts:
                    done.append(self.evict_oldest_attempt(seg.ts_ns))
        else:
            t, sender = hit
            if t.attempt and sender is Side.SERVER:
                t.attempt = False
                del self._attempts[t.key]
        conn = t.conn
        evs = conn.receive(seg, sender)
        if evs:
            events = t.events
            events.extend(evs)
            if len(events) > MAX_EVENTS_PER_FLOW:
                t.events = compact(events)
        t.frames.append(seg.frame)
        t.last_frame = seg.frame
        if conn.finished_ts_ns is not None and not t.queued:
            self._note_finished(t)
        return done

    def skip(self, count: int, ts_ns: int) -> list[FlowRecord]:
        """`count` segments of plain connections went by unseen (set aside by the accelerator),
        the last at `ts_ns`. They count toward the sweep schedule as if added, so that every
        other flow is swept at the same frames and times as in a full run; at most
        sweep_budget() at a time, so that a sweep due inside the run falls on its last
        segment."""
        self._since_sweep += count
        return self._maybe_sweep(ts_ns) if self._since_sweep >= _SWEEP_EVERY else []

    def sweep_now(self, ts_ns: int) -> list[FlowRecord]:
        """A sweep at `ts_ns` whatever the packet count (live output: what ended is released
        within a second of capture time, not after thousands more packets)."""
        self._since_sweep = _SWEEP_EVERY
        return self._maybe_sweep(ts_ns)

    def sweep_budget(self) -> int:
        """Packets until the next sweep is due."""
        return max(1, _SWEEP_EVERY - self._since_sweep)

    def skip_run(self, run: SkippedRun) -> list[FlowRecord]:
        """A run of skipped frames: its segments are counted toward the sweeps one sweep
        period at a time, so that every sweep falls on the frame and time it would in a full
        run. What a sweep released, if anything, comes back to be diagnosed."""
        count, stamps, index = run.count, run.stamps, run.index
        since = self._since_sweep + count
        if since < _SWEEP_EVERY:
            self._since_sweep = since  # the common case: no sweep due in the run
            return []
        done: list[FlowRecord] = []
        while count:
            step = min(count, self.sweep_budget())
            done += self.skip(step, stamps[index + step - 1])
            index += step
            count -= step
        return done

    def add_datagram(self, dg: Datagram) -> list[FlowRecord]:
        self._since_sweep += 1
        done: list[FlowRecord] = self._maybe_sweep(dg.ts_ns)
        key = flow_key(dg.src, dg.sport, dg.dst, dg.dport)
        u = self.udp.get(key)
        if u is not None and dg.ts_ns - u.last_ts_ns > UDP_IDLE_NS:
            done.append(self._close_udp(key, u, "expired"))
            u = None
        if u is None:
            u = _Udp((dg.src, dg.sport), (dg.dst, dg.dport), dg.frame, dg.ts_ns, dg.ts_ns)
            self.udp[key] = u
            self.stats.udp_flows += 1
        side = Side.CLIENT if (dg.src, dg.sport) == u.client else Side.SERVER
        if side is Side.CLIENT:
            u.client_packets += 1
            u.client_bytes += dg.payload_len
            if u.client_ttl is None:
                u.client_ttl = dg.ttl
        else:
            u.server_packets += 1
            u.server_bytes += dg.payload_len
            if u.server_ttl is None:
                u.server_ttl = dg.ttl
        u.last_ts_ns = dg.ts_ns
        u.last_frame = dg.frame
        u.frames.append(dg.frame)
        if len(u.events) < MAX_UDP_EVENTS:
            u.events.append(
                DatagramEvent(
                    frame=dg.frame,
                    ts_ns=dg.ts_ns,
                    sender=side,
                    receiver=side.peer,
                    length=dg.payload_len,
                )
            )
        return done

    def add_neighbour(self, pkt: Neighbour) -> None:
        """An ARP or NDP request or reply. Its records come at the end of the capture (see
        track/neighbours.py). It does not count toward the sweeps: the C first pass, which
        schedules them alike, counts only TCP, UDP and ICMP errors."""
        self.neighbours.add(pkt)

    def add_icmp(self, err: IcmpError) -> list[FlowRecord]:
        self._since_sweep += 1
        done: list[FlowRecord] = self._maybe_sweep(err.ts_ns)
        q = err.quoted
        if q.sport is None or q.dport is None:
            self.stats.orphan_icmp += 1
            return done
        key = flow_key(q.src, q.sport, q.dst, q.dport)
        if (
            q.proto == 6
            and (t := self.tcp.get(key)) is not None
            and (gone := self._gone(t.conn, err.ts_ns))
        ):
            done.append(self._close_tcp(key, t, gone))  # too old to be the one quoted
        if (
            q.proto == 17
            and (u := self.udp.get(key)) is not None
            and (err.ts_ns - u.last_ts_ns > UDP_IDLE_NS)
        ):
            done.append(self._close_udp(key, u, "expired"))
        if q.proto == 6 and (t := self.tcp.get(key)) is not None:
            side = t.conn.side_of(q.src, q.sport)
            assert side is not None
            t.events.extend(t.conn.icmp(err, side))
            t.frames.append(err.frame)
            t.last_frame = err.frame
            self._note_finished(t)
            return done
        if q.proto == 17 and (u := self.udp.get(key)) is not None:
            side = Side.CLIENT if (q.src, q.sport) == u.client else Side.SERVER
            idle = max(0, (err.ts_ns - u.last_ts_ns) // 1_000_000)
            u.last_ts_ns = err.ts_ns
            u.last_frame = err.frame
            u.frames.append(err.frame)
            peer = u.server if side is Side.CLIENT else u.client
            u.events.append(
                IcmpErrorEvent(
                    frame=err.frame,
                    ts_ns=err.ts_ns,
                    sender=None,
                    receiver=side,
                    kind=icmp_kind(err.family, err.type, err.code),
                    icmp_type=err.type,
                    icmp_code=err.code,
                    reporter=format_addr(err.src),
                    from_peer=err.src == peer[0],
                    accepted=True,
                    receiver_state="UDP",
                    idle_ms=idle,
                )
            )
            return done
        self.stats.orphan_icmp += 1
        return done

    def finish(self, end_ts_ns: int | None = None) -> Iterator[FlowRecord]:
        """The capture ended (its last frame at `end_ts_ns`): every flow still held ends
        here, and its `end` event carries the capture's end time. One record at a time, each
        flow released as it is handed back, so that the end of a capture with many open
        flows does not hold them twice."""
        now = end_ts_ns or 0
        for k in list(self.tcp):
            t = self.tcp[k]
            yield self._close_tcp(k, t, self._gone(t.conn, now) or "capture-end", end_ts_ns)
        for k in list(self.udp):
            u = self.udp[k]
            reason = "expired" if now - u.last_ts_ns > UDP_IDLE_NS else "capture-end"
            yield self._close_udp(k, u, reason, end_ts_ns)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _starts_new_connection(conn: Connection, seg: Segment) -> bool:
        if not seg.flags & SYN or seg.flags & ACK:
            return False
        side = conn.side_of(seg.src, seg.sport)
        isn = conn.client.isn
        if side is Side.CLIENT and isn is not None and (isn - seg.seq) % (1 << 32) == 0:
            return False  # a retransmission of the same SYN
        if conn.finished:
            return True
        # A new connect() from the same port while the previous attempt never got an answer.
        return (
            side is Side.CLIENT
            and conn.server.isn is None
            and conn.client.bytes_sent == 0
            and conn.server.packets == 0
        )

    def _gone(self, conn: Connection, now_ns: int) -> str | None:
        """Why a tracked connection no longer takes packets at `now_ns`: "closed" (ended more
        than linger_ns ago) or "expired" (idle longer than idle_ns); None if it still does.
        Decided from capture time alone, so the sweep below only frees what this would."""
        if conn.finished_ts_ns is not None and now_ns - conn.finished_ts_ns > self._grace(conn):
            return "closed"
        if now_ns - conn.last_ts_ns > self.idle_ns:
            return "expired"
        return None

    def _maybe_sweep(self, now_ns: int) -> list[FlowRecord]:
        """Release what ended or went idle. Called every _SWEEP_EVERY packets; finished
        connections leave through a queue in the order they finished (cheap), while the full
        scan for idle flows runs only every IDLE_SCAN_NS of capture time (a scan costs the
        number of flows held, so doing it per packet count made the run superlinear)."""
        if self._since_sweep < _SWEEP_EVERY:
            return []
        self._since_sweep = 0
        done: list[FlowRecord] = []
        for queue, grace in (
            (self._finished, self.grace_ns),
            (self._ended_early, self.attempt_grace_ns),
        ):
            while queue and now_ns - queue[0][0] > grace:
                _ts, t = queue.popleft()
                if t.conn.finished_ts_ns is None:
                    t.queued = False  # it came back to life (a RST it took had been lost)
                elif self.tcp.get(t.key) is t and self._gone(t.conn, now_ns) == "closed":
                    done.append(self._close_tcp(t.key, t, "closed"))
                elif self.tcp.get(t.key) is t and self._grace(t.conn) != grace:
                    t.queued = False  # its grace changed (its handshake completed after all)
                    self._note_finished(t)
        if now_ns < self._next_idle_scan:
            return done
        self._next_idle_scan = now_ns + IDLE_SCAN_NS
        for key, t in list(self.tcp.items()):
            gone = self._gone(t.conn, now_ns)
            if gone:
                done.append(self._close_tcp(key, t, gone))
        for key, (ended, _instance) in list(self._tombstones.items()):
            if now_ns - ended > self.linger_ns:
                del self._tombstones[key]
        for key, u in list(self.udp.items()):
            if now_ns - u.last_ts_ns > UDP_IDLE_NS:
                done.append(self._close_udp(key, u, "expired"))
        return done

    def evict_oldest_attempt(self, now_ns: int) -> FlowRecord:
        """Release the oldest unanswered attempt; its end is `now_ns` (nothing came back to
        it until then)."""
        key, t = self._attempts.popitem(last=False)
        t.attempt = False
        self.stats.evicted_attempts += 1
        return self._close_tcp(key, t, "evicted", now_ns)

    def _note_finished(self, t: _Tcp) -> None:
        if not t.queued and t.conn.finished_ts_ns is not None:
            t.queued = True
            queue = self._ended_early if _ended_early(t.conn) else self._finished
            queue.append((t.conn.finished_ts_ns, t))

    def _grace(self, conn: Connection) -> int:
        """How long a finished connection still takes late segments (see ATTEMPT_GRACE_NS)."""
        return self.attempt_grace_ns if _ended_early(conn) else self.grace_ns

    def _close_tcp(
        self, key: Key, t: _Tcp, reason: str, end_ts_ns: int | None = None
    ) -> FlowRecord:
        del self.tcp[key]
        if t.attempt:
            t.attempt = False
            del self._attempts[key]
        c = t.conn
        self._by_direction.pop((c.client.addr, c.client.port, c.server.addr, c.server.port), None)
        self._by_direction.pop((c.server.addr, c.server.port, c.client.addr, c.client.port), None)
        if reason == "closed":
            # Gone (a sweep, a later packet on its ports or the capture's end found it past its
            # grace): it was watched until its grace ran out, whenever that was noticed, so
            # that its end does not depend on when sweeps fall (the accelerator counts such
            # connections without seeing them).
            end_ts_ns = c.finished_ts_ns + self._grace(c) if c.finished_ts_ns is not None else None
        elif reason == "capture-end" and c.finished:
            reason = "closed"
        if c.finished_ts_ns is not None and reason != "replaced":
            self._tombstones[key] = (c.finished_ts_ns, c.instance)
        end = c.end(reason, max(end_ts_ns or 0, c.last_ts_ns), t.last_frame)
        t.events.append(end)
        one_way = c.acked_unseen and (c.client.packets == 0) != (c.server.packets == 0)
        return FlowRecord(
            proto="tcp",
            client=format_endpoint(c.client.addr, c.client.port),
            server=format_endpoint(c.server.addr, c.server.port),
            instance=c.instance,
            roles=c.roles,
            roles_reason=c.roles_reason,
            handshake=c.handshake,
            first_frame=c.first_frame,
            first_ts_ns=c.first_ts_ns,
            last_ts_ns=c.last_ts_ns,
            client_packets=c.client.packets,
            server_packets=c.server.packets,
            client_bytes=c.client.bytes_sent,
            server_bytes=c.server.bytes_sent,
            client_state=c.client.state.value,
            server_state=c.server.state.value,
            history=c.history(),
            end_reason=reason,
            events=tuple(t.events),
            frames=t.frames,
            client_host=c.client.fingerprint(),
            server_host=c.server.fingerprint(),
            one_direction=one_way,
            one_host=same_host(c.client.addr, c.server.addr),
            # One direction missing entirely is not a gap in it.
            gap_frame=None if one_way else c.gap_frame,
            duplicates=c.duplicates,
            first_duplicate=c.first_duplicate,
            conn_state=c.conn_state(),
        )

    def _close_udp(
        self, key: Key, u: _Udp, reason: str, end_ts_ns: int | None = None
    ) -> FlowRecord:
        del self.udp[key]
        u.events.append(
            End(
                frame=u.last_frame,
                ts_ns=max(end_ts_ns or 0, u.last_ts_ns),
                sender=None,
                receiver=None,
                reason=reason,
                client_state="UDP",
                server_state="UDP",
            )
        )
        return FlowRecord(
            proto="udp",
            client=format_endpoint(*u.client),
            server=format_endpoint(*u.server),
            instance=1,
            roles="guessed",
            roles_reason="UDP: the first sender is taken as the client",
            handshake="none",
            first_frame=u.first_frame,
            first_ts_ns=u.first_ts_ns,
            last_ts_ns=u.last_ts_ns,
            client_packets=u.client_packets,
            server_packets=u.server_packets,
            client_bytes=u.client_bytes,
            server_bytes=u.server_bytes,
            client_state="UDP",
            server_state="UDP",
            history=udp_history(u.client_packets, u.server_packets),
            end_reason=reason,
            events=tuple(u.events),
            frames=u.frames,
            client_host=Fingerprint(ttl=u.client_ttl),
            server_host=Fingerprint(ttl=u.server_ttl),
            conn_state=udp_conn_state(u.client_packets, u.server_packets),
        )


def neighbour_record(run: RunSummary) -> FlowRecord:
    """An unanswered run as a flow: the requester is the client, the target the server."""
    end = End(
        frame=run.last_frame,
        ts_ns=run.ended_ns,
        sender=None,
        receiver=None,
        reason=run.end_reason,
        client_state="INCOMPLETE",
        server_state="SILENT",
    )
    return FlowRecord(
        proto="neighbour",
        client=format_endpoint(run.requester, 0),
        server=format_endpoint(run.target, 0),
        instance=run.instance,
        roles="known",
        roles_reason="the requester asks for the target's link-layer address",
        handshake="none",
        first_frame=run.frames[0],
        first_ts_ns=run.first_ts_ns,
        last_ts_ns=run.last_ts_ns,
        client_packets=len(run.frames),
        server_packets=0,
        client_bytes=0,
        server_bytes=0,
        client_state="INCOMPLETE",
        server_state="SILENT",
        history="",
        end_reason=run.end_reason,
        events=(*run.events, end),
        frames=run.frames,
    )
