"""Decoded packets: what the decoder hands to the tracker. Slotted, no behaviour.

They are treated as immutable but are not `frozen` dataclasses: a frozen dataclass sets each
field through object.__setattr__, which made creating one six times slower (1.5 us against
0.25 us for 14 fields, measured with timeit), and one is created for every frame.

Addresses are raw bytes (4 bytes for IPv4, 16 for IPv6): they are hashed per packet, and turned
into text only when a report is written (see `format_addr`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# TCP header flag bits (RFC 9293 section 3.1, RFC 3168 for ECE/CWR).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


@dataclass(slots=True)
class TcpOptions:
    """The TCP options the tracker needs (RFC 9293 MSS, RFC 7323 window scale and timestamps,
    RFC 2018 SACK)."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None
    sack_blocks: tuple[tuple[int, int], ...] = ()
    # The options in the order the sender wrote them, one letter each (M mss, N nop, W window
    # scale, S SACK permitted, K SACK blocks, T timestamps, E end of list, ? other): the
    # layout of a SYN tells operating systems apart (p0f's "olayout").
    layout: str = ""


@dataclass(slots=True)
class Segment:
    """A TCP segment as it appeared on the wire."""

    frame: int
    ts_ns: int
    family: int  # 4 or 6
    src: bytes
    dst: bytes
    ttl: int  # IPv4 TTL or IPv6 hop limit
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int  # as in the header, not yet scaled
    payload_len: int  # from the IP length fields, not from the captured length
    options: TcpOptions | None = None
    # A SYN (or SYN-ACK) captured whole whose TCP checksum is wrong: on the sending host this
    # is checksum offload (the NIC fills it in after the capture). Checked on SYNs only, which
    # the general decoder reads; False for every other segment.
    bad_checksum: bool = False
    # IPv4 Identification (-1: IPv6) and Don't Fragment bit (False for IPv6): with the TTL
    # and the options they tell a RST its claimed sender's stack made from one forged on the
    # way (track/fingerprint.py).
    ip_id: int = -1
    df: bool = False
    # TSval of the RFC 7323 timestamps option (-1: none). Every decoder reads it: the fast
    # paths from the layout nearly every stack writes (NOP, NOP, timestamps first), handing
    # any other layout to the general decoder.
    ts_val: int = -1


@dataclass(slots=True)
class Datagram:
    """A UDP datagram."""

    frame: int
    ts_ns: int
    family: int
    src: bytes
    dst: bytes
    ttl: int
    sport: int
    dport: int
    payload_len: int


@dataclass(slots=True)
class Quoted:
    """The start of the IP datagram quoted inside an ICMP or ICMPv6 error (RFC 792, RFC 4443)."""

    family: int
    src: bytes
    dst: bytes
    proto: int  # 6 TCP, 17 UDP, anything else
    sport: int | None = None
    dport: int | None = None
    seq: int | None = None  # TCP sequence number, when the quote is long enough


@dataclass(slots=True)
class IcmpError:
    """An ICMP (v4) or ICMPv6 error message that quotes a datagram."""

    frame: int
    ts_ns: int
    family: int  # 4 = ICMP, 6 = ICMPv6
    src: bytes  # who sent the error (a router or the destination host)
    dst: bytes
    ttl: int
    type: int
    code: int
    quoted: Quoted
    mtu: int | None = None  # next-hop MTU (ICMP frag needed) or ICMPv6 packet too big


@dataclass(slots=True)
class Neighbour:
    """An ARP request or reply (RFC 826, IPv4 over Ethernet only) or an IPv6 neighbour
    solicitation or advertisement (RFC 4861 sections 4.3 and 4.4): how a host finds the
    link-layer address of an address on its own link. Rare frames: made by the general
    decoder only.

    For a request (ARP opcode 1, NDP type 135) `sender` is the asker's address (ARP sender
    protocol address, the IPv6 source: 0.0.0.0 in an RFC 5227 ARP probe, :: in an RFC 4862
    duplicate address detection) and `target` the address asked for. For a reply (ARP opcode
    2, NDP type 136) `sender` is the address the reply resolves (ARP sender protocol address,
    NDP target address) and `target` who it answers (ARP target protocol address, IPv6
    destination)."""

    frame: int
    ts_ns: int
    family: int  # 4 ARP, 6 NDP
    reply: bool
    sender: bytes
    target: bytes


@dataclass(slots=True)
class Other:
    """A frame that decoded fine but is not TCP, UDP, an ICMP error or a neighbour
    resolution (RARP, ARP of other protocols, OSPF, echo, a
    non-first IP fragment, ...). Counted, and warned about only when it is a fragment of a
    TCP segment (findings/quality.py, tcp-fragments)."""

    frame: int
    ts_ns: int
    what: str  # short label, e.g. "arp", "ipv4-fragment", "icmp-echo"
    # An IP fragment that carries part of a TCP segment but not its header (a later fragment,
    # or a first one too short to hold it): its bytes are lost to the connection, since
    # pcapdiag does not reassemble fragments.
    tcp_fragment: bool = False


@dataclass(slots=True)
class Undecodable:
    """A frame that could not be decoded. Reported as a warning naming the frame."""

    frame: int
    ts_ns: int
    reason: str  # one line, plain words, no bytes from the capture


Decoded = Segment | Datagram | IcmpError | Neighbour | Other | Undecodable


def format_addr(addr: bytes) -> str:
    """Text form of a raw IPv4 or IPv6 address (IPv6 as the ipaddress module writes it,
    RFC 5952). IPv4 by hand: ipaddress takes about 10 us an address, and every flow that ends
    needs two."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return str(ipaddress.ip_address(addr))


def format_endpoint(addr: bytes, port: int) -> str:
    """`ip:port` for IPv4, `[ip]:port` for IPv6, as the report contract says."""
    if len(addr) == 16:
        return f"[{format_addr(addr)}]:{port}"
    return f"{format_addr(addr)}:{port}"
