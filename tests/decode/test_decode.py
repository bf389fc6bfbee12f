"""Tests for pcapdiag.decode: against dpkt on every public capture, hand-built frames for each
link type / extension header / ICMP quote case, and random input that must never raise."""

from __future__ import annotations

import ipaddress
import os
import random
import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Jumbo,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import (
    ACK,
    PSH,
    SYN,
    Datagram,
    IcmpError,
    Neighbour,
    Other,
    Segment,
    TcpOptions,
    Undecodable,
    format_addr,
)
from pcapdiag.io.reader import open_capture
from pcapdiag.io.records import Frame

REPO = Path(__file__).resolve().parents[2]
PUBLIC = Path(
    os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", str(REPO.parent / "shared" / "captures" / "public"))
)


def public_files() -> list[object]:
    """Every capture under PUBLIC (same selection as test_capture.py)."""
    if not PUBLIC.is_dir():
        reason = f"public captures not found at {PUBLIC} (set PCAPDIAG_PUBLIC_CAPTURES)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-public-captures")]
    suffixes = (".pcap", ".pcapng", ".cap", ".gz")
    files = sorted(p for p in PUBLIC.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    return [pytest.param(p, id=str(p.relative_to(PUBLIC))) for p in files]


A4, B4 = "192.0.2.1", "198.51.100.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
ROUTER4, ROUTER6 = "203.0.113.9", "2001:db8:ffff::9"


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def frame(data: bytes, linktype: int = 1) -> Frame:
    return Frame(7, 123, linktype, data, len(data))


def dec(pkt: object, linktype: int = 1) -> object:
    return decode(frame(bytes(pkt), linktype))  # type: ignore[call-overload]


def seg(pkt: object, linktype: int = 1) -> Segment:
    result = dec(pkt, linktype)
    assert isinstance(result, Segment), result
    return result


TCP_ALL_OPTIONS = [
    ("MSS", 1460),
    ("NOP", None),
    ("WScale", 7),
    ("SAckOK", b""),
    ("Timestamp", (111, 222)),
    ("SAck", (1000, 2000, 3000, 4000)),
    ("EOL", None),
]


def tcp4() -> IP:
    return IP(src=A4, dst=B4, ttl=61) / TCP(
        sport=40000, dport=80, seq=1000, ack=2000, flags="PA", window=512
    )


# -- link types ---------------------------------------------------------------------------------


def test_ethernet_ipv4_with_options_and_all_tcp_options() -> None:
    # IPv4 header with a Router Alert option (IHL 6): the TCP header starts 24 bytes in.
    pkt = (
        Ether()
        / IP(src=A4, dst=B4, ttl=33, options=[IPOption_Router_Alert()])
        / TCP(
            sport=1234, dport=443, seq=7, ack=9, flags="SA", window=65535, options=TCP_ALL_OPTIONS
        )
        / Raw(b"x" * 10)
    )
    s = seg(pkt)
    assert (s.family, s.src, s.dst, s.ttl) == (4, ip4(A4), ip4(B4), 33)
    assert (s.sport, s.dport, s.seq, s.ack, s.window) == (1234, 443, 7, 9, 65535)
    assert s.flags == SYN | ACK and s.payload_len == 10 and (s.frame, s.ts_ns) == (7, 123)
    # The layout is the order scapy wrote them in: MSS, NOP, WScale, SAckOK, Timestamp, SAck,
    # EOL (what p0f reads to tell stacks apart).
    assert s.options == TcpOptions(
        1460, 7, True, 111, 222, ((1000, 2000), (3000, 4000)), layout="MNWSTKE"
    )


def test_no_tcp_options_gives_none() -> None:
    assert seg(Ether() / tcp4()).options is None


@pytest.mark.parametrize(
    "tags",
    [
        [Dot1Q(vlan=5)],  # 802.1Q
        [Dot1AD(vlan=10), Dot1Q(vlan=20)],  # 802.1ad QinQ
        [Dot1Q(vlan=1), Dot1Q(vlan=2), Dot1Q(vlan=3)],  # three stacked 802.1Q tags
    ],
)
def test_vlan_stacks(tags: list[object]) -> None:
    pkt = Ether()
    for tag in tags:
        pkt = pkt / tag  # type: ignore[operator]
    assert seg(pkt / tcp4()).payload_len == 0  # type: ignore[operator]


def test_old_qinq_tpid_9100() -> None:
    pkt = Ether(type=0x9100) / Dot1Q(vlan=7) / tcp4() / Raw(b"abc")
    assert seg(pkt).payload_len == 3


def test_linux_sll() -> None:
    assert seg(CookedLinux(proto=0x0800) / tcp4(), 113).dport == 80


def test_linux_sll2() -> None:
    pkt = CookedLinuxV2(proto=0x86DD) / IPv6(src=A6, dst=B6) / TCP(dport=22)
    s = seg(pkt, 276)
    assert (s.family, s.src, s.dport) == (6, ip6(A6), 22)


@pytest.mark.parametrize(
    ("header", "linktype"),
    [
        (struct.pack("<I", 2), 0),  # NULL, little-endian host, AF_INET
        (struct.pack(">I", 2), 0),  # NULL, big-endian host, AF_INET
        (struct.pack(">I", 2), 108),  # LOOP: always network order
    ],
)
def test_null_and_loop_ipv4(header: bytes, linktype: int) -> None:
    assert seg(header + bytes(tcp4()), linktype).sport == 40000


@pytest.mark.parametrize("af", [10, 24, 28, 30])
@pytest.mark.parametrize("order", ["<", ">"])
def test_null_ipv6_families_both_orders(af: int, order: str) -> None:
    pkt = struct.pack(order + "I", af) + bytes(IPv6(src=A6, dst=B6) / TCP(dport=8080))
    assert seg(pkt, 0).family == 6


def test_null_unknown_family_is_other() -> None:
    result = dec(struct.pack("<I", 7) + b"\0" * 40, 0)
    assert isinstance(result, Other) and result.what == "loopback-af-7"


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip_version_nibble_decides(linktype: int) -> None:
    assert seg(tcp4(), linktype).family == 4
    assert seg(IPv6(src=A6, dst=B6) / TCP(), linktype).family == 6


def test_raw_ipv4_and_ipv6_link_types() -> None:
    assert seg(tcp4(), 228).family == 4
    assert seg(IPv6() / TCP(), 229).family == 6
    assert isinstance(dec(IPv6() / TCP(), 228), Undecodable)  # IPv6 on the IPv4-only type


def test_unknown_linktype_and_non_ip() -> None:
    result = dec(b"\0" * 40, 147)
    assert isinstance(result, Other) and result.what == "linktype-147"
    result = dec(Ether() / ARP(op=3))  # RARP request: not an IPv4 address resolution
    assert isinstance(result, Other) and result.what == "arp"


# -- IPv4 lengths and fragments --------------------------------------------------------------------


def test_ethernet_padding_is_not_payload() -> None:
    # A bare ACK is 54 bytes; Ethernet pads it to 60. IP total length says 40: payload 0.
    data = bytes(Ether() / tcp4()) + b"\0" * 6
    assert seg(data).payload_len == 0


def test_ipv4_total_length_zero_uses_captured_length() -> None:
    # TSO on the capturing host leaves total length 0: fall back to the captured bytes.
    data = bytearray(bytes(Ether() / tcp4() / Raw(b"y" * 3000)))
    struct.pack_into("!H", data, 14 + 2, 0)
    assert seg(bytes(data)).payload_len == 3000


def test_snaplen_cut_keeps_ip_payload_length() -> None:
    data = bytes(Ether() / tcp4() / Raw(b"z" * 1000))[:68]
    assert seg(data).payload_len == 1000


def test_ipv4_first_fragment_decodes_tcp_with_this_fragments_length() -> None:
    pkt = Ether() / IP(src=A4, dst=B4, flags="MF", frag=0) / TCP(dport=25) / Raw(b"a" * 96)
    assert seg(pkt).payload_len == 96


def test_ipv4_later_fragment_is_other() -> None:
    pkt = Ether() / IP(src=A4, dst=B4, proto=6, frag=12) / Raw(b"b" * 40)
    result = dec(pkt)
    assert isinstance(result, Other) and result.what == "ipv4-fragment"
    assert result.tcp_fragment  # counted under the tcp-fragments warning
    udp = dec(Ether() / IP(src=A4, dst=B4, proto=17, frag=12) / Raw(b"b" * 40))
    assert isinstance(udp, Other) and udp.what == "ipv4-fragment" and not udp.tcp_fragment


def test_ipv4_tiny_first_fragment_is_other() -> None:
    # RFC 1858 tiny fragment: only 8 bytes of TCP header in the first fragment (as in
    # suricata-verify/frag-ip-tcp-syn.pcap frame 1). Not a capture problem: Other.
    pkt = Ether() / IP(src=A4, dst=B4, proto=6, flags="MF") / Raw(bytes(TCP())[:8])
    result = dec(pkt)
    assert isinstance(result, Other) and result.what == "ipv4-fragment" and result.tcp_fragment


# -- IPv6 extension headers ------------------------------------------------------------------------


def test_ipv6_hop_by_hop_routing_destination_options_chain() -> None:
    pkt = (
        Ether()
        / IPv6(src=A6, dst=B6, hlim=7)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=[B6])
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1, dport=2, seq=3, flags="S")
        / Raw(b"abc")
    )
    s = seg(pkt)
    assert (s.ttl, s.sport, s.dport, s.seq, s.flags, s.payload_len) == (7, 1, 2, 3, SYN, 3)


def test_ipv6_authentication_header_length_in_4_octet_units() -> None:
    # AH (RFC 4302): payload length 4 means (4 + 2) * 4 = 24 bytes (12 fixed + 12 ICV).
    ah = struct.pack("!BBHII", 6, 4, 0, 0x100, 1) + b"\0" * 12
    pkt = Ether() / IPv6(src=A6, dst=B6, nh=51) / Raw(ah + bytes(TCP(dport=443) / Raw(b"q" * 5)))
    s = seg(pkt)
    assert (s.dport, s.payload_len) == (443, 5)


def test_ipv6_esp_and_no_next_header_are_other() -> None:
    result = dec(Ether() / IPv6(nh=50) / Raw(b"\0" * 24))
    assert isinstance(result, Other) and result.what == "esp"
    result = dec(Ether() / IPv6(nh=59))
    assert isinstance(result, Other) and result.what == "ipv6-no-next-header"


def test_ipv6_first_fragment_decodes_tcp() -> None:
    pkt = Ether() / IPv6() / IPv6ExtHdrFragment(offset=0, m=1) / TCP(dport=80) / Raw(b"d" * 100)
    assert seg(pkt).payload_len == 100


def test_ipv6_later_fragment_is_other() -> None:
    pkt = Ether() / IPv6() / IPv6ExtHdrFragment(offset=20, m=0, nh=6) / Raw(b"e" * 100)
    result = dec(pkt)
    assert isinstance(result, Other) and result.what == "ipv6-fragment" and result.tcp_fragment
    # The Fragment header names the protocol: a UDP datagram's fragment is not counted.
    pkt = Ether() / IPv6() / IPv6ExtHdrFragment(offset=20, m=0, nh=17) / Raw(b"e" * 100)
    udp = dec(pkt)
    assert isinstance(udp, Other) and udp.what == "ipv6-fragment" and not udp.tcp_fragment


def test_ipv6_tiny_first_fragment_is_a_tcp_fragment() -> None:
    pkt = Ether() / IPv6() / IPv6ExtHdrFragment(offset=0, m=1, nh=6) / Raw(bytes(TCP())[:8])
    result = dec(pkt)
    assert isinstance(result, Other) and result.what == "ipv6-fragment" and result.tcp_fragment


def test_ipv6_jumbo_payload_option_gives_the_length() -> None:
    # BIG TCP (as tcpdump/bigtcp-ipv6-hbh.pcap): payload length 0, RFC 2675 Jumbo option with
    # the length of everything after the IPv6 header (8 HBH + 20 TCP + 70000 data).
    body = bytes(TCP(dport=5201) / Raw(b"j" * 70_000))
    hbh = IPv6ExtHdrHopByHop(nh=6, options=[Jumbo(jumboplen=8 + len(body))])
    data = bytes(Ether() / IPv6(plen=0, nh=0) / hbh) + body
    assert seg(data).payload_len == 70_000


def test_truncated_ipv6_extension_header_is_undecodable() -> None:
    data = bytes(Ether() / IPv6() / IPv6ExtHdrDestOpt() / TCP())[: 14 + 40 + 1]
    result = dec(data)
    assert isinstance(result, Undecodable) and "extension header" in result.reason


# -- ICMP errors -----------------------------------------------------------------------------------


def test_icmp_port_unreachable_quoting_tcp_reads_seq_back() -> None:
    quote = IP(src=A4, dst=B4) / TCP(sport=40000, dport=23, seq=0xDEADBEEF)
    pkt = Ether() / IP(src=B4, dst=A4, ttl=64) / ICMP(type=3, code=3) / quote
    result = dec(pkt)
    assert isinstance(result, IcmpError)
    assert (result.family, result.type, result.code, result.mtu) == (4, 3, 3, None)
    q = result.quoted
    assert (q.family, q.src, q.dst, q.proto) == (4, ip4(A4), ip4(B4), 6)
    assert (q.sport, q.dport, q.seq) == (40000, 23, 0xDEADBEEF)


def test_icmp_quote_with_ip_options() -> None:
    quote = IP(src=A4, dst=B4, options=[IPOption_Router_Alert()]) / TCP(sport=5, dport=6, seq=77)
    result = dec(Ether() / IP(src=ROUTER4, dst=A4) / ICMP(type=11, code=0) / quote)
    assert isinstance(result, IcmpError) and result.quoted.seq == 77


def test_icmp_quoting_udp() -> None:
    quote = IP(src=A4, dst=B4) / UDP(sport=53, dport=5353)
    result = dec(Ether() / IP(src=B4, dst=A4) / ICMP(type=3, code=3) / quote)
    assert isinstance(result, IcmpError)
    assert (result.quoted.proto, result.quoted.sport, result.quoted.dport) == (17, 53, 5353)
    assert result.quoted.seq is None


def test_icmp_quote_truncated_to_4_bytes_has_ports_but_no_seq() -> None:
    quote = bytes(IP(src=A4, dst=B4) / TCP(sport=1111, dport=2222, seq=5))[: 20 + 4]
    result = dec(Ether() / IP(src=B4, dst=A4) / ICMP(type=3, code=1) / Raw(quote))
    assert isinstance(result, IcmpError)
    assert (result.quoted.sport, result.quoted.dport, result.quoted.seq) == (1111, 2222, None)


def test_icmp_quote_without_transport_bytes() -> None:
    quote = bytes(IP(src=A4, dst=B4) / TCP())[:20]
    result = dec(Ether() / IP() / ICMP(type=3, code=13) / Raw(quote))
    assert isinstance(result, IcmpError)
    assert (result.quoted.proto, result.quoted.sport) == (6, None)


def test_icmp_quote_too_short_for_ip_header_is_undecodable() -> None:
    result = dec(Ether() / IP() / ICMP(type=3, code=3) / Raw(b"\x45\0\0"))
    assert isinstance(result, Undecodable)


def test_icmp_frag_needed_mtu() -> None:
    quote = IP(src=A4, dst=B4) / TCP(sport=25, dport=3000, seq=42)
    pkt = Ether() / IP(src=ROUTER4, dst=A4) / ICMP(type=3, code=4, nexthopmtu=1400) / quote
    result = dec(pkt)
    assert isinstance(result, IcmpError) and result.mtu == 1400 and result.quoted.seq == 42


def test_icmpv6_admin_prohibited_quoting_tcp() -> None:
    quote = IPv6(src=A6, dst=B6) / TCP(sport=50000, dport=443, seq=123456)
    pkt = Ether() / IPv6(src=ROUTER6, dst=A6, hlim=250) / ICMPv6DestUnreach(code=1) / quote
    result = dec(pkt)
    assert isinstance(result, IcmpError)
    assert (result.family, result.type, result.code, result.ttl) == (6, 1, 1, 250)
    assert (result.src, result.quoted.src, result.quoted.dst) == (ip6(ROUTER6), ip6(A6), ip6(B6))
    assert (result.quoted.sport, result.quoted.dport, result.quoted.seq) == (50000, 443, 123456)


def test_icmpv6_quote_with_extension_headers() -> None:
    quote = IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(seq=99)
    result = dec(Ether() / IPv6() / ICMPv6DestUnreach(code=4) / quote)
    assert isinstance(result, IcmpError) and result.quoted.seq == 99


def test_icmpv6_packet_too_big_mtu() -> None:
    quote = IPv6(src=A6, dst=B6) / TCP(seq=1)
    result = dec(Ether() / IPv6() / ICMPv6PacketTooBig(mtu=1280) / quote)
    assert isinstance(result, IcmpError) and (result.type, result.mtu) == (2, 1280)


def test_icmp_echo_is_other() -> None:
    result = dec(Ether() / IP() / ICMP(type=8))
    assert isinstance(result, Other) and result.what == "icmp-echo"
    result = dec(Ether() / IPv6() / ICMPv6EchoRequest())
    assert isinstance(result, Other) and result.what == "icmpv6-echo"


# -- undecodable ---------------------------------------------------------------------------------


def test_truncated_tcp_header_is_undecodable() -> None:
    data = bytes(Ether() / tcp4())[: 14 + 20 + 10]
    result = dec(data)
    assert isinstance(result, Undecodable) and result.reason == "truncated TCP header"


def test_tcp_data_offset_below_5_is_undecodable() -> None:
    data = bytearray(bytes(Ether() / tcp4()))
    data[14 + 20 + 12] = 0x40  # data offset 4
    result = dec(bytes(data))
    assert isinstance(result, Undecodable) and "data offset" in result.reason


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01\x02\x03\x04\x05", b"\xff" * 12 + b"\x08\x00" + b"\x4f" * 3, b"\0" * 13],
)
def test_garbage_is_undecodable(data: bytes) -> None:
    result = decode(frame(data))
    assert isinstance(result, Undecodable)
    assert result.frame == 7 and "\n" not in result.reason


def test_truncated_options_parse_what_is_there() -> None:
    # MSS complete, then the snaplen cuts the timestamp option in half.
    opts = [("MSS", 1400), ("NOP", None), ("NOP", None), ("Timestamp", (5, 6))]
    full = bytes(Ether() / IP() / TCP(flags="S", options=opts))
    s = seg(full[: 14 + 20 + 20 + 4 + 2 + 4])
    assert s.options is not None and (s.options.mss, s.options.ts_val) == (1400, None)


# -- tunnels ---------------------------------------------------------------------------------------


def test_gre_carrying_ipv4_tcp_is_decapsulated() -> None:
    pkt = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / tcp4() / Raw(b"g" * 4)
    s = seg(pkt)
    assert (s.src, s.payload_len) == (ip4(A4), 4)


def test_vxlan_carrying_ethernet_tcp_is_decapsulated() -> None:
    inner = Ether() / tcp4() / Raw(b"v" * 9)
    pkt = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=4789) / VXLAN() / inner
    s = seg(pkt)
    assert (s.dst, s.payload_len) == (ip4(B4), 9)


def test_plain_udp() -> None:
    result = dec(Ether() / IP(src=A4, dst=B4, ttl=9) / UDP(sport=5353, dport=53) / Raw(b"1234"))
    assert result == Datagram(7, 123, 4, ip4(A4), ip4(B4), 9, 5353, 53, 4)


# -- random input never raises ---------------------------------------------------------------------

SEEDS = {
    1: bytes(
        Ether() / Dot1Q() / IP(options=[IPOption_Router_Alert()]) / TCP(options=TCP_ALL_OPTIONS)
    ),
    113: bytes(CookedLinux(proto=0x86DD) / IPv6() / IPv6ExtHdrHopByHop() / TCP()),
    276: bytes(CookedLinuxV2(proto=0x0800) / IP() / ICMP(type=3) / IP() / TCP()),
    101: bytes(IPv6() / ICMPv6DestUnreach() / IPv6() / IPv6ExtHdrFragment() / UDP()),
    228: bytes(IP() / GRE() / IP() / UDP(dport=4789) / VXLAN() / Ether() / IP() / TCP()),
    229: bytes(IPv6() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment(m=1) / TCP()),
    0: struct.pack("<I", 30) + bytes(IPv6() / TCP(options=[("SAck", (1, 2))])),
    108: struct.pack(">I", 2) + bytes(IP(flags="MF") / UDP()),
    12: bytes(IP() / ICMP(type=3, code=4) / IP() / TCP()),
}


@pytest.mark.parametrize("linktype", sorted(SEEDS))
def test_decode_never_raises_on_random_input(linktype: int) -> None:
    rng = random.Random(20240 + linktype)
    seed = SEEDS[linktype]
    for i in range(3000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(0, 120))
        else:
            # Mutate a valid frame: flip a few bytes and cut it somewhere, which reaches deep
            # into the decoder far more often than pure noise.
            buf = bytearray(seed)
            for _ in range(rng.randrange(1, 6)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            data = bytes(buf[: rng.randrange(len(buf) + 1)])
        result = decode(Frame(i + 1, 0, linktype, data, len(data)))
        assert isinstance(result, Segment | Datagram | IcmpError | Other | Undecodable)
        if isinstance(result, Undecodable):
            assert "decoder error" not in result.reason, data.hex()


# -- public captures against dpkt ----------------------------------------------------------------


def dpkt_network_layer(linktype: int, data: bytes) -> object:
    """The IP packet dpkt finds in a frame, or None."""
    if linktype == 1:
        layer = dpkt.ethernet.Ethernet(data).data
    elif linktype == 113:
        layer = dpkt.sll.SLL(data).data
    elif linktype == 276:
        layer = dpkt.sll2.SLL2(data).data
    elif linktype in (0, 101, 228, 229):
        raw = data[4:] if linktype == 0 else data
        if not raw:
            return None
        layer = dpkt.ip.IP(raw) if raw[0] >> 4 == 4 else dpkt.ip6.IP6(raw)
    else:
        return None
    return layer if isinstance(layer, dpkt.ip.IP | dpkt.ip6.IP6) else None


def dpkt_expectations(linktype: int, data: bytes) -> dict[str, object] | None:
    """What dpkt says about a TCP or UDP frame, in our field names; None when it is neither."""
    try:
        net = dpkt_network_layer(linktype, data)
    except (dpkt.UnpackError, IndexError, struct.error):
        return None
    if net is None:
        return None
    l4 = net.data
    if isinstance(net, dpkt.ip.IP):
        if net.offset:
            return None
        family, ttl = 4, net.ttl
        # IP total length minus the IP header; 0 means "use the captured bytes" (TSO).
        ip_payload = net.len - net.hl * 4 if net.len else None
    else:
        family, ttl = 6, net.hlim
        if any(
            isinstance(h, dpkt.ip6.IP6FragmentHeader) and h.frag_off
            for h in net.all_extension_headers
        ):
            return None
        ext = sum(h.length for h in net.all_extension_headers)
        ip_payload = net.plen - ext if net.plen else None
    common = {"family": family, "src": net.src, "dst": net.dst, "ttl": ttl}
    if isinstance(l4, dpkt.tcp.TCP):
        thl = l4.off * 4
        payload = len(l4.data) if ip_payload is None else ip_payload - thl
        return common | {
            "kind": Segment,
            "sport": l4.sport,
            "dport": l4.dport,
            "seq": l4.seq,
            "ack": l4.ack,
            "flags": l4.flags & 0xFF,
            "window": l4.win,
            "payload_len": payload,
        }
    if isinstance(l4, dpkt.udp.UDP):
        if l4.dport == 4789:
            return None  # we decapsulate VXLAN, dpkt does not
        payload = len(l4.data) if ip_payload is None else ip_payload - 8
        return common | {
            "kind": Datagram,
            "sport": l4.sport,
            "dport": l4.dport,
            "payload_len": payload,
        }
    return None


@pytest.mark.parametrize("path", public_files())
def test_public_capture_decodes_like_dpkt(path: object) -> None:
    reader = open_capture(str(path))
    compared = 0
    for fr in reader:
        expected = dpkt_expectations(fr.linktype, fr.data)
        if expected is None:
            continue
        ours = decode(fr)
        assert isinstance(ours, expected.pop("kind")), (fr.number, ours)  # type: ignore[arg-type]
        got = {name: getattr(ours, name) for name in expected}
        assert got == expected, fr.number
        compared += 1
    # Every capture with TCP or UDP that dpkt can see must actually have been compared.
    name = str(path.relative_to(PUBLIC))  # type: ignore[attr-defined]
    assert (compared == 0) == (name in NO_PLAIN_TCP_OR_UDP), compared


# Captures with no TCP or UDP outside tunnels (so nothing for dpkt to agree with).
NO_PLAIN_TCP_OR_UDP = {
    "arkime/bigendian.pcap",  # ICMP echo only
    "chrissanders-packets/ip_frag_source.pcapng",  # fragmented ICMP echo
    "chrissanders-packets/ipv6_fragments.pcapng",  # fragmented ICMPv6 echo
    "scapy/bad_rsn_parsing_overrides_ssid.pcap",  # 802.11 radiotap
    "tcpdump/empty.pcapng",
    "zeek/empty.pcap",
    "zeek/gre-sample.pcap",  # all TCP/UDP inside GRE
    "zeek/icmp-destunreach-udp.pcap",  # one ICMP error
    "zeek/icmp6.pcap",  # ICMPv6 only (the UDP is quoted inside errors)
    "zeek/vxlan-encapsulated-http.pcap",  # all TCP inside VXLAN
    "suricata-verify/frag-ip-tcp-syn.pcap",  # tiny fragments: no whole TCP header anywhere
}


@pytest.mark.parametrize(
    "name", ["zeek/smtp.pcap", "arkime/ospf.pcap", "suricata-verify/kill_router6.pcap"]
)
def test_public_icmp_errors_quote_segments_seen_in_the_capture(name: str) -> None:
    """Each TCP-quoting ICMP error names (addresses, ports, seq) a segment that was captured
    before it: the quote is read at the right offsets (frag-needed in smtp.pcap, ICMPv6 no-route
    in the other two)."""
    if not PUBLIC.is_dir():
        pytest.skip(f"public captures not found at {PUBLIC}")
    sent: set[tuple[bytes, bytes, int, int, int]] = set()
    errors = 0
    for fr in open_capture(str(PUBLIC / name)):
        result = decode(fr)
        if isinstance(result, Segment):
            sent.add((result.src, result.dst, result.sport, result.dport, result.seq))
        elif isinstance(result, IcmpError) and result.quoted.proto == 6:
            q = result.quoted
            assert (q.src, q.dst, q.sport, q.dport, q.seq) in sent, fr.number
            errors += 1
    assert errors > 0


def test_public_smtp_frag_needed_mtu() -> None:
    if not PUBLIC.is_dir():
        pytest.skip(f"public captures not found at {PUBLIC}")
    mtus = [
        r.mtu
        for fr in open_capture(str(PUBLIC / "zeek/smtp.pcap"))
        if isinstance(r := decode(fr), IcmpError)
    ]
    assert len(mtus) == 4 and all(m is not None and 500 < m < 1500 for m in mtus)


def test_psh_flag_constant_matches() -> None:
    assert seg(Ether() / tcp4()).flags == PSH | ACK


@given(st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16))
def test_format_addr_is_what_ipaddress_writes(addr: bytes) -> None:
    # IPv4 is formatted by hand (ipaddress costs ~10 us an address); it must not differ.
    assert format_addr(addr) == str(ipaddress.ip_address(addr))


# -- TCP checksums (SYNs: checksum offload on the capturing host) -------------------------------


def test_checksum_ok_agrees_with_dpkt_in_cksum() -> None:
    # dpkt.in_cksum is the library's RFC 1071 sum: a segment is right when the sum over the
    # pseudo-header and the segment, checksum included, complements to zero.
    import random

    from dpkt.dpkt import in_cksum

    from pcapdiag.decode.ip import checksum_ok

    rng = random.Random(7)
    for family, alen in ((4, 4), (6, 16)):
        for n in (20, 21, 40, 1461):
            for _ in range(20):
                src, dst = rng.randbytes(alen), rng.randbytes(alen)
                seg = rng.randbytes(n)
                if family == 4:
                    pseudo = src + dst + bytes((0, 6)) + n.to_bytes(2, "big")
                else:
                    pseudo = src + dst + n.to_bytes(4, "big") + bytes((0, 0, 0, 6))
                assert checksum_ok(src, dst, 6, seg) == (in_cksum(pseudo + seg) == 0)


def test_a_syn_with_a_bad_checksum_is_flagged_and_a_good_one_is_not() -> None:
    good = Ether() / IP(src=A4, dst=B4) / TCP(sport=1234, dport=80, flags="S")
    assert seg(good).bad_checksum is False
    bad = Ether() / IP(src=A4, dst=B4) / TCP(sport=1234, dport=80, flags="S", chksum=0x1234)
    assert seg(bad).bad_checksum is True
    v6 = Ether() / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=1, dport=2, flags="SA", chksum=1)
    assert seg(v6).bad_checksum is True
    # Only SYNs are checked: a data segment with a wrong checksum is not flagged.
    data = Ether() / IP(src=A4, dst=B4) / TCP(flags="PA", chksum=0x1234) / Raw(b"x")
    assert seg(data).bad_checksum is False


# -- neighbour resolution (ARP, NDP) --------------------------------------------------------------


def test_arp_request_and_reply() -> None:
    req = dec(Ether() / ARP(op=1, psrc=A4, pdst=B4))
    assert isinstance(req, Neighbour)
    assert (req.family, req.reply, req.sender, req.target) == (4, False, ip4(A4), ip4(B4))
    rep = dec(Ether() / ARP(op=2, psrc=B4, pdst=A4))
    assert isinstance(rep, Neighbour)
    assert (rep.reply, rep.sender, rep.target) == (True, ip4(B4), ip4(A4))


def test_arp_behind_vlan_and_sll() -> None:
    assert isinstance(dec(Ether() / Dot1Q() / ARP(psrc=A4, pdst=B4)), Neighbour)
    assert isinstance(dec(CookedLinux(proto=0x0806) / ARP(psrc=A4, pdst=B4), 113), Neighbour)


@pytest.mark.parametrize(
    "arp",
    [ARP(ptype=0x86DD), ARP(hwlen=8), ARP(op=8)],  # another protocol, hardware, InARP
    ids=["ptype", "hwlen", "inarp"],
)
def test_other_arp_stays_other(arp: ARP) -> None:
    result = dec(Ether() / arp)
    assert isinstance(result, Other) and result.what == "arp"


def test_truncated_arp_is_other() -> None:
    result = dec(bytes(Ether() / ARP())[:30])
    assert isinstance(result, Other) and result.what == "arp"


def test_ndp_solicitation_and_advertisement() -> None:
    ns = dec(Ether() / IPv6(src=A6, dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=B6))
    assert isinstance(ns, Neighbour)
    assert (ns.family, ns.reply, ns.sender, ns.target) == (6, False, ip6(A6), ip6(B6))
    na = dec(Ether() / IPv6(src=B6, dst=A6, hlim=255) / ICMPv6ND_NA(tgt=B6))
    assert isinstance(na, Neighbour)
    assert (na.reply, na.sender, na.target) == (True, ip6(B6), ip6(A6))


def test_other_ndp_stays_other() -> None:
    result = dec(Ether() / IPv6() / ICMPv6ND_RS())
    assert isinstance(result, Other) and result.what == "icmpv6-nd"
    short = bytes(Ether() / IPv6(plen=8) / ICMPv6ND_NS(tgt=B6))[: 14 + 40 + 8]
    assert isinstance(dec(short), Other)  # too short to hold the target address
