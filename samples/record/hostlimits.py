"""Scenarios where a host's own limits shape the failure (issue 14): path MTU black holes,
listen backlogs, zero windows, SYN cookies, slow connects, neighbour resolution."""

from __future__ import annotations

from .scenarios import (
    CPORT,
    PORT,
    Scenario,
    addrs,
    client_done,
    connect,
    end_server,
    exchange,
    ipt,
    listener,
    suffix,
)
from .topo import CLIENT4, ROUTER_C4, SERVER4

# The router's server-facing link in pmtu-blackhole (the IPv6 minimum; client and server
# links stay at 1500, so full-size client segments are 1500 bytes).
PATH_MTU = 1280


def pmtu_blackhole(fam: int) -> Scenario:
    creq, sreq = exchange()
    if fam == 6:
        drop = ipt(
            6, "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "packet-too-big", "-j", "DROP"
        )
        icmp = "ICMPv6 packet too big"
    else:
        drop = ipt(
            4, "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"
        )
        icmp = "ICMP fragmentation needed"
    return Scenario(
        "pmtu-blackhole" + suffix(fam),
        f"The router's server-facing link has MTU {PATH_MTU} and the router drops the {icmp} "
        "it would send (OUTPUT DROP): a path MTU black hole. One 100-byte request/response "
        "passes; then the client (tcp_mtu_probing=0) sends 20000 bytes in one send(), its "
        "full-size segments are retransmitted and never acknowledged, and recv() fails at the "
        "retransmission timeout (tcp_retries2=3).",
        setup=[["cmd", "r", ["ip", "link", "set", "rs", "mtu", str(PATH_MTU)]], drop],
        client=connect(fam)
        + creq
        + [["send", "c", 20000], ["recv", "c"], ["close", "c"]]
        + client_done(),
        server=listener(fam, "a") + sreq + end_server() + [["close", "a"], ["close", "l"]],
        cause="network",
        # The default, stated so that truth.json lists it: no black hole detection.
        sysctls={"net.ipv4.tcp_mtu_probing": "0"},
        capture_limits={
            "server:a": "the server's socket never learns anything (no error while the "
            "scenario runs)",
        },
        timeout=40.0,
    )


def _backlog(name: str, description: str, sysctls: dict) -> Scenario:
    _, srv = addrs(4)
    socks = ["c1", "c2", "c3", "c4"]
    client: list = [["wait", "listening"]]
    for idx, sock in enumerate(socks):
        client += [["socket", sock, "tcp", 4, "client"], ["bind", sock, CLIENT4, CPORT + idx]]
    client += [
        # c1 completes and is queued: the accept queue (backlog 1) holds one more.
        ["connect", "c1", srv, PORT],
        ["send", "c1", 100],
        # c2's and c3's SYNs arrive together: both get a SYN-ACK, only c2's ACK finds room.
        ["connect_start", "c2", srv, PORT],
        ["connect_start", "c3", srv, PORT],
        ["await", ["c2", "c3"], 10],
        ["send", "c2", 100],
        ["send", "c3", 100],
        # The accept queue is full: c4's SYN finds no room.
        ["connect_start", "c4", srv, PORT],
        ["await", socks, 10],
        *[["close", sock] for sock in socks],
        *client_done(),
    ]
    server = [
        ["socket", "l", "tcp", 4, "listener"],
        ["opt", "l", "SO_REUSEADDR"],
        ["bind", "l", srv, PORT],
        # Backlog 1: the accept queue holds 2 (it is full when it holds more than the
        # backlog). Pending SYN_RECV requests are measured against the same backlog: a SYN
        # that finds more of them than the backlog is answered with a cookie
        # (tcp_syncookies=1) and leaves no request whose SYN-ACK could be retransmitted. With
        # backlog 1, c2 and c3 both get a real SYN-ACK; c1 takes one accept slot first.
        ["listen", "l", 1],
        ["signal", "listening"],
        *end_server(),
        # The client's FINs arrive before the listener closes (and resets what it queued).
        ["sleep", 0.5],
        ["close", "l"],
    ]
    app_timeout = {
        "reason": "the client application's own 10 s wait for a response (EAGAIN, as "
        "SO_RCVTIMEO); the server's kernel had acknowledged the request",
        "expect": {"errno": None},
    }
    return Scenario(
        name,
        description,
        client=client,
        server=server,
        sysctls=sysctls,
        cause="peer",
        timeout=40.0,
        capture_limits={"client:c1": app_timeout, "client:c2": app_timeout},
    )


def backlog_overflow() -> Scenario:
    return _backlog(
        "backlog-overflow",
        "The server listens with backlog 1 and never calls accept() "
        "(tcp_abort_on_overflow=0). The client connects c1 and sends a 100-byte request; then "
        "c2 and c3 connect at once (non-blocking) and send a request each: c2 is queued, c3's "
        "handshake ACK overflows the accept queue and is dropped (the server retransmits its "
        "SYN-ACK, the client its request); then c4 connects while the queue is full and its "
        "SYNs are ignored. The client waits up to 10 s for responses on all four sockets.",
        {},
    )


def backlog_abort() -> Scenario:
    return _backlog(
        "backlog-abort",
        "As backlog-overflow, but with net.ipv4.tcp_abort_on_overflow=1: the server answers "
        "the handshake ACK that overflows the accept queue (c3's) with a RST; c4's SYNs are "
        "still ignored.",
        {"net.ipv4.tcp_abort_on_overflow": "1"},
    )


# Small buffers: the windows fill after a few segments and the capture stays small.
ZW_BUF = 4096
ZW_BYTES = 100000


def _zw_listener(fam: int) -> list:
    _, srv = addrs(fam)
    return [
        ["socket", "l", "tcp", fam, "listener"],
        ["opt", "l", "SO_REUSEADDR"],
        ["opt", "l", "SO_RCVBUF", ZW_BUF],
        ["bind", "l", srv, PORT],
        ["listen", "l"],
        ["signal", "listening"],
        ["accept", "l", "a"],
    ]


def zero_window_stall() -> Scenario:
    return Scenario(
        "zero-window-stall",
        f"The server (SO_RCVBUF {ZW_BUF}) accepts and does not read for 4 s while the client "
        f"(SO_SNDBUF {ZW_BUF}) writes {ZW_BYTES} bytes: the server's window closes and the "
        "client sends zero-window probes, which are answered. Then the server reads "
        "everything, responds with 100 bytes and closes; the client reads the response and "
        "EOF and closes. No errors.",
        client=[
            *connect(4, opts=[["SO_SNDBUF", ZW_BUF]]),
            ["sendall", "c", ZW_BYTES, 4096],
            ["recvall", "c", 100],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *_zw_listener(4),
            ["sleep", 4],
            ["recvall", "a", ZW_BYTES],
            ["send", "a", 100],
            ["close", "a"],
            ["close", "l"],
        ],
        capture_limits={
            "client:c": "that the application was blocked in send() is not on the wire",
        },
    )


def zero_window_user_timeout() -> Scenario:
    return Scenario(
        "zero-window-user-timeout",
        "As zero-window-stall, but the client sets TCP_USER_TIMEOUT=2000 ms and the server "
        "does not read until the client's call has failed: the zero-window probes are "
        "answered, yet the client's blocked send() fails when the window has stayed closed for "
        "the user timeout; the client closes. Then the server reads what it had buffered "
        "(recv() until EOF or an error, SO_RCVTIMEO 3 s).",
        client=[
            *connect(4, opts=[["SO_SNDBUF", ZW_BUF], ["TCP_USER_TIMEOUT", 2000]]),
            ["sendall", "c", ZW_BYTES, 4096],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *_zw_listener(4),
            *end_server(),
            ["sleep", 0.2],
            ["opt", "a", "SO_RCVTIMEO", 3],
            ["drain", "a"],
            ["close", "a"],
            ["close", "l"],
        ],
        cause="peer",
        capture_limits={
            "client:c": "TCP_USER_TIMEOUT is a socket option; the capture shows when the "
            "probes stop but not why",
        },
    )


def syncookies(ts_offsets: bool = True) -> Scenario:
    client: list = [["wait", "listening"]]
    server: list = listener(4)
    # Connection 2 has a small receive buffer (another window scale), connection 3 is opened
    # with tcp_ecn=1 and tcp_sack=0 (set by the control program): three option sets.
    opts = {1: [], 2: [["SO_RCVBUF", ZW_BUF]], 3: []}
    for i in (1, 2, 3):
        c, a = f"c{i}", f"a{i}"
        if i == 3:
            client += [["signal", "two-done"], ["wait", "ecn-on"]]
        client += connect(4, c, CPORT + i - 1, opts=opts[i], wait=False)
        client += [["send", c, 100], ["recvall", c, 100], ["recv", c], ["close", c]]
        server += [["accept", "l", a], ["recvall", a, 100], ["send", a, 100], ["close", a]]
    server += [["close", "l"]]
    sysctls = {"net.ipv4.tcp_syncookies": "2"}
    if ts_offsets:
        name, ts = "syncookies", ""
    else:
        # tcp_timestamps=2: timestamps without the random per-connection offset, so the
        # SYN-ACK's TSval shows the client's options that the cookie encodes in its low 6 bits.
        name, ts = (
            "syncookies-ts-nooffset",
            " and net.ipv4.tcp_timestamps=2 (no random TSval offset)",
        )
        sysctls["net.ipv4.tcp_timestamps"] = "2"
    return Scenario(
        name,
        f"The hosts have net.ipv4.tcp_syncookies=2 (always answer a SYN with a cookie){ts}. "
        "Three healthy connections (request/response, the server closes first): the first "
        f"with default options, the second with SO_RCVBUF {ZW_BUF} (window scale 0), the third "
        "after the client namespace switched to tcp_ecn=1 and tcp_sack=0. No errors.",
        sysctls=sysctls,
        client=client + client_done(),
        server=server,
        control=[
            ["wait", "two-done"],
            ["cmd", "c", ["sysctl", "-qw", "net.ipv4.tcp_ecn=1"]],
            ["cmd", "c", ["sysctl", "-qw", "net.ipv4.tcp_sack=0"]],
            ["signal", "ecn-on"],
        ],
    )


def slow_connect() -> Scenario:
    syn = ["FORWARD", "-p", "tcp", "--syn", "--dport", str(PORT), "-j", "DROP"]
    creq, sreq = exchange()
    return Scenario(
        "slow-connect",
        "The router drops the client's first SYN (iptables DROP, removed 0.5 s after the "
        "client starts connecting): the SYN is retransmitted after 1 s and connect() "
        "succeeds. One request/response; the server closes first. No errors.",
        setup=[ipt(4, "-A", *syn)],
        control=[["wait", "connecting"], ["sleep", 0.5], ipt(4, "-D", *syn)],
        client=[
            ["wait", "listening"],
            ["signal", "connecting"],
            *connect(4, wait=False),
            *creq,
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=listener(4, "a") + sreq + [["close", "a"], ["close", "l"]],
    )


def neighbour_unreachable(fam: int) -> Scenario:
    dest = "fd91:1::99" if fam == 6 else "10.91.1.99"
    what = "NDP neighbour solicitations" if fam == 6 else "ARP requests"
    return Scenario(
        "neighbour-unreachable" + suffix(fam),
        f"connect() to {dest}, an address on the client's own link where no host exists: "
        f"the client's {what} go unanswered.",
        client=[*connect(fam, dest=dest, wait=False), ["close", "c"], *client_done()],
        cause="peer",
        capture_limits={"server": "the server host is not involved; server.pcap is empty"},
    )


def gateway_unreachable() -> Scenario:
    gateway = ROUTER_C4.rsplit(".", 1)[0] + ".254"
    return Scenario(
        "gateway-unreachable",
        f"The client's route to the server goes via {gateway}, an on-link gateway address "
        f"where no host exists (ip route replace {SERVER4}/32 via {gateway}): the client's ARP "
        "requests for the gateway go unanswered; the server listens but sees nothing.",
        setup=[["cmd", "c", ["ip", "route", "replace", SERVER4 + "/32", "via", gateway]]],
        client=[*connect(4), ["close", "c"], *client_done()],
        server=listener(4) + end_server() + [["close", "l"]],
        cause="network",
    )


def scenarios() -> list[Scenario]:
    return [
        pmtu_blackhole(4),
        pmtu_blackhole(6),
        backlog_overflow(),
        backlog_abort(),
        zero_window_stall(),
        zero_window_user_timeout(),
        syncookies(),
        syncookies(ts_offsets=False),
        slow_connect(),
        neighbour_unreachable(4),
        neighbour_unreachable(6),
        gateway_unreachable(),
    ]
