"""TCP endpoint states (RFC 9293 section 3.3.2 names) and the transition table, as data.

Rule 1: every state change of an endpoint is a lookup in TRANSITIONS; nothing else changes a
state. A miss means "this input does not change the state" (an observer must keep going where
an endpoint would complain), so the table lists only the moves that happen.
Rule 2: this module knows nothing of packets or sequence numbers: the tracker decides what an
endpoint did (sent a FIN, received an acceptable RST, saw its FIN acknowledged) and asks the
table where that leads.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class TcpState(StrEnum):
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"
    CLOSED = "CLOSED"


class Input(StrEnum):
    """What happened to one endpoint, as far as its state machine cares."""

    SEND_SYN = "send_syn"
    RECV_SYN = "recv_syn"
    SEND_SYN_ACK = "send_syn_ack"  # a listener answers a SYN: now it has a connection
    RECV_SYN_ACK = "recv_syn_ack"  # a SYN-ACK acknowledging our SYN
    RECV_ACK_OF_SYN = "recv_ack_of_syn"  # our SYN (or SYN-ACK) is acknowledged
    SEND_FIN = "send_fin"
    RECV_FIN = "recv_fin"
    RECV_ACK_OF_FIN = "recv_ack_of_fin"
    SEND_RST = "send_rst"
    RECV_RST = "recv_rst"  # an RST the endpoint accepts (see tracker: RFC 5961 checks)
    CONNECT_ABORTED = "connect_aborted"  # an ICMP error that ends a connect (Linux tcp_v4_err)


S = TcpState
I = Input  # noqa: E741 - short alias keeps the table readable

# (state, input) -> next state. RFC 9293 figure 5, plus the aborts every state shares.
TRANSITIONS: Final[dict[tuple[TcpState, Input], TcpState]] = {
    (S.CLOSED, I.SEND_SYN): S.SYN_SENT,
    # A listener that receives a SYN is only seen to hold a connection once it answers with a
    # SYN-ACK (RFC 9293 splits nothing here; an observer must: a RST instead means no listener).
    (S.LISTEN, I.SEND_SYN_ACK): S.SYN_RECEIVED,
    (S.SYN_SENT, I.RECV_SYN_ACK): S.ESTABLISHED,
    (S.SYN_SENT, I.RECV_SYN): S.SYN_RECEIVED,  # simultaneous open
    (S.SYN_RECEIVED, I.RECV_ACK_OF_SYN): S.ESTABLISHED,
    (S.SYN_RECEIVED, I.SEND_FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, I.SEND_FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, I.RECV_FIN): S.CLOSE_WAIT,
    (S.FIN_WAIT_1, I.RECV_ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, I.RECV_FIN): S.CLOSING,
    (S.FIN_WAIT_2, I.RECV_FIN): S.TIME_WAIT,
    (S.CLOSING, I.RECV_ACK_OF_FIN): S.TIME_WAIT,
    (S.CLOSE_WAIT, I.SEND_FIN): S.LAST_ACK,
    (S.LAST_ACK, I.RECV_ACK_OF_FIN): S.CLOSED,
    (S.SYN_SENT, I.CONNECT_ABORTED): S.CLOSED,
    (S.SYN_RECEIVED, I.CONNECT_ABORTED): S.CLOSED,
}
# An endpoint that sends or accepts a RST is closed, whatever state it was in (RFC 9293
# section 3.10.7.4; Linux tcp_reset() / tcp_done()).
for _state in TcpState:
    if _state is not S.CLOSED:
        TRANSITIONS[(_state, I.SEND_RST)] = S.CLOSED
        TRANSITIONS[(_state, I.RECV_RST)] = S.CLOSED

SYNCHRONIZED: Final = frozenset(
    {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT}
)
# States in which the application may still hold the socket and call recv()/send().
OPEN_TO_APPLICATION: Final = frozenset(
    {S.SYN_SENT, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT}
)
FINISHED: Final = frozenset({S.CLOSED, S.TIME_WAIT})


def next_state(state: TcpState, what: Input) -> TcpState:
    """Where `what` takes an endpoint in `state`; the same state when the table has no move."""
    return TRANSITIONS.get((state, what), state)
