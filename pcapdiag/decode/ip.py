"""IPv4 / IPv6 and what they carry: TCP, UDP, ICMP errors, and GRE/VXLAN tunnels.

Every function takes the frame (for its number and timestamp), the frame bytes and an offset,
checks lengths before every read and returns a decoded packet; none raises on bad input.

Lengths: TCP and UDP payload lengths come from the IP length fields (IPv4 total length, IPv6
payload length or the RFC 2675 jumbo payload length), not from the captured length, so that
snaplen-truncated captures still count the bytes that were on the wire. When the IP length is 0
(TCP segmentation offload on the capturing host, or an IPv6 jumbogram without the option) the
captured length is used instead.
"""

from __future__ import annotations

import struct
from array import array

from pcapdiag.decode.packets import (
    SYN,
    Datagram,
    Decoded,
    IcmpError,
    Neighbour,
    Other,
    Quoted,
    Segment,
    TcpOptions,
    Undecodable,
)
from pcapdiag.io.records import Frame

_IP4 = struct.Struct("!BBHHHBBH4s4s")  # RFC 791 section 3.1
_IP6 = struct.Struct("!IHBB16s16s")  # RFC 8200 section 3
_TCP = struct.Struct("!HHIIHH")  # RFC 9293 section 3.1, up to the window
_UDP = struct.Struct("!HHH")  # RFC 768
_PORTS = struct.Struct("!HH")
_PORTS_SEQ = struct.Struct("!HHI")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U32_PAIR = struct.Struct("!II")

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = 47
PROTO_ICMPV6 = 58

_PROTO_NAMES = {
    2: "igmp",
    4: "ipip",
    41: "ipv6-in-ip",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    132: "sctp",
    1: "icmp",
}

# IPv6 extension headers in the common "next header, length in 8-octet units minus one" format
# (RFC 8200 section 4: hop-by-hop 0, routing 43, destination options 60; RFC 7045 adds mobility
# 135, HIP 139, shim6 140).
EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
EXT_FRAGMENT = 44
EXT_AH = 51  # RFC 4302: length in 4-octet units minus two
_EXT_ESP = 50
_NO_NEXT = 59

# ICMP error types that quote the offending datagram (RFC 792, RFC 1812 section 4.3.2.3).
ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMP6_ERRORS = frozenset({1, 2, 3, 4})  # RFC 4443 section 3
_ICMP4_NAMES = {0: "icmp-echo-reply", 8: "icmp-echo", 13: "icmp-timestamp", 14: "icmp-timestamp"}
_ICMP6_NAMES = {
    128: "icmpv6-echo",
    129: "icmpv6-echo-reply",
    130: "icmpv6-mld",
    131: "icmpv6-mld",
    132: "icmpv6-mld",
    143: "icmpv6-mld",
    133: "icmpv6-nd",
    134: "icmpv6-nd",
    135: "icmpv6-nd",
    136: "icmpv6-nd",
    137: "icmpv6-nd",
}

# NDP neighbour solicitation and advertisement (RFC 4861 sections 4.3, 4.4): type, code,
# checksum, 4 bytes (reserved / flags), then the 16-byte target address.
_ND_SOLICIT = 135
_ND_ADVERT = 136
_ND_MIN = 24

VXLAN_PORT = 4789  # RFC 7348 section 5
MAX_TUNNEL_DEPTH = 3

# Transport header sizes, to recognise first fragments that do not hold the whole header.
_MIN_L4 = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMP: 8, PROTO_ICMPV6: 8}

# Results of walking an IPv6 extension-header chain.
_EXT_OK = 0
_EXT_TRUNCATED = 1
_EXT_LATER_FRAGMENT = 2
_EXT_FIRST_FRAGMENT = 3  # walked past a Fragment header with offset 0 and more to come


def decode_ipv4(frame: Frame, data: bytes, off: int, depth: int) -> Decoded:
    """IPv4 header (with options) at `off`, then the transport layer."""
    n = len(data)
    if n - off < 20:
        return Undecodable(frame.number, frame.ts_ns, "truncated IPv4 header")
    vihl, _tos, total, ident, frag, ttl, proto, _sum, src, dst = _IP4.unpack_from(data, off)
    if vihl >> 4 != 4:
        return Undecodable(frame.number, frame.ts_ns, f"IPv4 packet with IP version {vihl >> 4}")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        return Undecodable(frame.number, frame.ts_ns, "IPv4 header length below 20 bytes")
    if n - off < ihl:
        return Undecodable(frame.number, frame.ts_ns, "truncated IPv4 options")
    if total == 0:
        ip_end = n  # segmentation offload: the length field was left for the NIC to fill in
    elif total < ihl:
        return Undecodable(frame.number, frame.ts_ns, "IPv4 total length shorter than its header")
    else:
        ip_end = off + total
    if frag & 0x1FFF:
        # A later fragment has no transport header (RFC 791: fragment offset != 0).
        return Other(frame.number, frame.ts_ns, "ipv4-fragment", proto == PROTO_TCP)
    l4 = off + ihl
    if frag & 0x2000 and ip_end - l4 < _MIN_L4.get(proto, 0):
        # A first fragment too small to hold the transport header (RFC 1858 "tiny fragment"):
        # nothing to decode without reassembly.
        return Other(frame.number, frame.ts_ns, "ipv4-fragment", proto == PROTO_TCP)
    if proto == PROTO_TCP:
        return _tcp(frame, data, l4, ip_end - l4, 4, src, dst, ttl, ident, bool(frag & 0x4000))
    if proto == PROTO_UDP:
        return _udp(frame, data, l4, ip_end - l4, 4, src, dst, ttl, depth)
    if proto == PROTO_ICMP:
        return _icmp(frame, data, l4, min(n, ip_end), 4, src, dst, ttl)
    if proto == PROTO_GRE and depth < MAX_TUNNEL_DEPTH:
        return _gre(frame, data, l4, min(n, ip_end), depth)
    return Other(frame.number, frame.ts_ns, _PROTO_NAMES.get(proto) or f"ip-proto-{proto}")


def decode_ipv6(frame: Frame, data: bytes, off: int, depth: int) -> Decoded:
    """IPv6 header at `off`, its extension-header chain, then the transport layer."""
    n = len(data)
    if n - off < 40:
        return Undecodable(frame.number, frame.ts_ns, "truncated IPv6 header")
    vtcfl, plen, nh, hlim, src, dst = _IP6.unpack_from(data, off)
    if vtcfl >> 28 != 6:
        return Undecodable(frame.number, frame.ts_ns, f"IPv6 packet with IP version {vtcfl >> 28}")
    nh, l4, jumbo, status = walk_ipv6_ext(data, off + 40, nh, n)
    if status == _EXT_TRUNCATED:
        return Undecodable(frame.number, frame.ts_ns, "truncated IPv6 extension header")
    if status == _EXT_LATER_FRAGMENT:
        # nh: the Fragment header's Next Header, the first fragment's (RFC 8200 section 4.5)
        return Other(frame.number, frame.ts_ns, "ipv6-fragment", nh == PROTO_TCP)
    if plen:
        ip_end = off + 40 + plen
    elif jumbo >= 0:
        ip_end = off + 40 + jumbo  # RFC 2675: counts everything after the IPv6 header
    else:
        ip_end = n  # segmentation offload without a jumbo option
    if ip_end < l4:
        return Undecodable(
            frame.number, frame.ts_ns, "IPv6 payload length shorter than its extension headers"
        )
    if status == _EXT_FIRST_FRAGMENT and ip_end - l4 < _MIN_L4.get(nh, 0):
        # a tiny first fragment
        return Other(frame.number, frame.ts_ns, "ipv6-fragment", nh == PROTO_TCP)
    if nh == PROTO_TCP:
        return _tcp(frame, data, l4, ip_end - l4, 6, src, dst, hlim)
    if nh == PROTO_UDP:
        return _udp(frame, data, l4, ip_end - l4, 6, src, dst, hlim, depth)
    if nh == PROTO_ICMPV6:
        return _icmp(frame, data, l4, min(n, ip_end), 6, src, dst, hlim)
    if nh == PROTO_GRE and depth < MAX_TUNNEL_DEPTH:
        return _gre(frame, data, l4, min(n, ip_end), depth)
    if nh == _EXT_ESP:
        return Other(frame.number, frame.ts_ns, "esp")
    if nh == _NO_NEXT:
        return Other(frame.number, frame.ts_ns, "ipv6-no-next-header")
    return Other(frame.number, frame.ts_ns, _PROTO_NAMES.get(nh) or f"ip-proto-{nh}")


def walk_ipv6_ext(data: bytes, p: int, nh: int, end: int) -> tuple[int, int, int, int]:
    """Skip IPv6 extension headers starting at `p` with next-header value `nh`, reading no
    further than `end`. Returns (upper-layer protocol, its offset, jumbo payload length or -1,
    status). For a later fragment the protocol is the one named by the Fragment header."""
    jumbo = -1
    ok = _EXT_OK
    while True:
        if nh in EXT_GENERIC:
            if end - p < 2:
                return nh, p, jumbo, _EXT_TRUNCATED
            hlen = (data[p + 1] + 1) * 8
            if end - p < hlen:
                return nh, p, jumbo, _EXT_TRUNCATED
            if nh == 0:
                jumbo = _jumbo_length(data, p + 2, p + hlen)
            nh = data[p]
            p += hlen
        elif nh == EXT_FRAGMENT:
            # RFC 8200 section 4.5: 8 bytes; offset in the upper 13 bits of bytes 2-3.
            if end - p < 8:
                return nh, p, jumbo, _EXT_TRUNCATED
            nh_inner = data[p]
            offset_flags = _U16.unpack_from(data, p + 2)[0]
            if offset_flags & 0xFFF8:
                return nh_inner, p + 8, jumbo, _EXT_LATER_FRAGMENT
            if offset_flags & 1:
                ok = _EXT_FIRST_FRAGMENT
            nh = nh_inner
            p += 8
        elif nh == EXT_AH:
            if end - p < 2:
                return nh, p, jumbo, _EXT_TRUNCATED
            hlen = (data[p + 1] + 2) * 4
            if end - p < hlen:
                return nh, p, jumbo, _EXT_TRUNCATED
            nh = data[p]
            p += hlen
        else:
            return nh, p, jumbo, ok


def _jumbo_length(data: bytes, p: int, end: int) -> int:
    """Find the Jumbo Payload option (RFC 2675, type 0xC2) among hop-by-hop options."""
    while p < end:
        kind = data[p]
        if kind == 0:  # Pad1 is a single byte
            p += 1
            continue
        if p + 2 > end:
            break
        olen = data[p + 1]
        if kind == 0xC2 and olen == 4 and p + 6 <= end:
            return int(_U32.unpack_from(data, p + 2)[0])
        p += 2 + olen
    return -1


def _tcp(
    frame: Frame,
    data: bytes,
    l4: int,
    l4_len: int,
    family: int,
    src: bytes,
    dst: bytes,
    ttl: int,
    ip_id: int = -1,
    df: bool = False,
) -> Decoded:
    if len(data) - l4 < 20:
        return Undecodable(frame.number, frame.ts_ns, "truncated TCP header")
    sport, dport, seq, ack, off_flags, window = _TCP.unpack_from(data, l4)
    thl = (off_flags >> 12) * 4
    if thl < 20:
        return Undecodable(
            frame.number, frame.ts_ns, f"TCP data offset {thl // 4} is below the minimum of 5"
        )
    payload_len = l4_len - thl
    if payload_len < 0:
        return Undecodable(frame.number, frame.ts_ns, "TCP header runs past the IP payload")
    options = _tcp_options(data, l4 + 20, min(l4 + thl, len(data))) if thl > 20 else None
    bad = (
        off_flags & SYN != 0
        and len(data) >= l4 + l4_len
        and not checksum_ok(src, dst, PROTO_TCP, data[l4 : l4 + l4_len])
    )
    return Segment(
        frame.number,
        frame.ts_ns,
        family,
        src,
        dst,
        ttl,
        sport,
        dport,
        seq,
        ack,
        off_flags & 0xFF,
        window,
        payload_len,
        options,
        bad,
        ip_id,
        df,
        -1 if options is None or options.ts_val is None else options.ts_val,
    )


def checksum_ok(src: bytes, dst: bytes, proto: int, segment: bytes) -> bool:
    """Whether a TCP or UDP segment's checksum is right: the one's complement sum of the
    pseudo-header (RFC 9293 section 3.1 for IPv4, RFC 8200 section 8.1 for IPv6) and the
    segment, checksum included, is all ones. The sum is taken in the machine's byte order:
    a one's complement sum is the same in either, byte-swapped, so all ones stays all ones."""
    n = len(segment)
    if len(src) == 4:
        pseudo = src + dst + bytes((0, proto)) + n.to_bytes(2, "big")
    else:
        pseudo = src + dst + n.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    data = pseudo + segment + (b"\0" if n % 2 else b"")
    total = sum(array("H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


# One letter per TCP option kind in TcpOptions.layout (RFC 9293 0-2, RFC 7323 3 and 8,
# RFC 2018 4 and 5).
_LAYOUT_LETTER = {0: "E", 1: "N", 2: "M", 3: "W", 4: "S", 5: "K", 8: "T"}


def _tcp_options(data: bytes, p: int, end: int) -> TcpOptions:
    """TCP options between `p` and `end` (end already clipped to the captured bytes, so a
    snaplen cut simply ends the list)."""
    mss = wscale = ts_val = ts_ecr = None
    sack_permitted = False
    blocks: tuple[tuple[int, int], ...] = ()
    layout: list[str] = []
    while p < end:
        kind = data[p]
        layout.append(_LAYOUT_LETTER.get(kind, "?"))
        if kind == 0:  # End of Option List
            break
        if kind == 1:  # No-Operation
            p += 1
            continue
        if p + 2 > end:
            break
        olen = data[p + 1]
        if olen < 2:
            break  # malformed length: the rest cannot be walked
        if p + olen > end:
            if kind == 5:  # keep the SACK blocks that were captured in full
                blocks = _sack_blocks(data, p + 2, p + 2 + ((end - p - 2) // 8) * 8)
            break
        if kind == 2 and olen == 4:  # MSS, RFC 9293 section 3.2
            mss = _U16.unpack_from(data, p + 2)[0]
        elif kind == 3 and olen == 3:  # window scale, RFC 7323 section 2
            wscale = data[p + 2]
        elif kind == 4 and olen == 2:  # SACK permitted, RFC 2018
            sack_permitted = True
        elif kind == 5 and olen >= 10:  # SACK blocks, RFC 2018 section 3
            blocks = _sack_blocks(data, p + 2, p + 2 + ((olen - 2) // 8) * 8)
        elif kind == 8 and olen == 10 and ts_val is None:  # timestamps, RFC 7323 section 3
            # The first, as the fast paths and the C pass read it (a second is malformed).
            ts_val, ts_ecr = _U32_PAIR.unpack_from(data, p + 2)
        p += olen
    return TcpOptions(mss, wscale, sack_permitted, ts_val, ts_ecr, blocks, "".join(layout))


def _sack_blocks(data: bytes, p: int, end: int) -> tuple[tuple[int, int], ...]:
    return tuple(_U32_PAIR.unpack_from(data, q) for q in range(p, end, 8))


def _udp(
    frame: Frame,
    data: bytes,
    l4: int,
    l4_len: int,
    family: int,
    src: bytes,
    dst: bytes,
    ttl: int,
    depth: int,
) -> Decoded:
    if len(data) - l4 < 8:
        return Undecodable(frame.number, frame.ts_ns, "truncated UDP header")
    if l4_len < 8:
        return Undecodable(frame.number, frame.ts_ns, "UDP header runs past the IP payload")
    sport, dport, _ulen = _UDP.unpack_from(data, l4)
    # VXLAN (RFC 7348 section 5): 8-byte header with the I flag set, then an Ethernet frame.
    if (
        dport == VXLAN_PORT
        and depth < MAX_TUNNEL_DEPTH
        and len(data) - l4 >= 16 + 14
        and data[l4 + 8] & 0x08
    ):
        from pcapdiag.decode.link import decode_ethernet  # here: decode imports this module

        inner = decode_ethernet(frame, data, l4 + 16, depth + 1)
        if not isinstance(inner, Undecodable):
            return inner
    return Datagram(frame.number, frame.ts_ns, family, src, dst, ttl, sport, dport, l4_len - 8)


def _gre(frame: Frame, data: bytes, l4: int, end: int, depth: int) -> Decoded:
    """GRE (RFC 2784, keys and sequence numbers RFC 2890): decapsulate IPv4, IPv6 and
    transparent Ethernet bridging; anything else, or a GRE packet we cannot walk, is Other."""
    other = Other(frame.number, frame.ts_ns, "gre")
    if end - l4 < 4:
        return other
    flags, proto = _PORTS.unpack_from(data, l4)
    if flags & 0x0007:
        return Other(frame.number, frame.ts_ns, "gre-pptp")  # version 1: RFC 2637 enhanced GRE
    if flags & 0x4000:
        return other  # RFC 1701 routing present: variable length, long obsolete
    inner = l4 + 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    from pcapdiag.decode.link import decode_ethernet  # here: decode imports this module

    if proto == 0x0800:
        result = decode_ipv4(frame, data, inner, depth + 1)
    elif proto == 0x86DD:
        result = decode_ipv6(frame, data, inner, depth + 1)
    elif proto == 0x6558:
        result = decode_ethernet(frame, data, inner, depth + 1)
    else:
        return other
    return other if isinstance(result, Undecodable) else result


def _icmp(
    frame: Frame,
    data: bytes,
    l4: int,
    end: int,
    family: int,
    src: bytes,
    dst: bytes,
    ttl: int,
) -> Decoded:
    """ICMP (RFC 792) or ICMPv6 (RFC 4443) at `l4`; `end` bounds the message."""
    if end - l4 < 4:
        return Undecodable(frame.number, frame.ts_ns, "truncated ICMP header")
    icmp_type = data[l4]
    code = data[l4 + 1]
    errors = ICMP4_ERRORS if family == 4 else ICMP6_ERRORS
    if family == 6 and icmp_type in (_ND_SOLICIT, _ND_ADVERT) and end - l4 >= _ND_MIN:
        target = data[l4 + 8 : l4 + 24]
        if icmp_type == _ND_SOLICIT:
            return Neighbour(frame.number, frame.ts_ns, 6, False, src, target)
        return Neighbour(frame.number, frame.ts_ns, 6, True, target, dst)
    if icmp_type not in errors:
        names = _ICMP4_NAMES if family == 4 else _ICMP6_NAMES
        prefix = "icmp" if family == 4 else "icmpv6"
        return Other(frame.number, frame.ts_ns, names.get(icmp_type) or f"{prefix}-{icmp_type}")
    if end - l4 < 8:
        return Undecodable(frame.number, frame.ts_ns, "truncated ICMP error header")
    mtu: int | None = None
    if family == 4 and icmp_type == 3 and code == 4:
        # RFC 1191 section 4: next-hop MTU in the low 16 bits; 0 from routers that predate it.
        mtu = _U16.unpack_from(data, l4 + 6)[0] or None
    elif family == 6 and icmp_type == 2:
        mtu = _U32.unpack_from(data, l4 + 4)[0]  # RFC 4443 section 3.2
    quoted = quoted_datagram(data, l4 + 8, end)
    if quoted is None:
        return Undecodable(
            frame.number, frame.ts_ns, "ICMP error quotes too little of the original datagram"
        )
    return IcmpError(frame.number, frame.ts_ns, family, src, dst, ttl, icmp_type, code, quoted, mtu)


def quoted_datagram(data: bytes, q: int, end: int) -> Quoted | None:
    """The IP header and first 8 transport bytes quoted in an ICMP error, or None when not even
    the IP header is there. Ports and sequence number stay None when the quote stops early."""
    if end - q < 1:
        return None
    version = data[q] >> 4
    if version == 4:
        if end - q < 20:
            return None
        vihl, _tos, _total, _ident, frag, _ttl, proto, _sum, src, dst = _IP4.unpack_from(data, q)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or frag & 0x1FFF:
            return Quoted(4, src, dst, proto)  # no transport header to read
        family = 4
        l4 = q + ihl
    elif version == 6:
        if end - q < 40:
            return None
        _vtcfl, _plen, nh, _hlim, src, dst = _IP6.unpack_from(data, q)
        proto, l4, _jumbo, status = walk_ipv6_ext(data, q + 40, nh, end)
        if status in (_EXT_TRUNCATED, _EXT_LATER_FRAGMENT):
            return Quoted(6, src, dst, proto)
        family = 6
    else:
        return None
    avail = end - l4
    if proto == PROTO_TCP and avail >= 8:
        sport, dport, seq = _PORTS_SEQ.unpack_from(data, l4)
        return Quoted(family, src, dst, proto, sport, dport, seq)
    if proto in (PROTO_TCP, PROTO_UDP) and avail >= 4:
        sport, dport = _PORTS.unpack_from(data, l4)
        return Quoted(family, src, dst, proto, sport, dport)
    return Quoted(family, src, dst, proto)
