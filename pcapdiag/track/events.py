"""Tracker events: the closed vocabulary that rules match on.

Every event is a slotted dataclass with a `name` (what rules write after `event:`). Events are
never changed once made, but are not declared frozen: a frozen dataclass sets each field
through object.__setattr__, which made creating an event 2.6 times slower (2.1 us against
0.8 us, timeit), and the tracker makes one per run of data, retransmission or ACK of note.
Every field except `frame`, `ts_ns`, `sender` and `receiver` can be used in a rule predicate;
the rule schema's list of event names and fields is generated from this module (see
`EVENT_TYPES` and `event_fields`), so the two cannot drift apart.

Contract: `frame` is the 1-based Wireshark frame number that proves the event; `ts_ns` is the
capture time of that frame. `sender` is the endpoint that sent the packet ("client"/"server"),
or None for packets from a third party (an ICMP error from a router). `receiver` is the
endpoint whose state the packet acts on. States are the receiver's and sender's TCP states
*before* the packet was processed, because that is what decides the errno (Linux tcp_reset()).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final


class Side(StrEnum):
    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


@dataclass(slots=True, kw_only=True)
class Event:
    name: ClassVar[str] = "event"
    doc: ClassVar[str] = ""
    frame: int
    ts_ns: int
    sender: Side | None
    receiver: Side | None


@dataclass(slots=True, kw_only=True)
class Syn(Event):
    name: ClassVar[str] = "syn"
    doc: ClassVar[str] = "First SYN of a connection (retransmitted SYNs are `retransmission`)."
    receiver_state: str


@dataclass(slots=True, kw_only=True)
class SynAck(Event):
    name: ClassVar[str] = "synack"
    doc: ClassVar[str] = "First SYN-ACK answering the client's SYN."
    receiver_state: str


@dataclass(slots=True, kw_only=True)
class SynCookie(Event):
    name: ClassVar[str] = "syn_cookie"
    doc: ClassVar[str] = (
        "The server answered the SYN with a SYN cookie (track/syncookie.py): the TSval of its "
        "SYN-ACK (synack_frame) was lag_ms behind the clock its next segment (this event's "
        "frame) shows, as Linux's cookie_init_timestamp() leaves it (0-63 ms; 3 ms and more "
        "count). options_in_timestamp: the TSval's low 6 bits are the options the cookie "
        "keeps (window scale, SACK, ECN), as they are when the server adds no random offset. "
        "on_server_host: the capture was taken on the server's host (its packets leave with "
        "their initial TTL, the client's arrive with less, or both ends share one host), "
        "where no path can have delayed the SYN-ACK more than the segment after it."
    )
    synack_frame: int
    lag_ms: int
    options_in_timestamp: bool
    on_server_host: bool


@dataclass(slots=True, kw_only=True)
class Handshake(Event):
    name: ClassVar[str] = "handshake"
    doc: ClassVar[str] = (
        "The ACK that completes the three-way handshake (server enters ESTABLISHED)."
    )


@dataclass(slots=True, kw_only=True)
class Data(Event):
    name: ClassVar[str] = "data"
    doc: ClassVar[str] = (
        "New payload bytes (first transmission) starting a run: the following data segments "
        "from the same side, with no other event between them, belong to this event; length "
        "is the first segment's. idle_ms: the silence on the connection before the run's "
        "first segment, in milliseconds (a request on a connection left idle)."
    )
    length: int
    receiver_state: str
    sender_state: str
    idle_ms: int  # silence on the connection (either direction) before the run began


@dataclass(slots=True, kw_only=True)
class Retransmission(Event):
    name: ClassVar[str] = "retransmission"
    doc: ClassVar[str] = (
        "A segment that resends sequence space already sent: kind is syn, synack, data or fin. "
        "streak counts retransmissions since the peer last acknowledged new data. "
        "run_idle_ms: the silence before the sender's latest run of new data began (that "
        "`data` event's idle_ms; 0 before any): for data lost after an idle spell, the spell. "
        "peer_mss: the MSS option of the receiver's SYN or SYN-ACK (0: not captured). "
        "below_mss: peer_mss minus length (negative: larger than the receiver's MSS, a "
        "segment the capture saw before segmentation offload cut it). acked_before: bytes of "
        "the sender's data the receiver had acknowledged before it, all segments together, so "
        "at least the size of the largest one it acknowledged (-1: unknown, the connection "
        "was seen mid-stream). above_acked: length minus acked_before (0 when that is "
        "unknown). unacked_oversize: a segment of the sender still unacknowledged is larger "
        "than peer_mss (the capture was taken before segmentation offload)."
    )
    kind: str
    length: int
    streak: int
    since_original_ms: int
    run_idle_ms: int  # the idle_ms of the sender's latest data event (0 before any)
    peer_mss: int
    below_mss: int
    acked_before: int
    above_acked: int
    unacked_oversize: bool


@dataclass(slots=True, kw_only=True)
class Recovered(Event):
    name: ClassVar[str] = "recovered"
    doc: ClassVar[str] = "The receiver acknowledged data that its peer had retransmitted."


@dataclass(slots=True, kw_only=True)
class Fin(Event):
    name: ClassVar[str] = "fin"
    doc: ClassVar[str] = (
        "First FIN from a side. idle_ms: the silence on the connection before it, or before "
        "the packet just before it when that one is longer (a FIN that crosses the first "
        "packet after an idle spell: the spell came before that packet), in milliseconds."
    )
    receiver_state: str
    sender_state: str
    idle_ms: int  # the longer of the silences before it and before the packet before it


@dataclass(slots=True, kw_only=True)
class Rst(Event):
    name: ClassVar[str] = "rst"
    doc: ClassVar[str] = (
        "A RST. accepted says whether the receiver's kernel would honour it (Linux "
        "tcp_validate_incoming, RFC 5961); disposition says why or why not: reset, "
        "challenge-ack, out-of-window, no-ack-in-syn-sent, bad-ack-in-syn-sent, no-socket, "
        "answers-stale-ack (the connecting side clearing the peer's old state on reused "
        "ports), unjudged (nothing seen from the receiver to judge by). "
        "receiver_state_proven says whether the receiver's state and sequence numbers come "
        "from its own packets (it had acknowledged everything sent to it) or from a capture "
        "taken on its host; otherwise from packets sent towards it, which may not have "
        "arrived before the RST. ttl_delta compares the RST's TTL with its claimed "
        "sender's earlier packets (ttl_baseline false: none was captured). ip_id is its "
        "IPv4 Identification (-1 for IPv6); ip_id_fit holds it to its claimed sender's "
        "packets after the handshake: follows (the sender's own counter goes on: its "
        "socket made it), zero (0 from a sender whose packets count: made without its "
        "socket, by its kernel or a device), off (neither), unknown (IPv6, nothing to "
        "compare, or IDs picked at random); df_fit: its DF bit is the same as theirs, "
        "differs, or unknown. timestamps: it carries the TCP timestamps "
        "option; timestamps_in_use: both SYNs offered them (RFC 7323), so its claimed "
        "sender's socket would have put them on a RST it made (Linux does; a RST made "
        "without a socket, by a kernel that lost the connection or by a device on the way, "
        "has none). from_capture_host: the capture was taken on the host of the RST's "
        "sender, which sent it itself (it leaves with that host's initial TTL, as its "
        "other packets do, while the receiver's arrive with less; or both ends share one "
        "host). idle_ms: the silence on the connection before it, in milliseconds. "
        "crossed_fin: its sender had sent a FIN that crossed data from the receiver on the "
        "way (the FIN does not acknowledge that data, and the receiver never acknowledged "
        "the FIN: it sent before the FIN reached it)."
    )
    accepted: bool
    disposition: str
    receiver_state: str
    sender_state: str
    has_ack: bool
    sender_sent_data: bool
    sender_received_data: bool
    sender_received_since_send: int  # bytes the RST's sender received after it last sent data
    sender_sent_fin: bool
    receiver_sent_fin: bool
    after_unanswered_keepalives: bool
    receiver_state_proven: bool
    ttl: int  # the RST's TTL (hop limit) as captured
    # The RST's TTL minus the TTL of its claimed sender's first packet captured before it (0
    # when there is none: ttl_baseline false). Above 0: it was sent closer to the capture
    # point than the sender's own packets (a middlebox between them).
    ttl_delta: int
    ttl_baseline: bool
    ip_id: int  # IPv4 Identification, -1 for IPv6
    # Whether that ID fits its claimed sender's packets after the handshake
    # (fingerprint.ip_id_fit): follows, zero, off, unknown.
    ip_id_fit: str
    df_fit: str  # its DF bit against the sender's packets: same, differs, unknown
    timestamps: bool  # the RST carries the TCP timestamps option
    timestamps_in_use: bool  # both SYNs were captured and offered timestamps
    from_capture_host: bool  # sent by the host the capture was taken on
    idle_ms: int  # silence on the connection before it (either direction), in milliseconds
    # Its sender's FIN and data from its receiver crossed on the wire: the FIN does not
    # acknowledge that data and the receiver never acknowledged the FIN (HTTP keep-alive race).
    crossed_fin: bool


@dataclass(slots=True, kw_only=True)
class Keepalive(Event):
    name: ClassVar[str] = "keepalive"
    doc: ClassVar[str] = "A keepalive probe (seq = snd.una - 1, 0 or 1 byte; RFC 9293 3.8.4)."
    length: int
    number: int  # 1 for the first probe since the peer last answered


@dataclass(slots=True, kw_only=True)
class KeepaliveAck(Event):
    name: ClassVar[str] = "keepalive_ack"
    doc: ClassVar[str] = "The peer answered a keepalive probe."


@dataclass(slots=True, kw_only=True)
class ZeroWindow(Event):
    name: ClassVar[str] = "zero_window"
    doc: ClassVar[str] = "The sender advertised a zero receive window (it stopped reading)."


@dataclass(slots=True, kw_only=True)
class WindowOpen(Event):
    name: ClassVar[str] = "window_open"
    doc: ClassVar[str] = (
        "The sender's receive window opened again after a zero window. closed_ms: how long "
        "it had been zero, from the zero_window event, in milliseconds."
    )
    closed_ms: int


@dataclass(slots=True, kw_only=True)
class ZeroWindowProbe(Event):
    name: ClassVar[str] = "zero_window_probe"
    doc: ClassVar[str] = "A probe sent into the peer's zero window."


@dataclass(slots=True, kw_only=True)
class IcmpErrorEvent(Event):
    name: ClassVar[str] = "icmp_error"
    doc: ClassVar[str] = (
        "An ICMP/ICMPv6 error quoting a packet of this flow; receiver is the side that sent the "
        "quoted packet. kind is a stable name such as v4:host-prohibited (see icmp.py). "
        "accepted is false when the kernel would ignore it (quoted TCP seq outside "
        "[snd.una, snd.nxt], or the socket is in TIME_WAIT/CLOSED). idle_ms is the silence "
        "on the connection before it."
    )
    kind: str
    icmp_type: int
    icmp_code: int
    reporter: str  # address that sent the ICMP error
    from_peer: bool  # the error came from the peer host itself, not a router
    accepted: bool
    receiver_state: str
    idle_ms: int  # silence on the connection before it, in milliseconds


@dataclass(slots=True, kw_only=True)
class Datagram(Event):
    name: ClassVar[str] = "datagram"
    doc: ClassVar[str] = "A UDP datagram."
    length: int


@dataclass(slots=True, kw_only=True)
class NeighbourRequest(Event):
    name: ClassVar[str] = "neighbour_request"
    doc: ClassVar[str] = (
        "An ARP request or NDP neighbour solicitation from the client (the requester) for the "
        "server's address (the target), in a run that no reply for the target answered "
        "(track/neighbours.py; ARP probes from 0.0.0.0, NDP duplicate address detection and "
        "gratuitous requests are not requests). requester and target are the two addresses "
        "(no port). number is its place in the run (1 first). "
        "targets counts the addresses the requester asked for without an answer anywhere in "
        "the capture (a sweep asks for many). attempt says what the requester sent that the "
        "resolution stood in the way of, from 10 s before the run to 1 s after it: to-target "
        "(a SYN to the target that nothing answered), via-target (such a SYN to an address "
        "it never asked for: off its link, so through a gateway) or none; attempt_frame "
        "(0: none) and attempt_to (ip:port, empty: none) name that SYN. silence_ms is the "
        "time from the run's last request to the end of the capture (or to the packet that "
        "ended the run). These run values are on every request of the run."
    )
    requester: str
    target: str
    number: int
    targets: int
    attempt: str
    attempt_frame: int
    attempt_to: str
    silence_ms: int


@dataclass(slots=True, kw_only=True)
class Anomaly(Event):
    name: ClassVar[str] = "anomaly"
    doc: ClassVar[str] = (
        "Something a correct endpoint would not do, or a capture artefact: kind is "
        "syn-on-open-connection, synack-with-new-isn, ack-of-unseen-data, "
        "unacceptable-ack-in-syn-sent, previous-segment-not-captured, rst-not-received "
        "(the endpoint sends on the connection after a RST it would have accepted: that RST "
        "was lost before it got there), or rst-sender-continued (the endpoint sends data or "
        "a FIN after a RST in its name: a socket that resets is gone, so that RST was "
        "forged on the way)."
    )
    kind: str


@dataclass(slots=True, kw_only=True)
class End(Event):
    name: ClassVar[str] = "end"
    doc: ClassVar[str] = (
        "The last event of every flow. reason: capture-end (still open when the capture "
        "ended), closed (both sides closed or reset), replaced (a new connection reused the "
        "ports), expired (idle longer than the idle timeout), evicted (an unanswered "
        "connection attempt released early because too many were open at once: a SYN flood). "
        "zero_window_abandoned: the side that last probed its peer's zero window "
        "(zero_window_probe) later answered the peer with a RST without ACK, as a kernel "
        "that no longer has the socket does: the prober's socket was given up while the "
        "window was shut (TCP_USER_TIMEOUT) or closed and dropped."
    )
    reason: str
    client_state: str
    server_state: str
    zero_window_abandoned: bool = False


EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.name: cls
    for cls in (
        Syn,
        SynAck,
        SynCookie,
        Handshake,
        Data,
        Retransmission,
        Recovered,
        Fin,
        Rst,
        Keepalive,
        KeepaliveAck,
        ZeroWindow,
        WindowOpen,
        ZeroWindowProbe,
        IcmpErrorEvent,
        Datagram,
        NeighbourRequest,
        Anomaly,
        End,
    )
}

_BASE_FIELDS: Final = ("frame", "ts_ns", "sender", "receiver")


def event_fields(name: str) -> tuple[str, ...]:
    """Fields of event `name` that rules may test (the base fields included)."""
    return tuple(f.name for f in dataclasses.fields(EVENT_TYPES[name]))


def predicate_fields(name: str) -> tuple[str, ...]:
    return tuple(f for f in event_fields(name) if f not in _BASE_FIELDS)
