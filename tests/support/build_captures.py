"""Every test capture pcapdiag's own tests use, built packet by packet (scapy) with the reason
for each one in its docstring. Run `python -m tests.support.build_captures` to rebuild them; a test
checks that the committed files are exactly what this script writes.

Each builder returns a Talk; its key is the path the capture is written to, relative to the
repository root (rule test captures sit beside their rule in rules/<name>/).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pcapdiag.track.flows import MAX_ATTEMPTS
from tests.support.scenario import CLIENT_MAC, SERVER_MAC, T0, Talk

ROOT = Path(__file__).resolve().parents[2]
ROUTER4 = "10.0.1.254"
ROUTER6 = "fd00:1::fe"

CAPTURES: dict[str, Callable[[], Talk]] = {}
# The SYN options of Linux with net.ipv4.tcp_timestamps = 0 (net/ipv4/tcp_output.c
# tcp_options_write()): mss, nop, nop, sackOK, nop, window scale. 12 bytes, as many as the
# default options of a Talk, so that the sample's frames keep their sizes.
LINUX_SYN: list[tuple[str, object]] = [
    ("MSS", 1460),
    ("NOP", None),
    ("NOP", None),
    ("SAckOK", b""),
    ("NOP", None),
    ("WScale", 7),
]


def capture(path: str) -> Callable[[Callable[[], Talk]], Callable[[], Talk]]:
    def register(fn: Callable[[], Talk]) -> Callable[[], Talk]:
        CAPTURES[path] = fn
        return fn

    return register


def _request_response(t: Talk) -> None:
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    t.tcp("s", "A")
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    t.tcp("c", "A")


# -- syn-refused ------


@capture("rules/syn-refused/refused.pcap")
def refused() -> Talk:
    """Connect to a closed port: the SYN is answered by RST|ACK with ack = ISN + 1 (Linux
    tcp_v4_send_reset for a segment without ACK). Frames: 1 SYN, 2 RST|ACK."""
    t = Talk(sport=81)
    t.tcp("c", "S")
    t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
    return t


@capture("rules/syn-refused/windows-retries.pcap")
def windows_retries() -> Talk:
    """A Windows client (TTL 128, its SYN options mss,nop,ws,nop,nop,sackOK) to a closed
    port: it sends the SYN again 0.5 s after each RST, three attempts in all (KB 175523),
    and connect() fails after the third. Frames: 1 SYN, 2 RST|ACK, 3 SYN, 4 RST|ACK, 5 SYN,
    6 RST|ACK."""
    t = Talk(sport=83, client_ttl=128, server_ttl=63)
    opts = [("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None)]
    opts.append(("SAckOK", b""))
    t.tcp("c", "S", options=opts)
    t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
    for _ in range(2):
        t.tcp("c", "S", seq=t.cisn, dt=0.5, advance=False, options=opts)
        t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
    return t


@capture("rules/syn-refused/rst-bad-ack.pcap")
def rst_bad_ack() -> Talk:
    """A RST|ACK whose ACK does not acknowledge the SYN (ack = ISN + 100): a SYN_SENT socket
    must ignore it (RFC 9293 3.10.7.3), so connect() is not refused; the SYN is then answered
    normally. Frames: 1 SYN, 2 bad RST, 3 SYN-ACK, 4 ACK."""
    t = Talk(sport=82)
    t.tcp("c", "S")
    t.tcp("s", "RA", seq=0, ack=t.cisn + 100)
    t.tcp("s", "SA", dt=0.01)
    t.tcp("c", "A", options=[])
    return t


# -- syn-icmp-unreachable ------


@capture("rules/syn-icmp-unreachable/host-prohibited.pcap")
def icmp_host_prohibited() -> Talk:
    """A firewall on the router rejects the SYN with ICMP host prohibited (3/10), the RHEL
    firewalld default: Linux connect() fails at once with EHOSTUNREACH. Frames: 1 SYN,
    2 ICMP quoting the SYN with seq = ISN."""
    t = Talk()
    syn = t.tcp("c", "S")
    t.icmp_error(syn, router=ROUTER4, icmp_type=3, code=10)
    return t


@capture("rules/syn-icmp-unreachable/v6-admin-prohibited.pcap")
def icmp6_admin_prohibited() -> Talk:
    """ip6tables REJECT --reject-with adm-prohibited: ICMPv6 1/1, which Linux maps to EACCES
    (icmpv6_err_convert), not EHOSTUNREACH as for IPv4. Frames: 1 SYN, 2 ICMPv6."""
    t = Talk(client="fd00::1", server="fd00:2::2")
    syn = t.tcp("c", "S")
    t.icmp_error(syn, router=ROUTER6, icmp_type=1, code=1)
    return t


@capture("rules/syn-icmp-unreachable/stale-quote.pcap")
def icmp_stale_quote() -> Talk:
    """An ICMP port unreachable whose quoted sequence number is not the SYN's (ISN + 5000):
    tcp_v4_err() ignores it (OutOfWindowIcmps), and the connection then succeeds.
    Frames: 1 SYN, 2 ICMP with a stale quote, 3 SYN-ACK, 4 ACK."""
    t = Talk()
    syn = t.tcp("c", "S")
    t.icmp_error(syn, router=ROUTER4, icmp_type=3, code=3, quote_seq=t.cisn + 5000)
    t.tcp("s", "SA", dt=0.01)
    t.tcp("c", "A", options=[])
    return t


# -- syn-icmp-retried ------


@capture("rules/syn-icmp-retried/retried.pcap")
def syn_icmp_retried() -> Talk:
    """The router answers each SYN with ICMP host unreachable (3/1), yet the client sends
    the SYN again 1 and 2 s later, as FreeBSD and macOS do (a soft error until the connect
    gives up); Linux would have ended the connect at the first error. The capture ends 3 s
    after the last SYN. Frames: 1 SYN, 2 ICMP, 3 SYN, 4 ICMP, 5 SYN, 6 ICMP."""
    t = Talk(server="10.0.8.8", cport=40020)
    syn = t.tcp("c", "S")
    t.icmp_error(syn, router=ROUTER4, icmp_type=3, code=1)
    for dt in (1.0, 2.0):
        again = t.tcp("c", "S", seq=t.cisn, dt=dt, advance=False)
        t.icmp_error(again, router=ROUTER4, icmp_type=3, code=1)
    t.wait(3.0)
    t.udp("c", b"end-marker")  # unrelated datagram: marks the end of the capture
    return t


@capture("rules/syn-icmp-retried/not-retried.pcap")
def syn_icmp_not_retried() -> Talk:
    """One SYN, one ICMP host unreachable, no second SYN in the 3 s that follow: what Linux
    does (connect() failed at once: rule syn-icmp-unreachable). Frames: 1 SYN, 2 ICMP."""
    t = Talk(server="10.0.8.8", cport=40021)
    syn = t.tcp("c", "S")
    t.icmp_error(syn, router=ROUTER4, icmp_type=3, code=1)
    t.wait(3.0)
    t.udp("c", b"end-marker")
    return t


# -- syn-timeout ------


@capture("rules/syn-timeout/six-syns.pcap")
def syn_timeout() -> Talk:
    """SYNs to a black-holed address, as Linux 6.x sends them with tcp_syn_retries=2 and
    tcp_syn_linear_timeouts=4: six SYNs 1 s apart, no answer, capture ends 2 s after the last.
    Frames 1-6 are the SYNs."""
    t = Talk(server="10.0.9.9")
    t.tcp("c", "S")
    for _ in range(5):
        t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.wait(2.0)
    t.udp("c", b"end-marker")  # unrelated datagram: marks the end of the capture
    return t


@capture("rules/syn-timeout/slow-connect.pcap")
def slow_connect() -> Talk:
    """The first SYN is lost, the retransmission 1 s later is answered: a slow connect that
    succeeds, so no ETIMEDOUT. Frames: 1 SYN, 2 SYN (retransmitted), 3 SYN-ACK, 4 ACK, then a
    request/response and an orderly close."""
    t = Talk()
    t.tcp("c", "S")
    t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.tcp("s", "SA")
    t.tcp("c", "A", options=[])
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


# -- slow-connect ------


def _close(t: Talk) -> None:
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")


@capture("rules/slow-connect/syn-lost.pcap")
def slow_connect_syn_lost() -> Talk:
    """The first SYN is lost; Linux sends it again 1 s later and it is answered: connect()
    succeeds 1 s late. Frames: 1 SYN, 2 SYN (retransmitted), 3 SYN-ACK, 4 ACK, 5-8 request
    and response, 9-11 close."""
    t = Talk()
    t.tcp("c", "S")
    t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.tcp("s", "SA")
    t.tcp("c", "A", options=[])
    _request_response(t)
    _close(t)
    return t


@capture("rules/slow-connect/synack-lost.pcap")
def slow_connect_synack_lost() -> Talk:
    """Captured on the server's host (its packets TTL 64, the client's 63): the server
    answers the first SYN, its SYN-ACK is lost on the way, the client sends its SYN again
    after 1 s and the server its SYN-ACK, which arrives. Frames: 1 SYN, 2 SYN-ACK, 3 SYN
    (retransmitted), 4 SYN-ACK (retransmitted), 5 ACK, 6-9 request and response, 10-12
    close."""
    t = Talk(client_ttl=63)
    t.tcp("c", "S")
    t.tcp("s", "SA")
    t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.tcp("s", "SA", seq=t.sisn, advance=False)
    t.tcp("c", "A", options=[])
    _request_response(t)
    _close(t)
    return t


@capture("rules/slow-connect/prompt-connect.pcap")
def slow_connect_prompt() -> Talk:
    """A handshake with nothing lost, a request and response, and a close. Frames: 1-3
    handshake, 4-7 request and response, 8-10 close."""
    t = Talk()
    t.handshake()
    _request_response(t)
    _close(t)
    return t


# -- syn-unanswered ------


@capture("rules/syn-unanswered/lone-syn.pcap")
def lone_syn() -> Talk:
    """A scanner-style probe: one SYN to a silent address, never sent again; the capture goes
    on for 3 s (a datagram of another flow marks its end). Frame 1 is the SYN."""
    t = Talk(server="10.0.9.10")
    t.tcp("c", "S")
    t.wait(3.0)
    t.udp("c", b"end-marker")
    return t


@capture("rules/syn-unanswered/syn-at-the-end.pcap")
def syn_at_the_end() -> Talk:
    """A SYN 0.5 s before the capture ends (a datagram of another flow marks the end): too
    soon to tell. Frame 1 is the SYN, frame 2 the datagram."""
    t = Talk(server="10.0.9.12")
    t.tcp("c", "S")
    t.wait(0.5)
    t.udp("c", b"end-marker")
    return t


@capture("rules/syn-unanswered/answered-syn.pcap")
def answered_syn() -> Talk:
    """SYN, SYN-ACK, ACK and the capture ends: the attempt was answered. Frames: 1 SYN,
    2 SYN-ACK, 3 ACK."""
    t = Talk()
    t.tcp("c", "S")
    t.tcp("s", "SA")
    t.tcp("c", "A", options=[])
    return t


@capture("rules/syn-unanswered/two-syns.pcap")
def two_syns() -> Talk:
    """A SYN and its retransmission 1 s later (Linux's initial RTO), then 2 s of silence: a
    connecting socket, so syn-timeout's case, not a lone probe. Frames 1 and 2 are the SYNs."""
    t = Talk(server="10.0.9.11")
    t.tcp("c", "S")
    t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.wait(2.0)
    t.udp("c", b"end-marker")
    return t


# -- rst-after-handshake (server) ------


@capture("rules/rst-after-handshake/server-rst.pcap")
def server_rst_after_handshake() -> Talk:
    """The server completes the handshake and resets at once (an application that accepts and
    aborts, a proxy with no healthy backend): RST|ACK at seq = server's snd_nxt.
    Frames: 1-3 handshake, 4 RST|ACK from the server."""
    t = Talk()
    t.handshake()
    t.tcp("s", "RA")
    return t


@capture("rules/rst-after-handshake/rst-after-response.pcap")
def rst_after_response() -> Talk:
    """The server answers the request and then resets: not 'right after the handshake' (the
    server sent data first). Frames: 1-3 handshake, 4-7 request/response, 8 RST|ACK."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "RA")
    return t


# -- client-rst-before-accept ------


@capture("rules/client-rst-before-accept/client-rst.pcap")
def client_rst_before_accept() -> Talk:
    """The client completes the handshake and resets before sending anything (a connect
    timeout fired in the application, SO_LINGER 0 close). The server's accept() on Linux still
    returns the connection and its first recv() fails with ECONNRESET; on BSD/macOS accept()
    fails with ECONNABORTED. Frames: 1-3 handshake, 4 RST|ACK from the client."""
    t = Talk()
    t.handshake()
    t.tcp("c", "RA", dt=0.002)
    return t


@capture("rules/client-rst-before-accept/client-request-then-rst.pcap")
def client_request_then_rst() -> Talk:
    """The client sends a request and then resets: it sent data first, so this is not a reset
    before the first exchange. Frames: 1-3 handshake, 4 request, 5 ACK, 6 RST|ACK (client)."""
    t = Talk()
    t.handshake()
    t.tcp("c", "PA", b"hello")
    t.tcp("s", "A")
    t.tcp("c", "RA")
    return t


# -- rst-established ------


@capture("rules/rst-established/reset-mid-connection.pcap")
def reset_mid_connection() -> Talk:
    """Both sides exchanged data, then the client's next request is answered by a RST from
    the server (seq = the client's ack: a server that lost its socket, stateless RST without
    ACK flag). Frames: 1-3 handshake, 4-7 request/response, 8 second request, 9 RST."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("c", "PA", b"GET /2 HTTP/1.1\r\n\r\n", dt=5.0)
    t.tcp("s", "R", seq=t.acked["c"], ack=0)
    return t


@capture("rules/rst-established/rst-lost.pcap")
def rst_lost() -> Talk:
    """As seen next to the server, whose RST never reaches the client (a firewall on the way
    drops it; recorded for real in samples/recorded/peer-lost-state): the server aborts with
    RST|ACK (frame 8), yet the client sends its next request a second later (frame 9), so it
    never got that RST; the server's kernel, with no socket left, answers with a bare RST
    (frame 10), which resets the client. Frames: 1-3 handshake, 4-7 request/response."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "RA", dt=0.01, advance=False)
    t.tcp("c", "PA", b"GET /2 HTTP/1.1\r\n\r\n", dt=1.0)
    t.tcp("s", "R", seq=t.acked["c"], ack=0)
    return t


@capture("rules/rst-established/challenge-ack.pcap")
def challenge_ack() -> Talk:
    """A RST inside the window but not at rcv_nxt (seq = rcv_nxt + 1000): Linux answers with a
    challenge ACK and ignores it (RFC 5961 3.2), so no ECONNRESET. Frames: 1-3 handshake,
    4-7 request/response, 8 RST (in window, wrong seq), 9 challenge ACK from the client,
    10-12 orderly close."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "R", seq=t.nxt["s"] + 1000, ack=0)
    t.tcp("c", "A")
    t.tcp("c", "FA", dt=0.5)
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


@capture("rules/rst-established/out-of-window.pcap")
def rst_out_of_window() -> Talk:
    """A RST far outside the receive window (seq = rcv_nxt + 2^30): silently dropped by
    tcp_sequence(); the connection carries on. Frames: 1-3 handshake, 4 RST, 5-8
    request/response, 9-11 orderly close."""
    t = Talk()
    t.handshake()
    t.tcp("s", "R", seq=t.nxt["s"] + (1 << 30), ack=0)
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


# -- write-after-peer-close ------


@capture("rules/write-after-peer-close/fin-data-rst.pcap")
def fin_data_rst() -> Talk:
    """The server closes (FIN), the client, now in CLOSE_WAIT, sends another request; the
    server has no socket left for reading and answers with a RST (seq = the client's ack).
    Linux: the client's recv() returns 0 and its next send() fails with EPIPE.
    Frames: 1-3 handshake, 4-7 request/response, 8 FIN (server), 9 ACK, 10 data, 11 RST."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "FA")
    t.tcp("c", "A")
    t.tcp("c", "PA", b"GET /again HTTP/1.1\r\n\r\n", dt=0.2)
    t.tcp("s", "R", seq=t.acked["c"], ack=0)
    return t


@capture("rules/write-after-peer-close/half-close.pcap")
def half_close() -> Talk:
    """Half-close: the server calls shutdown(SHUT_WR) (FIN) but keeps reading; the client
    sends more data, the server ACKs it, then both close. Healthy: no errno for anyone.
    Frames: 1-3 handshake, 4-7 request/response, 8 FIN, 9 ACK, 10 data, 11 ACK, 12 FIN, 13 ACK."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "FA")
    t.tcp("c", "A")
    t.tcp("c", "PA", b"more data")
    t.tcp("s", "A")
    t.tcp("c", "FA")
    t.tcp("s", "A")
    return t


# -- rst-after-close and timeout-after-close ------


@capture("rules/rst-after-close/closed-then-rst.pcap")
def closed_then_rst() -> Talk:
    """The client closes after its response (FIN), the server acknowledges the FIN and then
    resets instead of closing (SO_LINGER 0, or an abort): the RST reaches a client in
    FIN_WAIT_2 whose application has closed, so no call fails. Frames: 1-3 handshake, 4-7
    request/response, 8 FIN (client), 9 ACK, 10 RST (server)."""
    t = Talk(cport=40030)
    t.handshake()
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "A")
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.05)
    return t


@capture("rules/rst-after-close/rst-while-open.pcap")
def rst_while_open() -> Talk:
    """The same server resets while the client still holds the connection open (no FIN from
    the client): recv() fails with ECONNRESET (rule rst-established), not this rule.
    Frames: 1-3 handshake, 4-7 request/response, 8 RST (server)."""
    t = Talk(cport=40031)
    t.handshake()
    _request_response(t)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.05)
    return t


def _server_fin_retransmitted(t: Talk, retransmissions: int) -> Talk:
    """A request and response, then the server's FIN sent again `retransmissions` times with
    backoff (0.2, 0.4, ... s), unacknowledged."""
    t.handshake()
    _request_response(t)
    seq = t.nxt["s"]
    t.tcp("s", "FA")
    rto = 0.2
    for _ in range(retransmissions):
        t.tcp("s", "FA", seq=seq, dt=rto, advance=False)
        rto *= 2
    return t


@capture("rules/timeout-after-close/fin-unanswered.pcap")
def fin_unanswered() -> Talk:
    """After its response the server closes: its FIN is retransmitted four times with
    backoff and never acknowledged (the client vanished). The server's application had
    closed: nobody gets ETIMEDOUT. Frames: 1-3 handshake, 4-7 request/response, 8 FIN,
    9-12 FIN retransmissions."""
    t = _server_fin_retransmitted(Talk(cport=40032), 4)
    t.wait(3.0)
    return t


@capture("rules/timeout-after-close/fin-answered-late.pcap")
def fin_answered_late() -> Talk:
    """The server's FIN is retransmitted twice, then the client acknowledges it and closes:
    a slow close, healthy. Frames: 1-3 handshake, 4-7 request/response, 8 FIN, 9-10 FIN
    retransmissions, 11 FIN|ACK (client), 12 ACK."""
    t = _server_fin_retransmitted(Talk(cport=40033), 2)
    t.tcp("c", "FA", dt=0.1)
    t.tcp("s", "A")
    return t


# -- close-with-unread-data ------


@capture("rules/close-with-unread-data/rst-instead-of-fin.pcap")
def rst_instead_of_fin() -> Talk:
    """The server reads part of the request, sends its response and closes with request bytes
    still unread: Linux sends RST|ACK instead of FIN (tcp_close, RFC 2525 2.17). The client
    gets ECONNRESET and may lose the response. Frames: 1-3 handshake, 4 request, 5 ACK,
    6 response, 7 second request chunk, 8 RST|ACK from the server."""
    t = Talk()
    t.handshake()
    t.tcp("c", "PA", b"POST /upload HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
    t.tcp("s", "A")
    t.tcp("s", "PA", b"HTTP/1.1 413 Payload Too Large\r\n\r\n")
    t.tcp("c", "PA", b"0123456789")
    t.tcp("s", "RA", seq=t.nxt["s"], ack=t.nxt["c"])
    return t


@capture("rules/close-with-unread-data/orderly-close.pcap")
def orderly_close() -> Talk:
    """Request, response, FIN from the server, FIN from the client: the textbook close.
    Frames: 1-3 handshake, 4-7 request/response, 8 FIN, 9 FIN, 10 ACK."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("s", "FA")
    t.tcp("c", "FA")
    t.tcp("s", "A")
    return t


# -- data-timeout and data-timeout-icmp ------


def stalled(t: Talk, retransmissions: int) -> None:
    t.handshake()
    t.tcp("c", "PA", b"request 1")
    t.tcp("s", "A")
    seq = t.nxt["c"]
    t.tcp("c", "PA", b"request 2 that never arrives")
    rto = 0.2
    for _ in range(retransmissions):
        t.tcp("c", "PA", b"request 2 that never arrives", seq=seq, dt=rto, advance=False)
        rto *= 2


@capture("rules/data-timeout/retransmissions-then-silence.pcap")
def retransmissions_then_silence() -> Talk:
    """The server vanishes after the first request: the client's next segment is
    retransmitted with exponential backoff (0.2, 0.4, ... s) and never acknowledged.
    Frames: 1-3 handshake, 4 request, 5 ACK, 6 data, 7-11 retransmissions."""
    t = Talk()
    stalled(t, 5)
    t.wait(3.0)
    return t


@capture("rules/data-timeout/retransmissions-recover.pcap")
def retransmissions_recover() -> Talk:
    """Two retransmissions, then the server acknowledges the data: loss that recovers, no
    errno. Frames: 1-3 handshake, 4 request, 5 ACK, 6 data, 7-8 retransmissions, 9 ACK,
    10-12 close."""
    t = Talk()
    stalled(t, 2)
    t.tcp("s", "A")
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


@capture("rules/data-timeout-icmp/host-unreachable.pcap")
def data_timeout_icmp() -> Talk:
    """As retransmissions-then-silence, but the router answers each segment with ICMP host
    unreachable (the server's host went away): Linux keeps retransmitting and, at the
    timeout, reports EHOSTUNREACH instead of ETIMEDOUT (soft error, tcp_v4_err).
    Frames: 1-3 handshake, 4 request, 5 ACK, 6 data, 7 ICMP, 8 retransmission, 9 ICMP,
    10 retransmission, 11 ICMP, 12 retransmission, 13 ICMP."""
    t = Talk()
    t.handshake()
    t.tcp("c", "PA", b"request 1")
    t.tcp("s", "A")
    seq = t.nxt["c"]
    seg = t.tcp("c", "PA", b"request 2")
    t.icmp_error(seg, router=ROUTER4, icmp_type=3, code=1, dt=0.003)
    for _ in range(3):
        seg = t.tcp("c", "PA", b"request 2", seq=seq, dt=0.2, advance=False)
        t.icmp_error(seg, router=ROUTER4, icmp_type=3, code=1, dt=0.003)
    t.wait(2.0)
    return t


@capture("rules/data-timeout-icmp/stale-icmp.pcap")
def data_timeout_stale_icmp() -> Talk:
    """The ICMP error quotes a sequence number below snd_una (old, already acknowledged data):
    tcp_v4_err() ignores it, so the final errno stays ETIMEDOUT. Frames: 1-3 handshake,
    4 request, 5 ACK, 6 data, 7 ICMP (stale quote), 8-11 retransmissions."""
    t = Talk()
    t.handshake()
    t.tcp("c", "PA", b"request 1")
    t.tcp("s", "A")
    seq = t.nxt["c"]
    seg = t.tcp("c", "PA", b"request 2")
    t.icmp_error(seg, router=ROUTER4, icmp_type=3, code=1, quote_seq=t.cisn + 1, dt=0.003)
    rto = 0.2
    for _ in range(4):
        t.tcp("c", "PA", b"request 2", seq=seq, dt=rto, advance=False)
        rto *= 2
    t.wait(2.0)
    return t


# -- pmtu-blackhole ------


def _small_then_full_size(t: Talk, sizes: list[int]) -> int:
    """Handshake, a 100-byte request and response (acknowledged), then the client's segments
    of `sizes` bytes, none acknowledged. Returns the sequence number of the first."""
    t.handshake()
    t.tcp("c", "PA", b"q" * 100)
    t.tcp("s", "A")
    t.tcp("s", "PA", b"r" * 100)
    t.tcp("c", "A")
    first = t.nxt["c"]
    for n in sizes:
        t.tcp("c", "A", b"x" * n, dt=0.0001)
    return first


def _retransmit(t: Talk, seq: int, size: int, times: int) -> None:
    rto = 0.2
    for _ in range(times):
        t.tcp("c", "A", b"x" * size, seq=seq, dt=rto, advance=False)
        rto *= 2


@capture("rules/pmtu-blackhole/blackhole.pcap")
def pmtu_blackhole() -> Talk:
    """A path MTU black hole: the client's 100-byte request is acknowledged, then its four
    full-size segments (1460 bytes, the MSS the server offered) vanish and the first is
    retransmitted three times, 0.2 to 0.8 s apart; no ICMP comes back. Frames: 1-3 handshake,
    4 request, 5 ACK, 6 response, 7 ACK, 8-11 full-size segments, 12-14 retransmissions."""
    t = Talk()
    seq = _small_then_full_size(t, [1460] * 4)
    _retransmit(t, seq, 1460, 3)
    t.wait(3.0)
    return t


@capture("rules/pmtu-blackhole/blackhole-v6.pcap")
def pmtu_blackhole_v6() -> Talk:
    """As blackhole.pcap over IPv6: the server offers MSS 1440 and the client's 1440-byte
    segments vanish, no ICMPv6 packet too big comes back. Frames: 1-3 handshake, 4 request,
    5 ACK, 6 response, 7 ACK, 8-11 full-size segments, 12-14 retransmissions."""
    t = Talk(client="fd00::1", server="fd00::2", syn_options=[("MSS", 1440), ("WScale", 7)])
    seq = _small_then_full_size(t, [1440] * 4)
    _retransmit(t, seq, 1440, 3)
    t.wait(3.0)
    return t


@capture("rules/pmtu-blackhole/frag-needed.pcap")
def pmtu_frag_needed() -> Talk:
    """As blackhole.pcap, but the router answers the first full-size segment with ICMP
    fragmentation needed (3/4, next-hop MTU not modelled): the size problem is reported, so
    it is not a black hole (Linux would lower its MSS, tcp_v4_mtu_reduced). Frames: 1-11 as
    there, 12 ICMP 3/4 quoting frame 8, 13-15 retransmissions."""
    t = Talk()
    seq = _small_then_full_size(t, [1460] * 4)
    t.icmp_error(t.packets[7], router=ROUTER4, icmp_type=3, code=4, dt=0.003)
    _retransmit(t, seq, 1460, 3)
    t.wait(3.0)
    return t


@capture("rules/pmtu-blackhole/small-segments-lost.pcap")
def pmtu_small_segments_lost() -> Talk:
    """Ordinary loss: two full-size segments and a 300-byte one go unanswered, and the small
    one is retransmitted too: size is not what decides. Frames: 1-7 as blackhole.pcap,
    8-9 full-size segments, 10 300-byte segment, 11-13 retransmissions of frame 8,
    14 retransmission of frame 10."""
    t = Talk()
    seq = _small_then_full_size(t, [1460, 1460, 300])
    _retransmit(t, seq, 1460, 3)
    t.tcp("c", "A", b"x" * 300, seq=seq + 2920, dt=0.1, advance=False)
    t.wait(3.0)
    return t


@capture("rules/pmtu-blackhole/offload.pcap")
def pmtu_offload() -> Talk:
    """Captured on the sending host with segmentation offload: the capture shows one
    5840-byte segment (four MSS) that the NIC cuts up later, and the kernel's retransmissions
    of its first 1460 bytes. Sizes above the MSS say offload, not the path: no black hole
    claimed (data-timeout reports the silence). Frames: 1-7 as blackhole.pcap, 8 the
    5840-byte segment, 9-11 retransmissions."""
    t = Talk()
    seq = _small_then_full_size(t, [5840])
    _retransmit(t, seq, 1460, 3)
    t.wait(3.0)
    return t


# -- zero-window-stall ------


def _window_shut(t: Talk) -> None:
    """Handshake, two 1000-byte segments from the client, and the server's ACK of both with
    a zero window (frames 1-6)."""
    t.handshake()
    t.tcp("c", "A", b"w" * 1000)
    t.tcp("c", "PA", b"w" * 1000, dt=0.0001)
    t.tcp("s", "A", window=0)


def _probe(t: Talk, dt: float) -> None:
    """A Linux zero-window probe (tcp_xmit_probe_skb: no data, seq = snd_una - 1) and the
    server's answer, its window still zero."""
    t.tcp("c", "A", seq=t.nxt["c"] - 1, dt=dt, advance=False)
    t.tcp("s", "A", window=0)


def _reopen_and_close(t: Talk, after: float) -> None:
    """The server opens its window `after` seconds on (window update), the client sends the
    rest, the server acknowledges it, and both close."""
    t.tcp("s", "A", dt=after, window=500)
    t.tcp("c", "PA", b"w" * 1000)
    t.tcp("s", "A", window=500)
    t.tcp("c", "FA")
    t.tcp("s", "FA", window=500)
    t.tcp("c", "A")


@capture("rules/zero-window-stall/stall-ends.pcap")
def zero_window_stall_ends() -> Talk:
    """The server's application stops reading: its window closes, the client's two
    zero-window probes (0.2 s, then 0.4 s later) are answered with a zero window, then the
    server reads and opens it again; the transfer goes on and both close. Frames: 1-3
    handshake, 4-5 data, 6 zero window, 7 probe, 8 answer, 9 probe, 10 answer, 11 window
    update, 12 data, 13 ACK, 14-16 close."""
    t = Talk()
    _window_shut(t)
    _probe(t, 0.2)
    _probe(t, 0.4)
    _reopen_and_close(t, 1.0)
    return t


@capture("rules/zero-window-stall/user-timeout.pcap")
def zero_window_user_timeout() -> Talk:
    """As stall-ends.pcap, but the client's TCP_USER_TIMEOUT (2 s) runs out while the window
    is shut: its kernel drops the socket silently (send() fails with ETIMEDOUT), so when the
    server opens its window the client's kernel answers with a RST without ACK (seq = the
    server's ACK), as in the recording zero-window-user-timeout. Frames: 1-10 as there, 11
    probe, 12 answer, 13 window update, 14 RST."""
    t = Talk()
    _window_shut(t)
    _probe(t, 0.2)
    _probe(t, 0.4)
    _probe(t, 0.8)
    t.tcp("s", "A", dt=1.5, window=500)
    t.tcp("c", "R", seq=t.acked["s"], ack=0, advance=False)
    return t


@capture("rules/zero-window-stall/writer-aborts.pcap")
def zero_window_writer_aborts() -> Talk:
    """As stall-ends.pcap until the second probe's answer, then the client's application
    gives up and closes with SO_LINGER 0: its socket sends RST|ACK (tcp_send_active_reset),
    which says nothing of a timeout. Frames: 1-10 as there, 11 RST|ACK."""
    t = Talk()
    _window_shut(t)
    _probe(t, 0.2)
    _probe(t, 0.4)
    t.tcp("c", "RA", dt=0.5, advance=False)
    return t


@capture("rules/zero-window-stall/window-reopens.pcap")
def zero_window_reopens() -> Talk:
    """Flow control, not a stall: the server's window closes and opens again 50 ms later,
    before any probe is due. Frames: 1-3 handshake, 4-5 data, 6 zero window, 7 window update,
    8 data, 9 ACK, 10-12 close."""
    t = Talk()
    _window_shut(t)
    _reopen_and_close(t, 0.05)
    return t


# -- keepalive-timeout ------


@capture("rules/keepalive-timeout/probes-unanswered.pcap")
def keepalive_unanswered() -> Talk:
    """An idle connection whose peer vanished: the client sends keepalive probes (seq =
    snd_una - 1, no payload) 1 s apart (TCP_KEEPINTVL=1, TCP_KEEPCNT=3), none is answered, and
    Linux then sends a RST and reports ETIMEDOUT. Frames: 1-3 handshake, 4-7 request/response,
    8-10 probes, 11 RST|ACK from the client."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.wait(5.0)
    for _ in range(3):
        t.tcp("c", "A", seq=t.nxt["c"] - 1, dt=1.0, advance=False)
    t.tcp("c", "RA", dt=1.0)
    return t


@capture("rules/keepalive-timeout/probes-answered.pcap")
def keepalive_answered() -> Talk:
    """Keepalive probes answered by the server's ACK: a healthy idle connection.
    Frames: 1-3 handshake, 4-7 request/response, 8 probe, 9 ACK, 10 probe, 11 ACK."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.wait(5.0)
    for _ in range(2):
        t.tcp("c", "A", seq=t.nxt["c"] - 1, dt=1.0, advance=False)
        t.tcp("s", "A")
    return t


# -- udp-icmp-error ------


@capture("rules/udp-icmp-error/port-unreachable.pcap")
def udp_port_unreachable() -> Talk:
    """A DNS query to a host with nothing on port 53: the host answers ICMP port unreachable,
    and a connected UDP socket's next recv() fails with ECONNREFUSED. Frames: 1 query, 2 ICMP."""
    t = Talk(sport=53, cport=50000)
    dg = t.udp("c", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    t.icmp_error(dg, router=t.server, icmp_type=3, code=3)
    return t


@capture("rules/udp-icmp-error/host-unreachable.pcap")
def udp_host_unreachable() -> Talk:
    """ICMP host unreachable for a UDP datagram: not in the set Linux reports to UDP sockets
    (icmp_err_convert marks it not fatal), so the application only sees its own timeout.
    Frames: 1 datagram, 2 ICMP from the router."""
    t = Talk(sport=53, cport=50001)
    dg = t.udp("c", b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    t.icmp_error(dg, router=ROUTER4, icmp_type=3, code=1)
    return t


# -- rst-ignored ------

# rst-ignored reuses rules/rst-established/challenge-ack.pcap (positive) and
# rules/rst-established/reset-mid-connection.pcap (negative) through relative paths.


# -- healthy controls (tests/captures) ------


@capture("tests/captures/rst-after-close.pcap")
def rst_after_close() -> Talk:
    """Both sides close with FIN; a late segment from the client then draws a RST from the
    server, which has already gone (its socket closed, LAST_ACK finished). Nobody's
    application sees an error. Frames: 1-3 handshake, 4-7 request/response, 8 FIN (client),
    9 FIN (server), 10 ACK, 11 late ACK retransmission, 12 RST."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    t.tcp("c", "A", dt=0.5)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0)
    return t


@capture("tests/captures/port-reuse.pcap")
def port_reuse() -> Talk:
    """Two connections on the same 4-tuple: the first closes cleanly, the second (new ISN)
    is refused. Frames: 1-3 handshake, 4-7 request/response, 8-10 close, 11 SYN (new ISN),
    12 RST|ACK."""
    t = Talk()
    t.handshake()
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    t2 = Talk(cisn=900_000, t=t.t + 70.0, packets=t.packets)
    t2.tcp("c", "S")
    t2.tcp("s", "RA", seq=0, ack=t2.cisn + 1)
    return t2


@capture("tests/captures/ipv6-wraparound.pcap")
def ipv6_wraparound() -> Talk:
    """IPv6 connection whose client ISN sits 10 bytes before 2^32, so the sequence numbers
    wrap during the request; a healthy exchange and close. Frames: 1-3 handshake, 4-7
    request/response, 8-10 close."""
    t = Talk(client="fd00::1", server="fd00::2", cisn=2**32 - 10)
    t.handshake()
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


@capture("tests/captures/stale-ack-reuse.pcap")
def stale_ack_reuse() -> Talk:
    """The server still holds an older connection on the same ports and answers the SYN with
    a plain ACK for it; the client answers that with a RST (seq = that ACK, RFC 9293 3.10.7.3),
    which clears the stale state, and its SYN retransmitted 1 s later succeeds. A 1 s connect
    stall, not a failure: no errno. Frames: 1 SYN, 2 stale ACK, 3 RST, 4 SYN again, 5 SYN-ACK,
    6 ACK, 7-10 request/response, 11-13 close."""
    t = Talk()
    t.tcp("c", "S")
    t.tcp("s", "A", seq=777_000, ack=3_000_000)
    t.tcp("c", "R", seq=3_000_000, ack=0)
    t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.tcp("s", "SA")
    t.tcp("c", "A", options=[])
    _request_response(t)
    t.tcp("c", "FA")
    t.tcp("s", "FA")
    t.tcp("c", "A")
    return t


@capture("samples/demo.pcap")
def demo() -> Talk:
    """The README's sample: six flows from one client host interleaved in time, five of them
    failing in different ways. Ports tell them apart: 40001 refused (ECONNREFUSED), 40002
    healthy request/response and close, 40003 server closes and the client keeps writing
    (EPIPE), 40004 server resets right after the handshake (ECONNRESET), 40005 a firewall
    rejects the SYN with ICMP host prohibited (EHOSTUNREACH), and UDP 50000 -> 53 answered by
    port unreachable (ECONNREFUSED on a connected socket). Frame numbers in samples/README.md.
    Captured on the client's host, a Linux machine one router away from the servers: the
    client's packets carry TTL 64 and Linux's SYN options (mss,nop,nop,sackOK,nop,ws), the
    servers' arrive with TTL 63."""
    talks = []
    host = {"server_ttl": 63, "syn_options": LINUX_SYN}
    a = Talk(cport=40001, sport=8080, t=T0, **host)
    a.tcp("c", "S")
    a.tcp("s", "RA", seq=0, ack=a.cisn + 1)
    talks.append(a)
    b = Talk(cport=40002, t=T0 + 0.0105, **host)
    b.handshake()
    _request_response(b)
    b.tcp("s", "FA")
    b.tcp("c", "FA")
    b.tcp("s", "A")
    talks.append(b)
    c = Talk(cport=40003, cisn=70_000, sisn=90_000, t=T0 + 0.0203, **host)
    c.handshake()
    _request_response(c)
    c.tcp("s", "FA", dt=0.05)
    c.tcp("c", "A")
    c.tcp("c", "PA", b"GET /again HTTP/1.1\r\n\r\n", dt=0.2)
    c.tcp("s", "R", seq=c.acked["c"], ack=0)
    talks.append(c)
    d = Talk(cport=40004, sport=443, t=T0 + 0.0307, **host)
    d.handshake()
    d.tcp("s", "RA", dt=0.004)
    talks.append(d)
    e = Talk(cport=40005, server="10.0.7.7", sport=5432, t=T0 + 0.0402, **host)
    syn = e.tcp("c", "S")
    e.icmp_error(syn, router=ROUTER4, icmp_type=3, code=10)
    talks.append(e)
    u = Talk(cport=50000, sport=53, server="10.0.0.53", t=T0 + 0.0501, **host)
    dg = u.udp("c", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    u.icmp_error(dg, router=u.server, icmp_type=3, code=3)
    talks.append(u)
    return Talk.merged(talks)


def build_all(root: Path = ROOT) -> list[Path]:
    written = []
    for rel, fn in CAPTURES.items():
        path = root / rel
        fn().write(path)
        written.append(path)
    return written


# -- syn-unanswered-released ------


@capture("rules/syn-unanswered-released/flood.pcap.gz")
def syn_flood_released() -> Talk:
    """A SYN flood of spoofed sources: one more unanswered attempt than pcapdiag holds open
    (track/flows.py MAX_ATTEMPTS, 20,000), SYNs 10 us apart from 172.16.0.0/16, each from
    its own address and never sent again, to 10.0.9.20:80, which never answers; then 3 s of
    silence (a datagram of another flow marks the end). Frame 1 is the first SYN: its attempt
    is released when frame 20,001 arrives, 0.2 s later; frames 2 to 20,001 are still open
    when the capture ends. gzip-compressed (1.4 MB as pcap)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    t = Talk(client="10.0.9.99", server="10.0.9.20")
    for i in range(MAX_ATTEMPTS + 1):
        src = f"172.16.{i >> 8}.{i & 255}"
        syn = (
            Ether(src=CLIENT_MAC, dst=SERVER_MAC)
            / IP(src=src, dst=t.server, ttl=64, id=(i * 7919) & 0xFFFF)
            / TCP(sport=1024 + (i * 37) % 60000, dport=80, seq=(i * 2654435761) & 0xFFFFFFFF,
                  flags="S", window=64240)
        )  # fmt: skip
        syn.time = T0 + i * 10 / 1_000_000
        t.packets.append(syn)
    t.t = T0 + MAX_ATTEMPTS * 10 / 1_000_000
    t.wait(3.0)
    t.udp("c", b"end-marker")
    return t


@capture("rules/syn-unanswered-released/lone-syn.pcap")
def lone_syn_not_released() -> Talk:
    """One SYN to a silent address and 3 s of silence (a datagram of another flow marks the
    end): never released early, so syn-unanswered's (PD-TCP-013), not
    syn-unanswered-released's. Frame 1 is the SYN."""
    t = Talk(server="10.0.9.21")
    t.tcp("c", "S")
    t.wait(3.0)
    t.udp("c", b"end-marker")
    return t


# -- local-abort ------


def _client_abort(client_ttl: int, server_ttl: int, rst: str = "RA", ts: bool = False) -> Talk:
    """A request, its ACK, then the client's own RST: frames 1-3 handshake, 4 request, 5 the
    server's ACK, 6 the RST (flags `rst`). With `ts`, both SYNs offer timestamps and every
    segment but the RST carries them."""
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
    t = Talk(client_ttl=client_ttl, server_ttl=server_ttl, syn_options=opts if ts else None)
    t.tcp("c", "S")
    t.tcp("s", "SA")
    stamp = [("Timestamp", (2, 1))] if ts else []
    t.tcp("c", "A", options=stamp)
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\n\r\n", options=stamp)
    t.tcp("s", "A", options=stamp)
    t.tcp("c", rst, dt=2.0, ack=None if "A" in rst else 0)
    return t


@capture("rules/local-abort/client-abort.pcap")
def client_abort() -> Talk:
    """Captured on the client's host: its packets leave with TTL 64, the server's arrive with
    50. Two seconds after its request was acknowledged, the client sends RST|ACK itself.
    Frames: 1-3 handshake, 4 request, 5 ACK, 6 RST|ACK."""
    return _client_abort(64, 50)


@capture("rules/local-abort/client-abort-seen-by-server.pcap")
def client_abort_seen_by_server() -> Talk:
    """The same connection captured on the server's host: the client's RST arrives with 50,
    like its other packets; the server's leave with 64. Not the capturing host's abort.
    Frames: 1-3 handshake, 4 request, 5 ACK, 6 RST|ACK."""
    return _client_abort(50, 64)


@capture("rules/local-abort/reset-without-socket.pcap")
def reset_without_socket() -> Talk:
    """Captured on the client's host; the client's RST has no ACK flag: what Linux's
    tcp_v4_send_reset() sends for a segment that finds no socket. Frames: 1-3 handshake,
    4 request, 5 ACK, 6 RST."""
    return _client_abort(64, 50, rst="R")


@capture("rules/local-abort/reset-without-timestamps.pcap")
def reset_without_timestamps() -> Talk:
    """Captured on the client's host; both SYNs offered timestamps and the data carries
    them, the RST|ACK does not: made without the connection's socket. Frames: 1-3
    handshake, 4 request, 5 ACK, 6 RST|ACK."""
    return _client_abort(64, 50, ts=True)


# -- neighbour-unreachable ------

NEIGHBOUR_MAC = "02:00:00:00:00:63"


def _arp(t: Talk, psrc: str, pdst: str, *, dt: float, reply: bool = False, hwsrc: str = "") -> None:
    """One ARP frame (RFC 826): a broadcast request, or a reply from `psrc` to `pdst`."""
    from scapy.layers.l2 import ARP, Ether

    src = hwsrc or ("02:00:00:00:00:01" if not reply else NEIGHBOUR_MAC)
    dst = "02:00:00:00:00:01" if reply else "ff:ff:ff:ff:ff:ff"
    arp = ARP(
        op=2 if reply else 1,
        hwsrc=src,
        psrc=psrc,
        hwdst=dst if reply else "00:00:00:00:00:00",
        pdst=pdst,
    )
    t._emit(Ether(src=src, dst=dst) / arp, dt)


def _solicit(t: Talk, src: str, target: str, *, dt: float) -> None:
    """One NDP neighbour solicitation (RFC 4861 section 4.3) to the target's solicited-node
    multicast address, hop limit 255, with the sender's link-layer address option."""
    import ipaddress

    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import Ether

    low = ipaddress.IPv6Address(target).packed[-3:]
    group = ipaddress.IPv6Address(bytes.fromhex("ff02" + "00" * 9 + "01ff") + low)
    mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[-4:])
    ns = ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01")
    pkt = Ether(src="02:00:00:00:00:01", dst=mac) / IPv6(src=src, dst=str(group), hlim=255) / ns
    t._emit(pkt, dt)


@capture("rules/neighbour-unreachable/arp-unanswered.pcap")
def arp_unanswered() -> Talk:
    """connect() to 10.0.0.99 on the client's link, whose neighbour entry was stale: the SYN
    leaves once to the old address, then three ARP requests 1 s apart draw no reply, and
    Linux fails the connect() with EHOSTUNREACH 1 s after the third. Frames: 1 SYN, 2-4 ARP
    requests."""
    t = Talk(server="10.0.0.99", cport=40100, sport=8080)
    t.tcp("c", "S")
    _arp(t, t.client, t.server, dt=0.001)
    _arp(t, t.client, t.server, dt=1.0)
    _arp(t, t.client, t.server, dt=1.0)
    return t


@capture("rules/neighbour-unreachable/ndp-unanswered.pcap")
def ndp_unanswered() -> Talk:
    """connect() to fd00::99 on the client's link: the SYN waits in the neighbour queue
    (never captured), three neighbour solicitations 1 s apart go unanswered. Frames: 1-3
    solicitations."""
    t = Talk(client="fd00::1", server="fd00::99")
    for dt in (0.001, 1.0, 1.0):
        _solicit(t, t.client, t.server, dt=dt)
    return t


@capture("rules/neighbour-unreachable/gateway-unanswered.pcap")
def gateway_unanswered() -> Talk:
    """connect() to 192.0.2.10, off the client's link, through the gateway 10.0.0.254 whose
    entry was stale: the SYN leaves once, then three ARP requests for the gateway go
    unanswered. Frames: 1 SYN, 2-4 ARP requests for 10.0.0.254."""
    t = Talk(server="192.0.2.10", cport=40101, sport=443)
    t.tcp("c", "S")
    for dt in (0.001, 1.0, 1.0):
        _arp(t, t.client, "10.0.0.254", dt=dt)
    return t


@capture("rules/neighbour-unreachable/arp-answered.pcap")
def arp_answered() -> Talk:
    """The first request goes unanswered (the host was busy), the second draws a reply and
    the connection opens. Frames: 1-2 requests, 3 reply, 4-6 handshake."""
    t = Talk(server="10.0.0.99", cport=40102, sport=8080)
    _arp(t, t.client, t.server, dt=0.001)
    _arp(t, t.client, t.server, dt=1.0)
    _arp(t, t.server, t.client, dt=0.001, reply=True)
    t.handshake()
    return t


@capture("rules/neighbour-unreachable/gratuitous-arp.pcap")
def gratuitous_arp() -> Talk:
    """A host announcing its own address (sender = target, RFC 5227 section 2.3), three
    times 1 s apart: nobody asks for anything. Frames: 1-3 gratuitous requests."""
    t = Talk(client="10.0.0.7")
    for dt in (0.001, 1.0, 1.0):
        _arp(t, t.client, t.client, dt=dt)
    return t


@capture("rules/neighbour-unreachable/arp-probes.pcap")
def arp_probes() -> Talk:
    """Address conflict detection before a host takes 10.0.0.50 (RFC 5227 section 2.1.1):
    three probes from 0.0.0.0, 1 s apart; no reply means the address is free. Frames: 1-3
    probes."""
    t = Talk()
    for dt in (0.001, 1.0, 1.0):
        _arp(t, "0.0.0.0", "10.0.0.50", dt=dt)
    return t


@capture("rules/neighbour-unreachable/arp-sweep.pcap")
def arp_sweep() -> Talk:
    """A scanner on 10.0.0.1 asks for 10.0.0.100 to 10.0.0.119, three rounds 1 s apart, and
    sends nothing else: no address answers, and no connection waits on any. Frames: 1-60
    requests, 20 a round."""
    t = Talk()
    for rnd in range(3):
        for i in range(20):
            _arp(t, t.client, f"10.0.0.{100 + i}", dt=(1.0 if rnd and not i else 0.01))
    return t


@capture("rules/neighbour-unreachable/arp-answered-late.pcap")
def arp_answered_late() -> Talk:
    """Three requests 1 s apart, and the reply 0.5 s after the third, before Linux gives up
    (retrans_time_ms after the last request): the connection goes ahead. Frames: 1-3
    requests, 4 reply."""
    t = Talk(server="10.0.0.99")
    for dt in (0.001, 1.0, 1.0):
        _arp(t, t.client, t.server, dt=dt)
    _arp(t, t.server, t.client, dt=0.5, reply=True)
    return t


# -- accept-queue-overflow, keepalive-race, idle timeouts (rules-b) ------


def _overflowed(t: Talk) -> None:
    """Handshake and request, then what a Linux listener with a full accept queue
    (tcp_abort_on_overflow=0) does with them: it drops the ACK and the request, and its SYN-ACK
    timer sends the SYN-ACK again 1 s and 3 s after the first (each answered by the client's
    ACK, dropped too), while the client retransmits its request with backoff."""
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    req = t.nxt["c"] - 27
    for dt in (0.2, 0.4):
        t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=dt, seq=req)
    t.tcp("s", "SA", seq=t.sisn, ack=t.cisn + 1, dt=0.397)
    t.tcp("c", "A", dt=0.0001, options=[])
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.4, seq=req)
    t.tcp("s", "SA", seq=t.sisn, ack=t.cisn + 1, dt=1.6)
    t.tcp("c", "A", dt=0.0001, options=[])
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.0, seq=req)


@capture("rules/accept-queue-overflow/synack-after-request.pcap")
def synack_after_request() -> Talk:
    """Captured on the client's host (the server's packets arrive with TTL 63), after the
    backlog-overflow recording: the server's accept queue is full. Frames: 1-3 handshake,
    4 request, 5-6 request retransmitted, 7 SYN-ACK again (1 s), 8 the client's ACK,
    9 request again, 10 SYN-ACK again (3 s), 11 ACK, 12 request again; the capture ends."""
    t = Talk(server_ttl=63, sport=8080)
    _overflowed(t)
    return t


@capture("rules/accept-queue-overflow/request-expired-rst.pcap")
def request_expired_rst() -> Talk:
    """As synack-after-request, on a server with tcp_synack_retries=2: it drops the half-open
    connection 7 s after the SYN, and the client's next retransmission finds no socket, only
    the listener, which answers with a stateless RST (no ACK flag, seq = the segment's ACK;
    tcp_v4_send_reset). Frames: 1-12 as there, 13 request again (6.2 s), 14 request again
    (12.6 s), 15 RST."""
    t = Talk(server_ttl=63, sport=8080)
    _overflowed(t)
    req = t.nxt["c"] - 27
    for dt in (3.2, 6.4):
        t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=dt, seq=req)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.004)
    return t


@capture("rules/accept-queue-overflow/ack-lost-then-accepted.pcap")
def ack_lost_then_accepted() -> Talk:
    """Not an overflow, or one that drained: the client's ACK and request are lost, the
    server sends its SYN-ACK again after 1 s, the client's ACK completes the connection, its
    retransmitted request is acknowledged and answered. Frames: 1-3 handshake, 4 request,
    5 request again, 6 SYN-ACK again, 7 ACK, 8 request again, 9 server ACK, 10 response,
    11 ACK."""
    t = Talk(server_ttl=63, sport=8080)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    req = t.nxt["c"] - 27
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.2, seq=req)
    t.tcp("s", "SA", seq=t.sisn, ack=t.cisn + 1, dt=0.797)
    t.tcp("c", "A", dt=0.0001, options=[])
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.2, seq=req)
    t.tcp("s", "A", dt=0.004)
    t.tcp("s", "PA", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    t.tcp("c", "A")
    return t


@capture("rules/rst-after-handshake/abort-on-overflow.pcap")
def abort_on_overflow() -> Talk:
    """Captured on the client's host, after the backlog-abort recording: a Linux listener
    with a full accept queue and tcp_abort_on_overflow=1 answers the handshake's ACK with a
    RST made without a socket (no ACK flag, seq = the client's ACK; tcp_check_req ->
    tcp_v4_send_reset), which reaches the client after it sent its request. Frames: 1-3
    handshake, 4 request, 5 RST."""
    t = Talk(server_ttl=63, sport=8080)
    t.handshake()
    t.tcp("c", "PA", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.0007)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.0016)
    return t


def _idle_keepalive(t: Talk) -> None:
    """Handshake, one request and response (frames 1-7), then 5 s of silence: the length
    of Apache httpd's and Node.js's default keep-alive timeout."""
    t.handshake()
    _request_response(t)
    t.wait(5.0)


@capture("rules/keepalive-race/request-crosses-fin.pcap")
def request_crosses_fin() -> Talk:
    """A keep-alive race on the client's host (the server's packets arrive with TTL 63):
    the client sends its next request after 5 s idle at the moment the server closes; the
    server's FIN arrives after the request left and does not acknowledge it; the server's
    closed socket answers the request with a RST (no ACK flag, seq = the request's ACK,
    which is the FIN's own sequence number: accepted in CLOSE_WAIT, tcp_reset_check).
    Frames: 1-7 handshake and exchange, 8 request, 9 FIN, 10 RST."""
    t = Talk(server_ttl=63, sport=8080)
    _idle_keepalive(t)
    before = t.nxt["c"]
    t.tcp("c", "PA", b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.0)
    fin_seq = t.nxt["s"]
    t.tcp("s", "FA", ack=before, dt=0.0035)
    t.tcp("s", "R", seq=fin_seq, ack=0, dt=0.002)
    return t


@capture("rules/keepalive-race/fin-crosses-request.pcap")
def fin_crosses_request() -> Talk:
    """The same race on the server's host (the client's packets arrive with TTL 63): the
    server's FIN leaves after 5 s idle, the client's request arrives after it without
    acknowledging it (sent before the FIN reached the client), and the closed socket answers
    with a RST. Frames: 1-7 handshake and exchange, 8 FIN, 9 request, 10 RST."""
    t = Talk(client_ttl=63, sport=8080)
    _idle_keepalive(t)
    fin_seq = t.nxt["s"]
    t.tcp("s", "FA", dt=0.0)
    t.tcp("c", "PA", b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", ack=fin_seq, dt=0.0033)
    t.tcp("s", "R", seq=fin_seq, ack=0, dt=0.00003)
    return t


@capture("rules/keepalive-race/write-after-fin.pcap")
def write_after_fin() -> Talk:
    """No race: the server closes after 5 s idle, the client acknowledges the FIN and only
    then writes; the server's closed socket answers with a RST (rule write-after-peer-close).
    Frames: 1-7 handshake and exchange, 8 FIN, 9 ACK of the FIN, 10 data, 11 RST."""
    t = Talk(server_ttl=63, sport=8080)
    _idle_keepalive(t)
    t.tcp("s", "FA", dt=0.0)
    t.tcp("c", "A", dt=0.004)
    t.tcp("c", "PA", b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", dt=0.1)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.004)
    return t


@capture("rules/rst-established/idle-rst.pcap")
def idle_rst() -> Talk:
    """Captured on the client's host; the server is 14 routers away (TTL 50). After one
    exchange the connection is idle 400 s, past an AWS NLB's 350 s idle timeout; the
    client's next request meets at once a RST in the server's name sent two hops away
    (TTL 62): the load balancer had forgotten the flow. Frames: 1-7 handshake and exchange,
    8 request, 9 RST."""
    t = Talk(server_ttl=50)
    t.handshake()
    _request_response(t)
    t.tcp("c", "PA", b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n", dt=400.0)
    t.server_ttl = 62
    t.tcp("s", "R", seq=t.nxt["s"], ack=0, dt=0.002)
    return t


@capture("rules/data-timeout/idle-then-silence.pcap")
def idle_then_silence() -> Talk:
    """Captured on the client's host, after the conntrack-idle-drop recording: after one
    exchange the connection is idle 6 s while a router's conntrack (timeout shortened to
    3 s) forgets it; the client's next request is dropped and retransmitted into silence.
    Frames: 1-7 handshake and exchange, 8 request, 9-12 retransmissions (0.2 to 1.7 s)."""
    t = Talk(server_ttl=63)
    t.handshake()
    _request_response(t)
    data = b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
    seq = t.nxt["c"]
    t.tcp("c", "PA", data, dt=6.0)
    for dt in (0.2, 0.4, 0.8, 1.6):
        t.tcp("c", "PA", data, dt=dt, seq=seq)
    return t


if __name__ == "__main__":
    for p in build_all():
        print(p.relative_to(ROOT))
