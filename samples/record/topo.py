"""Private namespace topology for one scenario, and the processes running in it.

::

    client ns            delay ns                 router ns               server ns
    eth0 10.91.1.2 -- dc [AF_PACKET, MS ms] dr -- rc 10.91.1.1  rs 10.91.2.1 -- eth0 10.91.2.2
         fd91:1::2                                 fd91:1::1    fd91:2::1         fd91:2::2

Every namespace is named ``<prefix><role>`` with a prefix unique to this process; :meth:`Lab.close`
ends the processes it started (by PID) and deletes the namespaces, also after a failure.
Kernel timers are shortened with per-namespace sysctls only; the root namespace is not touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PKG_PARENT = str(Path(__file__).resolve().parent.parent)

CLIENT4, CLIENT6 = "10.91.1.2", "fd91:1::2"
ROUTER_C4, ROUTER_C6 = "10.91.1.1", "fd91:1::1"
ROUTER_S4, ROUTER_S6 = "10.91.2.1", "fd91:2::1"
SERVER4, SERVER6 = "10.91.2.2", "fd91:2::2"
# Destinations behind special router routes (no host there).
ROUTE_DESTS = {
    "unreachable": ("10.91.3.2", "fd91:3::2"),
    "prohibit": ("10.91.4.2", "fd91:4::2"),
    "blackhole": ("10.91.5.2", "fd91:5::2"),
    "noroute": ("10.91.6.2", "fd91:6::2"),
}

# Timers shortened inside the client and server namespaces (never in the root namespace).
TCP_SYSCTLS = {
    "net.ipv4.tcp_syn_retries": "2",
    "net.ipv4.tcp_synack_retries": "2",
    "net.ipv4.tcp_retries2": "3",
    "net.ipv4.tcp_fin_timeout": "5",
}
QUIET_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.router_solicitations": "0",
    "net.ipv6.conf.default.router_solicitations": "0",
}
# No IPv6 MLD (hop-by-hop header) or router solicitations in the captures.
CAPTURE_FILTER = "not (ip6 and ip6[6] == 0) and not (icmp6 and ip6[40] == 133)"


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
    return res


class Lab:
    def __init__(self, prefix: str, delay_ms: float = 2.0) -> None:
        self.prefix = prefix
        self.delay_ms = delay_ms
        self.ns = {role: prefix + role for role in ("c", "d", "r", "s")}
        self.created: list[str] = []
        self.procs: list[tuple[str, subprocess.Popen]] = []

    # -- helpers ------------------------------------------------------------------------------
    def nsexec(self, role: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.ns[role], *cmd], check=check)

    def sysctl(self, role: str, key: str, value: str) -> None:
        self.nsexec(role, "sysctl", "-qw", f"{key}={value}")

    def read_sysctl(self, role: str, key: str) -> str:
        return self.nsexec(role, "sysctl", "-n", key).stdout.strip()

    def popen(self, tag: str, role: str, cmd: list[str], **kw) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = PKG_PARENT
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *cmd], env=env, **kw)
        self.procs.append((tag, proc))
        return proc

    # -- build --------------------------------------------------------------------------------
    def build(self) -> None:
        for role in ("c", "d", "r", "s"):
            run(["ip", "netns", "add", self.ns[role]])
            self.created.append(self.ns[role])
            self.nsexec(role, "ip", "link", "set", "lo", "up")
            for key, val in QUIET_SYSCTLS.items():
                self.sysctl(role, key, val)
        self.sysctl("d", "net.ipv6.conf.all.disable_ipv6", "1")
        self.sysctl("d", "net.ipv6.conf.default.disable_ipv6", "1")
        for role in ("c", "s"):
            for key, val in TCP_SYSCTLS.items():
                self.sysctl(role, key, val)
        self.sysctl("r", "net.ipv4.ip_forward", "1")
        self.sysctl("r", "net.ipv6.conf.all.forwarding", "1")

        c, d, r, s = (self.ns[x] for x in "cdrs")
        run(
            [
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                c,
                "address",
                "02:00:00:00:01:02",
                "type",
                "veth",
                "peer",
                "name",
                "dc",
                "netns",
                d,
            ]
        )
        run(
            [
                "ip",
                "link",
                "add",
                "dr",
                "netns",
                d,
                "type",
                "veth",
                "peer",
                "name",
                "rc",
                "netns",
                r,
                "address",
                "02:00:00:00:01:01",
            ]
        )
        run(
            [
                "ip",
                "link",
                "add",
                "rs",
                "netns",
                r,
                "address",
                "02:00:00:00:02:01",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                s,
                "address",
                "02:00:00:00:02:02",
            ]
        )
        for role, ifs in (
            ("c", ["eth0"]),
            ("d", ["dc", "dr"]),
            ("r", ["rc", "rs"]),
            ("s", ["eth0"]),
        ):
            for ifname in ifs:
                # Software checksums and no segmentation offload: frames leave the veth
                # complete and MTU-sized, so the AF_PACKET delay line can forward them.
                self.nsexec(
                    role,
                    "ethtool",
                    "-K",
                    ifname,
                    "tx",
                    "off",
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                    check=False,
                )
                if role == "d":
                    self.nsexec(role, "ip", "link", "set", ifname, "promisc", "on")
                self.nsexec(role, "ip", "link", "set", ifname, "up")

        def addr(role, ifname, a4, a6):
            self.nsexec(role, "ip", "addr", "add", a4, "dev", ifname)
            self.nsexec(role, "ip", "-6", "addr", "add", a6, "dev", ifname, "nodad")

        addr("c", "eth0", CLIENT4 + "/24", CLIENT6 + "/64")
        addr("r", "rc", ROUTER_C4 + "/24", ROUTER_C6 + "/64")
        addr("r", "rs", ROUTER_S4 + "/24", ROUTER_S6 + "/64")
        addr("s", "eth0", SERVER4 + "/24", SERVER6 + "/64")
        self.nsexec("c", "ip", "route", "add", "default", "via", ROUTER_C4)
        self.nsexec("c", "ip", "-6", "route", "add", "default", "via", ROUTER_C6)
        self.nsexec("s", "ip", "route", "add", "default", "via", ROUTER_S4)
        self.nsexec("s", "ip", "-6", "route", "add", "default", "via", ROUTER_S6)
        for rtype in ("unreachable", "prohibit", "blackhole"):
            d4, d6 = ROUTE_DESTS[rtype]
            self.nsexec("r", "ip", "route", "add", rtype, d4.rsplit(".", 1)[0] + ".0/24")
            self.nsexec("r", "ip", "-6", "route", "add", rtype, d6.rsplit(":", 1)[0] + ":/64")

        proc = self.popen(
            "delay",
            "d",
            [sys.executable, "-m", "record.delay", "dc", "dr", str(self.delay_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if line != "ready":
            raise RuntimeError(f"delay line did not start: {line!r}")

    # -- captures -----------------------------------------------------------------------------
    def start_capture(self, role: str, path: Path) -> subprocess.Popen:
        proc = self.popen(
            f"tcpdump-{role}",
            role,
            [
                "tcpdump",
                "-i",
                "eth0",
                "-s",
                "0",
                "-U",
                "--immediate-mode",
                "-n",
                "-Z",
                "root",
                "-w",
                str(path),
                CAPTURE_FILTER,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            if "listening on" in line:
                return proc
            if not line and proc.poll() is not None:
                break
        raise RuntimeError(f"tcpdump in {role} did not start")

    def stop_process(
        self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5.0
    ) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)

    # -- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        for _tag, proc in reversed(self.procs):
            try:
                self.stop_process(proc)
            except Exception as exc:  # keep tearing down
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        self.procs.clear()
        for name in reversed(self.created):
            run(["ip", "netns", "del", name], check=False)
        self.created.clear()
