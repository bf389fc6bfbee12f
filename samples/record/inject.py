"""One-shot TCP reset injector, run on the router:
``python3 -m record.inject IFACE CLIENT SERVER PORT``.

Sniffs IFACE (AF_PACKET) for the first TCP segment with payload from CLIENT to SERVER:PORT
(IPv4) and answers it with two forged resets, sent through a raw IPv4 socket (IPPROTO_RAW):
one to the server in the client's name (seq = the segment's seq: the server's rcv_nxt) and one
to the client in the server's name (seq = the segment's ack: the client's rcv_nxt). Both are
bare RSTs (no ACK flag, ack 0, window 0, no TCP options) with TTL 64, IP ID 0 and DF set.
Prints ``ready`` once sniffing, then one JSON line per packet sent, and exits.
Only the standard library is used: this file runs under the namespace's plain ``python3``.
"""

from __future__ import annotations

import json
import socket
import struct
import sys

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
TCP_RST = 0x04


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rst(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    """IPv4 header + 20-byte TCP header with RST only, checksums filled in."""
    saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, TCP_RST, 0, 0, 0)
    pseudo = saddr + daddr + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    # version/IHL, TOS, total length, ID 0, DF, TTL 64, protocol, checksum.
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, socket.IPPROTO_TCP, 0, saddr, daddr
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main(argv: list[str]) -> int:
    iface, client, server, port = argv[0], argv[1], argv[2], int(argv[3])
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sniff.bind((iface, 0))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    cli, srv = socket.inet_aton(client), socket.inet_aton(server)
    print("ready", flush=True)
    while True:
        frame, addr = sniff.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING:
            continue
        ip = frame[14:]
        if len(ip) < 40 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
            continue
        if ip[12:16] != cli or ip[16:20] != srv:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        payload = len(tcp) - (tcp[12] >> 4) * 4
        if dport != port or payload <= 0:
            continue
        for src, dst, sp, dp, rseq in (
            (client, server, sport, dport, seq),
            (server, client, dport, sport, ack),
        ):
            raw.sendto(rst(src, dst, sp, dp, rseq), (dst, 0))
            print(json.dumps({"rst": f"{src}:{sp} > {dst}:{dp}", "seq": rseq}), flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
