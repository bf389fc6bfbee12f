"""Frame -> decoded packet: link layer, IPv4/IPv6, then TCP, UDP or an ICMP error.

Hand-written with precompiled `struct.Struct`s over the frame bytes (this runs once per frame).
`decode` never raises: anything that cannot be decoded becomes `Undecodable` with a reason in
plain words (never bytes from the capture). IP-layer helpers live in `decode_ip.py`.

Link types (libpcap LINKTYPE_* list, tcpdump.org/linktypes.html):
- 1 ETHERNET, with any stack of 802.1Q (0x8100), 802.1ad (0x88a8) and old QinQ (0x9100) tags.
- 113 LINUX_SLL and 276 LINUX_SLL2 (Linux "cooked" captures).
- 101 RAW, 12 and 14 (DLT_RAW of some BSDs): IPv4 or IPv6 decided by the version nibble;
  228 IPV4, 229 IPV6.
- 0 NULL (BSD loopback, address family in the capturing host's byte order) and 108 LOOP (the
  same in network byte order).
"""

from __future__ import annotations

import struct

from pcapdiag.decode.ip import decode_ipv4, decode_ipv6
from pcapdiag.decode.packets import Decoded, Neighbour, Other, Undecodable
from pcapdiag.io.records import Buffer, Frame

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_8021Q = 0x8100  # IEEE 802.1Q: the one tag common on trunk captures
VLAN_TPIDS = frozenset({ETH_8021Q, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, pre-standard QinQ
_ETHERTYPE_NAMES = {
    0x0806: "arp",
    0x8035: "rarp",
    0x88CC: "lldp",
    0x8863: "pppoe-discovery",
    0x8864: "pppoe",
    0x8847: "mpls",
    0x8848: "mpls",
    0x888E: "eapol",
    0x88E5: "macsec",
    0x8809: "slow-protocols",
    0x88F7: "ptp",
    0x9000: "loopback",
}
# BSD address families for IPv6 differ per OS (libpcap LINKTYPE_NULL notes): 24 NetBSD/OpenBSD,
# 28 FreeBSD, 30 macOS; 10 is Linux's AF_INET6.
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})

_U16 = struct.Struct("!H")
# ARP (RFC 826) for IPv4 over a 6-byte hardware address: hardware type, protocol type, their
# lengths, opcode, then sender MAC and IP, target MAC and IP.
_ARP_IP4 = struct.Struct("!HHBBH6s4s6s4s")
_ARP_REQUEST = 1
_ARP_REPLY = 2
_U32BE = struct.Struct(">I")
_U32LE = struct.Struct("<I")


def decode(frame: Frame) -> Decoded:
    """Decode one frame. Never raises."""
    try:
        return decode_link(frame, frame.linktype, frame.data, 0, 0)
    except Exception as exc:  # the contract is "never raises"
        # Only reached on a decoder bug: the helpers check lengths before reading.
        return Undecodable(frame.number, frame.ts_ns, f"decoder error ({type(exc).__name__})")


def decode_record(
    buf: Buffer, start: int, stop: int, number: int, ts_ns: int, linktype: int, orig_len: int
) -> Decoded:
    """decode() for a record still in the reader's buffer (an io.reader.Record)."""
    return decode(Frame(number, ts_ns, linktype, bytes(buf[start:stop]), orig_len))


def decode_link(frame: Frame, linktype: int, data: bytes, off: int, depth: int) -> Decoded:
    """Decode `data[off:]` as a frame of the given link type."""
    n = len(data)
    if linktype == 1:
        return decode_ethernet(frame, data, off, depth)
    if linktype in (101, 12, 14, 228, 229):
        if off >= n:
            return Undecodable(frame.number, frame.ts_ns, "empty raw IP frame")
        version = data[off] >> 4
        if linktype == 228 and version != 4:
            return Undecodable(frame.number, frame.ts_ns, f"IPv4 link type but version {version}")
        if linktype == 229 and version != 6:
            return Undecodable(frame.number, frame.ts_ns, f"IPv6 link type but version {version}")
        return _ip_by_version(frame, data, off, version, depth)
    if linktype == 113:
        # LINUX_SLL: 16-byte header, protocol (an ethertype for IP) in its last two bytes.
        if n - off < 16:
            return Undecodable(frame.number, frame.ts_ns, "frame too short for a Linux SLL header")
        return _by_ethertype(frame, data, off + 16, _U16.unpack_from(data, off + 14)[0], depth)
    if linktype == 276:
        # LINUX_SLL2: 20-byte header starting with the protocol type.
        if n - off < 20:
            return Undecodable(frame.number, frame.ts_ns, "frame too short for a Linux SLL2 header")
        return _by_ethertype(frame, data, off + 20, _U16.unpack_from(data, off)[0], depth)
    if linktype in (0, 108):
        if n - off < 4:
            return Undecodable(frame.number, frame.ts_ns, "frame too short for a loopback header")
        if linktype == 108:
            af = _U32BE.unpack_from(data, off)[0]
        else:
            # NULL: host byte order of the capturing machine, unknown to us. Family values are
            # small, so whichever reading gives a small number is the right one.
            af = _U32LE.unpack_from(data, off)[0]
            if af > 0xFFFF:
                af = _U32BE.unpack_from(data, off)[0]
        if af == _AF_INET:
            return decode_ipv4(frame, data, off + 4, depth)
        if af in _AF_INET6:
            return decode_ipv6(frame, data, off + 4, depth)
        return Other(frame.number, frame.ts_ns, f"loopback-af-{af}")
    return Other(frame.number, frame.ts_ns, f"linktype-{linktype}")


def decode_ethernet(frame: Frame, data: bytes, off: int, depth: int) -> Decoded:
    """Ethernet II (IEEE 802.3) with optional VLAN tags, from `off`."""
    if len(data) - off < 14:
        return Undecodable(frame.number, frame.ts_ns, "frame too short for an Ethernet header")
    ethertype = _U16.unpack_from(data, off + 12)[0]
    return _by_ethertype(frame, data, off + 14, ethertype, depth)


def _by_ethertype(frame: Frame, data: bytes, off: int, ethertype: int, depth: int) -> Decoded:
    if ethertype == ETH_IPV4:
        return decode_ipv4(frame, data, off, depth)
    if ethertype == ETH_IPV6:
        return decode_ipv6(frame, data, off, depth)
    while ethertype in VLAN_TPIDS:
        # Each tag is TCI (2 bytes) then the next ethertype (IEEE 802.1Q section 9.5).
        if len(data) - off < 4:
            return Undecodable(frame.number, frame.ts_ns, "truncated VLAN tag")
        ethertype = _U16.unpack_from(data, off + 2)[0]
        off += 4
    if ethertype == ETH_IPV4:
        return decode_ipv4(frame, data, off, depth)
    if ethertype == ETH_IPV6:
        return decode_ipv6(frame, data, off, depth)
    if ethertype == ETH_ARP:
        return _arp(frame, data, off)
    if ethertype < 0x0600:
        # IEEE 802.3 length field: an LLC frame (STP, CDP, NetBIOS...), not Ethernet II.
        return Other(frame.number, frame.ts_ns, "llc")
    name = _ETHERTYPE_NAMES.get(ethertype)
    return Other(frame.number, frame.ts_ns, name or f"ethertype-0x{ethertype:04x}")


def _arp(frame: Frame, data: bytes, off: int) -> Decoded:
    """An ARP request or reply for an IPv4 address (RFC 826); any other ARP (another protocol
    or hardware address length, RARP and InARP opcodes) stays Other("arp")."""
    if len(data) - off < _ARP_IP4.size:
        return Other(frame.number, frame.ts_ns, "arp")
    _htype, ptype, hlen, plen, op, _sha, spa, _tha, tpa = _ARP_IP4.unpack_from(data, off)
    if ptype != ETH_IPV4 or hlen != 6 or plen != 4 or op not in (_ARP_REQUEST, _ARP_REPLY):
        return Other(frame.number, frame.ts_ns, "arp")
    return Neighbour(frame.number, frame.ts_ns, 4, op == _ARP_REPLY, spa, tpa)


def _ip_by_version(frame: Frame, data: bytes, off: int, version: int, depth: int) -> Decoded:
    if version == 4:
        return decode_ipv4(frame, data, off, depth)
    if version == 6:
        return decode_ipv6(frame, data, off, depth)
    return Undecodable(frame.number, frame.ts_ns, f"raw IP frame with IP version {version}")
