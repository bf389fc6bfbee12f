"""Socket program interpreter, run inside a namespace: ``python3 -m record.agent PROGRAM.json``.

The program is a JSON object ``{"start": epoch, "host": ..., "sync": dir, "log": path,
"steps": [[op, arg, ...], ...]}``.  Every socket call is executed for real and recorded with its
result (ok / eof / error + errno name) and the time it returned (seconds since ``start``).
The log is rewritten after every call so that it survives a SIGKILL of this process.
Only the standard library is used: this file runs under the namespace's plain ``python3``.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import struct
import sys
import time

TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


def fmt_addr(family: int, addr: str, port: int) -> str:
    if family == socket.AF_INET6:
        return f"[{addr}]:{port}"
    return f"{addr}:{port}"


class Agent:
    def __init__(self, prog: dict) -> None:
        self.start = float(prog["start"])
        self.host = prog["host"]
        self.sync = prog["sync"]
        self.log_path = prog["log"]
        self.steps = prog["steps"]
        self.socks: dict[str, socket.socket] = {}
        self.recs: dict[str, dict] = {}
        self.order: list[str] = []
        self.events: list[dict] = []
        self.boosted = False
        # Sockets whose non-blocking connect() (connect_start) has not completed yet.
        self.connecting: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------------------
    def now(self) -> float:
        return round(time.time() - self.start, 6)

    def flush(self) -> None:
        data = {
            "host": self.host,
            "sockets": [self.recs[n] for n in self.order],
            "events": self.events,
        }
        tmp = self.log_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.log_path)

    def new_sock(self, name: str, sock: socket.socket, role: str, proto: str) -> dict:
        self.socks[name] = sock
        rec = {
            "host": self.host,
            "role": role,
            "proto": proto,
            "local": None,
            "remote": None,
            "calls": [],
        }
        self.recs[name] = rec
        self.order.append(name)
        return rec

    def record(self, name: str, call: str, result: str, err: str | None, **extra) -> None:
        entry = {"call": call, "result": result, "errno": err, "t": self.now()}
        entry.update(extra)
        self.recs[name]["calls"].append(entry)
        self.flush()

    def do(self, name: str, call: str, fn, **extra):
        """Run fn(); record ok / error.  Returns (ok, value)."""
        try:
            value = fn()
        except OSError as exc:
            code = exc.errno
            ename = errno.errorcode.get(code, str(code)) if code is not None else "ETIMEDOUT"
            self.record(name, call, "error", ename, **extra)
            return False, None
        self.record(name, call, "ok", None, **extra)
        return True, value

    # -- operations --------------------------------------------------------------------------
    def op_socket(self, name, proto, fam, role="client"):
        family = socket.AF_INET6 if int(fam) == 6 else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        self.new_sock(name, socket.socket(family, kind), role, proto)

    def op_bind(self, name, addr, port):
        s = self.socks[name]
        self.recs[name]["local"] = fmt_addr(s.family, addr, int(port))
        self.do(name, "bind", lambda: s.bind((addr, int(port))))

    def op_opt(self, name, option, value=None):
        s = self.socks[name]
        if option == "SO_REUSEADDR":
            args = [(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]
        elif option == "SO_LINGER":
            args = [(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, int(value)))]
        elif option == "SO_RCVTIMEO":
            sec = float(value)
            tv = struct.pack("ll", int(sec), int((sec - int(sec)) * 1e6))
            args = [(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)]
        elif option == "SO_KEEPALIVE":
            idle, intvl, cnt = value
            args = [
                (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(idle)),
                (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, int(intvl)),
                (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, int(cnt)),
            ]
        elif option == "SO_SNDBUF":
            args = [(socket.SOL_SOCKET, socket.SO_SNDBUF, int(value))]
        elif option == "SO_RCVBUF":
            args = [(socket.SOL_SOCKET, socket.SO_RCVBUF, int(value))]
        elif option == "TTL":
            if s.family == socket.AF_INET6:
                args = [(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, int(value))]
            else:
                args = [(socket.IPPROTO_IP, socket.IP_TTL, int(value))]
        elif option == "TCP_USER_TIMEOUT":
            args = [(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, int(value))]
        else:
            raise ValueError(f"unknown option {option}")

        def run():
            for level, opt, val in args:
                s.setsockopt(level, opt, val)

        extra = {"option": option}
        if value is not None:
            extra["value"] = value
        self.do(name, "setsockopt", run, **extra)

    def op_listen(self, name, backlog=8):
        s = self.socks[name]
        self.recs[name]["role"] = "listener"
        self.do(name, "listen", lambda: s.listen(int(backlog)))

    def op_connect(self, name, addr, port):
        s = self.socks[name]
        self.recs[name]["remote"] = fmt_addr(s.family, addr, int(port))
        ok, _ = self.do(name, "connect", lambda: s.connect((addr, int(port))))
        if ok and self.recs[name]["local"] is None:
            la = s.getsockname()
            self.recs[name]["local"] = fmt_addr(s.family, la[0], la[1])

    def op_connect_start(self, name, addr, port):
        """Non-blocking connect(): sends the SYN and returns; not recorded (its EINPROGRESS
        is not a failure). `await` records the completed connect()."""
        s = self.socks[name]
        self.recs[name]["remote"] = fmt_addr(s.family, addr, int(port))
        s.setblocking(False)
        code = s.connect_ex((addr, int(port)))
        if code not in (0, errno.EINPROGRESS):
            s.setblocking(True)
            ename = errno.errorcode.get(code, str(code))
            self.record(name, "connect", "error", ename, nonblocking=True)
            return
        self.connecting.add(name)

    def op_await(self, names, timeout):
        """Wait on several sockets at once, recording each as it completes: a pending
        non-blocking connect() (connect_start) when the socket becomes writable (its SO_ERROR),
        any other socket with one recv() when it becomes readable. A socket still waiting for
        data after `timeout` seconds gets a non-blocking recv(): EAGAIN, as SO_RCVTIMEO would
        return (recorded with `timeout`)."""
        pending = list(names)
        deadline = time.monotonic() + float(timeout)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            poller = select.poll()
            for name in pending:
                mask = select.POLLOUT if name in self.connecting else select.POLLIN
                poller.register(self.socks[name], mask | select.POLLERR | select.POLLHUP)
            fds = dict(poller.poll(left * 1000))
            for name in list(pending):
                if self.socks[name].fileno() not in fds:
                    continue
                pending.remove(name)
                if name in self.connecting:
                    self.finish_connect(name)
                else:
                    self.op_recv(name)
        for name in pending:
            s = self.socks[name]
            if name in self.connecting:
                self.connecting.discard(name)
                self.record(
                    name, "connect", "error", "EINPROGRESS", nonblocking=True, timeout=timeout
                )
                continue
            try:
                data = s.recv(65536, socket.MSG_DONTWAIT)
            except OSError as exc:
                ename = errno.errorcode.get(exc.errno, str(exc.errno))
                self.record(name, "recv", "error", ename, timeout=timeout)
                continue
            self.record(name, "recv", "ok" if data else "eof", None, bytes=len(data))

    def finish_connect(self, name):
        s = self.socks[name]
        self.connecting.discard(name)
        code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        s.setblocking(True)
        if code:
            ename = errno.errorcode.get(code, str(code))
            self.record(name, "connect", "error", ename, nonblocking=True)
            return
        self.record(name, "connect", "ok", None, nonblocking=True)
        if self.recs[name]["local"] is None:
            la = s.getsockname()
            self.recs[name]["local"] = fmt_addr(s.family, la[0], la[1])

    def op_accept(self, name, new):
        s = self.socks[name]
        lrec = self.recs[name]
        try:
            conn, peer = s.accept()
        except OSError as exc:
            self.record(name, "accept", "error", errno.errorcode.get(exc.errno, str(exc.errno)))
            return
        rec = self.new_sock(new, conn, "server", lrec["proto"])
        rec["local"] = lrec["local"]
        rec["remote"] = fmt_addr(conn.family, peer[0], peer[1])
        # accept() is a call of the listener that yields the new socket; record it on both.
        self.record(name, "accept", "ok", None, peer=rec["remote"])
        self.record(new, "accept", "ok", None)

    def op_send(self, name, nbytes):
        s = self.socks[name]
        data = b"x" * int(nbytes)
        try:
            n = s.send(data)
        except OSError as exc:
            self.record(name, "send", "error", errno.errorcode.get(exc.errno, str(exc.errno)))
            return
        self.record(name, "send", "ok", None, bytes=n)

    def op_sendall(self, name, nbytes, chunk=1000):
        """Send nbytes in chunks; one aggregated record (result of the last syscall)."""
        s = self.socks[name]
        total, calls = 0, 0
        while total < int(nbytes):
            calls += 1
            try:
                total += s.send(b"y" * min(int(chunk), int(nbytes) - total))
            except OSError as exc:
                self.record(
                    name,
                    "send",
                    "error",
                    errno.errorcode.get(exc.errno, str(exc.errno)),
                    bytes=total,
                    syscalls=calls,
                )
                return
        self.record(name, "send", "ok", None, bytes=total, syscalls=calls)

    def op_recv(self, name, bufsize=65536):
        s = self.socks[name]
        try:
            data = s.recv(int(bufsize))
        except OSError as exc:
            self.record(name, "recv", "error", errno.errorcode.get(exc.errno, str(exc.errno)))
            return
        if not data and self.recs[name]["proto"] == "tcp":
            self.record(name, "recv", "eof", None, bytes=0)
        else:
            self.record(name, "recv", "ok", None, bytes=len(data))

    def op_recvall(self, name, nbytes):
        """Receive exactly nbytes; one aggregated record (eof/error if it ended early)."""
        s = self.socks[name]
        total, calls = 0, 0
        while total < int(nbytes):
            calls += 1
            try:
                data = s.recv(int(nbytes) - total)
            except OSError as exc:
                self.record(
                    name,
                    "recv",
                    "error",
                    errno.errorcode.get(exc.errno, str(exc.errno)),
                    bytes=total,
                    syscalls=calls,
                )
                return
            if not data:
                self.record(name, "recv", "eof", None, bytes=total, syscalls=calls)
                return
            total += len(data)
        self.record(name, "recv", "ok", None, bytes=total, syscalls=calls)

    def op_drain(self, name):
        """recv() until EOF or an error; one aggregated record (bytes read before the end)."""
        s = self.socks[name]
        total, calls = 0, 0
        while True:
            calls += 1
            try:
                data = s.recv(65536)
            except OSError as exc:
                ename = errno.errorcode.get(exc.errno, str(exc.errno))
                self.record(name, "recv", "error", ename, bytes=total, syscalls=calls)
                return
            if not data:
                self.record(name, "recv", "eof", None, bytes=total, syscalls=calls)
                return
            total += len(data)

    def op_shutdown(self, name, how="SHUT_WR"):
        s = self.socks[name]
        self.do(name, "shutdown", lambda: s.shutdown(getattr(socket, how)), how=how)

    def op_close(self, name):
        s = self.socks[name]
        self.do(name, "close", s.close)

    def op_getsockopt_error(self, name):
        s = self.socks[name]
        val = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.record(
            name,
            "getsockopt(SO_ERROR)",
            "ok" if val == 0 else "error",
            errno.errorcode.get(val) if val else None,
        )

    def op_sleep(self, seconds):
        time.sleep(float(seconds))

    def op_signal(self, event):
        with open(os.path.join(self.sync, event), "w") as fh:
            fh.write(str(self.now()))
        self.events.append({"signal": event, "t": self.now()})
        self.flush()

    def op_wait(self, event, timeout=30.0):
        path = os.path.join(self.sync, event)
        deadline = time.monotonic() + float(timeout)
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise SystemExit(f"agent {self.host}: timeout waiting for {event}")
            time.sleep(0.002)

    def op_wait_until(self, event, seconds, timeout=30.0):
        """Wait for EVENT, then until SECONDS after the time it was signalled: two hosts
        waiting for the same event and offset act at the same instant (within a fraction of
        a millisecond, where polling for the event alone leaves each up to 2 ms late). The
        last 40 ms and the next step run at SCHED_FIFO priority, so that CPU load does not
        delay one of them (measured: within 0.3 ms with both cores busy)."""
        self.op_wait(event, timeout)
        text = ""
        while not text:  # the signaller may not have written its time yet
            with open(os.path.join(self.sync, event)) as fh:
                text = fh.read().strip()
            if not text:
                time.sleep(0.001)
        signalled = float(text)
        target = self.start + signalled + float(seconds)
        while (left := target - time.time()) > 0.05:
            time.sleep(left - 0.04)
        # Real-time priority from here through the next step, so that CPU load on the
        # machine does not make one host late (run() drops it again).
        self.boost(True)
        while (left := target - time.time()) > 0.003:
            time.sleep(left - 0.002)
        while time.time() < target:
            pass
        self.events.append({"wait_until": event, "t": self.now()})
        self.flush()

    def boost(self, on: bool) -> None:
        """SCHED_FIFO (on) or back to SCHED_OTHER; ignored where not permitted."""
        if on == self.boosted:
            return
        policy, prio = (os.SCHED_FIFO, 50) if on else (os.SCHED_OTHER, 0)
        try:
            os.sched_setscheduler(0, policy, os.sched_param(prio))
        except (OSError, AttributeError):
            return
        self.boosted = on

    def run(self) -> None:
        self.flush()
        for step in self.steps:
            op, *args = step
            getattr(self, "op_" + op)(*args)
            if op != "wait_until":
                self.boost(False)
        self.events.append({"exit": True, "t": self.now()})
        self.flush()


def main(argv: list[str]) -> int:
    with open(argv[0]) as fh:
        prog = json.load(fh)
    Agent(prog).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
