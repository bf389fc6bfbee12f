"""Flood captures (written with struct, deterministic): how pcapdiag holds up against a SYN
flood (over minutes, and packed into 20 s), a port scan, an outage (every SYN of many clients
to many servers refused), hosts down behind a router (every SYN answered by ICMP host
unreachable), a million tiny connections and one connection with a great many out-of-order,
overlapping segments.

    python bench/floods.py --kind syn-flood|syn-flood-short|port-scan|outage|unreachable|\
        tiny|reorder --count N --out F.pcap

Measure with /usr/bin/time -v python -m pcapdiag analyze --format json -o /dev/null F.pcap.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_REC = struct.Struct("<IIII")
_ETH = bytes.fromhex("0200000000020200000000010800")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
SYN, RST, ACK, FIN, PSH = 0x02, 0x04, 0x10, 0x01, 0x08
T0 = 1_700_000_000


def frame(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: int = 0
) -> bytes:
    """Ethernet + IPv4 + TCP (no options); checksums are left 0 (offloaded, as on a host tap)."""
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 64240, 0, 0)
    ip = _IP.pack(0x45, 0, 20 + len(tcp) + payload, 0, 0x4000, 64, 6, 0, src, dst)
    return _ETH + ip + tcp + bytes(payload)


def icmp_error(src: bytes, dst: bytes, icmp_type: int, code: int, quoted: bytes) -> bytes:
    """Ethernet + IPv4 + an ICMP error quoting `quoted` (checksums left 0, as in frame)."""
    icmp = struct.pack("!BBHI", icmp_type, code, 0, 0) + quoted
    ip = _IP.pack(0x45, 0, 20 + len(icmp), 0, 0, 254, 1, 0, src, dst)
    return _ETH + ip + icmp


def records(kind: str, count: int, seed: int) -> Iterator[tuple[int, bytes]]:
    rng = random.Random(seed)
    server = bytes([10, 0, 0, 1])
    if kind == "syn-flood":
        # Spoofed sources, one SYN each, never answered (a flood, not a client: no retries).
        for i in range(count):
            # A different address each time, from 172.16.0.0/12 (2**20 of them).
            a = 0xAC100000 | (i & 0xFFFFF)
            src = a.to_bytes(4, "big")
            yield i * 10_000, frame(src, server, 1024 + i % 60000, 80, rng.getrandbits(32), 0, SYN)
    elif kind == "syn-flood-short":
        # The same spoofed flood packed into 20 s whatever its size (50,000 SYNs a second for
        # a million): more attempts open at once than pcapdiag holds, released early.
        # Each attempt from its own address and port (so none is taken for another's
        # retransmission): a multiplicative permutation of the 2**20 addresses of
        # 172.16.0.0/12, the port moving on every 2**20 attempts.
        step = 20_000_000 / count
        for i in range(count):
            a = 0xAC100000 | ((i * 2654435761) & 0xFFFFF)
            src = a.to_bytes(4, "big")
            sport = 1024 + (i >> 20) % 64000
            yield int(i * step), frame(src, server, sport, 80, rng.getrandbits(32), 0, SYN)
    elif kind == "outage":
        # Every service down: count attempts from 5,000 clients to 40 ports of 200 servers,
        # each SYN answered by RST|ACK 100 us later, 100 us apart.
        for i in range(count):
            client = (0x0A020000 | rng.getrandbits(16) % 5000).to_bytes(4, "big")
            host = (0x0A030001 + i % 200).to_bytes(4, "big")
            port = 8000 + (i // 200) % 40
            sport = 1024 + (i // 8000) % 60000
            isn = rng.getrandbits(32)
            yield i * 100, frame(client, host, sport, port, isn, 0, SYN)
            yield i * 100 + 100, frame(host, client, port, sport, 0, isn + 1, RST | ACK)
    elif kind == "unreachable":
        # The hosts of a subnet down: count attempts from 5,000 clients to 40 ports of 200
        # servers, each SYN answered 300 us later by an ICMP host unreachable (RFC 792 type 3
        # code 1) from their router, quoting the SYN's IP header and first 8 TCP bytes.
        router = bytes([10, 3, 255, 254])
        for i in range(count):
            client = (0x0A020000 | rng.getrandbits(16) % 5000).to_bytes(4, "big")
            host = (0x0A030001 + i % 200).to_bytes(4, "big")
            port = 8000 + (i // 200) % 40
            sport = 1024 + (i // 8000) % 60000
            syn = frame(client, host, sport, port, rng.getrandbits(32), 0, SYN)
            yield i * 100, syn
            yield i * 100 + 300, icmp_error(router, client, 3, 1, syn[14 : 14 + 28])
    elif kind == "port-scan":
        # One scanner, every port: SYN, answered by RST|ACK (closed) for all of them.
        scanner = bytes([10, 0, 0, 66])
        for i in range(count):
            port = 1 + i % 65535
            sport = 40000 + i // 65535
            isn = rng.getrandbits(32)
            yield i * 20_000, frame(scanner, server, sport, port, isn, 0, SYN)
            yield i * 20_000 + 5_000, frame(server, scanner, port, sport, 0, isn + 1, RST | ACK)
    elif kind == "tiny":
        # Many complete, healthy connections: handshake, FIN both ways, last ACK.
        for i in range(count):
            client = bytes([10, 1, (i >> 8) & 255, i & 255])
            sport = 1024 + (i >> 16) % 60000
            c, s = rng.getrandbits(32), rng.getrandbits(32)
            t = i * 50_000
            yield t, frame(client, server, sport, 80, c, 0, SYN)
            yield t + 1000, frame(server, client, 80, sport, s, c + 1, SYN | ACK)
            yield t + 2000, frame(client, server, sport, 80, c + 1, s + 1, ACK)
            yield t + 3000, frame(client, server, sport, 80, c + 1, s + 1, FIN | ACK)
            yield t + 4000, frame(server, client, 80, sport, s + 1, c + 2, FIN | ACK)
            yield t + 5000, frame(client, server, sport, 80, c + 2, s + 2, ACK)
    elif kind == "reorder":
        # One connection: count data segments of 100 bytes sent out of order, half of them
        # overlapping the previous one, acknowledged now and then.
        client = bytes([10, 1, 0, 1])
        c, s = 1000, 5000
        yield 0, frame(client, server, 40000, 80, c, 0, SYN)
        yield 1000, frame(server, client, 80, 40000, s, c + 1, SYN | ACK)
        yield 2000, frame(client, server, 40000, 80, c + 1, s + 1, ACK)
        for i in range(count):
            k = i ^ 1  # swap neighbours: every pair arrives reversed
            seq = c + 1 + k * 100 - (50 if i % 2 else 0)
            yield 3000 + i * 1000, frame(client, server, 40000, 80, seq, s + 1, PSH | ACK, 100)
            if i % 10 == 9:
                yield (
                    3500 + i * 1000,
                    frame(server, client, 80, 40000, s + 1, c + 1 + (i + 1) * 100, ACK),
                )
    else:
        raise ValueError(kind)


KINDS = ("syn-flood", "syn-flood-short", "port-scan", "outage", "unreachable", "tiny", "reorder")
# Frames each attempt (each segment, for reorder) of a kind makes, about: so that a capture
# of a given size can be asked for.
FRAMES_PER = {
    "syn-flood": 1,
    "syn-flood-short": 1,
    "port-scan": 2,
    "outage": 2,
    "unreachable": 2,
    "tiny": 6,
}


def count_for(kind: str, frames: int) -> int:
    """How many attempts (connections, segments) make a capture of about `frames` frames."""
    return max(1, frames // FRAMES_PER.get(kind, 1))


def expected(kind: str, count: int) -> dict[str, dict[str, int]]:
    """The report's summary counts a flood must give: findings by rule and by errno."""
    if kind == "syn-flood":
        # SYNs 10 ms apart; those in the capture's last second are too recent to judge
        # (PD-TCP-013 needs 1 s of silence after the SYN).
        n = max(0, count - 100)
        return {"by_rule": {"PD-TCP-013": n} if n else {}, "by_errno": {"none": n} if n else {}}
    if kind == "syn-flood-short":
        # Attempts released early within their first second are PD-TCP-024's, later ones
        # PD-TCP-013's, and those open at the end younger than a second are not judged.
        return _short_flood_counts(count)
    if kind in ("port-scan", "outage"):
        return {"by_rule": {"PD-TCP-001": count}, "by_errno": {"ECONNREFUSED": count}}
    if kind == "unreachable":
        # Each connect() fails at once with EHOSTUNREACH (syn-icmp-unreachable).
        return {"by_rule": {"PD-TCP-002": count}, "by_errno": {"EHOSTUNREACH": count}}
    return {"by_rule": {}, "by_errno": {}}  # tiny, reorder: healthy


def _short_flood_counts(count: int, held: int = 20_000) -> dict[str, dict[str, int]]:
    """syn-flood-short's verdicts: the attempt of SYN i is released at SYN i + held (more
    than `held` open), or at the capture's end (the last SYN) if it is among the last held."""
    step = 20_000_000 / count
    times = [int(i * step) for i in range(count)]
    released = early = 0
    for i in range(count):
        if i + held < count:
            if times[i + held] - times[i] < 1_000_000:
                early += 1
            else:
                released += 1
        elif times[-1] - times[i] >= 1_000_000:
            released += 1
    by_rule = {k: v for k, v in (("PD-TCP-013", released), ("PD-TCP-024", early)) if v}
    return {"by_rule": by_rule, "by_errno": {"none": released + early} if by_rule else {}}


def write(path: Path, kind: str, count: int, seed: int = 1) -> int:
    n = 0
    with path.open("wb") as fh:
        fh.write(_PCAP_HEADER)
        for t_us, data in records(kind, count, seed):
            sec, us = divmod(t_us, 1_000_000)
            fh.write(_REC.pack(T0 + sec, us, len(data), len(data)) + data)
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    n = write(args.out, args.kind, args.count, args.seed)
    print(f"{args.out}: {n:,} frames ({args.kind}, {args.count:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
