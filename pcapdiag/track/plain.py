"""What a plain connection is, as the tracker sees it: the one definition the accelerator's
first pass and its proof that no rule can match such a connection are built from (the C pass
gets these through a header generated from this module at build time)."""

from __future__ import annotations

# What the Python tracker makes of a plain connection (checked by tests/test_triage.py on the
# benchmark's captures): these events, ending with these states and reason.
PLAIN_EVENTS = frozenset({"syn", "synack", "handshake", "data", "fin", "end"})
# A repaired connection is plain but for the two repairs of a healthy connection: data sent
# again and then acknowledged, keepalive probes answered. Its events are these, and each event
# named in REPAIRED_BY is followed, before the end, by the event it names, sent by its receiver:
# every `retransmission` by a `recovered` (an ACK past snd_una), every `keepalive` by a
# `keepalive_ack` (tracker.Connection._on_ack).
REPAIRED_EVENTS = PLAIN_EVENTS | {"retransmission", "recovered", "keepalive", "keepalive_ack"}
REPAIRED_BY = {"retransmission": "recovered", "keepalive": "keepalive_ack"}
# A plain connection is closed, or still open past its handshake when the capture ends.
_AFTER_HANDSHAKE = (
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSED",
)
PLAIN_END = {
    "client_state": _AFTER_HANDSHAKE,
    "server_state": ("SYN_RECEIVED", *_AFTER_HANDSHAKE),
    "reason": ("closed", "capture-end"),
}
# A plain UDP flow: datagrams and its end, no ICMP error about it.
PLAIN_UDP_EVENTS = frozenset({"datagram", "end"})
PLAIN_UDP_END = {
    "client_state": ("UDP",),
    "server_state": ("UDP",),
    "reason": ("expired", "capture-end"),
}
