"""Deterministic generator of large, realistic captures with known failures (issue 5).

    python bench/generate.py --frames N --out F.pcap [--seed S] [--duration SECONDS]
                             [--steady-state]

writes an Ethernet pcap (microsecond timestamps) of exactly N frames and `F.truth.json`, the
list of connections the generator made fail, how, and which errno the application on which
side gets (Linux). Everything else it writes is healthy and must produce no errno.

What is on the wire: connections arrive as a Poisson process, so many thousands of them are
open at once and their packets interleave in time. A healthy TCP connection has a handshake
with MSS, SACK-permitted, window scale and (mostly) timestamps; request/response exchanges with
correct sequence and acknowledgement numbers, slow-start bursts, an ACK for every second
segment, delayed ACKs (40 ms) or ACKs piggybacked on the answer, payloads of 1 to MSS bytes,
the odd tail loss repaired by one retransmission; and an orderly close from either side
(half-close included), or it stays open (some with answered keepalive probes). UDP flows are
DNS queries and answers. About 15 % of the flows are IPv6 and 10 % are 802.1Q-tagged. IP, TCP,
UDP and ICMP checksums are correct. The capture point is next to the clients: the server's
answers appear one round-trip time after the client's packets.

Failures (the issue's list, 0.4 to 1.5 % of the flows each, about 8 % in all; FAIL_WEIGHTS;
one of each is forced among the first 50 flows so that small captures have them all):
refused, ICMP rejection of the SYN, SYN timeout, server RST right after the handshake, RST on
an established connection, write after the peer's close (EPIPE), close with unread data (RST|
ACK), data retransmitted into silence, keepalive probes unanswered then the prober's RST, and a
UDP datagram answered by ICMP port unreachable (or admin prohibited).

The capture is cut at exactly N frames, so flows still going at that point are cut too. A
failure enters the truth file only once the frames that show it are in the capture (the RST,
the ICMP error, the first SYN retransmission, the third data retransmission or keepalive probe:
the thresholds the rules document); a failing flow cut before that looks healthy and is not
listed. Nothing healthy can look like a failure when cut: healthy flows never retransmit more
than once in a row and never send a RST.

With --steady-state the capture begins in the middle of the traffic, as a capture of a busy
link does: the traffic starts 30 s before the capture, and what came before is not written.
Most frames then belong to thousands of long-lived connections (a connection pool's, HTTP
keep-alive) opened before the capture, whose SYNs it never shows, some with transfers in
flight when it starts; a third of all connections carry no TCP timestamps (Windows' default),
and about 2 % of transfers end with a spurious retransmission (the last segment sent again
one RTO later though its ACK had passed the tap or was merely late). Connections that start
before the capture are healthy, but for a few long-lived ones that fail during it in ways
pcapdiag diagnoses without a handshake (RST, EPIPE, close with unread data, data or keepalive
timeout, each after an exchange the capture shows), one of each early on; connections that
start during the capture fail as above. The truth file then has a "steady_state" entry.

Frames are written in 20 ms time slices: each flow is a Python generator that waits, holding
its next frame, in the slice that frame belongs to. Memory: one small generator per open flow
and one slice of frames; the truth list grows with the failures (about 90 MB at 5M frames).

Truth entries: {"proto", "client": "ip:port" ("[v6]:port"), "server", "side" (whose
application fails), "errno" (Linux), "call", "kind", "frame" (the frame that shows it), and
for ICMP "icmp": "type/code"}.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import operator
import random
import struct
import sys
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

# -- constants ------------------------------------------------------------------------------

T0_US = 1_700_000_000 * 1_000_000  # 2023-11-14T22:13:20Z
MS = 1000
SEC = 1_000_000

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF

# Healthy flow kinds and failure kinds, with their weights (per 1000 flows).
HEALTHY_WEIGHTS: dict[str, float] = {
    "tcp-ok": 780.0,  # request/response exchanges and an orderly close
    "tcp-open": 40.0,  # stays open (idle, some answered keepalives)
    "udp-ok": 90.0,  # DNS query and answer
    "udp-icmp-nonfatal": 3.0,  # DNS query answered by ICMP host unreachable: no errno on Linux
}
FAIL_WEIGHTS: dict[str, float] = {
    "refused": 15.0,
    "syn-icmp": 8.0,
    "syn-timeout": 5.0,
    "rst-after-handshake": 7.0,
    "rst-established": 10.0,
    "epipe": 8.0,
    "close-unread": 8.0,
    "data-timeout": 5.0,
    "keepalive-timeout": 4.0,
    "udp-icmp": 7.0,
}
FAIL_KINDS = tuple(FAIL_WEIGHTS)
_SLOW = ("keepalive-timeout", "data-timeout", "syn-timeout")
FORCED_ORDER = (*_SLOW, *(k for k in FAIL_KINDS if k not in _SLOW))

# --steady-state: the traffic starts WARMUP_US before the capture does, so that the capture
# begins in the middle of everything (connections open, transfers in flight), and frames
# before the capture are not written. Most frames then come from long-lived connections
# opened before it (a connection pool's, HTTP keep-alive), of which there are thousands.
WARMUP_US = 30 * SEC
STEADY_TS_SHARE = 2 / 3  # a third of the connections without TCP timestamps
STEADY_SPURIOUS = 0.02  # transfers that end with a spurious retransmission (see transfer)
PERSISTENT_SHARE = 0.7  # of the frames, about: from the long-lived connections
PERSISTENT_FPS = 3.0  # frames a second of one long-lived connection, about
PERSISTENT_THINK_US = 1 * SEC  # mean time between a response and the next request
PERSISTENT_CLOSE = 0.01  # a healthy long-lived connection closes after an exchange
PERSISTENT_FAIL = 0.02  # long-lived connections that fail during the capture
# Failures of a connection seen without its handshake that pcapdiag still diagnoses (with
# roles guessed from the ports); one of each is forced early, slow ones first.
MIDSTREAM_FAIL_KINDS = (
    "keepalive-timeout",
    "data-timeout",
    "rst-established",
    "epipe",
    "close-unread",
)

# ICMP errors rejecting a SYN: (type, code, Linux errno for connect()), icmp_err_convert[] and
# icmpv6_err_convert(); weights favour the two (v4 host-prohibited, v6 admin-prohibited).
SYN_ICMP_V4 = ((3, 10, "EHOSTUNREACH", 6), (3, 13, "EHOSTUNREACH", 2), (3, 3, "ECONNREFUSED", 1))
SYN_ICMP_V6 = ((1, 1, "EACCES", 6), (1, 4, "ECONNREFUSED", 1), (1, 3, "EHOSTUNREACH", 1))
# ICMP errors a connected UDP socket reports (the fatal column of the same tables).
UDP_ICMP_V4 = ((3, 3, "ECONNREFUSED", 6), (3, 13, "EHOSTUNREACH", 1))
UDP_ICMP_V6 = ((1, 4, "ECONNREFUSED", 6), (1, 1, "EACCES", 1))

SERVER_PORTS = (443, 443, 443, 443, 443, 80, 8080, 5432, 6379, 3306, 9092, 22)
V6_SHARE = 0.15
VLAN_SHARE = 0.10
VLAN_IDS = (100, 200, 310)
LOSS_SHARE = 0.02  # client transfers whose last segment is lost after the tap (RTO repair)

_IP4TCP_TS = struct.Struct("!BBHHHBBH4s4sHHIIHHHHHHII")
_IP4TCP = struct.Struct("!BBHHHBBH4s4sHHIIHHHH")
_IP6TCP_TS = struct.Struct("!IHBB16s16sHHIIHHHHHHII")
_IP6TCP = struct.Struct("!IHBB16s16sHHIIHHHH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIHHHH")
_UDP = struct.Struct("!HHHH")
_REC = struct.Struct("<IIII")
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)

# Payload bytes: a fixed pseudo-random buffer; a stream's byte at position p is
# PAY[(p + salt) % 65536], so a retransmission carries the same bytes as the original. Prefix
# sums of its 16-bit words (at even and at odd offsets) give any slice's checksum in O(1).
_PAY_LEN = 65536
PAY = random.Random(20231114).randbytes(_PAY_LEN + 1600)


def _prefix(offset: int) -> list[int]:
    out = [0]
    acc = 0
    for k in range(offset, len(PAY) - 1, 2):
        acc += (PAY[k] << 8) | PAY[k + 1]
        out.append(acc)
    return out


_PRE = (_prefix(0), _prefix(1))


def pay_sum(o: int, n: int) -> int:
    """Sum of the 16-bit words of PAY[o:o+n] (an odd last byte padded with zero)."""
    pre = _PRE[o & 1]
    k = o >> 1
    s = pre[k + (n >> 1)] - pre[k]
    if n & 1:
        s += PAY[o + n - 1] << 8
    return s


_ADDR_WORDS: dict[bytes, int] = {}


def addr_words(a: bytes) -> int:
    w = _ADDR_WORDS.get(a)
    if w is None:
        w = _ADDR_WORDS[a] = words(a)
    return w


def words(b: bytes) -> int:
    """Sum of the 16-bit words of b (padded), for checksums of the rare, irregular packets."""
    if len(b) & 1:
        b += b"\0"
    return sum(struct.unpack(f"!{len(b) // 2}H", b))


def finish(s: int) -> int:
    """Internet checksum (RFC 1071) from a plain sum of 16-bit words (any size)."""
    m = s % 0xFFFF
    return 0xFFFF - (m or 0xFFFF)


Pkt = tuple[int, bytes, dict[str, Any] | None]  # (time in us, pcap record, truth entry)


def record(t: int, frame: bytes) -> bytes:
    """The pcap record (header and frame) of a frame captured at t (microseconds)."""
    n = len(frame)
    return _REC.pack(t // SEC, t % SEC, n, n) + frame


Flow = Generator[Pkt, None, None]


_T = TypeVar("_T")


def rint(rng: random.Random, a: int, b: int) -> int:
    """Uniform integer in [a, b] (faster than Random.randint; deterministic per seed)."""
    return a + int(rng.random() * (b - a + 1))


def pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    return seq[int(rng.random() * len(seq))]


def _ep(addr: bytes, port: int) -> str:
    ip = ipaddress.ip_address(addr)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


# -- one TCP connection -----------------------------------------------------------------------


class Tcp:
    """Addresses, sequence numbers and header templates of one connection; side 0 is the
    client, side 1 the server. `seg` builds one frame with correct checksums."""

    __slots__ = (
        "addr",
        "dirs",
        "eth",
        "ipid",
        "ipsum",
        "isn",
        "mss",
        "nxt",
        "port",
        "ptsum",
        "rcv",
        "react",
        "retx_left",
        "rng",
        "rto",
        "rtt",
        "salt",
        "spurious",
        "ts",
        "tsoff",
        "ttl",
        "v6",
        "win",
    )

    def __init__(
        self,
        rng: random.Random,
        client: bytes,
        server: bytes,
        cport: int,
        sport: int,
        macs: tuple[bytes, bytes],
        vlan: int | None,
        ts_share: float = 0.85,
        spurious: float = 0.0,
    ) -> None:
        self.rng = rng
        self.v6 = len(client) == 16
        self.addr = (client, server)
        self.port = (cport, sport)
        tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
        etype = b"\x86\xdd" if self.v6 else b"\x08\x00"
        cmac, gmac = macs
        self.eth = (gmac + cmac + tag + etype, cmac + gmac + tag + etype)
        self.ttl = (64, pick(rng, (50, 52, 55, 57, 58, 60)))
        self.isn = (rng.getrandbits(32), rng.getrandbits(32))
        self.nxt = [self.isn[0], self.isn[1]]  # unbounded next sequence number per side
        self.rcv = [0, 0]  # what each side has received: the ACK value it sends
        self.ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        self.tsoff = (rng.getrandbits(32), rng.getrandbits(32))
        self.ts = rng.random() < ts_share
        # Chance that a transfer ends with a spurious retransmission (see transfer), and the
        # retransmissions each side may still make: a healthy connection cut by the end of
        # the capture must never show three (rule data-timeout's threshold).
        self.spurious = spurious
        self.retx_left = [2, 2] if spurious else [1 << 30, 1 << 30]
        self.mss = (1440 if self.v6 else 1460) - (12 if self.ts else 0)
        self.win = (rint(rng, 500, 3000), rint(rng, 500, 2000))
        self.salt = (rint(rng, 0, _PAY_LEN - 1), rint(rng, 0, _PAY_LEN - 1))
        self.rtt = int(min(150 * MS, max(150, rng.lognormvariate(math.log(8 * MS), 1.2))))
        # Delay at the tap between a packet of side i and the other side's reaction to it.
        self.react = (self.rtt, rint(rng, 15, 80))
        self.rto = 200 * MS + self.rtt
        self.ipsum = [0, 0]
        self.ptsum = [0, 0]
        for i in (0, 1):
            a, b = self.addr[i], self.addr[1 - i]
            aw = addr_words(a) + addr_words(b)
            pseudo = aw + 6 + self.port[i] + self.port[1 - i]
            self.ptsum[i] = pseudo + (0x0101 + 0x080A if self.ts else 0)
            if not self.v6:
                self.ipsum[i] = 0x4500 + 0x4000 + (self.ttl[i] << 8) + 6 + aw
        rtt_ms = self.rtt // MS
        self.dirs = tuple(
            (
                self.eth[i],
                self.ptsum[i],
                self.addr[i],
                self.addr[1 - i],
                self.port[i],
                self.port[1 - i],
                self.ttl[i],
                self.salt[i] - self.isn[i] - 1,
                self.win[i],
                self.tsoff[i],
                self.tsoff[1 - i] - rtt_ms,
                self.ipsum[i],
            )
            for i in (0, 1)
        )

    def tsval(self, i: int, t: int) -> int:
        return (t // MS + self.tsoff[i]) & M32

    def seg(
        self,
        i: int,
        flags: int,
        t: int,
        n: int = 0,
        seq: int | None = None,
        ack: int | None = None,
        opts: bool = True,
    ) -> bytes:
        """A segment from side i at time t with n payload bytes at `seq` (default: next)."""
        eth, ptsum, src, dst, sp, dp, ttl, base, win, tso, eco, ipsum = self.dirs[i]
        nxt = self.nxt
        if seq is None:
            s = nxt[i]
            nxt[i] = s + n + (flags & FIN)
        else:
            s = seq
        a = ((self.rcv[i] if ack is None else ack) & M32) if flags & ACK else 0
        if flags & RST and not opts:
            win = 0
        ts = opts and self.ts
        if ts:
            offflags = 0x8000 | flags
            tcplen = 32 + n
            tsv = (t // MS + tso) & M32
            ecr = (t // MS + eco) & M32
            csum = ptsum + tcplen + (s & M32) + a + offflags + win + tsv + ecr
        else:
            offflags = 0x5000 | flags
            tcplen = 20 + n
            csum = ptsum + tcplen + (s & M32) + a + offflags + win
            if self.ts:
                csum -= 0x0101 + 0x080A
        s &= M32
        if n:
            o = (s + base) & 0xFFFF
            payload = PAY[o : o + n]
            pre = _PRE[o & 1]
            k = o >> 1
            csum += pre[k + (n >> 1)] - pre[k]
            if n & 1:
                csum += PAY[o + n - 1] << 8
        else:
            payload = b""
        c = 0xFFFF - (csum % 0xFFFF or 0xFFFF)
        if self.v6:
            if ts:
                hdr = _IP6TCP_TS.pack(
                    0x60000000,
                    tcplen,
                    6,
                    ttl,
                    src,
                    dst,
                    sp,
                    dp,
                    s,
                    a,
                    offflags,
                    win,
                    c,
                    0,
                    0x0101,
                    0x080A,
                    tsv,
                    ecr,
                )
            else:
                hdr = _IP6TCP.pack(
                    0x60000000, tcplen, 6, ttl, src, dst, sp, dp, s, a, offflags, win, c, 0
                )
        else:
            ipids = self.ipid
            ipid = ipids[i] = (ipids[i] + 1) & 0xFFFF
            total = tcplen + 20
            ipc = 0xFFFF - ((ipsum + total + ipid) % 0xFFFF or 0xFFFF)
            if ts:
                hdr = _IP4TCP_TS.pack(
                    0x45,
                    0,
                    total,
                    ipid,
                    0x4000,
                    ttl,
                    6,
                    ipc,
                    src,
                    dst,
                    sp,
                    dp,
                    s,
                    a,
                    offflags,
                    win,
                    c,
                    0,
                    0x0101,
                    0x080A,
                    tsv,
                    ecr,
                )
            else:
                hdr = _IP4TCP.pack(
                    0x45,
                    0,
                    total,
                    ipid,
                    0x4000,
                    ttl,
                    6,
                    ipc,
                    src,
                    dst,
                    sp,
                    dp,
                    s,
                    a,
                    offflags,
                    win,
                    c,
                    0,
                )
        flen = tcplen + len(eth) + (40 if self.v6 else 20)
        return _REC.pack(t // SEC, t % SEC, flen, flen) + eth + hdr + payload

    def syn(self, i: int, t: int) -> bytes:
        """SYN (i = 0, `seq` = ISN) or SYN-ACK (i = 1), options in Linux's order (MSS,
        SACK-permitted, timestamps, NOP, window scale), or Windows' without timestamps."""
        mss = 1440 if self.v6 else 1460
        if self.ts:
            ecr = 0 if i == 0 else self.tsval(0, t - self.rtt)
            opts = struct.pack(
                "!BBHBBBBIIBBBB", 2, 4, mss, 4, 2, 8, 10, self.tsval(i, t), ecr, 1, 3, 3, 7
            )
        else:
            opts = struct.pack("!BBHBBBBBBBB", 2, 4, mss, 1, 3, 3, 8, 1, 1, 4, 2)
        flags = SYN if i == 0 else SYN | ACK
        ack = 0 if i == 0 else (self.isn[0] + 1) & M32
        win = 64240 if i == 0 else 65160
        hdr = _TCP.pack(
            self.port[i],
            self.port[1 - i],
            self.isn[i],
            ack,
            ((20 + len(opts)) << 10) | flags,
            win,
            0,
            0,
        )
        return self._wrap(i, hdr + opts, 6, self.addr[i], self.addr[1 - i], self.ttl[i])

    def raw_rst(self, i: int, seq: int, ack: int | None) -> bytes:
        """A RST as the kernel sends it with no socket (tcp_v4_send_reset): no options, window
        0; RST|ACK when `ack` is given (answer to a segment without ACK), else a bare RST."""
        flags = RST | (ACK if ack is not None else 0)
        hdr = _TCP.pack(
            self.port[i], self.port[1 - i], seq & M32, (ack or 0) & M32, (20 << 10) | flags, 0, 0, 0
        )
        return self._wrap(i, hdr, 6, self.addr[i], self.addr[1 - i], self.ttl[i])

    def _wrap(self, i: int, l4: bytes, proto: int, src: bytes, dst: bytes, ttl: int) -> bytes:
        """IP header and the L4 checksum (at byte 16 for TCP, 6 for UDP, 2 for ICMP) for an
        irregular packet; the Ethernet header of side i's direction."""
        return self.eth[i] + ip_packet(l4, proto, src, dst, ttl, self._next_id(i))

    def _next_id(self, i: int) -> int:
        self.ipid[i] = (self.ipid[i] + 1) & 0xFFFF
        return self.ipid[i]

    def icmp_for(self, i: int, quoted: bytes, router: bytes, typ: int, code: int) -> bytes:
        """An ICMP/ICMPv6 error from `router` to side i quoting `quoted` (a frame side i sent),
        as a Linux router sends it (the whole offending packet, within 576/1280 bytes)."""
        return icmp_error(
            self.eth[1 - i], quoted[len(self.eth[i]) :], router, self.addr[i], typ, code, self.v6
        )


def ip_packet(l4: bytes, proto: int, src: bytes, dst: bytes, ttl: int, ipid: int) -> bytes:
    v6 = len(src) == 16
    aw = addr_words(src) + addr_words(dst)
    pseudo = aw + proto + len(l4)
    pos = {6: 16, 17: 6, 1: 2, 58: 2}[proto]
    csum = finish((pseudo if proto != 1 else 0) + words(l4))
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    l4 = l4[:pos] + struct.pack("!H", csum) + l4[pos + 2 :]
    if v6:
        return _IP6.pack(0x60000000, len(l4), proto, ttl, src, dst) + l4
    total = 20 + len(l4)
    df = 0x4000 if proto == 6 else 0
    ipc = finish(0x4500 + total + ipid + df + (ttl << 8) + proto + aw)
    return _IP4.pack(0x45, 0, total, ipid, df, ttl, proto, ipc, src, dst) + l4


def icmp_error(
    eth: bytes, quoted: bytes, src: bytes, dst: bytes, typ: int, code: int, v6: bool
) -> bytes:
    limit = 1280 - 48 if v6 else 576 - 28
    body = struct.pack("!BBHI", typ, code, 0, 0) + quoted[:limit]
    return eth + ip_packet(body, 58 if v6 else 1, src, dst, 64 if v6 else 254, 0)


# -- the world: hosts, ports, kinds ------------------------------------------------------------


class World:
    def __init__(self, seed: int, frames: int, duration_s: float, steady: bool = False) -> None:
        self.rng = random.Random(seed)
        self.steady = steady
        self.t0 = T0_US  # the capture's start
        self.end_us = T0_US + int(duration_s * SEC)  # about its end
        n_clients = 4000
        self.clients4 = [ipaddress.IPv4Address(0x0A010000 + k).packed for k in range(1, n_clients)]
        self.clients6 = [
            ipaddress.IPv6Address(0xFD000000000000010000000000000000 + k).packed
            for k in range(1, n_clients // 4)
        ]
        self.servers4 = [ipaddress.IPv4Address(0x0AC80000 + k * 7).packed for k in range(1, 300)]
        self.servers6 = [
            ipaddress.IPv6Address(0xFD000000000000C80000000000000000 + k * 7).packed
            for k in range(1, 80)
        ]
        self.dns4 = (
            ipaddress.IPv4Address("10.53.0.53").packed,
            ipaddress.IPv4Address("10.53.0.54").packed,
        )
        self.dns6 = (ipaddress.IPv6Address("fd00:53::53").packed,)
        self.router4 = ipaddress.IPv4Address("10.1.255.254").packed
        self.router6 = ipaddress.IPv6Address("fd00:1::fffe").packed
        self.gw_mac = bytes.fromhex("020000fffffe")
        # Client ports: one counter per client address, never reused within a capture.
        self.next_port: dict[bytes, int] = {}
        kinds = {**HEALTHY_WEIGHTS, **FAIL_WEIGHTS}
        self.kind_names = list(kinds)
        self.kind_cum = []
        acc = 0.0
        for w in kinds.values():
            acc += w
            self.kind_cum.append(acc)
        healthy = list(HEALTHY_WEIGHTS.values())
        self.healthy_cum = [sum(healthy[: i + 1]) for i in range(len(healthy))]
        self.spawned = 0
        self.forced = 0  # flows that may fail, spawned so far (see pick_kind)
        # Arrival rate chosen so that N frames span about `duration_s` seconds (in steady
        # state, with the long-lived connections' share of them).
        self.rate = frames / (duration_s * 20.0) * (1 - PERSISTENT_SHARE if steady else 1)
        self.persistent = (
            max(
                len(MIDSTREAM_FAIL_KINDS),
                round(PERSISTENT_SHARE * frames / duration_s / PERSISTENT_FPS),
            )
            if steady
            else 0
        )
        self.truth: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def pick_kind(self, healthy_only: bool = False) -> str:
        self.spawned += 1
        if healthy_only:
            x = self.rng.random() * self.healthy_cum[-1]
            names = list(HEALTHY_WEIGHTS)
            return next(
                (n for n, c in zip(names, self.healthy_cum, strict=True) if x < c), names[-1]
            )
        k = self.forced
        self.forced += 1
        # Every failure kind appears once among the first 50 flows (slow ones first), so that
        # small captures have them all.
        if k % 5 == 2 and k // 5 < len(FORCED_ORDER):
            return FORCED_ORDER[k // 5]
        x = self.rng.random() * self.kind_cum[-1]
        for name, c in zip(self.kind_names, self.kind_cum, strict=True):
            if x < c:
                return name
        return self.kind_names[-1]

    def endpoints(self, v6: bool, udp: bool) -> tuple[bytes, bytes, int, int]:
        rng = self.rng
        client = pick(rng, self.clients6 if v6 else self.clients4)
        if udp:
            server = pick(rng, self.dns6 if v6 else self.dns4)
            sport = 53
        else:
            server = pick(rng, self.servers6 if v6 else self.servers4)
            sport = pick(rng, SERVER_PORTS)
        p = self.next_port.get(client)
        if p is None:
            p = rint(rng, 32768, 60999)
        self.next_port[client] = 32768 if p >= 60999 else p + 1
        return client, server, p, sport

    def spawn(self, t: int) -> Flow:
        # In steady state, what starts before the capture is healthy: a failure whose first
        # frames went unseen could not be told (nor listed in the truth) reliably.
        kind = self.pick_kind(self.steady and t < self.t0)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        rng = self.rng
        v6 = rng.random() < V6_SHARE
        vlan = pick(rng, VLAN_IDS) if rng.random() < VLAN_SHARE else None
        udp = kind.startswith("udp")
        client, server, cport, sport = self.endpoints(v6, udp)
        cmac = b"\x02\x00" + client[-4:]
        if udp:
            return udp_flow(self, kind, t, client, server, cport, sport, (cmac, self.gw_mac), vlan)
        return tcp_flow(self, self._tcp(client, server, cport, sport, cmac, vlan), kind, t)

    def _tcp(
        self, client: bytes, server: bytes, cport: int, sport: int, cmac: bytes, vlan: int | None
    ) -> Tcp:
        macs = (cmac, self.gw_mac)
        if not self.steady:
            return Tcp(self.rng, client, server, cport, sport, macs, vlan)
        return Tcp(
            self.rng, client, server, cport, sport, macs, vlan, STEADY_TS_SHARE, STEADY_SPURIOUS
        )

    def spawn_persistent(self, k: int) -> tuple[int, Flow]:
        """The k-th long-lived connection: when it opens (before the capture) and its flow.
        The first ones fail early in the capture, one of each MIDSTREAM_FAIL_KINDS."""
        rng = self.rng
        if k < len(MIDSTREAM_FAIL_KINDS):
            fate = MIDSTREAM_FAIL_KINDS[k]
            fail_at = self.t0 + rint(rng, SEC // 2, 3 * SEC)
        elif rng.random() < PERSISTENT_FAIL:
            fate = pick(rng, MIDSTREAM_FAIL_KINDS)
            fail_at = rint(rng, self.t0, self.end_us)
        else:
            fate, fail_at = "tcp-ok", 0
        name = "tcp-persistent" if fate == "tcp-ok" else f"tcp-persistent-{fate}"
        self.counts[name] = self.counts.get(name, 0) + 1
        self.spawned += 1
        start = self.t0 - rint(rng, SEC // 2, WARMUP_US - SEC)
        v6 = rng.random() < V6_SHARE
        vlan = pick(rng, VLAN_IDS) if rng.random() < VLAN_SHARE else None
        client, server, cport, sport = self.endpoints(v6, False)
        c = self._tcp(client, server, cport, sport, b"\x02\x00" + client[-4:], vlan)
        return start, persistent_flow(self, c, fate, start, fail_at)

    def fail(
        self,
        proto: str,
        client: str,
        server: str,
        kind: str,
        side: str,
        call: str,
        errno: str,
        **extra: Any,
    ) -> dict[str, Any]:
        """A truth entry; the writer adds the frame number once the frame is written."""
        d = {
            "proto": proto,
            "client": client,
            "server": server,
            "side": side,
            "errno": errno,
            "call": call,
            "kind": kind,
        }
        d.update(extra)
        return d


def _pick(rng: random.Random, table: tuple[tuple[int, int, str, int], ...]) -> tuple[int, int, str]:
    total = sum(w for *_, w in table)
    x = rng.random() * total
    for typ, code, errno, w in table:
        if x < w:
            return typ, code, errno
        x -= w
    typ, code, errno, _ = table[-1]
    return typ, code, errno


# -- TCP flows ---------------------------------------------------------------------------------


def transfer(
    c: Tcp, t: int, i: int, n: int, reply_after: int | None, lossy: bool = False
) -> Generator[Pkt, None, tuple[int, int]]:
    """Side i sends n bytes in slow-start rounds; the other side ACKs every second segment,
    and the last odd one after 40 ms unless it sends data within `reply_after` (piggyback).
    With `lossy`, a client's last odd segment is sometimes lost after the tap and sent again
    one RTO later. With `c.spurious`, the last segment is sometimes sent again one RTO later
    though nothing was lost: its ACK had passed the tap and not yet reached the sender, or
    the receiver had not acknowledged it yet (a reply slower than the RTO); the receiver
    answers the copy with an ACK. Returns (time of the last packet, time the receiver had
    everything, as seen at the tap)."""
    j = 1 - i
    mss = c.mss
    cwnd = 10
    left = n
    last = t
    gap = 12 if mss > 1000 else 2
    lose_tail = lossy and i == 0 and c.rng.random() < LOSS_SHARE and c.retx_left[0] > 0
    if lose_tail:
        c.retx_left[0] -= 1
    seg = c.seg
    while True:
        plan: list[tuple[int, int, int]] = []  # (time, 0 data / 1 ack, size or ack value)
        tt = t
        k = 0
        end = c.nxt[i]
        while left > 0 and k < cwnd:
            size = min(mss, left)
            left -= size
            k += 1
            end += size
            plan.append((tt, 0, size))
            if k % 2 == 0:
                plan.append((tt + c.react[i], 1, end))
            tt += gap + size // 128
        last_data = tt - gap - size // 128
        cwnd *= 2
        plan.sort()
        lost_seq = None
        for when, what, val in plan:
            if what == 0:
                psh = PSH if left == 0 and when == last_data else 0
                if lose_tail and psh and k % 2 == 1:
                    lost_seq = c.nxt[i]
                yield when, seg(i, ACK | psh, when, val), None
            else:
                yield when, seg(j, ACK, when, ack=val), None
            last = when
        if lost_seq is not None:
            # Tail loss after the tap: no ACK comes, the sender retransmits after its RTO.
            when = max(last, last_data + c.rto)
            yield when, seg(i, ACK | PSH, when, c.nxt[i] - lost_seq, seq=lost_seq), None
            last = last_data = when
        c.rcv[j] = c.nxt[i]
        recv_at = last_data + c.react[i]
        if left == 0:
            if k % 2 == 1 and (reply_after is None or reply_after > 40 * MS):
                when = max(last, recv_at + 40 * MS)
                yield when, seg(j, ACK, when), None
                last = when
            if (
                c.spurious
                and lost_seq is None
                and c.retx_left[i] > 0
                and c.rng.random() < c.spurious
            ):
                c.retx_left[i] -= 1
                when = max(last, last_data + c.rto)
                yield when, seg(i, ACK | PSH, when, size, seq=c.nxt[i] - size), None
                when += c.react[i]
                yield when, seg(j, ACK, when), None
                last = recv_at = when
            return last, recv_at
        t = max(last, recv_at) + c.react[j]


def _size(rng: random.Random, mean: float, cap: int) -> int:
    return max(1, min(cap, int(rng.expovariate(1.0 / mean))))


def handshake(c: Tcp, t: int) -> Generator[Pkt, None, int]:
    yield t, record(t, c.syn(0, t)), None
    c.nxt[0] += 1
    t += c.rtt
    yield t, record(t, c.syn(1, t)), None
    c.nxt[1] += 1
    c.rcv = [c.nxt[1], c.nxt[0]]
    t += c.react[1]
    yield t, c.seg(0, ACK, t), None
    return t


def close(c: Tcp, t: int, first: int) -> Generator[Pkt, None, None]:
    """Orderly close: `first` sends FIN, the other side ACKs and sends its own FIN (or one
    FIN|ACK doing both), the first ACKs it."""
    other = 1 - first
    rng = c.rng
    yield t, c.seg(first, FIN | ACK, t), None
    c.rcv[other] = c.nxt[first]
    t += c.react[first]
    if rng.random() < 0.5:
        yield t, c.seg(other, ACK, t), None
        t += rint(rng, 20, 3000)
    yield t, c.seg(other, FIN | ACK, t), None
    c.rcv[first] = c.nxt[other]
    t += c.react[other]
    yield t, c.seg(first, ACK, t), None


def think(rng: random.Random) -> int:
    return int(rng.expovariate(1 / (700 * MS))) + 200


def tcp_flow(w: World, c: Tcp, kind: str, t: int) -> Flow:
    rng = c.rng
    cl, sv = _ep(c.addr[0], c.port[0]), _ep(c.addr[1], c.port[1])

    def fail(side: int, call: str, errno: str, **extra: Any) -> dict[str, Any]:
        return w.fail("tcp", cl, sv, kind, ("client", "server")[side], call, errno, **extra)

    # -- failures before or at the handshake
    if kind == "refused":
        syn = c.syn(0, t)
        yield t, record(t, syn), None
        t += c.rtt
        yield t, record(t, c.raw_rst(1, 0, c.isn[0] + 1)), fail(0, "connect", "ECONNREFUSED")
        return
    if kind == "syn-icmp":
        typ, code, errno = _pick(rng, SYN_ICMP_V6 if c.v6 else SYN_ICMP_V4)
        syn = c.syn(0, t)
        yield t, record(t, syn), None
        t += c.rtt // 3 + 100
        icmp = c.icmp_for(0, syn, w.router6 if c.v6 else w.router4, typ, code)
        yield t, record(t, icmp), fail(0, "connect", errno, icmp=f"{typ}/{code}")
        return
    if kind == "syn-timeout":
        # Linux 6.x: tcp_syn_linear_timeouts=4 retransmissions 1 s apart, then backoff; no
        # answer ever; tcp_syn_retries=6 ends it (the socket gives up silently).
        yield t, record(t, c.syn(0, t)), None
        for k, gap in enumerate((1, 1, 1, 1, 2, 4)):
            t += gap * SEC
            mark = fail(0, "connect", "ETIMEDOUT") if k == 0 else None
            yield t, record(t, c.syn(0, t)), mark
        return

    t = yield from handshake(c, t)

    if kind == "rst-after-handshake":
        # The server accepts and aborts before any data (no backend, connection limit).
        t += c.rtt + rint(rng, 100, 5 * MS)
        yield t, c.seg(1, RST | ACK, t), fail(0, "recv", "ECONNRESET")
        return

    n_ex = 1 + min(30, int(rng.expovariate(1 / 2.5)))
    if kind in ("epipe", "rst-established", "data-timeout", "keepalive-timeout"):
        n_ex = max(1, n_ex)
    elif kind == "close-unread":
        n_ex = rint(rng, 0, 2)
    t += rint(rng, 10, 200)
    for k in range(n_ex):
        # One request (client) and its response (server), then the client's think time.
        th = think(rng)
        q = _size(rng, 400, 20000)
        r = _size(rng, 3500, 400_000) if rng.random() < 0.9 else _size(rng, 600, 1400)
        proc = int(rng.expovariate(1 / (15 * MS))) + 50
        last, recv = yield from transfer(c, t, 0, q, proc, lossy=True)
        t = max(last, recv + proc)
        last, _ = yield from transfer(c, t, 1, r, th if k + 1 < n_ex else 10 * SEC)
        t = last + th
    yield from ending(w, c, kind, t)


def ending(w: World, c: Tcp, kind: str, t: int) -> Flow:
    """How a connection past its exchanges ends at t: healthy (`tcp-ok`, `tcp-open`) or one of
    the failures of an established connection."""
    rng = c.rng
    cl, sv = _ep(c.addr[0], c.port[0]), _ep(c.addr[1], c.port[1])

    def fail(side: int, call: str, errno: str, **extra: Any) -> dict[str, Any]:
        return w.fail("tcp", cl, sv, kind, ("client", "server")[side], call, errno, **extra)

    if kind == "tcp-ok":
        how = rng.random()
        if how < 0.5:
            yield from close(c, t, 0)
        elif how < 0.9:
            yield from close(c, t, 1)
        else:
            # Half-close: the client sends its last request and shuts down its side; the
            # server reads EOF, still answers, then closes.
            q = _size(rng, 300, 3000)
            last, recv = yield from transfer(c, t, 0, q, 5 * MS)
            t = last + rint(rng, 5, 50)
            yield t, c.seg(0, FIN | ACK, t), None
            c.rcv[1] = c.nxt[0]
            t = max(t + c.react[0], recv + 2 * MS)
            last, _ = yield from transfer(c, t, 1, _size(rng, 3000, 50000), None)
            # The server's FIN ends it; the client, whose side is already shut, only ACKs.
            t = last + rint(rng, 50, 500)
            yield t, c.seg(1, FIN | ACK, t), None
            c.rcv[0] = c.nxt[1]
            t += c.react[1]
            yield t, c.seg(0, ACK, t), None
        return
    if kind == "tcp-open":
        # Idle, kept open; keepalive probes (seq = snd.una - 1) answered by the peer.
        while rng.random() < 0.6:
            prober = rint(rng, 0, 1)
            t += rint(rng, 5, 30) * SEC
            yield t, c.seg(prober, ACK, t, seq=c.nxt[prober] - 1), None
            t += c.react[prober]
            yield t, c.seg(1 - prober, ACK, t), None
        return
    if kind == "rst-established":
        if rng.random() < 0.6:
            # The server lost the connection (process killed, state gone): the client's next
            # request draws a bare RST with seq = the client's ACK.
            q = _size(rng, 300, 1400)
            yield t, c.seg(0, ACK | PSH, t, q), None
            c.rcv[1] = c.nxt[0]
            t += c.rtt
            yield t, record(t, c.raw_rst(1, c.nxt[1], None)), fail(0, "recv", "ECONNRESET")
        else:
            # The client aborts (SO_LINGER 0 close after reading everything): RST|ACK.
            yield t, c.seg(0, RST | ACK, t), fail(1, "recv", "ECONNRESET")
        return
    if kind == "epipe":
        closer = 1 if rng.random() < 0.8 else 0
        writer = 1 - closer
        yield t, c.seg(closer, FIN | ACK, t), None
        c.rcv[writer] = c.nxt[closer]
        t += c.react[closer]
        yield t, c.seg(writer, ACK, t), None
        t += rint(rng, 1 * MS, 2 * SEC)
        q = _size(rng, 300, 1400)
        yield t, c.seg(writer, ACK | PSH, t, q), None
        t += c.react[writer]
        mark = fail(writer, "send", "EPIPE")
        yield t, record(t, c.raw_rst(closer, c.nxt[closer], None)), mark
        return
    if kind == "close-unread":
        if rng.random() < 0.6:
            # The server answers early (413) and closes without reading the rest of the body.
            last, recv = yield from transfer(c, t, 0, _size(rng, 400, 1400), 2 * MS)
            t = max(last, recv + 2 * MS)
            last, _ = yield from transfer(c, t, 1, _size(rng, 200, 1400), 0)
            t = last + 20
            yield t, c.seg(0, ACK | PSH, t, _size(rng, 1000, c.mss)), None
            c.rcv[1] = c.nxt[0]
            t += c.rtt
            yield t, c.seg(1, RST | ACK, t), fail(0, "recv", "ECONNRESET")
        else:
            # The client closes while the server's answer is still unread: RST|ACK.
            last, recv = yield from transfer(c, t, 0, _size(rng, 400, 1400), 2 * MS)
            t = max(last, recv + 2 * MS)
            last, _ = yield from transfer(c, t, 1, _size(rng, 3000, 30000), None)
            t = last + rint(rng, 100, 50 * MS)
            yield t, c.seg(0, RST | ACK, t), fail(1, "recv", "ECONNRESET")
        return
    if kind == "data-timeout":
        # The peer (or the path) goes silent: one or two new segments, then the first is
        # retransmitted with exponential backoff (RTO 200 ms + RTT, max 120 s,
        # tcp_retries2 = 15) until the end of the capture.
        sender = 0 if rng.random() < 0.7 else 1
        seq = c.nxt[sender]
        sizes = [_size(rng, 800, c.mss) for _ in range(rint(rng, 1, 2))]
        for sz in sizes:
            yield t, c.seg(sender, ACK | PSH, t, sz), None
            t += 15
        rto = c.rto
        for k in range(15):
            t += rto
            rto = min(rto * 2, 120 * SEC)
            mark = fail(sender, "recv", "ETIMEDOUT") if k == 2 else None
            yield t, c.seg(sender, ACK | PSH, t, sizes[0], seq=seq), mark
        return
    if kind == "keepalive-timeout":
        # TCP_KEEPIDLE / KEEPINTVL / KEEPCNT set by the application; the peer has vanished.
        prober = rint(rng, 0, 1)
        t += rint(rng, 5, 20) * SEC
        intvl = rint(rng, 1, 5) * SEC
        cnt = rint(rng, 3, 6)
        for k in range(cnt):
            mark = fail(prober, "recv", "ETIMEDOUT") if k == 2 else None
            yield t, c.seg(prober, ACK, t, seq=c.nxt[prober] - 1), mark
            t += intvl
        yield t, c.seg(prober, RST | ACK, t), None
        return
    raise ValueError(kind)


def persistent_flow(w: World, c: Tcp, fate: str, t: int, fail_at: int) -> Flow:
    """A long-lived connection (a connection pool's, HTTP keep-alive) opened at t, before the
    capture starts: request/response exchanges with think times until the capture ends, or
    now and then an orderly close. With `fate` a failure kind, the first exchange to start
    at or after `fail_at` (inside the capture) is its last and the failure follows it, so
    that the capture shows both sides' data acknowledged before it (a keepalive probe is
    told by that, see Connection._on_segment)."""
    rng = c.rng
    t = yield from handshake(c, t)
    t += rint(rng, 10, 200)
    while True:
        final = fate != "tcp-ok" and t >= fail_at
        closing = not final and t >= w.t0 and rng.random() < PERSISTENT_CLOSE
        q = _size(rng, 400, 8000)
        r = _size(rng, 2500, 100_000)
        proc = int(rng.expovariate(1 / (15 * MS))) + 50
        th = int(rng.expovariate(1 / PERSISTENT_THINK_US)) + 200
        last, recv = yield from transfer(c, t, 0, q, proc, lossy=True)
        t = max(last, recv + proc)
        last, _ = yield from transfer(c, t, 1, r, 10 * SEC if final or closing else th)
        t = last + th
        if final:
            yield from ending(w, c, fate, t)
            return
        if closing:
            yield from close(c, t, rint(rng, 0, 1))
            return


# -- UDP flows ---------------------------------------------------------------------------------


def dns_query(rng: random.Random, qid: int) -> tuple[bytes, bytes]:
    name = b"".join(
        bytes([len(p)]) + p for p in (f"h{rint(rng, 0, 9999)}".encode(), b"example", b"com")
    )
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + b"\0" + struct.pack("!HH", 1, 1)
    ans = struct.pack("!HHHIH4s", 0xC00C, 1, 1, 300, 4, rng.randbytes(4))
    r = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q[12:] + ans
    return q, r


def udp_flow(
    w: World,
    kind: str,
    t: int,
    client: bytes,
    server: bytes,
    cport: int,
    sport: int,
    macs: tuple[bytes, bytes],
    vlan: int | None,
) -> Flow:
    rng = w.rng
    v6 = len(client) == 16
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    etype = b"\x86\xdd" if v6 else b"\x08\x00"
    cmac, gmac = macs
    eth = (gmac + cmac + tag + etype, cmac + gmac + tag + etype)
    rtt = rint(rng, 300, 30 * MS)
    ipid = rng.getrandbits(16)

    def dgram(i: int, payload: bytes) -> bytes:
        nonlocal ipid
        ipid = (ipid + 1) & 0xFFFF
        src, dst = (client, server) if i == 0 else (server, client)
        sp, dp = (cport, sport) if i == 0 else (sport, cport)
        l4 = _UDP.pack(sp, dp, 8 + len(payload), 0) + payload
        return eth[i] + ip_packet(l4, 17, src, dst, 64, ipid)

    cl, sv = _ep(client, cport), _ep(server, sport)
    for _ in range(rint(rng, 1, 2)):
        q, r = dns_query(rng, rng.getrandbits(16))
        query = dgram(0, q)
        yield t, record(t, query), None
        t += rtt
        if kind == "udp-ok":
            yield t, record(t, dgram(1, r)), None
        elif kind == "udp-icmp":
            typ, code, errno = _pick(rng, UDP_ICMP_V6 if v6 else UDP_ICMP_V4)
            src = server if (typ, code) in ((3, 3), (1, 4)) else (w.router6 if v6 else w.router4)
            icmp = icmp_error(eth[1], query[len(eth[0]) :], src, client, typ, code, v6)
            entry = w.fail("udp", cl, sv, kind, "client", "recv", errno, icmp=f"{typ}/{code}")
            yield t, record(t, icmp), entry
            return
        else:  # udp-icmp-nonfatal: host unreachable is not reported to UDP sockets on Linux
            typ, code = (1, 3) if v6 else (3, 1)
            router = w.router6 if v6 else w.router4
            yield (
                t,
                record(t, icmp_error(eth[1], query[len(eth[0]) :], router, client, typ, code, v6)),
                None,
            )
            return
        t += rint(rng, 1 * MS, 2 * SEC)


# -- writer ------------------------------------------------------------------------------------


def generate(
    out: Path,
    frames: int,
    seed: int = 1,
    duration_s: float | None = None,
    steady: bool = False,
) -> dict[str, Any]:
    """Write `frames` frames to `out` and the truth next to it; returns the truth. With
    `steady`, the capture begins in steady state (see the module's docstring)."""
    if duration_s is None:
        duration_s = max(60.0, frames / 25_000)
    w = World(seed, frames, duration_s, steady)
    rng = w.rng
    # The traffic starts at `base`; in steady state, frames before T0_US are not written.
    base = T0_US - WARMUP_US if steady else T0_US
    # Time slices: every flow due in the current slice runs until its next packet falls in a
    # later slice, where it waits (with that packet); the slice's packets are then sorted by
    # time (stable: ties keep their deterministic insertion order) and written.
    slice_us = 20 * MS
    due: dict[int, list[tuple[Flow, Pkt]]] = {}
    written = 0
    next_arrival = base
    mean_gap_us = SEC / w.rate
    truth = w.truth
    peak = 0
    open_flows = 0
    last_t = T0_US
    k = 0
    by_time = operator.itemgetter(0)
    for n in range(w.persistent):
        start, flow = w.spawn_persistent(n)
        due.setdefault((start - base) // slice_us, []).append((flow, None))
        open_flows += 1
    with open(out, "wb") as f:
        f.write(_PCAP_HEADER)
        while written < frames:
            end = base + (k + 1) * slice_us
            cur: list[Pkt] = []
            marked: list[Pkt] = []
            add = cur.append
            runnable: list[tuple[Flow, Pkt | None]] = list(due.pop(k, ()))
            while next_arrival < end:
                runnable.append((w.spawn(next_arrival), None))
                open_flows += 1
                next_arrival += int(rng.expovariate(1.0) * mean_gap_us) + 1
            for flow, held in runnable:
                if held is not None:
                    add(held)
                    if held[2] is not None:
                        marked.append(held)
                for item in flow:
                    if item[0] >= end:
                        due.setdefault((item[0] - base) // slice_us, []).append((flow, item))
                        break
                    add(item)
                    if item[2] is not None:
                        marked.append(item)
                else:
                    open_flows -= 1
            if open_flows > peak:
                peak = open_flows
            k += 1
            if end - slice_us < T0_US:
                cur = [item for item in cur if item[0] >= T0_US]  # before the capture
            if not cur:
                continue
            cur.sort(key=by_time)
            room = frames - written
            if len(cur) > room:
                del cur[room:]
            for item in marked:
                for pos in range(len(cur)):
                    if cur[pos] is item:
                        entry = item[2]
                        assert entry is not None
                        entry["frame"] = written + pos + 1
                        truth.append(entry)
                        break
            f.write(b"".join([item[1] for item in cur]))
            written += len(cur)
            last_t = cur[-1][0]
    doc = {
        "schema": "pcapdiag.bench-truth/v1",
        "generator": "bench/generate.py",
        "seed": seed,
        "frames": written,
        "first_time_us": T0_US,
        "last_time_us": last_t,
        "flows_started": w.spawned,
        "flows_by_kind": dict(sorted(w.counts.items())),
        "peak_open_flows": peak,
        "failures": truth,
    }
    if steady:
        doc["steady_state"] = {"warmup_us": WARMUP_US, "long_lived": w.persistent}
    truth_path(out).write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def truth_path(pcap: Path) -> Path:
    name = pcap.name[:-5] if pcap.name.endswith(".pcap") else pcap.name
    return pcap.with_name(name + ".truth.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, required=True, help="exact number of frames")
    ap.add_argument("--out", type=Path, required=True, help="pcap file to write")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--duration",
        type=float,
        default=None,
        help="approximate capture length in seconds (default max(60, N/25000))",
    )
    ap.add_argument(
        "--steady-state",
        action="store_true",
        help="begin in the middle of the traffic: thousands of long-lived connections already "
        "open, a third of the connections without timestamps, spurious retransmissions",
    )
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error("--frames must be at least 1")
    start = time.perf_counter()
    doc = generate(args.out, args.frames, args.seed, args.duration, args.steady_state)
    took = time.perf_counter() - start
    span = (doc["last_time_us"] - doc["first_time_us"]) / SEC
    print(
        f"{args.out}: {doc['frames']} frames, {span:.1f} s of traffic, {doc['flows_started']} "
        f"flows (peak {doc['peak_open_flows']} open), {len(doc['failures'])} failures; "
        f"{took:.1f} s ({doc['frames'] / took:,.0f} frames/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
