"""Two-sided TCP connection tracker: segments in, events out (sans-IO).

Invariants:
- Nothing here reads a file, a clock or a rule. Time is the capture timestamp of the segment.
- One `Connection` holds two `Endpoint`s. Each endpoint's state only changes through
  `tcpstate.next_state` (the transition table); this module decides *what happened* to the
  endpoint: it sent a FIN, it accepted a RST, its FIN was acknowledged.
- The capture point is assumed to see what both endpoints saw. Where that matters (a RST seen
  at the client tap may never reach the server), reports say "as seen at the capture point".
- Sequence numbers are unwrapped to unbounded integers per endpoint (32-bit serial arithmetic,
  RFC 1982), so comparisons stay correct across a 2^32 wraparound.

Theory of operation: for a segment from endpoint S to endpoint R the tracker (1) judges a RST
against R's receive state as Linux would (tcp_validate_incoming, RFC 5961 section 3.2), (2)
processes the ACK (R's data acknowledged, handshake completion, FIN acknowledged), (3) the
window, (4) the payload and FIN (new data, retransmission, keepalive, zero-window probe), and
emits one event for each thing a rule may care about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pcapdiag.decode.icmp import icmp_kind
from pcapdiag.decode.packets import ACK, ECE, FIN, RST, SYN, URG, IcmpError, Segment, format_addr
from pcapdiag.track import syncookie
from pcapdiag.track.events import (
    Anomaly,
    Data,
    End,
    Event,
    Fin,
    Handshake,
    IcmpErrorEvent,
    Keepalive,
    KeepaliveAck,
    Recovered,
    Retransmission,
    Rst,
    Side,
    Syn,
    SynAck,
    SynCookie,
    WindowOpen,
    ZeroWindow,
    ZeroWindowProbe,
)
from pcapdiag.track.fingerprint import (
    DF_CLEAR,
    DF_NAMES,
    DF_SET,
    IP_ID_STEP,
    Fingerprint,
    captured_on_sender,
    ip_id_fit,
    ip_id_kind,
    ip_id_step,
)
from pcapdiag.track.tcpstate import SYNCHRONIZED, Input, TcpState, next_state
from pcapdiag.track.zeek import SEEN_A, SEEN_D, ZeekSide, ZeekView

_MOD = 1 << 32
_HALF = 1 << 31
# Receive window assumed when the window scale is unknown (connection seen mid-stream): large,
# so that a RST is judged "challenge-ack" rather than "out-of-window" when in doubt.
_UNKNOWN_WINDOW = 1 << 30

# ICMP kinds Linux TCP does not turn into an error (tcp_v4_err / tcp_v6_err): fragmentation
# needed / packet too big only lower the MSS; source quench and redirect are ignored; unknown
# codes (> NR_ICMP_UNREACH) are ignored.
LINUX_TCP_IGNORED_KINDS = frozenset(
    {
        "v4:fragmentation-needed",
        "v4:source-quench",
        "v4:redirect",
        "v4:unreachable-other",
        "v4:other",
        "v6:packet-too-big",
        "v6:other",
    }
)


# A segment seen again within this long is the same frame captured twice (a duplicate).
DUPLICATE_NS = 1_000_000

# Why the roles are known when the capture holds the connection from its first SYN on.
ROLES_FROM_SYN = "the client sent the first SYN"

_MAY_SEND_FIN = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.SYN_RECEIVED})

# A plain segment has ACK set and none of these (PSH, ECE and CWR change nothing here).
_PLAIN_MASK = SYN | FIN | RST | URG | ACK


def _anomaly(seg: Segment, s: Endpoint, r: Endpoint, kind: str) -> Anomaly:
    return Anomaly(frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=r.side, kind=kind)


def _df_fit(seg: Segment, seen: int) -> str:
    """Whether a RST's DF bit is the one its claimed sender's packets after the handshake
    carry: "same", "differs", or "unknown" (IPv6, none seen, or they carried both)."""
    if seg.ip_id < 0 or seen not in (DF_CLEAR, DF_SET):
        return "unknown"
    return "same" if (seen == DF_SET) == seg.df else "differs"


def _drop_acked(flight: list[tuple[int, int, int]], ack: int) -> None:
    """Forget the segments in flight that `ack` covers (they are in sequence order)."""
    k = 0
    for _start, end, _ts in flight:
        if end > ack:
            break
        k += 1
    if k:
        del flight[:k]


def _steady(s: Endpoint, r: Endpoint) -> bool:
    """Both endpoints ESTABLISHED with nothing pending that the general path must see."""
    return (
        s.state is TcpState.ESTABLISHED
        and r.state is TcpState.ESTABLISHED
        and s.scale_known
        and not (
            s.retx_streak
            or r.retx_streak
            or s.keepalive_unanswered
            or r.keepalive_unanswered
            or s.zero_window
            or r.zero_window
        )
    )


def same_host(a: bytes, b: bytes) -> bool:
    """Whether two addresses are one host's: equal, or both loopback (127.0.0.0/8, ::1),
    where a capture sees what both kernels got."""
    if a == b:
        return True
    if len(a) == 4:
        return a[0] == 127 and b[0] == 127
    return a == b == _LOOPBACK6


_LOOPBACK6 = bytes(15) + b"\x01"


def _state_proven(r: Endpoint, s: Endpoint) -> bool:
    """Whether `r`'s state is proven by the capture, not only inferred from what `s` sent it:
    nothing was sent to it that it has not acknowledged (its own ACKs show what it took in),
    or the capture was taken on its host, where what arrives is what the kernel got (both
    ends on one host, or its packets leave with their initial TTL, the sender's arrive with
    less)."""
    if r.rcv_nxt is None or (r.last_ack_sent is not None and r.last_ack_sent >= r.rcv_nxt):
        return True
    return same_host(r.addr, s.addr) or captured_on_sender(r.ttl, s.ttl)


def unwrap(raw: int, ref: int) -> int:
    """The unbounded sequence number closest to `ref` whose low 32 bits are `raw`."""
    delta = (raw - ref) % _MOD
    if delta >= _HALF:
        delta -= _MOD
    return ref + delta


@dataclass(slots=True)
class Endpoint:
    """What one side of a connection has sent and received, as seen on the wire."""

    side: Side
    addr: bytes
    port: int
    state: TcpState
    zeek: ZeekSide  # its states and letters in Zeek's terms (track/zeek.py)
    isn: int | None = None  # unwrapped initial sequence number, once a SYN was seen
    snd_una: int | None = None  # oldest byte this endpoint sent that is not yet acknowledged
    snd_nxt: int | None = None  # one past the highest sequence number sent
    fin_seq: int | None = None  # sequence number of this endpoint's FIN
    # This endpoint's FIN and data from the peer crossed on the way: the FIN did not
    # acknowledge data the peer had sent, or the peer's next data did not acknowledge the FIN
    # (Rst.crossed_fin: an HTTP keep-alive race).
    fin_crossed: bool = False
    rcv_nxt: int | None = None  # next sequence number expected from the peer (peer's space)
    last_ack_sent: int | None = None  # last ACK value sent (peer's space): Linux rcv_wup
    window: int = _UNKNOWN_WINDOW  # last receive window advertised, scaled
    wscale: int | None = None  # window scale offered in this endpoint's SYN
    scale_known: bool = False  # both SYNs seen, so the scale in use is known
    bytes_sent: int = 0  # new payload bytes (retransmissions not counted)
    bytes_received: int = 0  # new payload bytes from the peer seen reaching this endpoint
    received_since_send: int = 0  # bytes received since this endpoint last sent new data
    run_idle_ms: int = 0  # idle_ms of this endpoint's latest data event (Retransmission)
    packets: int = 0
    retx_streak: int = 0  # retransmissions since the peer last acknowledged new data
    keepalive_unanswered: int = 0
    # An ACK this endpoint got in SYN_SENT that did not acknowledge its SYN (the peer still holds
    # an older connection on the same ports): RFC 9293 3.10.7.3 answers it with a RST whose seq
    # is that ACK, which resets the peer's stale state and leaves our connect() going.
    stale_ack: int | None = None
    zero_window: bool = False
    # Whether a segment this endpoint sent and the peer has not acknowledged is larger than the
    # peer's MSS (segmentation offload on the capturing host): worked out once per streak of
    # retransmissions, at its first (see Connection._retransmission).
    unacked_oversize: bool = False
    zero_window_since_ns: int = 0  # when this endpoint's window last became zero
    # The state this endpoint was in when it accepted a RST, until it is seen sending on the
    # connection again (then the RST never reached it: see Connection.receive).
    state_before_reset: TcpState | None = None
    # This endpoint sent a RST (not one clearing a stale connection) and has sent nothing
    # with data or FIN since: if it does, the RST was not its own (see Connection.receive).
    sent_rst: bool = False
    ttl: int | None = None
    # The sequence number and capture time of this endpoint's last retransmission: a copy of
    # it within DUPLICATE_NS is the same frame captured twice, not another retransmission.
    last_retx: tuple[int, int] | None = None
    # Options layout, window and MSS of this endpoint's SYN (or SYN-ACK): its platform's
    # signature (track/fingerprint.py).
    syn_layout: str | None = None
    syn_window: int | None = None
    syn_mss: int | None = None
    bad_checksum_frame: int | None = None
    # IPv4 ID of its latest packet after the handshake (-1: none) and their behaviour so far
    # (fingerprint.ip_id_kind), the DF bits they carried (fingerprint.DF_*): what a RST in
    # its name is held to (Rst.ip_id_fit, Rst.df_fit).
    ip_id_last: int = -1
    ip_id_kind: str = ""
    df_seen: int = 0
    # (start, end, first transmission time) of segments in flight, oldest first: used to say
    # how long after the original a retransmission came (Wireshark tcp.analysis.rto).
    # A list, not a deque: an empty deque takes 600 bytes, and there are two per connection.
    in_flight: list[tuple[int, int, int]] = field(default_factory=list)

    def seq(self, raw: int) -> int:
        """Unwrap a raw sequence number of this endpoint's sequence space."""
        ref = self.snd_nxt if self.snd_nxt is not None else raw
        return unwrap(raw, ref)

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(
            self.ttl,
            self.syn_layout,
            self.syn_window,
            self.syn_mss,
            self.bad_checksum_frame,
            self.ip_id_kind,
            DF_NAMES[self.df_seen],
        )

    def note_ip(self, seg: Segment) -> None:
        """Keep the IPv4 ID and DF of a packet after the handshake (SYNs are left out: a
        Linux listener sends its SYN-ACK with ID 0, before the connection's socket and
        its counter exist)."""
        iid = seg.ip_id
        if iid < 0:
            return
        if self.ip_id_last >= 0:
            self.ip_id_kind = ip_id_kind(self.ip_id_kind, ip_id_step(self.ip_id_last, iid))
        self.ip_id_last = iid
        self.df_seen |= DF_SET if seg.df else DF_CLEAR

    def note_syn(self, seg: Segment) -> None:
        """Keep the SYN's signature (the first SYN or SYN-ACK of this endpoint)."""
        if self.syn_window is None:
            self.syn_window = seg.window
            opts = seg.options
            self.syn_layout = opts.layout if opts is not None else ""
            self.syn_mss = opts.mss if opts is not None else None
            if seg.bad_checksum:
                self.bad_checksum_frame = seg.frame


@dataclass(slots=True)
class Connection:
    """One TCP connection instance: a 4-tuple plus an instance number (port reuse)."""

    client: Endpoint
    server: Endpoint
    instance: int = 1
    roles: str = "known"  # known | guessed
    roles_reason: str = ROLES_FROM_SYN
    first_frame: int = 0
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    # The silence before the packet being processed and before the one that came first:
    # a RST's idle gap is the longer (a reply to the first packet after an idle spell comes
    # at once, the spell was before that packet).
    gap_ns: int = 0
    gap_before_ns: int = 0
    handshake: str = "none"  # none | partial | complete
    finished_ts_ns: int | None = None  # set once both endpoints are closed
    # The side whose run of data segments is open: further data from it, with no other event
    # in between, is folded into the run's first `data` event (memory per connection then
    # grows with the turns of the conversation, not with its segments).
    data_run: Side | None = None
    # Capture quality (findings/quality.py): an ACK covered data the capture never showed
    # (with one side never seen, that side was there and sending: its packets are missing);
    # the first frame showing that the capture lost a segment of this connection; frames
    # captured twice (a span port).
    acked_unseen: bool = False
    gap_frame: int | None = None
    duplicates: int = 0
    first_duplicate: int | None = None
    # The side last seen probing its peer's zero window, and whether it later answered the peer
    # with a RST without ACK (its socket gone: End.zero_window_abandoned).
    zero_window_prober: Side | None = None
    zero_window_abandoned: bool = False
    # The server's latest SYN-ACK with timestamps, until its next segment shows whether that
    # SYN-ACK carried a cookie (track/syncookie.py): TSval, capture time, frame, and the
    # options code a cookie would carry (-1: the SYN was not captured).
    cookie_check: tuple[int, int, int, int] | None = None
    # Take steady segments through the inline path (_steady_segment): the same events and
    # states as the general path, faster. Off only to compare the two.
    fast_path: bool = True
    # Zeek's view of the connection (track/zeek.py): its endpoint states and history; the
    # endpoints' `zeek` are its two sides.
    zeek: ZeekView = field(default_factory=ZeekView)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_first_segment(
        cls, seg: Segment, instance: int = 1, fast_path: bool = True
    ) -> tuple[Connection, Side]:
        """Start tracking at `seg`; returns the connection and the side that sent `seg`."""
        a = (seg.src, seg.sport)
        b = (seg.dst, seg.dport)
        syn, ack = bool(seg.flags & SYN), bool(seg.flags & ACK)
        if syn and not ack:
            client, server, sender = a, b, Side.CLIENT
            roles, reason = "known", ROLES_FROM_SYN
            cstate, sstate = TcpState.CLOSED, TcpState.LISTEN
        elif syn and ack:
            client, server, sender = b, a, Side.SERVER
            roles, reason = "known", "the server's SYN-ACK was seen (the SYN was not captured)"
            cstate, sstate = TcpState.SYN_SENT, TcpState.LISTEN
        else:
            sender_is_server = looks_like_server_port(seg.sport, seg.dport)
            if sender_is_server:
                client, server, sender = b, a, Side.SERVER
            else:
                client, server, sender = a, b, Side.CLIENT
            roles = "guessed"
            reason = "no SYN was captured (the connection started before the capture); " + (
                "the server is the side with the lower port, below the ephemeral range"
                if seg.sport != seg.dport and min(seg.sport, seg.dport) < 32768
                else "the first sender is taken as the client"
            )
            cstate = sstate = TcpState.ESTABLISHED
        zeek = ZeekView()
        if sender is Side.SERVER:
            # The client (Zeek's originator) did not send the first packet: Zeek writes ^
            # when its heuristic makes the same choice (track/zeek.py).
            zeek.flip()
        conn = cls(
            client=Endpoint(Side.CLIENT, client[0], client[1], cstate, zeek.orig),
            server=Endpoint(Side.SERVER, server[0], server[1], sstate, zeek.resp),
            instance=instance,
            roles=roles,
            roles_reason=reason,
            first_frame=seg.frame,
            first_ts_ns=seg.ts_ns,
            last_ts_ns=seg.ts_ns,
            fast_path=fast_path,
            zeek=zeek,
        )
        if roles == "guessed":
            conn.handshake = "none"
        return conn, sender

    def endpoint(self, side: Side) -> Endpoint:
        return self.client if side is Side.CLIENT else self.server

    def side_of(self, addr: bytes, port: int) -> Side | None:
        if addr == self.client.addr and port == self.client.port:
            return Side.CLIENT
        if addr == self.server.addr and port == self.server.port:
            return Side.SERVER
        return None

    @property
    def finished(self) -> bool:
        return self.finished_ts_ns is not None

    # -- segments -----------------------------------------------------------------------------

    def receive(self, seg: Segment, sender: Side) -> list[Event]:
        """Process one segment sent by `sender`; return the events it produced."""
        if sender is Side.CLIENT:
            s, r = self.client, self.server
        else:
            s, r = self.server, self.client
        cookie: list[Event] = []
        if self.cookie_check is not None and sender is Side.SERVER and not seg.flags & SYN:
            cookie = self._syn_cookie(seg)
        if self.fast_path and seg.flags & _PLAIN_MASK == ACK and seg.window and _steady(s, r):
            steady = self._steady_segment(seg, s, r)
            if steady is not None:
                return cookie + steady if cookie else steady
        s.packets += 1
        if s.ttl is None:
            s.ttl = seg.ttl
        self.gap_before_ns = self.gap_ns
        self.gap_ns = seg.ts_ns - self.last_ts_ns
        self.last_ts_ns = seg.ts_ns
        out: list[Event] = cookie
        flags = seg.flags
        # Zeek's letters and states, before this segment moves the sequence numbers.
        self.zeek.segment(
            sender is Side.CLIENT, flags, seg.seq, seg.payload_len, seg.window, _resends(seg, s)
        )
        # Only a segment that carries something (data, SYN, FIN): a bare ACK may have been on
        # its way before the RST arrived (they cross), and says nothing about the RST.
        if (
            s.state_before_reset is not None
            and not flags & RST
            and (seg.payload_len or flags & (SYN | FIN))
        ):
            self._reset_not_received(seg, s, r, out)
        if s.sent_rst and not flags & RST and (seg.payload_len or flags & FIN):
            # A socket that sent a RST is gone (Linux tcp_send_active_reset() then tcp_done());
            # its host answers later segments with bare RSTs, never with data or a FIN. So
            # that RST was made by someone else in its name: a device on the way.
            s.sent_rst = False
            out.append(_anomaly(seg, s, r, "rst-sender-continued"))
        if flags & RST:
            self._on_rst(seg, s, r, out)
        elif flags & SYN:
            self._on_syn(seg, s, r, out)
        else:
            self._on_segment(seg, s, r, out)
        if not flags & SYN:
            s.note_ip(seg)
        self._check_finished(seg.ts_ns)
        if out and out[-1].name != "data":
            self.data_run = None
        return out

    def _steady_segment(self, seg: Segment, s: Endpoint, r: Endpoint) -> list[Event] | None:
        """The common case, inline: an in-order ACK or data segment between two ESTABLISHED
        endpoints with nothing pending (no retransmission, keepalive or zero window). Does
        exactly what the general path (`_on_segment`) does for such a segment, or returns None
        without touching anything so that the general path takes it."""
        snd_nxt = s.snd_nxt
        r_una = r.snd_una
        r_nxt = r.snd_nxt
        assert snd_nxt is not None and r_una is not None and r_nxt is not None
        if (seg.seq - snd_nxt) & 0xFFFFFFFF:
            return None  # out of order, retransmission or keepalive
        d = (seg.ack - r_una) & 0xFFFFFFFF
        if d >= _HALF:
            return None  # an ACK below snd_una (old): unwrap decides in the general path
        ack = r_una + d
        if ack > r_nxt:
            return None  # acknowledges data the capture never saw
        s.packets += 1
        iid = seg.ip_id
        if iid >= 0:  # Endpoint.note_ip, inline
            last = s.ip_id_last
            s.ip_id_last = iid
            # The common step (a counter going on) changes nothing: only another asks.
            if last >= 0 and not (
                s.ip_id_kind == "counter" and 0 < (iid - last) & 0xFFFF <= IP_ID_STEP
            ):
                s.ip_id_kind = ip_id_kind(s.ip_id_kind, ip_id_step(last, iid))
            s.df_seen |= DF_SET if seg.df else DF_CLEAR
        ts = seg.ts_ns
        self.gap_ns = ts - self.last_ts_ns
        self.last_ts_ns = ts
        s.last_ack_sent = ack
        rcv = s.rcv_nxt
        if rcv is None or ack > rcv:
            s.rcv_nxt = ack
        if ack > r_una:
            r.snd_una = ack
            _drop_acked(r.in_flight, ack)
        s.window = seg.window << s.wscale  # type: ignore[operator]
        payload = seg.payload_len
        zs = s.zeek
        if payload == 0:
            if not zs.seen & SEEN_A:
                self.zeek.plain(zs, 0)
            return []
        end = snd_nxt + payload
        s.in_flight.append((snd_nxt, end, ts))
        s.snd_nxt = end
        s.bytes_sent += payload
        s.received_since_send = 0
        r.bytes_received += payload
        r.received_since_send += payload
        if not zs.seen & SEEN_D:
            self.zeek.plain(zs, payload)
        rr = r.rcv_nxt
        if rr is None or snd_nxt <= rr < end:
            r.rcv_nxt = end
        if self.data_run is s.side:
            return []
        self.data_run = s.side
        # Once per run, not per segment: the silence before it (Data.idle_ms).
        s.run_idle_ms = idle = self.gap_ns // 1_000_000
        return [
            Data(
                frame=seg.frame,
                ts_ns=ts,
                sender=s.side,
                receiver=r.side,
                length=payload,
                receiver_state="ESTABLISHED",
                sender_state="ESTABLISHED",
                idle_ms=idle,
            )
        ]

    def _on_rst(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        has_ack = bool(seg.flags & ACK)
        # The sender's TTL before this RST (receive() records a first packet's TTL before
        # it gets here: a RST that is its sender's first packet has no baseline).
        baseline = s.ttl if s.packets > 1 else None
        if s.snd_nxt is None:
            s.snd_una = s.snd_nxt = seg.seq
        seq = s.seq(seg.seq)
        answers_stale = s.state is TcpState.SYN_SENT and seg.seq == s.stale_ack
        if answers_stale:
            # Not an abort of this connection: the connecting side clears the peer's stale
            # state (4-tuple reuse) and will send its SYN again.
            accepted, disposition = False, "answers-stale-ack"
        else:
            accepted, disposition = self._judge_rst(seq, has_ack, seg.ack, r)
        if not has_ack and s.side is self.zero_window_prober:
            # A socket never sends a RST without ACK once synchronized (tcp_send_active_reset
            # sets ACK); a kernel answering a segment for which it has no socket does
            # (tcp_v4_send_reset): the prober's socket is gone.
            self.zero_window_abandoned = True
        out.append(
            Rst(
                frame=seg.frame,
                ts_ns=seg.ts_ns,
                sender=s.side,
                receiver=r.side,
                accepted=accepted,
                disposition=disposition,
                receiver_state=r.state.value,
                sender_state=s.state.value,
                has_ack=has_ack,
                sender_sent_data=s.bytes_sent > 0,
                sender_received_data=s.bytes_received > 0,
                sender_received_since_send=s.received_since_send,
                sender_sent_fin=s.fin_seq is not None,
                receiver_sent_fin=r.fin_seq is not None,
                after_unanswered_keepalives=s.keepalive_unanswered > 0,
                receiver_state_proven=_state_proven(r, s),
                ttl=seg.ttl,
                ttl_delta=seg.ttl - baseline if baseline is not None else 0,
                ttl_baseline=baseline is not None,
                ip_id=seg.ip_id,
                ip_id_fit=ip_id_fit(seg.ip_id, s.ip_id_last, s.ip_id_kind),
                df_fit=_df_fit(seg, s.df_seen),
                timestamps=seg.ts_val >= 0,
                timestamps_in_use="T" in (s.syn_layout or "") and "T" in (r.syn_layout or ""),
                from_capture_host=same_host(s.addr, r.addr)
                or (seg.ttl == s.ttl and captured_on_sender(s.ttl, r.ttl)),
                idle_ms=max(self.gap_ns, self.gap_before_ns) // 1_000_000,
                crossed_fin=s.fin_crossed,
            )
        )
        if answers_stale:
            s.stale_ack = None
            r.state = TcpState.LISTEN  # its stale connection is gone; a new SYN will be heard
            return
        s.state = next_state(s.state, Input.SEND_RST)
        s.sent_rst = True
        if accepted:
            r.state_before_reset = r.state
            r.state = next_state(r.state, Input.RECV_RST)

    def _syn_cookie(self, seg: Segment) -> list[Event]:
        """The server's first segment after its SYN-ACK: does its TSval show that the SYN-ACK
        carried a cookie (track/syncookie.py)? Asked once per SYN-ACK."""
        assert self.cookie_check is not None
        tsval, synack_ns, synack_frame, code = self.cookie_check
        self.cookie_check = None
        if seg.ts_val < 0:
            return []
        lag = syncookie.lag_ns(tsval, synack_ns, seg.ts_val, seg.ts_ns)
        if lag is None or not syncookie.is_cookie_lag(lag):
            return []
        c, srv = self.client, self.server
        return [
            SynCookie(
                frame=seg.frame,
                ts_ns=seg.ts_ns,
                sender=Side.SERVER,
                receiver=Side.CLIENT,
                synack_frame=synack_frame,
                lag_ms=(lag + 500_000) // 1_000_000,
                options_in_timestamp=tsval & 0x3F == code,
                # No path between the server and the capture to delay one segment more
                # than the other.
                on_server_host=same_host(c.addr, srv.addr) or captured_on_sender(srv.ttl, c.ttl),
            )
        ]

    def _reset_not_received(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        """`s` accepted a RST earlier and now sends on the connection (data, an ACK, a FIN, a
        retransmitted SYN): a reset socket sends nothing more (Linux tcp_reset() moves it to
        CLOSE and tcp_done() frees it), so that RST never reached `s`: it was lost between the
        capture point and `s` (a firewall, a router, a tap close to the RST's sender). `s`
        goes back to the state it was in, and an anomaly says so: rules that claim a reset
        look for it."""
        assert s.state_before_reset is not None
        s.state = s.state_before_reset
        s.state_before_reset = None
        self.finished_ts_ns = None
        out.append(_anomaly(seg, s, r, "rst-not-received"))

    @staticmethod
    def _judge_rst(seq: int, has_ack: bool, raw_ack: int, r: Endpoint) -> tuple[bool, str]:
        """Would the receiver's kernel honour this RST? (Linux semantics.)"""
        state = r.state
        if state is TcpState.SYN_SENT:
            # tcp_rcv_synsent_state_process(): RFC 9293 3.10.7.3 - a RST is acceptable only if
            # its ACK acknowledges the SYN; without an ACK it is ignored.
            if not has_ack:
                return False, "no-ack-in-syn-sent"
            if r.snd_nxt is not None and r.seq(raw_ack) == r.snd_nxt:
                return True, "reset"
            return False, "bad-ack-in-syn-sent"
        if state in (TcpState.CLOSED, TcpState.LISTEN):
            return False, "no-socket"
        if r.rcv_nxt is None:
            return True, "unjudged"
        if seq == r.rcv_nxt:
            return True, "reset"
        # tcp_reset_check(): in CLOSE_WAIT, LAST_ACK and CLOSING a RST at rcv_nxt - 1 is
        # accepted too (a peer that sends FIN then RST with the FIN's sequence number).
        if seq == r.rcv_nxt - 1 and state in (
            TcpState.CLOSE_WAIT,
            TcpState.LAST_ACK,
            TcpState.CLOSING,
        ):
            return True, "reset"
        if state is TcpState.SYN_RECEIVED:
            # tcp_check_req(): a RST inside the window drops the request socket.
            if r.rcv_nxt <= seq <= r.rcv_nxt + max(r.window, 1):
                return True, "reset"
            return False, "out-of-window"
        if state is TcpState.TIME_WAIT:
            # tcp_timewait_state_process(): a RST kills a TIME_WAIT socket (tcp_rfc1337 = 0).
            return True, "reset"
        # tcp_validate_incoming(): tcp_sequence() drops segments outside
        # [rcv_wup, rcv_nxt + window] silently; a RST inside it but not at rcv_nxt draws a
        # challenge ACK (RFC 5961 section 3.2) and is discarded.
        low = r.last_ack_sent if r.last_ack_sent is not None else r.rcv_nxt
        high = r.rcv_nxt + max(r.window, 1)
        if min(low, r.rcv_nxt) <= seq <= high:
            return False, "challenge-ack"
        return False, "out-of-window"

    def _on_syn(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        opts = seg.options
        s.note_syn(seg)
        if seg.flags & ACK:
            self._on_synack(seg, s, r, out)
            return
        if s.isn is None:
            s.isn = s.snd_una = seg.seq
            s.snd_nxt = seg.seq + 1
            s.wscale = opts.wscale if opts else None
            s.window = seg.window
            r_state_before = r.state
            s.state = next_state(s.state, Input.SEND_SYN)
            r.state = next_state(r.state, Input.RECV_SYN)
            r.rcv_nxt = s.isn + 1
            s.in_flight.append((seg.seq, seg.seq + 1, seg.ts_ns))
            out.append(
                Syn(
                    frame=seg.frame,
                    ts_ns=seg.ts_ns,
                    sender=s.side,
                    receiver=r.side,
                    receiver_state=r_state_before.value,
                )
            )
            return
        if s.seq(seg.seq) == s.isn:
            self._retransmission(seg, s, "syn", 0, out)
            return
        out.append(_anomaly(seg, s, r, "syn-on-open-connection"))

    def _on_synack(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        opts = seg.options
        if seg.ts_val < 0 or s.side is not Side.SERVER:
            self.cookie_check = None
        elif s.isn is None or self.cookie_check is None:
            # What a cookie would keep of the options this SYN-ACK agrees to: the client's
            # window scale (r.wscale, before the scale in use replaces it below).
            code = -1
            if r.isn is not None and opts is not None:
                code = syncookie.options_code(
                    r.wscale, opts.wscale is not None, opts.sack_permitted, bool(seg.flags & ECE)
                )
            self.cookie_check = (seg.ts_val, seg.ts_ns, seg.frame, code)
        else:  # the same SYN-ACK again: judged by this one, with the options of the first
            self.cookie_check = (seg.ts_val, seg.ts_ns, seg.frame, self.cookie_check[3])
        if s.isn is None:
            s.isn = s.snd_una = seg.seq
            s.snd_nxt = seg.seq + 1
            s.wscale = opts.wscale if opts else None
            s.window = seg.window  # the window in a SYN-ACK is never scaled (RFC 7323 2.2)
            if r.isn is None:  # the SYN was not captured: the SYN-ACK tells its ISN
                r.isn = r.snd_una = seg.ack - 1
                r.snd_nxt = seg.ack
            s.state = next_state(s.state, Input.SEND_SYN_ACK)
            scale_ok = s.wscale is not None and r.wscale is not None
            s.scale_known = r.scale_known = True
            if not scale_ok:
                s.wscale = r.wscale = 0
            r_state_before = r.state
            if r.state is TcpState.SYN_SENT and r.seq(seg.ack) == r.snd_nxt:
                r.state = next_state(r.state, Input.RECV_SYN_ACK)
                r.snd_una = r.snd_nxt
                r.rcv_nxt = s.isn + 1
                r.last_ack_sent = None
                self.handshake = "partial"
                r.retx_streak = 0
                r.in_flight.clear()
            s.in_flight.append((seg.seq, seg.seq + 1, seg.ts_ns))
            s.last_ack_sent = r.snd_nxt
            out.append(
                SynAck(
                    frame=seg.frame,
                    ts_ns=seg.ts_ns,
                    sender=s.side,
                    receiver=r.side,
                    receiver_state=r_state_before.value,
                )
            )
            return
        if s.seq(seg.seq) == s.isn:
            self._retransmission(seg, s, "synack", 0, out)
            return
        out.append(_anomaly(seg, s, r, "synack-with-new-isn"))

    def _on_segment(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        flags = seg.flags
        if (
            r.state is TcpState.SYN_SENT
            and flags & ACK
            and r.snd_nxt is not None
            and r.seq(seg.ack) != r.snd_nxt
        ):
            # An ACK that does not acknowledge the SYN: the peer answers for an older
            # connection (TIME_WAIT or a lost established one). The connecting side replies
            # with a RST and keeps waiting (tcp_rcv_synsent_state_process).
            r.stale_ack = seg.ack
            out.append(_anomaly(seg, s, r, "unacceptable-ack-in-syn-sent"))
            return
        if s.snd_nxt is None:  # first segment from this side of a mid-stream connection
            s.snd_una = s.snd_nxt = seg.seq
        if flags & ACK:
            self._on_ack(seg, s, r, out)
        self._on_window(seg, s, out)
        payload = seg.payload_len
        fin = bool(flags & FIN)
        seq = s.seq(seg.seq)
        assert s.snd_nxt is not None
        # Keepalive probe: one byte or none, at snd.una - 1 (RFC 9293 3.8.4; Linux
        # tcp_write_wakeup -> tcp_xmit_probe_skb). Linux's zero-window probe has the same shape:
        # it is told apart by the peer's zero window.
        if (
            not fin
            and payload <= 1
            and seq == s.snd_nxt - 1
            and s.snd_una == s.snd_nxt
            and s.state in SYNCHRONIZED
        ):
            if r.zero_window:
                self.zero_window_prober = s.side
                out.append(
                    ZeroWindowProbe(
                        frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=r.side
                    )
                )
            else:
                s.keepalive_unanswered += 1
                out.append(
                    Keepalive(
                        frame=seg.frame,
                        ts_ns=seg.ts_ns,
                        sender=s.side,
                        receiver=r.side,
                        length=payload,
                        number=s.keepalive_unanswered,
                    )
                )
            return
        if payload == 0 and not fin:
            return
        end = seq + payload + (1 if fin else 0)
        new_bytes = 0
        if end <= s.snd_nxt:
            kind = "fin" if fin and payload == 0 else "data"
            self._retransmission(seg, s, kind, payload, out)
        else:
            if seq < s.snd_nxt:
                self._retransmission(seg, s, "data", payload, out)
                new_bytes = end - s.snd_nxt - (1 if fin else 0)
            else:
                if seq > s.snd_nxt and s.bytes_sent > 0:
                    out.append(_anomaly(seg, s, r, "previous-segment-not-captured"))
                    if self.gap_frame is None:
                        self.gap_frame = seg.frame
                new_bytes = payload
            s.in_flight.append((max(seq, s.snd_nxt), end, seg.ts_ns))
            s.snd_nxt = end
        if new_bytes > 0:
            s.bytes_sent += new_bytes
            s.received_since_send = 0
            r.bytes_received += new_bytes
            r.received_since_send += new_bytes
        if new_bytes > 0 and self.data_run is not s.side:
            self.data_run = s.side
            s.run_idle_ms = idle = self.gap_ns // 1_000_000
            if (
                r.fin_seq is not None
                and flags & ACK
                and s.state is TcpState.CLOSE_WAIT
                and r.seq(seg.ack) <= r.fin_seq
            ):
                # Data that does not acknowledge the peer's FIN, sent after it: it left before
                # the FIN arrived (the two crossed).
                r.fin_crossed = True
            out.append(
                Data(
                    frame=seg.frame,
                    ts_ns=seg.ts_ns,
                    sender=s.side,
                    receiver=r.side,
                    length=new_bytes,
                    receiver_state=r.state.value,
                    sender_state=s.state.value,
                    idle_ms=idle,
                )
            )
        # The receiver takes in what arrives in order (the capture point stands in for it).
        if r.rcv_nxt is None or seq <= r.rcv_nxt < end:
            r.rcv_nxt = end
        if fin and s.fin_seq is not None and s.state in _MAY_SEND_FIN:
            # The FIN was first sent before the handshake completed (macOS abandons a connect
            # this way): it takes effect once the endpoint is synchronized.
            s.state = next_state(s.state, Input.SEND_FIN)
        if fin and s.fin_seq is None:
            s.fin_seq = seq + payload
            # A FIN that leaves the peer's data unacknowledged crossed it (or it was lost).
            s.fin_crossed = (
                bool(flags & ACK) and r.snd_nxt is not None and r.snd_nxt > r.seq(seg.ack)
            )
            r_before, s_before = r.state, s.state
            if (
                s.state is TcpState.CLOSE_WAIT
                and r.fin_seq is not None
                and flags & ACK
                and r.seq(seg.ack) <= r.fin_seq
            ):
                # The FIN does not acknowledge the peer's FIN: the two FINs crossed, and this
                # side sent its FIN before it saw the peer's (simultaneous close, RFC 9293
                # figure 13). The capture order alone would say CLOSE_WAIT.
                s.state = TcpState.CLOSING
            s.state = next_state(s.state, Input.SEND_FIN)
            r.state = next_state(r.state, Input.RECV_FIN)
            out.append(
                Fin(
                    frame=seg.frame,
                    ts_ns=seg.ts_ns,
                    sender=s.side,
                    receiver=r.side,
                    receiver_state=r_before.value,
                    sender_state=s_before.value,
                    idle_ms=max(self.gap_ns, self.gap_before_ns) // 1_000_000,
                )
            )

    def _on_ack(self, seg: Segment, s: Endpoint, r: Endpoint, out: list[Event]) -> None:
        """`s` acknowledges `r`'s data."""
        if r.snd_nxt is None:  # mid-stream: the ACK tells where r's sequence space is
            r.snd_una = r.snd_nxt = seg.ack
        ack = r.seq(seg.ack)
        assert r.snd_una is not None and r.snd_nxt is not None
        s.last_ack_sent = ack
        if s.rcv_nxt is None or ack > s.rcv_nxt:
            s.rcv_nxt = ack
        if ack > r.snd_nxt:
            # ACK for data the capture never saw (capture loss, or capture started late).
            out.append(_anomaly(seg, s, r, "ack-of-unseen-data"))
            self.acked_unseen = True
            # Loss, unless the connection was seen mid-stream and the peer has sent nothing
            # yet (its data went by before the capture began).
            if self.gap_frame is None and (
                r.bytes_sent > 0 or r.fin_seq is not None or (self.roles_reason == ROLES_FROM_SYN)
            ):
                self.gap_frame = seg.frame
            r.snd_nxt = ack
        if ack > r.snd_una:
            r.snd_una = ack
            _drop_acked(r.in_flight, ack)
            if r.retx_streak > 0:
                out.append(
                    Recovered(frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=r.side)
                )
                r.retx_streak = 0
            if r.state is TcpState.SYN_RECEIVED and r.isn is not None and ack > r.isn:
                r.state = next_state(r.state, Input.RECV_ACK_OF_SYN)
                self.handshake = "complete"
                out.append(
                    Handshake(frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=r.side)
                )
            if r.fin_seq is not None and ack > r.fin_seq:
                r.state = next_state(r.state, Input.RECV_ACK_OF_FIN)
        if r.keepalive_unanswered > 0:
            out.append(
                KeepaliveAck(frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=r.side)
            )
            r.keepalive_unanswered = 0

    def _on_window(self, seg: Segment, s: Endpoint, out: list[Event]) -> None:
        shift = s.wscale if s.scale_known and s.wscale is not None else None
        if shift is None:
            s.window = seg.window if seg.window == 0 else max(seg.window, _UNKNOWN_WINDOW)
        else:
            s.window = seg.window << shift
        if seg.window == 0 and not s.zero_window and not seg.flags & FIN:
            s.zero_window = True
            s.zero_window_since_ns = seg.ts_ns
            out.append(
                ZeroWindow(frame=seg.frame, ts_ns=seg.ts_ns, sender=s.side, receiver=s.side.peer)
            )
        elif seg.window > 0 and s.zero_window:
            s.zero_window = False
            out.append(
                WindowOpen(
                    frame=seg.frame,
                    ts_ns=seg.ts_ns,
                    sender=s.side,
                    receiver=s.side.peer,
                    closed_ms=(seg.ts_ns - s.zero_window_since_ns) // 1_000_000,
                )
            )

    def _retransmission(
        self, seg: Segment, s: Endpoint, kind: str, length: int, out: list[Event]
    ) -> None:
        seq = s.seq(seg.seq)
        original = next((ts for start, end, ts in s.in_flight if start <= seq < end), None)
        last = s.last_retx
        if (original is not None and seg.ts_ns - original < DUPLICATE_NS) or (
            last is not None and last[0] == seq and seg.ts_ns - last[1] < DUPLICATE_NS
        ):
            # The same segment again within a millisecond: no stack retransmits that soon
            # (Linux's minimum RTO is 200 ms, RFC 6298 asks for 1 s); the capture saw one
            # frame twice (a span port mirroring both directions, a capture on two
            # interfaces). Not a retransmission.
            self.duplicates += 1
            if self.first_duplicate is None:
                self.first_duplicate = seg.frame
            return
        s.last_retx = (seq, seg.ts_ns)
        s.retx_streak += 1
        since = (seg.ts_ns - original) // 1_000_000 if original is not None else 0
        # What tells a path MTU black hole from loss (rule pmtu-blackhole): the size against
        # the receiver's MSS and against all the data it ever acknowledged. Worked out here,
        # on the slow path, not per segment: the bytes acknowledged bound the largest segment
        # acknowledged from above, at no cost to the steady path.
        mss = self.endpoint(s.side.peer).syn_mss or 0
        if s.retx_streak == 1:
            s.unacked_oversize = mss > 0 and any(e - b > mss for b, e, _ts in s.in_flight)
        if s.isn is not None and s.snd_una is not None:
            acked = max(0, min(s.snd_una - s.isn - 1, s.bytes_sent))
        else:
            acked = -1
        out.append(
            Retransmission(
                frame=seg.frame,
                ts_ns=seg.ts_ns,
                sender=s.side,
                receiver=s.side.peer,
                kind=kind,
                length=length,
                streak=s.retx_streak,
                since_original_ms=since,
                run_idle_ms=s.run_idle_ms,
                peer_mss=mss,
                below_mss=mss - length if mss else 0,
                acked_before=acked,
                above_acked=length - acked if acked >= 0 else 0,
                unacked_oversize=s.unacked_oversize,
            )
        )

    # -- ICMP ---------------------------------------------------------------------------------

    def icmp(self, err: IcmpError, quoted_side: Side) -> list[Event]:
        """An ICMP error quoting a segment sent by `quoted_side`."""
        r = self.endpoint(quoted_side)
        peer = self.endpoint(quoted_side.peer)
        idle = max(err.ts_ns - self.last_ts_ns, self.gap_ns, 0) // 1_000_000
        self.last_ts_ns = err.ts_ns
        kind = icmp_kind(err.family, err.type, err.code)
        qseq = err.quoted.seq
        accepted = False
        if r.state not in (TcpState.TIME_WAIT, TcpState.CLOSED, TcpState.LISTEN) and (
            qseq is not None and r.snd_una is not None and r.snd_nxt is not None
        ):
            # tcp_v4_err(): the quoted sequence number must lie in [snd_una, snd_nxt], else
            # the error is counted as OutOfWindowIcmps and ignored.
            seq = r.seq(qseq)
            accepted = r.snd_una <= seq <= r.snd_nxt
        state_before = r.state
        self.data_run = None
        if accepted and kind not in LINUX_TCP_IGNORED_KINDS:
            # In SYN_SENT every remaining error aborts the connect at once (tcp_v4_err ->
            # tcp_done); in synchronized states it is only remembered as a soft error.
            r.state = next_state(r.state, Input.CONNECT_ABORTED)
            if r.state is TcpState.CLOSED and peer.isn is None:
                peer.state = TcpState.LISTEN  # the error proves the SYN never reached the peer
        ev = IcmpErrorEvent(
            frame=err.frame,
            ts_ns=err.ts_ns,
            sender=None,
            receiver=r.side,
            kind=kind,
            icmp_type=err.type,
            icmp_code=err.code,
            reporter=format_addr(err.src),
            from_peer=err.src == peer.addr,
            accepted=accepted,
            receiver_state=state_before.value,
            idle_ms=idle,
        )
        self._check_finished(err.ts_ns)
        return [ev]

    # -- end ----------------------------------------------------------------------------------

    def _check_finished(self, ts_ns: int) -> None:
        if self.finished_ts_ns is None and _done(self.client.state) and _done(self.server.state):
            self.finished_ts_ns = ts_ns

    def end(self, reason: str, ts_ns: int, frame: int) -> End:
        """The closing event: `reason` says why tracking stops."""
        return End(
            frame=frame,
            ts_ns=ts_ns,
            sender=None,
            receiver=None,
            reason=reason,
            client_state=self.client.state.value,
            server_state=self.server.state.value,
            zero_window_abandoned=self.zero_window_abandoned,
        )

    def history(self) -> str:
        """Zeek's history string (conn.log), upper case for the client: track/zeek.py says
        which letters are written when."""
        return self.zeek.history

    def conn_state(self) -> str:
        """Zeek's conn_state at this point (track/zeek.py), from the payload bytes seen."""
        return self.zeek.conn_state(self.client.bytes_sent, self.server.bytes_sent)


def _resends(seg: Segment, s: Endpoint) -> bool:
    """Whether `seg` ends at or below the highest sequence number its sender had reached
    (sent, or acknowledged by the peer): Zeek's test of a retransmission against its
    last_seq. A RST's payload takes no sequence space; a SYN or FIN takes one number."""
    if s.snd_nxt is None or not seg.payload_len:
        return False
    flags = seg.flags
    end = s.seq(seg.seq) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if not flags & RST:
        end += seg.payload_len
    return end <= s.snd_nxt


def _done(state: TcpState) -> bool:
    return state in (TcpState.CLOSED, TcpState.TIME_WAIT, TcpState.LISTEN)


def looks_like_server_port(sport: int, dport: int) -> bool:
    """Mid-stream role guess: the lower port is the server's when it is below the usual
    ephemeral ranges (Linux 32768-60999, IANA 49152-65535)."""
    if sport == dport:
        return False
    return sport < dport and sport < 32768
