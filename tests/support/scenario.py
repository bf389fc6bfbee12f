"""Build small test captures packet by packet with scapy, with correct sequence numbers.

A `Talk` plays one TCP connection between a client and a server: each call appends one packet
and keeps both sides' seq/ack the way a real stack would, so a test only writes what differs
from the textbook (a wrong ACK, a RST in the wrong place, a missing answer).
Scapy is used only here, to build test inputs; it is never on pcapdiag's analysis path.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z: a fixed start so captures are byte-identical
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"


@dataclass
class Talk:
    client: str = "10.0.0.1"
    server: str = "10.0.0.2"
    cport: int = 40000
    sport: int = 80
    cisn: int = 1000
    sisn: int = 5000
    # TTL (hop limit) each side's packets are captured with: 64 is what Linux, BSD and macOS
    # send, 128 Windows; less says a router lies between the sender and the capture point.
    client_ttl: int = 64
    server_ttl: int = 64
    # Options of every SYN and SYN-ACK that gives none (default: MSS, SACK permitted, window
    # scale, in an order no stack uses, so that no platform is inferred from it).
    syn_options: list[tuple[str, object]] | None = None
    t: float = T0
    packets: list[Packet] = field(default_factory=list)
    # next sequence number each side will send, and the last ACK value each side sent
    nxt: dict[str, int] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nxt = {"c": self.cisn, "s": self.sisn}
        self.acked = {"c": 0, "s": 0}

    @property
    def v6(self) -> bool:
        return ":" in self.client

    def _ip(self, frm: str, ip_id: int | None = None) -> Packet:
        """IP IDs count with the frames (one host-wide counter, as Windows keeps) unless
        `ip_id` is given."""
        src, dst = (self.client, self.server) if frm == "c" else (self.server, self.client)
        ttl = self.client_ttl if frm == "c" else self.server_ttl
        if self.v6:
            return IPv6(src=src, dst=dst, hlim=ttl)
        return IP(src=src, dst=dst, ttl=ttl, id=len(self.packets) + 1 if ip_id is None else ip_id)

    def _ether(self, frm: str) -> Packet:
        return Ether(
            src=CLIENT_MAC if frm == "c" else SERVER_MAC,
            dst=SERVER_MAC if frm == "c" else CLIENT_MAC,
        )

    def _emit(self, pkt: Packet, dt: float) -> Packet:
        self.t += dt
        pkt.time = self.t
        self.packets.append(pkt)
        return pkt

    def tcp(
        self,
        frm: str,
        flags: str,
        data: bytes = b"",
        *,
        dt: float = 0.001,
        seq: int | None = None,
        ack: int | None = None,
        window: int = 64240,
        options: list[tuple[str, object]] | None = None,
        advance: bool = True,
        ip_id: int | None = None,
    ) -> Packet:
        """One segment from 'c' (client) or 's' (server). seq/ack default to the textbook
        values; `advance=False` sends without moving the sender's next sequence number (used
        for retransmissions)."""
        other = "s" if frm == "c" else "c"
        s = self.nxt[frm] if seq is None else seq
        a = ack if ack is not None else (self.nxt[other] if "A" in flags else 0)
        sport, dport = (self.cport, self.sport) if frm == "c" else (self.sport, self.cport)
        if options is None and "S" in flags:
            options = self.syn_options or [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
        seg = TCP(
            sport=sport,
            dport=dport,
            seq=s % 2**32,
            ack=a % 2**32,
            flags=flags,
            window=window,
            options=options or [],
        )
        pkt = self._ether(frm) / self._ip(frm, ip_id) / seg
        if data:
            pkt = pkt / Raw(load=data)
        if advance and seq is None:
            self.nxt[frm] = s + len(data) + (1 if "S" in flags else 0) + (1 if "F" in flags else 0)
        if "A" in flags:
            self.acked[frm] = a
        return self._emit(pkt, dt)

    def handshake(self, dt: float = 0.001) -> None:
        self.tcp("c", "S", dt=dt)
        self.tcp("s", "SA", dt=dt)
        self.tcp("c", "A", dt=dt, options=[])

    def icmp_error(
        self,
        quoting: Packet,
        *,
        router: str,
        icmp_type: int,
        code: int,
        dt: float = 0.001,
        quote_seq: int | None = None,
    ) -> Packet:
        """An ICMP/ICMPv6 error sent by `router` to the sender of `quoting`, quoting it the
        way a router does (IP header plus the first 8 bytes of the transport header)."""
        inner = quoting.payload  # strip Ether
        frm_client = inner.src == self.client
        dst = inner.src
        l4 = inner.payload
        if quote_seq is not None:  # a quote that does not match what was sent (a stale one)
            l4 = l4.copy()
            l4.seq = quote_seq
        # RFC 792 / RFC 1812 4.3.2.3: the IP header as sent plus the first 8 bytes of the
        # transport header (ports, and for TCP the sequence number), nothing invented.
        ip_header = bytes(inner)[: len(bytes(inner)) - len(bytes(inner.payload))]
        quote = ip_header + bytes(l4)[:8]
        if self.v6:
            if icmp_type != 1:
                raise ValueError("only ICMPv6 destination unreachable is built here")
            pkt = IPv6(src=router, dst=dst, hlim=64) / ICMPv6DestUnreach(code=code) / Raw(quote)
        else:
            pkt = IP(src=router, dst=dst, ttl=64) / ICMP(type=icmp_type, code=code) / Raw(quote)
        ether = Ether(
            src=SERVER_MAC if frm_client else CLIENT_MAC,
            dst=CLIENT_MAC if frm_client else SERVER_MAC,
        )
        return self._emit(ether / pkt, dt)

    def udp(self, frm: str, data: bytes, dt: float = 0.001) -> Packet:
        sport, dport = (self.cport, self.sport) if frm == "c" else (self.sport, self.cport)
        pkt = self._ether(frm) / self._ip(frm) / UDP(sport=sport, dport=dport) / Raw(load=data)
        return self._emit(pkt, dt)

    def wait(self, seconds: float) -> None:
        self.t += seconds

    @classmethod
    def merged(cls, talks: list[Talk]) -> Talk:
        """Several connections' packets as one capture, in time order."""
        out = cls()
        out.packets = sorted((p for t in talks for p in t.packets), key=lambda p: float(p.time))
        return out

    def write(self, path: Path) -> None:
        """A pcap file; gzip-compressed when `path` ends in .gz (no name, time 0 in the gzip
        header, so that the same packets give the same bytes)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix != ".gz":
            wrpcap(str(path), self.packets)
            return
        plain = path.with_suffix("")
        wrpcap(str(plain), self.packets)
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        ):
            gz.write(plain.read_bytes())
        plain.unlink()


def write_merged(path: Path, talks: list[Talk]) -> str:
    """Talk.merged(talks) written to `path`; the path as a string (what analyze() takes)."""
    Talk.merged(talks).write(path)
    return str(path)
