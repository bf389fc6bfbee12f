"""Zeek's conn.log vocabulary for a tracked flow: `history` and `conn_state` (sans-IO).

What the words mean is Zeek's (the documentation of its conn.log, base/protocols/conn/
main.zeek, and its TCP analyzer); this module keeps, beside pcapdiag's own RFC 9293 states,
the two TCP endpoint states Zeek keeps and the letters it writes, fed by the tracker one
segment at a time (track/connection.py), so that a flow reads as Zeek would log it.

conn_state, from Zeek's endpoint states at the end (`tcp_conn_state`):

    ======  ==============================================================================
    S0      connection attempt seen, no reply (the originator's SYN, nothing back)
    S1      connection established, not terminated (no FIN or RST from either side)
    SF      normal establishment and termination: both sides sent a FIN (for UDP: both
            sides sent a datagram)
    REJ     connection attempt rejected: the responder reset a SYN (or both reset with
            no data either way)
    S2      established, the originator sent a FIN, nothing closing from the responder
    S3      established, the responder sent a FIN, nothing closing from the originator
    RSTO    established, the originator aborted it (sent a RST)
    RSTR    the responder sent a RST (after the handshake)
    RSTOS0  the originator sent a SYN and then a RST; no SYN-ACK from the responder
    RSTRH   the responder sent a SYN-ACK and then a RST; no SYN from the originator seen
    SH      the originator sent a SYN and then a FIN; no SYN-ACK from the responder
    SHR     the responder sent a SYN-ACK and then a FIN; no SYN from the originator seen
    OTH     none of these: no SYN seen, midstream traffic
    ======  ==============================================================================

An endpoint is in one of Zeek's states INACTIVE (nothing sent yet), SYN_SENT, SYN_ACK_SENT
(an originator's first packet was a SYN-ACK), PARTIAL (it sent without a SYN first),
ESTABLISHED, CLOSED (it sent a FIN) or RESET (it sent a RST); `ZeekView.segment` moves them
as Zeek's TCP analyzer does (UpdateStateMachine and the Update*State methods it calls).
These are not RFC 9293 states: Zeek takes every RST as closing its sender, where pcapdiag
judges whether the receiver would accept it.

history letters, upper case for the originator (pcapdiag's client), lower case for the
responder (its server):

    s  a SYN without ACK            h  a SYN-ACK                a  a pure ACK
    d  a packet with payload        f  a packet with FIN        r  a packet with RST
    t  a packet with retransmitted payload                      w  a zero window advertised
    i  an inconsistent packet (FIN and RST together)
    q  a multi-flag packet (SYN with FIN or RST)
    ^  the originator is not the sender of the first packet (Zeek's "flipped")

Zeek's counting rules: a, d, i and q at most once per direction; s, h, f and r again when
the packet's sequence number differs from that side's last packet of the kind (a RST at a new
sequence number writes another r); t and w at the 1st, 10th, 100th, ... occurrence. A packet
with SYN, FIN or RST writes only that letter, not d or a, payload or not.

Where pcapdiag differs, and why:
- Originator. Zeek's is the first packet's sender unless its heuristic flips the
  connection: a first packet that is no plain SYN, from a port in its likely_server_ports.
  pcapdiag's client is the SYN's sender, the SYN-ACK's receiver when the SYN was not
  captured, or (no SYN seen) the side of the port that is not the lower one below 32768
  (Connection.from_first_segment). Whenever that client did not send the first packet the
  history starts with ^, as Zeek's does when it flips. Zeek, knowing no port list here,
  may keep a SYN-ACK's sender (or a midstream first sender) as originator where pcapdiag
  flips. Zeek's later flip (a SYN answering an originator's SYN-ACK) is not done.
- c (bad checksum) is never written: pcapdiag checks TCP checksums of SYNs only (to see
  checksum offload), so its histories are those of `zeek -C`, which a capture taken on a
  sending host with offload needs anyway (Zeek drops every bad-checksum packet otherwise).
- g (content gap) and x (analysis partial) are not written.
- t: a packet whose payload ends at or below the highest sequence number its sender was seen
  to reach (sent, or acknowledged by the peer): a frame captured twice counts, as in Zeek.
- ICMP errors about a connection write no letter (Zeek logs them as ICMP flows).
"""

from __future__ import annotations

import re

from pcapdiag.decode.packets import ACK, FIN, RST, SYN

# Zeek's TCP endpoint states, in the order (and numbers) of its TCP_ENDPOINT_* enumeration.
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
_INACTIVE_LIKE = (INACTIVE, PARTIAL)

# Kinds of letter written once per direction, or first written (ZeekSide.seen bits). SYN and
# SYN-ACK share one, as in Zeek: after either, the other is written only at a new sequence
# number. SEEN_A and SEEN_D let the tracker's steady path skip the call once both are in.
SEEN_A, SEEN_D, _I, _Q, _SYN, _FIN, _RST = 1, 2, 4, 8, 16, 32, 64
_SEQ_MASK = 0xFFFFFFFF

# Zeek's RSTOS0 test, a full match of the history: the originator's SYN, then its RST, with
# no SYN-ACK, ACK, FIN, gap, inconsistent or multi-flag packet of its own in between.
_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")


class ZeekSide:
    """One endpoint as Zeek sees it: its state (and the one before, which Zeek consults
    when a FIN follows the peer's FIN-then-RST), the letters it has written, and the counts
    behind its scaled letters."""

    __slots__ = (
        "last_fin",
        "last_rst",
        "last_syn",
        "prev",
        "resent",
        "seen",
        "state",
        "upper",
        "zero_windows",
    )

    def __init__(self, upper: bool) -> None:
        self.upper = upper  # the originator's letters are upper case
        self.state = INACTIVE
        self.prev = INACTIVE
        self.seen = 0
        # Raw sequence number of its last SYN (or SYN-ACK), of the end of its last FIN's
        # payload, and of its last RST: a packet of the kind at another one writes again.
        self.last_syn = -1
        self.last_fin = -1
        self.last_rst = -1
        self.resent = 0
        self.zero_windows = 0

    def set(self, state: int) -> None:
        if state != self.state:
            self.prev, self.state = self.state, state


class ZeekView:
    """Zeek's view of one TCP connection: both endpoints' states and the history string.
    The originator is pcapdiag's client."""

    __slots__ = ("letters", "orig", "resp")

    def __init__(self) -> None:
        self.orig = ZeekSide(True)
        self.resp = ZeekSide(False)
        self.letters: list[str] = []

    @property
    def history(self) -> str:
        return "".join(self.letters)

    def flip(self) -> None:
        """The first packet came from the responder."""
        self.letters.append("^")

    def _add(self, me: ZeekSide, letter: str) -> None:
        self.letters.append(letter.upper() if me.upper else letter)

    def _once(self, me: ZeekSide, bit: int, letter: str) -> bool:
        """Write `letter` if `me` has not written one of its kind; whether it had."""
        if me.seen & bit:
            return True
        me.seen |= bit
        self._add(me, letter)
        return False

    def _again(self, me: ZeekSide, bit: int, letter: str, seq: int, last: int) -> None:
        """s, h, f, r: the first of the kind, or one at another sequence number."""
        if self._once(me, bit, letter) and seq != last:
            self._add(me, letter)

    def plain(self, me: ZeekSide, payload: int) -> None:
        """A segment with no SYN, FIN or RST that changes no state: an in-order ACK or data
        segment between two established endpoints with an open window (the tracker's
        steady path)."""
        if payload:
            self._once(me, SEEN_D, "d")
        else:
            self._once(me, SEEN_A, "a")

    def segment(
        self, from_orig: bool, flags: int, seq: int, payload: int, window: int, resent: bool
    ) -> None:
        """One TCP segment, in the order Zeek's analyzer takes it: the letter of its flags,
        then its window, then whether it resends payload, then the endpoint states.
        `resent`: its end lies at or below the highest sequence number its sender had
        reached (Zeek's last_seq)."""
        me, peer = (self.orig, self.resp) if from_orig else (self.resp, self.orig)
        self._flags_letter(me, flags, seq, payload)
        # Zero windows sent with or after a RST, or after the peer's FIN, are not written:
        # nothing more is owed to such a peer.
        if window == 0 and not flags & RST and peer.state != CLOSED and me.state != RESET:
            me.zero_windows += 1
            if _scaled(me.zero_windows):
                self._add(me, "w")
        if resent and payload and me.state not in (INACTIVE, RESET):
            me.resent += 1
            if _scaled(me.resent):
                self._add(me, "t")
        self._step(me, peer, from_orig, flags, payload)

    def _flags_letter(self, me: ZeekSide, flags: int, seq: int, payload: int) -> None:
        syn, fin, rst = bool(flags & SYN), bool(flags & FIN), bool(flags & RST)
        if syn + fin + rst > 1:
            if fin and rst:
                self._once(me, _I, "i")
            else:
                self._once(me, _Q, "q")
        elif syn:
            self._again(me, _SYN, "h" if flags & ACK else "s", seq, me.last_syn)
            me.last_syn = seq
        elif fin:
            # A FIN's sequence number is the one after its payload (it follows the data).
            end = (seq + payload) & _SEQ_MASK
            self._again(me, _FIN, "f", end, me.last_fin)
            me.last_fin = end
        elif rst:
            self._again(me, _RST, "r", seq, me.last_rst)
            me.last_rst = seq
        elif payload:
            self._once(me, SEEN_D, "d")
        elif flags & ACK:
            self._once(me, SEEN_A, "a")

    def _step(
        self, me: ZeekSide, peer: ZeekSide, from_orig: bool, flags: int, payload: int
    ) -> None:
        """Zeek's endpoint state machine, for a segment from `me`."""
        syn, fin, rst, ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        state = me.state
        if state == INACTIVE:
            if syn:
                if from_orig:
                    me.set(SYN_ACK_SENT if ack else SYN_SENT)
                else:
                    # The responder answers: it holds a connection, and so does an
                    # originator waiting on its SYN.
                    if peer.state == SYN_SENT:
                        peer.set(ESTABLISHED)
                    me.set(ESTABLISHED)
            if fin:
                me.set(CLOSED)
            if rst:
                me.set(RESET)
            if me.state == INACTIVE:
                if not from_orig and payload == 0 and peer.state == SYN_SENT:
                    # Some stacks acknowledge a SYN before answering it: no connection yet.
                    pass
                elif ack and peer.state == ESTABLISHED:
                    # The SYN was missed, the SYN-ACK seen: this ACK completes it.
                    me.set(ESTABLISHED)
                else:
                    me.set(PARTIAL)
        elif state in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                me.set(CLOSED)
            if rst:
                me.set(RESET)
        elif state in (ESTABLISHED, PARTIAL):
            if syn and state == PARTIAL and peer.state == INACTIVE and not ack:
                me.set(SYN_SENT)  # a SYN after stray packets: the connection starts now
            if fin and not rst:
                me.set(CLOSED)
                if peer.state == RESET and peer.prev == CLOSED:
                    # The peer's FIN-then-RST was a normal termination after all.
                    peer.set(CLOSED)
            if rst:
                me.set(RESET)
        elif state == CLOSED and rst and peer.state != CLOSED:
            # A RST after both FINs changes nothing: the connection had closed.
            me.set(RESET)

    def conn_state(self, orig_bytes: int, resp_bytes: int) -> str:
        return tcp_conn_state(
            self.orig.state, self.resp.state, orig_bytes, resp_bytes, self.history
        )


def _scaled(count: int) -> bool:
    """Whether a scaled letter (t, w) is written at this occurrence: 1, 10, 100, ..."""
    while count % 10 == 0:
        count //= 10
    return count == 1


def tcp_conn_state(orig: int, resp: int, orig_bytes: int, resp_bytes: int, history: str) -> str:
    """A TCP connection's conn_state from Zeek's endpoint states at its end, the payload
    bytes each side sent and the history, as Zeek's conn_state() decides it (the table in
    this module's docstring)."""
    o_inactive = orig in _INACTIVE_LIKE
    r_inactive = resp in _INACTIVE_LIKE
    if resp == RESET:
        if orig in (SYN_SENT, SYN_ACK_SENT) or (
            orig == RESET and orig_bytes == 0 and resp_bytes == 0
        ):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if orig == RESET:
        if r_inactive:
            return "RSTOS0" if _RSTOS0.fullmatch(history) else "OTH"
        return "RSTO"
    if orig == CLOSED and resp == CLOSED:
        return "SF"
    if orig == CLOSED:
        return "SH" if r_inactive else "S2"
    if resp == CLOSED:
        return "SHR" if o_inactive else "S3"
    if orig == SYN_SENT and resp == INACTIVE:
        return "S0"
    if orig == ESTABLISHED and resp == ESTABLISHED:
        return "S1"
    return "OTH"


def udp_conn_state(orig_packets: int, resp_packets: int) -> str:
    """A UDP flow's conn_state: Zeek calls a side active once it sent a datagram; SF both,
    S0 the originator only, SHR the responder only, OTH neither."""
    if orig_packets:
        return "SF" if resp_packets else "S0"
    return "SHR" if resp_packets else "OTH"


def udp_history(orig_packets: int, resp_packets: int) -> str:
    """A UDP flow's history: D for the originator's datagrams, d for the responder's, each
    written once. pcapdiag's UDP client sent the first datagram, so D comes first."""
    return ("D" if orig_packets else "") + ("d" if resp_packets else "")
