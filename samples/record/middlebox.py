"""Scenarios where a device between the hosts causes the failure (issue 14): RSTs from a
firewall, a conntrack table or an injector, and the keep-alive race.

Besides the ops of :mod:`record.scenarios`, these use the control op ``["spawn", role, module,
[args]]`` (a background helper such as :mod:`record.inject`, started and awaited until it prints
``ready``) and the agent op ``["wait_until", event, seconds]`` (both hosts act at the same
instant: the event's time plus an offset).
"""

from __future__ import annotations

from .scenarios import (
    CPORT,
    PORT,
    Scenario,
    _mid_connection,
    addrs,
    client_done,
    connect,
    drop_both,
    end_server,
    exchange,
    ipt,
    listener,
    suffix,
)
from .topo import ROUTER_C4, ROUTER_S4

REJECT_RST = ("-j", "REJECT", "--reject-with", "tcp-reset")
CT = ("-m", "conntrack", "--ctstate")
# Set in the router namespace only (per-netns on this kernel).
CT_SYSCTLS = {
    "net.netfilter.nf_conntrack_tcp_timeout_established": "3",
    "net.netfilter.nf_conntrack_tcp_loose": "0",
}
NEVER = "the server's socket never learns anything (no error while the scenario runs)"


def reject_tcp_reset(fam: int) -> Scenario:
    cli, srv = addrs(fam)
    other = PORT + 1
    tool = "ip6tables" if fam == 6 else "iptables"
    creq, sreq = exchange("c1", "a")
    return Scenario(
        "reject-tcp-reset" + suffix(fam),
        "One healthy request/response on port 8080 (the server closes first), then the client "
        f"connects from port {CPORT + 1} to port {other} on the same server, which listens "
        f"there too but never sees the SYN: the router has `{tool}"
        f" -A FORWARD -p tcp --syn --dport {other} -j REJECT --reject-with tcp-reset`, so the "
        "SYN is answered by a RST forged in the server's name.",
        setup=[ipt(fam, "-A", "FORWARD", "-p", "tcp", "--syn", "--dport", str(other), *REJECT_RST)],
        client=[
            ["wait", "listening"],
            ["socket", "c1", "tcp", fam, "client"],
            ["bind", "c1", cli, CPORT],
            ["connect", "c1", srv, PORT],
            *creq,
            ["recv", "c1"],
            ["close", "c1"],
            ["socket", "c2", "tcp", fam, "client"],
            ["bind", "c2", cli, CPORT + 1],
            ["connect", "c2", srv, other],
            ["close", "c2"],
            *client_done(),
        ],
        server=[
            ["socket", "l2", "tcp", fam, "listener"],
            ["opt", "l2", "SO_REUSEADDR"],
            ["bind", "l2", srv, other],
            ["listen", "l2"],
            *listener(fam, "a"),
            *sreq,
            ["close", "a"],
            *end_server(),
            ["close", "l"],
            ["close", "l2"],
        ],
        cause="network",
    )


def inject_rst_oneway() -> Scenario:
    cli, srv = addrs(4)
    sc = _mid_connection(
        4,
        "inject-rst-oneway",
        "After one request/response the router inserts `iptables -I FORWARD -p tcp -s client "
        "-d server -j REJECT --reject-with tcp-reset`; the client sends a second request and "
        "blocks in recv(): the router answers the request with a RST forged in the server's "
        "name, sent to the client only; the request never reaches the server. When the "
        "client is done the server closes: its FIN reaches the client, whose kernel (no "
        "socket left) answers with RSTs that the router's REJECT rule swallows, so the "
        "server retransmits its FIN.",
        [ipt(4, "-I", "FORWARD", "-p", "tcp", "-s", cli, "-d", srv, *REJECT_RST)],
        [["send", "c", 100], ["recv", "c"]],
        limits={"server:a": NEVER},
    )
    sc.cause = "network"
    return sc


def inject_rst_both() -> Scenario:
    cli, srv = addrs(4)
    creq, sreq = exchange()
    return Scenario(
        "inject-rst-both",
        "After one request/response an injector on the router (record/inject.py: AF_PACKET "
        "sniffer on the router's client-side interface, raw IPv4 socket) waits for the "
        "client's second request, which the router drops (iptables DROP client to server), "
        "and sends two forged RSTs: to the server in the client's name (seq = the request's "
        "seq, the server's rcv_nxt) and to the client in the server's name (seq = the "
        "request's ack, the client's rcv_nxt); both bare RST, no options, TTL 64, IP ID 0, DF. "
        "Both sockets are blocked in recv().",
        client=connect(4)
        + creq
        + [
            ["signal", "established"],
            ["wait", "blocked"],
            ["send", "c", 100],
            ["recv", "c"],
            ["close", "c"],
        ]
        + client_done(),
        server=listener(4, "a") + sreq + [["recv", "a"], ["close", "a"], ["close", "l"]],
        control=[
            ["wait", "established"],
            ["spawn", "r", "record.inject", ["rc", cli, srv, PORT]],
            ipt(4, "-I", "FORWARD", "-p", "tcp", "-s", cli, "-d", srv, "-j", "DROP"),
            ["signal", "blocked"],
        ],
        cause="network",
    )


def conntrack_idle(invalid: str) -> Scenario:
    target = list(REJECT_RST) if invalid == "rst" else ["-j", "DROP"]
    what = {
        "rst": "rejects it with a RST forged in the server's name (`--ctstate INVALID -j "
        "REJECT --reject-with tcp-reset`) and the client's recv() fails at once. When the "
        "client is done the server closes: its FIN is INVALID too and is answered by a RST "
        "forged in the client's name (the server's socket is already closed).",
        "drop": "drops it (`--ctstate INVALID -j DROP`) and the client retransmits until its "
        "retransmission timeout (tcp_retries2=3). When the client is done the server "
        "closes: its FIN is INVALID too, dropped, and retransmitted.",
    }[invalid]
    creq, sreq = exchange()
    return Scenario(
        f"conntrack-idle-{invalid}",
        "After one request/response the client stays idle 6 s (no keepalive) while the "
        "stateful router forgets the connection (conntrack established timeout 3 s, "
        "nf_conntrack_tcp_loose=0); the client's second request is then INVALID to the "
        "router (mid-stream, no conntrack entry), which "
        + what
        + " Router: FORWARD policy DROP, `-m conntrack --ctstate ESTABLISHED,RELATED -j "
        "ACCEPT`, NEW accepted only for SYNs; the sysctls net.netfilter."
        "nf_conntrack_tcp_timeout_established=3 and net.netfilter.nf_conntrack_tcp_loose=0 "
        "are set in the router namespace only (per-netns).",
        setup=[
            ipt(4, "-P", "FORWARD", "DROP"),
            ipt(4, "-A", "FORWARD", *CT, "ESTABLISHED,RELATED", "-j", "ACCEPT"),
            ipt(4, "-A", "FORWARD", "-p", "tcp", "--syn", *CT, "NEW", "-j", "ACCEPT"),
            ipt(4, "-A", "FORWARD", "-p", "tcp", *CT, "INVALID", *target),
            *[["cmd", "r", ["sysctl", "-qw", f"{k}={v}"]] for k, v in CT_SYSCTLS.items()],
        ],
        client=connect(4)
        + creq
        + [["sleep", 6.0], ["send", "c", 100], ["recv", "c"], ["close", "c"]]
        + client_done(),
        server=listener(4, "a") + sreq + end_server() + [["close", "a"], ["close", "l"]],
        capture_limits={"server:a": NEVER},
        cause="network",
    )


def keepalive_race() -> Scenario:
    creq, sreq = exchange()
    return Scenario(
        "keepalive-race",
        "HTTP keep-alive reuse race: after one request/response the connection is idle 2 s; "
        "then, at the same instant (both wait for the same event plus 2 s), the server "
        "closes its socket (FIN) and the client sends its next request, so the two cross on "
        "the 2 ms client link: the client's request leaves before the server's FIN arrives, "
        "so it does not acknowledge the FIN, and the server's orphaned socket answers it "
        "with RST. The client's recv() (called right after send()) returns at the FIN; it "
        "reads again 0.1 s later and sends once more.",
        client=connect(4)
        + creq
        + [
            ["signal", "idle"],
            ["wait_until", "idle", 2.0],
            ["send", "c", 100],
            ["recv", "c"],
            ["sleep", 0.1],
            ["recv", "c"],
            ["send", "c", 100],
            ["close", "c"],
        ]
        + client_done(),
        server=listener(4, "a")
        + sreq
        + [["wait_until", "idle", 2.0], ["close", "a"], ["close", "l"]],
        cause="peer",
    )


def local_abort() -> Scenario:
    _, srv = addrs(4)
    creq, sreq = exchange()
    return Scenario(
        "local-abort",
        "After one request/response both sockets block in recv(); the client host's "
        f"administrator runs `ss -K -t dst {srv} dport = :{PORT}` in the client namespace "
        "(SOCK_DESTROY): the client's kernel aborts the socket and sends RST.",
        client=connect(4)
        + creq
        + [["signal", "established"], ["recv", "c"], ["close", "c"]]
        + client_done(),
        server=listener(4, "a") + sreq + [["recv", "a"], ["close", "a"], ["close", "l"]],
        control=[
            ["wait", "established"],
            ["sleep", 0.3],
            ["cmd", "c", ["ss", "-K", "-t", "dst", srv, "dport", "=", f":{PORT}"]],
        ],
        capture_limits={
            "client:c": {
                "reason": "the client's RST|ACK (its own TTL, next IP ID, timestamps, "
                "seq = snd_nxt) is the same on the wire as an application's close() with "
                "SO_LINGER 0 (linger0-close, where no call fails); that the socket was "
                "destroyed under a blocked recv() is not on the wire",
                "expect": {"errno": None},
            }
        },
        cause="local",
        cause_by_host={"client": "local", "server": "peer"},
    )


# The service as the client knows it: an address and port of the router, translated.
NAT_PORT = 8081
NAT_SOURCE_PORTS = "50000-50999"


def nat_data_timeout() -> Scenario:
    cli, srv = addrs(4)
    ipt_nat = ["iptables", "-t", "nat", "-A"]
    creq1, sreq1 = exchange("c1", "a1")
    creq, sreq = exchange()
    return Scenario(
        "nat-data-timeout",
        f"Both connections go through address translation on the router: the client "
        f"connects to {ROUTER_C4}:{NAT_PORT}, which the router maps to {srv}:{PORT} "
        f"(DNAT), and the server sees them come from {ROUTER_S4}:{NAT_SOURCE_PORTS} (SNAT: "
        "another address and port in each capture). A first connection (client port "
        f"{CPORT + 1}) makes one request/response and closes; on the second (port {CPORT}), "
        "after one request/response the router drops all TCP between client and server "
        "(as data-timeout): the client's second request is retransmitted until recv() fails "
        "(tcp_retries2=3).",
        setup=[
            [
                "cmd",
                "r",
                [
                    *ipt_nat,
                    "PREROUTING",
                    "-i",
                    "rc",
                    "-p",
                    "tcp",
                    "-d",
                    ROUTER_C4,
                    "--dport",
                    str(NAT_PORT),
                    "-j",
                    "DNAT",
                    "--to-destination",
                    f"{srv}:{PORT}",
                ],
            ],
            [
                "cmd",
                "r",
                [
                    *ipt_nat,
                    "POSTROUTING",
                    "-o",
                    "rs",
                    "-p",
                    "tcp",
                    "-d",
                    srv,
                    "--dport",
                    str(PORT),
                    "-j",
                    "SNAT",
                    "--to-source",
                    f"{ROUTER_S4}:{NAT_SOURCE_PORTS}",
                ],
            ],
        ],
        client=[
            ["wait", "listening"],
            ["socket", "c1", "tcp", 4, "client"],
            ["bind", "c1", cli, CPORT + 1],
            ["connect", "c1", ROUTER_C4, NAT_PORT],
            *creq1,
            ["recv", "c1"],
            ["close", "c1"],
            ["socket", "c", "tcp", 4, "client"],
            ["bind", "c", cli, CPORT],
            ["connect", "c", ROUTER_C4, NAT_PORT],
            *creq,
            ["signal", "established"],
            ["wait", "blocked"],
            ["send", "c", 100],
            ["recv", "c"],
            ["close", "c"],
            *client_done(),
        ],
        server=listener(4, "a1")
        + sreq1
        + [["close", "a1"], ["accept", "l", "a"]]
        + sreq
        + end_server()
        + [["close", "a"], ["close", "l"]],
        # In FORWARD the client's packets already carry the server's address (DNAT is done
        # in PREROUTING) and the server's replies the client's (SNAT undone in PREROUTING).
        control=[["wait", "established"], *drop_both(4), ["signal", "blocked"]],
        capture_limits={"server:a": NEVER},
        cause="network",
    )


def scenarios() -> list[Scenario]:
    return [
        reject_tcp_reset(4),
        reject_tcp_reset(6),
        inject_rst_oneway(),
        inject_rst_both(),
        conntrack_idle("rst"),
        conntrack_idle("drop"),
        keepalive_race(),
        local_abort(),
        nat_data_timeout(),
    ]
