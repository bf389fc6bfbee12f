"""Scenario definitions: the socket programs of both hosts, router setup and control steps.

Steps are ``[op, args...]`` lists interpreted by :mod:`record.agent` (client / server programs)
or by :mod:`record.runner` (``control``: wait / signal / sleep / cmd / kill).
Synchronisation uses named events (files in a per-scenario directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .topo import CLIENT4, CLIENT6, ROUTE_DESTS, ROUTER_C4, SERVER4, SERVER6

PORT = 8080
CPORT = 40001


@dataclass
class Scenario:
    name: str
    description: str
    client: list
    server: list | None = None
    control: list = field(default_factory=list)
    setup: list = field(default_factory=list)
    capture_limits: dict = field(default_factory=dict)
    timeout: float = 30.0
    # Extra per-namespace sysctls for the client and server namespaces.
    sysctls: dict = field(default_factory=dict)
    # Who caused the failure, when the ORIGINS table (by name) does not say it.
    cause: str | None = None
    # Per host, when the two hosts' sockets see the failure from opposite ends: a socket the
    # client's host aborts itself is `local` to the client and `peer` to the server.
    cause_by_host: dict = field(default_factory=dict)

    @property
    def origin(self) -> str | None:
        """Who caused the failure this scenario records, from the failing socket's point of
        view: `peer` (the other endpoint's host: its kernel or application), `local` (the
        failing socket's own host), `network` (the router between them: a REJECT, a route, a
        DROP, a conntrack table, an injector); None for a healthy scenario."""
        if self.cause is not None:
            return self.cause
        base = self.name.removesuffix("-v6")
        for prefix, actor in ORIGINS:
            if base == prefix or base.startswith(prefix + "-"):
                return actor
        return None


# Who causes each scenario's failure (Scenario.origin), by name (the -v6 twins alike).
ORIGINS = (
    ("refused", "peer"),  # the server's kernel: no listener
    ("epipe", "peer"),
    ("close-unread", "peer"),
    ("linger0-close", "peer"),
    ("rst-before-accept", "peer"),  # the client resets: the server's socket fails
    ("server-killed", "peer"),
    ("peer-lost-state", "peer"),
    ("udp-closed", "peer"),  # port unreachable from the server host itself
    ("listener-closed-queued", "peer"),
    ("shutdown-then-rst", "peer"),
    ("reject", "network"),  # iptables REJECT on the router
    ("route", "network"),  # unreachable/prohibit/blackhole/no route on the router
    ("syn-timeout", "network"),  # the router drops
    ("data-timeout", "network"),
    ("ttl-exceeded", "network"),
    ("keepalive-timeout", "network"),
    ("user-timeout", "network"),
    ("udp-host-unreachable", "network"),
    ("udp-admin-prohibited", "network"),
    ("close-then-timeout", "network"),
    ("shutdown-then-timeout", "network"),
)


def addrs(fam: int) -> tuple[str, str]:
    return (CLIENT6, SERVER6) if fam == 6 else (CLIENT4, SERVER4)


def suffix(fam: int) -> str:
    return "-v6" if fam == 6 else ""


def ipt(fam: int, *args: str) -> list:
    return ["cmd", "r", ["ip6tables" if fam == 6 else "iptables", *args]]


def listener(fam: int, *accepts: str) -> list:
    _, srv = addrs(fam)
    steps = [
        ["socket", "l", "tcp", fam, "listener"],
        ["opt", "l", "SO_REUSEADDR"],
        ["bind", "l", srv, PORT],
        ["listen", "l"],
        ["signal", "listening"],
    ]
    steps += [["accept", "l", name] for name in accepts]
    return steps


def connect(
    fam: int,
    name: str = "c",
    port: int = CPORT,
    dest: str | None = None,
    opts: list | None = None,
    wait: bool = True,
) -> list:
    cli, srv = addrs(fam)
    steps = [["wait", "listening"]] if wait else []
    steps += [["socket", name, "tcp", fam, "client"]]
    steps += [["opt", name, *o] for o in (opts or [])]
    steps += [["bind", name, cli, port], ["connect", name, dest or srv, PORT]]
    return steps


def exchange(client: str = "c", server: str = "a") -> tuple[list, list]:
    """Request 100 bytes, response 100 bytes."""
    return (
        [["send", client, 100], ["recvall", client, 100]],
        [["recvall", server, 100], ["send", server, 100]],
    )


def drop_both(fam: int, action: str = "-I") -> list:
    cli, srv = addrs(fam)
    return [
        ipt(fam, action, "FORWARD", "-p", "tcp", "-s", cli, "-d", srv, "-j", "DROP"),
        ipt(fam, action, "FORWARD", "-p", "tcp", "-s", srv, "-d", cli, "-j", "DROP"),
    ]


def end_server() -> list:
    return [["wait", "client-done", 60]]


def client_done() -> list:
    return [["signal", "client-done"]]


# ---------------------------------------------------------------------------------------------
def orderly_close(fam: int) -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "orderly-close" + suffix(fam),
        "Request/response, the server closes first (FIN), the client reads EOF and closes. "
        "No errors.",
        client=connect(fam) + creq + [["recv", "c"], ["close", "c"]] + client_done(),
        server=listener(fam, "a") + sreq + [["close", "a"], ["close", "l"]],
    )


def half_close() -> Scenario:
    return Scenario(
        "half-close",
        "The client sends a request and shutdown(SHUT_WR); the server reads EOF, still sends a "
        "300-byte response and closes; the client reads it and then EOF. No errors.",
        client=[
            *connect(4),
            ["send", "c", 100],
            ["shutdown", "c", "SHUT_WR"],
            ["recvall", "c", 300],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *listener(4, "a"),
            ["recvall", "a", 100],
            ["recv", "a"],
            ["send", "a", 300],
            ["close", "a"],
            ["close", "l"],
        ],
    )


def lossy_transfer() -> Scenario:
    cli, srv = addrs(4)
    return Scenario(
        "lossy-transfer",
        "The client uploads 6000 bytes while the router drops 30% of the client's data "
        "segments (iptables statistic); TCP retransmits and the transfer completes. No errors.",
        setup=[
            ipt(
                4,
                "-A",
                "FORWARD",
                "-p",
                "tcp",
                "-s",
                cli,
                "-d",
                srv,
                "-m",
                "length",
                "--length",
                "200:65535",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.3",
                "-j",
                "DROP",
            )
        ],
        client=[
            *connect(4),
            ["sendall", "c", 6000, 1000],
            ["recvall", "c", 100],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *listener(4, "a"),
            ["recvall", "a", 6000],
            ["send", "a", 100],
            ["close", "a"],
            ["close", "l"],
        ],
    )


def keepalive_answered() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "keepalive-answered",
        "The client enables keepalive (idle 1 s, interval 1 s, 3 probes), stays idle for 3.5 s "
        "(probes are answered), then makes a second request. No errors.",
        client=connect(4, opts=[["SO_KEEPALIVE", [1, 1, 3]]])
        + creq
        + [["sleep", 3.5]]
        + creq
        + [["close", "c"]]
        + client_done(),
        server=listener(4, "a") + sreq + sreq + [["recv", "a"], ["close", "a"], ["close", "l"]],
        capture_limits={
            "client:c": "keepalive idle/interval/count are socket options; only the "
            "probe timing on the wire hints at them"
        },
    )


def refused(fam: int) -> Scenario:
    return Scenario(
        "refused" + suffix(fam),
        "connect() to a port without a listener on the server host: SYN answered by RST.",
        client=[*connect(fam, wait=False), ["close", "c"], *client_done()],
    )


REJECT4 = [
    "icmp-port-unreachable",
    "icmp-host-unreachable",
    "icmp-net-unreachable",
    "icmp-proto-unreachable",
    "icmp-host-prohibited",
    "icmp-net-prohibited",
    "icmp-admin-prohibited",
]
REJECT6 = [
    "icmp6-no-route",
    "icmp6-adm-prohibited",
    "icmp6-addr-unreachable",
    "icmp6-port-unreachable",
    "icmp6-policy-fail",
    "icmp6-reject-route",
]


def reject(fam: int, code: str) -> Scenario:
    short = code.split("-", 1)[1]
    return Scenario(
        f"reject-{short}" + suffix(fam),
        f"The router rejects the SYN with `{'ip6tables' if fam == 6 else 'iptables'} -j REJECT "
        f"--reject-with {code}`; connect() fails at the first ICMP error (the server listens "
        "but never sees the SYN).",
        setup=[
            ipt(
                fam,
                "-A",
                "FORWARD",
                "-p",
                "tcp",
                "--dport",
                str(PORT),
                "-j",
                "REJECT",
                "--reject-with",
                code,
            )
        ],
        client=[*connect(fam), ["close", "c"], *client_done()],
        server=listener(fam) + end_server() + [["close", "l"]],
    )


def route(fam: int, rtype: str) -> Scenario:
    dest = ROUTE_DESTS[rtype][1 if fam == 6 else 0]
    what = {
        "unreachable": "an `unreachable` route",
        "prohibit": "a `prohibit` route",
        "blackhole": "a `blackhole` route (silent discard)",
        "noroute": "no route at all",
    }[rtype]
    return Scenario(
        f"route-{rtype}" + suffix(fam),
        f"connect() to {dest}, for which the router has {what}.",
        client=[*connect(fam, dest=dest, wait=False), ["close", "c"], *client_done()],
        capture_limits={"server": "the server host is not involved; server.pcap is empty"},
    )


def syn_timeout(fam: int, linear: int = 4) -> Scenario:
    return Scenario(
        "syn-timeout" + suffix(fam) + ("" if linear == 4 else "-linear0"),
        "The router silently drops SYNs to the server port (iptables DROP); connect() times "
        f"out (tcp_syn_retries=2, tcp_syn_linear_timeouts={linear}).",
        sysctls={} if linear == 4 else {"net.ipv4.tcp_syn_linear_timeouts": str(linear)},
        setup=[ipt(fam, "-A", "FORWARD", "-p", "tcp", "--syn", "--dport", str(PORT), "-j", "DROP")],
        client=[*connect(fam), ["close", "c"], *client_done()],
        server=listener(fam) + end_server() + [["close", "l"]],
    )


def _mid_connection(
    fam: int,
    name: str,
    description: str,
    rules: list,
    client_tail: list,
    opts: list | None = None,
    limits: dict | None = None,
) -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        name + suffix(fam),
        description,
        client=connect(fam, opts=opts)
        + creq
        + [["signal", "established"], ["wait", "blocked"]]
        + client_tail
        + [["close", "c"]]
        + client_done(),
        server=listener(fam, "a") + sreq + end_server() + [["close", "a"], ["close", "l"]],
        control=[["wait", "established"], *rules, ["signal", "blocked"]],
        capture_limits=limits or {},
    )


def data_timeout(fam: int) -> Scenario:
    return _mid_connection(
        fam,
        "data-timeout",
        "After one request/response the router drops all TCP between client and server; the "
        "client sends a second request (buffered) and blocks in recv() until the "
        "retransmission timeout (tcp_retries2=3).",
        drop_both(fam),
        [["send", "c", 100], ["recv", "c"]],
        limits={
            "server:a": "the server's socket never learns anything (no error while the "
            "scenario runs)"
        },
    )


def data_timeout_icmp(fam: int) -> Scenario:
    cli, srv = addrs(fam)
    code = "icmp6-addr-unreachable" if fam == 6 else "icmp-host-unreachable"
    return _mid_connection(
        fam,
        "data-timeout-icmp",
        f"As data-timeout, but the router answers every client segment with REJECT "
        f"--reject-with {code} (soft error): recv() fails at the retransmission timeout with "
        "the ICMP-derived errno.",
        [
            ipt(
                fam,
                "-I",
                "FORWARD",
                "-p",
                "tcp",
                "-s",
                cli,
                "-d",
                srv,
                "-j",
                "REJECT",
                "--reject-with",
                code,
            ),
            ipt(fam, "-I", "FORWARD", "-p", "tcp", "-s", srv, "-d", cli, "-j", "DROP"),
        ],
        [["send", "c", 100], ["recv", "c"]],
    )


def data_timeout_send() -> Scenario:
    sc = _mid_connection(
        4,
        "data-timeout-send",
        "As data-timeout, but the client (SO_SNDBUF 4096, route initcwnd 2 to keep the capture "
        "small) keeps writing 1000-byte chunks after the router starts dropping: the send "
        "buffer fills, send() blocks and fails when the retransmission timeout "
        "(tcp_retries2=3) expires.",
        drop_both(4),
        [["sendall", "c", 200000, 1000]],
        opts=[["SO_SNDBUF", 4096]],
        limits={
            "client:c": {
                "reason": "SO_SNDBUF is a socket option; the capture shows only the "
                "unacknowledged flight, not that the writer was blocked in send()",
                # pcapdiag names recv() first and lists send() with the same errno.
                "expect": {"call": "recv", "errno": "ETIMEDOUT"},
            }
        },
    )
    sc.setup = [
        ["cmd", "c", ["ip", "route", "change", "default", "via", ROUTER_C4, "initcwnd", "2"]]
    ]
    return sc


def ttl_exceeded(fam: int) -> Scenario:
    opt = "IPV6_UNICAST_HOPS" if fam == 6 else "IP_TTL"
    return Scenario(
        "ttl-exceeded" + suffix(fam),
        f"The client sets {opt}=1, so the router answers the SYN with ICMP time exceeded; "
        "connect() fails at once.",
        client=[*connect(fam, opts=[["TTL", 1]]), ["close", "c"], *client_done()],
        server=listener(fam) + end_server() + [["close", "l"]],
    )


def keepalive_timeout() -> Scenario:
    return _mid_connection(
        4,
        "keepalive-timeout",
        "The client enables keepalive (idle 1 s, interval 1 s, 3 probes); after one "
        "request/response the router drops all TCP; the idle client blocks in recv() until "
        "keepalive gives up (the client kernel then sends a RST).",
        drop_both(4),
        [["recv", "c"]],
        opts=[["SO_KEEPALIVE", [1, 1, 3]]],
        limits={"client:c": "keepalive parameters are socket options, not visible on the wire"},
    )


def user_timeout() -> Scenario:
    return _mid_connection(
        4,
        "user-timeout",
        "The client sets TCP_USER_TIMEOUT=1500 ms; after one request/response the router drops "
        "all TCP; the client sends a second request and recv() fails when the user timeout "
        "expires (before tcp_retries2 would).",
        drop_both(4),
        [["send", "c", 100], ["recv", "c"]],
        opts=[["TCP_USER_TIMEOUT", 1500]],
        limits={
            "client:c": "TCP_USER_TIMEOUT is a socket option; the capture shows when the "
            "retransmissions stop but not why"
        },
    )


def linger0_close() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "linger0-close",
        "After one request/response the client sets SO_LINGER {on, 0} and closes: RST instead "
        "of FIN. The server's next recv() fails, then send().",
        client=connect(4)
        + creq
        + [["opt", "c", "SO_LINGER", 0], ["close", "c"], ["signal", "closed"]]
        + client_done(),
        server=listener(4, "a")
        + sreq
        + [
            ["wait", "closed"],
            ["sleep", 0.1],
            ["recv", "a"],
            ["send", "a", 100],
            ["close", "a"],
            ["close", "l"],
        ],
    )


def close_unread() -> Scenario:
    return Scenario(
        "close-unread",
        "The server sends a 200-byte response that the client never reads; the client closes "
        "with unread data, so its kernel sends RST. The server's next recv() and send() fail.",
        client=[
            *connect(4),
            ["send", "c", 100],
            ["sleep", 0.2],
            ["close", "c"],
            ["signal", "closed"],
            *client_done(),
        ],
        server=[
            *listener(4, "a"),
            ["recvall", "a", 100],
            ["send", "a", 200],
            ["wait", "closed"],
            ["sleep", 0.1],
            ["recv", "a"],
            ["send", "a", 100],
            ["close", "a"],
            ["close", "l"],
        ],
    )


def epipe(fam: int) -> Scenario:
    return Scenario(
        "epipe" + suffix(fam),
        "The server reads the request and closes (FIN); the client keeps writing: the first "
        "send() succeeds and draws a RST, the second fails; recv() then returns EOF.",
        client=[
            *connect(fam),
            ["send", "c", 100],
            ["wait", "server-closed"],
            ["sleep", 0.1],
            ["send", "c", 100],
            ["sleep", 0.1],
            ["send", "c", 100],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *listener(fam, "a"),
            ["recvall", "a", 100],
            ["close", "a"],
            ["signal", "server-closed"],
            *end_server(),
            ["close", "l"],
        ],
    )


def rst_before_accept() -> Scenario:
    return Scenario(
        "rst-before-accept",
        "The client connects and immediately closes with SO_LINGER 0 (RST) before the server "
        "calls accept(); accept() succeeds, the first recv() fails, the second returns EOF.",
        client=[
            *connect(4),
            ["opt", "c", "SO_LINGER", 0],
            ["close", "c"],
            ["signal", "client-closed"],
            *client_done(),
        ],
        server=[
            *listener(4),
            ["wait", "client-closed"],
            ["sleep", 0.1],
            ["accept", "l", "a"],
            ["recv", "a"],
            ["recv", "a"],
            ["close", "a"],
            ["close", "l"],
        ],
        capture_limits={"server:a": "when accept() was called is not on the wire"},
    )


def server_killed() -> Scenario:
    return Scenario(
        "server-killed",
        "The server process reads the request and is SIGKILLed before responding (nothing "
        "unread): its kernel closes with FIN and the waiting client's recv() returns EOF.",
        client=[*connect(4), ["send", "c", 100], ["recv", "c"], ["close", "c"], *client_done()],
        server=[*listener(4, "a"), ["recvall", "a", 100], ["signal", "got-request"], ["sleep", 60]],
        control=[["wait", "got-request"], ["sleep", 0.2], ["kill", "server"]],
        capture_limits={
            "client:c": "EOF after a request looks like an orderly close; that the "
            "server process died is not on the wire"
        },
    )


def server_killed_unread() -> Scenario:
    return Scenario(
        "server-killed-unread",
        "The server process accepts but never reads the request and is SIGKILLed: its kernel "
        "sends RST (unread data) and the waiting client's recv() fails.",
        client=[
            *connect(4),
            ["send", "c", 100],
            ["signal", "sent"],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[*listener(4, "a"), ["signal", "accepted"], ["sleep", 60]],
        control=[["wait", "accepted"], ["wait", "sent"], ["sleep", 0.2], ["kill", "server"]],
    )


def peer_lost_state() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "peer-lost-state",
        "After one request/response the router drops all TCP and the server process (SO_LINGER "
        "0) is SIGKILLed: its RST is dropped, so the server host has no state for the "
        "connection. The router then passes traffic again; the client's next request draws a "
        "RST from the server kernel and the client's recv() fails.",
        client=connect(4)
        + creq
        + [
            ["signal", "established"],
            ["wait", "restored"],
            ["send", "c", 100],
            ["recv", "c"],
            ["close", "c"],
        ]
        + client_done(),
        server=listener(4, "a")
        + sreq
        + [["opt", "a", "SO_LINGER", 0], ["signal", "ready"], ["sleep", 60]],
        control=[
            ["wait", "established"],
            ["wait", "ready"],
            *drop_both(4),
            ["kill", "server"],
            ["sleep", 0.3],
            *drop_both(4, "-D"),
            ["signal", "restored"],
        ],
        capture_limits={
            "server:a": "server.pcap shows the server's RST; it was dropped by the "
            "router and never reached the client"
        },
    )


def listener_closed_queued() -> Scenario:
    return Scenario(
        "listener-closed-queued",
        "The server listens (backlog 8) and never calls accept(); the client connects, sends "
        "a 100-byte request and closes; the server's kernel acknowledges the request and the "
        "FIN of the queued connection (the client's orphaned socket is in FIN_WAIT_2), then "
        "the server closes its listening socket and its kernel resets the queued connection "
        "(RST). The client's close() had returned ok: no call of the client fails.",
        client=[
            *connect(4),
            ["send", "c", 100],
            ["close", "c"],
            ["signal", "client-closed"],
            ["wait", "listener-closed"],
            *client_done(),
        ],
        server=[
            *listener(4),
            ["wait", "client-closed"],
            ["sleep", 0.2],
            ["close", "l"],
            ["signal", "listener-closed"],
        ],
    )


def shutdown_then_rst() -> Scenario:
    return Scenario(
        "shutdown-then-rst",
        "The client sends a 100-byte request, calls shutdown(SHUT_WR) (FIN) and keeps "
        "reading; the server accepts, never reads the request and closes with it unread, so "
        "its kernel sends RST after acknowledging the client's FIN (client in FIN_WAIT_2). "
        "The client's blocked recv() fails, the next returns EOF.",
        client=[
            *connect(4),
            ["send", "c", 100],
            ["shutdown", "c", "SHUT_WR"],
            ["signal", "client-shut"],
            ["recv", "c"],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=[
            *listener(4, "a"),
            ["wait", "client-shut"],
            ["sleep", 0.2],
            ["close", "a"],
            ["close", "l"],
        ],
        capture_limits={
            "client:c": {
                "reason": "whether the application closed or only shut down writing is not "
                "on the wire",
                "expect": {"errno": None},
            }
        },
    )


def close_then_timeout() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "close-then-timeout",
        "After one request/response the router drops all TCP and the client closes (FIN, "
        "FIN_WAIT_1); the orphaned socket retransmits its FIN into silence and its kernel "
        "gives up on its own (tcp_orphan_retries=3), telling nobody. The client's close() had "
        "returned: no call of the client fails.",
        sysctls={"net.ipv4.tcp_orphan_retries": "3"},
        client=connect(4)
        + creq
        + [["signal", "established"], ["wait", "blocked"], ["close", "c"], ["sleep", 4.5]]
        + client_done(),
        server=listener(4, "a") + sreq + end_server() + [["close", "a"], ["close", "l"]],
        control=[["wait", "established"], *drop_both(4), ["signal", "blocked"]],
        capture_limits={
            "server:a": "the server's socket never learns anything (no error while the "
            "scenario runs)"
        },
    )


def shutdown_then_timeout() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "shutdown-then-timeout",
        "After one request/response the router drops all TCP; the client calls "
        "shutdown(SHUT_WR) (FIN, FIN_WAIT_1) and blocks in recv() while its FIN is "
        "retransmitted into silence; recv() fails at the retransmission timeout "
        "(tcp_retries2=3).",
        client=connect(4)
        + creq
        + [
            ["signal", "established"],
            ["wait", "blocked"],
            ["shutdown", "c", "SHUT_WR"],
            ["recv", "c"],
            ["close", "c"],
        ]
        + client_done(),
        server=listener(4, "a") + sreq + end_server() + [["close", "a"], ["close", "l"]],
        control=[["wait", "established"], *drop_both(4), ["signal", "blocked"]],
        capture_limits={
            "client:c": {
                "reason": "whether the application closed or only shut down writing is not "
                "on the wire",
                "expect": {"errno": None},
            },
            "server:a": "the server's socket never learns anything (no error while the "
            "scenario runs)",
        },
    )


def udp(
    fam: int, name: str, description: str, setup: list | None = None, limits: dict | None = None
) -> Scenario:
    cli, srv = addrs(fam)
    return Scenario(
        name + suffix(fam),
        description,
        setup=setup or [],
        capture_limits=limits or {},
        client=[
            ["socket", "c", "udp", fam, "client"],
            ["bind", "c", cli, CPORT],
            ["connect", "c", srv, 9999],
            ["opt", "c", "SO_RCVTIMEO", 2],
            ["send", "c", 100],
            ["recv", "c"],
            ["send", "c", 100],
            ["close", "c"],
            *client_done(),
        ],
    )


def udp_closed(fam: int) -> Scenario:
    return udp(
        fam,
        "udp-closed",
        "Connected UDP socket sends to a port without a socket on the server host "
        "(ICMP port unreachable); the next call fails.",
    )


def udp_host_unreachable() -> Scenario:
    return udp(
        4,
        "udp-host-unreachable",
        "Connected UDP socket; the router answers with ICMP host unreachable (a non-fatal "
        "code): the socket ignores it and recv() only hits its own SO_RCVTIMEO (2 s).",
        setup=[
            ipt(
                4,
                "-A",
                "FORWARD",
                "-p",
                "udp",
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-host-unreachable",
            )
        ],
        limits={
            "client:c": {
                "reason": "EAGAIN is the socket's own SO_RCVTIMEO (an application setting); "
                "the ICMP host unreachable is a non-fatal code that a connected UDP socket "
                "without IP_RECVERR ignores, so no network error reaches the application",
                "expect": {"errno": None},
            }
        },
    )


def udp_admin_prohibited() -> Scenario:
    return udp(
        4,
        "udp-admin-prohibited",
        "Connected UDP socket; the router answers with ICMP admin prohibited (a fatal "
        "code): the next call fails.",
        setup=[
            ipt(
                4,
                "-A",
                "FORWARD",
                "-p",
                "udp",
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-admin-prohibited",
            )
        ],
    )


def port_reuse() -> Scenario:
    c1 = connect(4, "c1", opts=[["SO_REUSEADDR"]])
    c2 = connect(4, "c2", opts=[["SO_REUSEADDR"]], wait=False)
    return Scenario(
        "port-reuse",
        "Two connections with the same 4-tuple: the first is closed by the server first "
        "(server socket in TIME_WAIT), the client immediately reconnects from the same port "
        "(bound with SO_REUSEADDR). No errors.",
        client=[
            *c1,
            ["send", "c1", 100],
            ["recvall", "c1", 100],
            ["recv", "c1"],
            ["close", "c1"],
            ["sleep", 0.2],
            *c2,
            ["send", "c2", 100],
            ["recvall", "c2", 100],
            ["close", "c2"],
            *client_done(),
        ],
        server=[
            *listener(4, "a1"),
            ["recvall", "a1", 100],
            ["send", "a1", 100],
            ["close", "a1"],
            ["accept", "l", "a2"],
            ["recvall", "a2", 100],
            ["send", "a2", 100],
            ["recv", "a2"],
            ["close", "a2"],
            ["close", "l"],
        ],
    )


def all_scenarios() -> list[Scenario]:
    out = [
        refused(4),
        refused(6),
        orderly_close(4),
        orderly_close(6),
        epipe(4),
        epipe(6),
        rst_before_accept(),
        close_unread(),
        linger0_close(),
        syn_timeout(4),
        syn_timeout(6),
    ]
    out += [reject(4, c) for c in REJECT4] + [reject(6, c) for c in REJECT6]
    out += [route(f, r) for f in (4, 6) for r in ("unreachable", "prohibit", "noroute")]
    out += [
        data_timeout(4),
        data_timeout(6),
        data_timeout_icmp(4),
        data_timeout_icmp(6),
        keepalive_timeout(),
        user_timeout(),
        udp_closed(4),
        udp_closed(6),
        udp_host_unreachable(),
        udp_admin_prohibited(),
        port_reuse(),
        half_close(),
        server_killed(),
        server_killed_unread(),
        peer_lost_state(),
        keepalive_answered(),
        lossy_transfer(),
        route(4, "blackhole"),
        route(6, "blackhole"),
        data_timeout_send(),
        syn_timeout(4, linear=0),
        ttl_exceeded(4),
        ttl_exceeded(6),
        listener_closed_queued(),
        shutdown_then_rst(),
        close_then_timeout(),
        shutdown_then_timeout(),
    ]
    # Issue 14's scenarios live in their own modules (imported here: they build on this one).
    from . import hostlimits, middlebox

    out += middlebox.scenarios() + hostlimits.scenarios()
    return out
