"""What a plain connection is, as the tracker sees it: the one definition the accelerator's
first pass and its proof that no rule can match such a connection are built from (the C pass
gets these through a header generated from this module at build time)."""

from __future__ import annotations

# What the Python tracker makes of a plain connection (checked by tests/accel/test_triage.py on the
# benchmark's captures): these events, ending with these states and reason.
PLAIN_EVENTS = frozenset({"syn", "synack", "handshake", "data", "fin", "end"})
# A repaired connection is plain but for the two repairs of a healthy connection: data sent
# again and then acknowledged, keepalive probes answered. Its events are these, and each event
# named in REPAIRED_BY is followed, before the end, by the event it names, sent by its receiver:
# every `retransmission` by a `recovered` (an ACK past snd_una), every `keepalive` by a
# `keepalive_ack` (tracker.Connection._on_ack).
REPAIRED_EVENTS = PLAIN_EVENTS | {"retransmission", "recovered", "keepalive", "keepalive_ack"}
REPAIRED_BY = {"retransmission": "recovered", "keepalive": "keepalive_ack"}
# The values a repaired connection's repairs may carry: only data is sent again (a SYN,
# SYN-ACK or FIN sent again is not a repair: _triage.c repair() and its SYN phase).
REPAIRED_FIELDS = {"retransmission": {"kind": ("data",)}}
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
# A connection seen mid-stream: its first segment carried no SYN (it began before the capture
# did). The tracker starts both ends ESTABLISHED with roles guessed from the ports
# (Connection.from_first_segment) and learns where each side's sequence numbers are from the
# first segment that shows them. A plain one has a plain connection's events but the
# handshake's, and may have one anomaly no plain connection has: the capture started while
# data was in flight, and an ACK covers data sent before it ("ack-of-unseen-data",
# Connection._on_ack). A repaired one adds the repairs of REPAIRED_EVENTS, answered as there.
MIDSTREAM_EVENTS = frozenset({"data", "fin", "anomaly", "end"})
MIDSTREAM_REPAIRED_EVENTS = MIDSTREAM_EVENTS | (REPAIRED_EVENTS - PLAIN_EVENTS)
MIDSTREAM_ANOMALIES = ("ack-of-unseen-data",)
# Both ends start ESTABLISHED, so a plain one ends closed, or anywhere past it when the capture
# ends.
MIDSTREAM_END = {
    "client_state": _AFTER_HANDSHAKE,
    "server_state": _AFTER_HANDSHAKE,
    "reason": ("closed", "capture-end"),
}
# The values a mid-stream plain connection's events may carry, by event and field.
MIDSTREAM_FIELDS = {"end": MIDSTREAM_END, "anomaly": {"kind": MIDSTREAM_ANOMALIES}}
# A plain UDP flow: datagrams and its end, no ICMP error about it.
PLAIN_UDP_EVENTS = frozenset({"datagram", "end"})
PLAIN_UDP_END = {
    "client_state": ("UDP",),
    "server_state": ("UDP",),
    "reason": ("expired", "capture-end"),
}
