"""User-space delay line between two interfaces: ``python3 -m record.delay IF_A IF_B MS``.

This kernel has no netem qdisc, but ICMP errors during connect() are only soft errors when the
link has no latency (docs/errno-semantics.md section 7.1).  This process bridges every Ethernet
frame between IF_A and IF_B through AF_PACKET sockets and releases it MS milliseconds later, in
both directions, preserving order.  Runs inside its own namespace; stdlib only.
"""

from __future__ import annotations

import collections
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_if(name: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, 0))
    s.setblocking(False)
    return s


def main(argv: list[str]) -> int:
    if_a, if_b, ms = argv[0], argv[1], float(argv[2])
    delay = ms / 1000.0
    a, b = open_if(if_a), open_if(if_b)
    peer = {a.fileno(): b, b.fileno(): a}
    by_fd = {a.fileno(): a, b.fileno(): b}
    queue: collections.deque[tuple[float, socket.socket, bytes]] = collections.deque()
    running = True

    def stop(*_args):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    while running:
        timeout = 0.5
        if queue:
            timeout = max(0.0, queue[0][0] - time.monotonic())
        try:
            ready, _, _ = select.select([a, b], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                queue.append((now + delay, peer[s.fileno()], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, out, frame = queue.popleft()
            try:
                out.send(frame)
            except OSError as exc:
                print(
                    f"drop {len(frame)} bytes on {by_fd[out.fileno()]}: {exc}",
                    file=sys.stderr,
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
