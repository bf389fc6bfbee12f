"""What the C first pass shares with the Python pipeline, written as a C header at build time.

_triage.c decodes frames as decode/ does and judges connections as track/ does; the numbers
and sets it needs for that (TCP flags, ethertypes, protocol numbers, the ICMP errors that
quote a datagram, the IPv6 headers the decoder walks, pcapng block types, the reader's
limits) are taken from the Python modules that define them, never copied by hand. The
header also carries the definition of a plain connection (track/plain.py) and a digest of
the whole text: the built module exposes the digest, and the first pass runs only when it
matches the header these definitions give now, so that a module built from older
definitions is never used (tests/accel/test_shared.py checks the same).

`python -m pcapdiag.accel.shared OUT.h` writes the header (hatch_build.py does, before
compiling). Imports only modules that need nothing beyond the standard library: the build
runs this without the package's dependencies installed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

from pcapdiag.decode import ip, link, packets
from pcapdiag.decode.icmp import icmp_kind
from pcapdiag.io import reader
from pcapdiag.track import hosts, plain, syncookie
from pcapdiag.track.connection import LINUX_TCP_IGNORED_KINDS

# ng_batch reads a pcapng section in C only when it has at most this many interfaces (the
# timestamp factors of each are kept on the stack).
NG_BATCH_IFACES = 256


def constants() -> dict[str, int]:
    """Every number the C pass takes from the Python definitions, by its C name."""
    return {
        # TCP header flags (RFC 9293 section 3.1), as decode/packets.py names them.
        "F_FIN": packets.FIN,
        "F_SYN": packets.SYN,
        "F_RST": packets.RST,
        "F_PSH": packets.PSH,
        "F_ACK": packets.ACK,
        # Link and network layers (decode/link.py, decode/ip.py).
        "ETH_IPV4": link.ETH_IPV4,
        "ETH_IPV6": link.ETH_IPV6,
        "ETH_8021Q": link.ETH_8021Q,
        "ETH_ARP": link.ETH_ARP,
        # NDP neighbour solicitation and advertisement (the tracker's neighbour table).
        "ND_SOLICIT": ip._ND_SOLICIT,
        "ND_ADVERT": ip._ND_ADVERT,
        "PROTO_ICMP": ip.PROTO_ICMP,
        "PROTO_TCP": ip.PROTO_TCP,
        "PROTO_UDP": ip.PROTO_UDP,
        "PROTO_GRE": ip.PROTO_GRE,
        "PROTO_ICMPV6": ip.PROTO_ICMPV6,
        "VXLAN_PORT": ip.VXLAN_PORT,
        # Framing (io/reader.py; MAX_CAPLEN reaches the C functions as an argument).
        "MAX_BLOCK": reader.MAX_BLOCK,
        "BT_SHB": reader.BT_SHB,
        "BT_IDB": reader.BT_IDB,
        "BT_PB": reader.BT_PB,
        "BT_SPB": reader.BT_SPB,
        "BT_EPB": reader.BT_EPB,
        "MAX_IFACES": NG_BATCH_IFACES,
        "MAX_HOSTS": hosts.MAX_HOSTS,
        # What counts as a SYN cookie's timestamp lag (track/syncookie.py).
        "COOKIE_MIN_LAG_NS": syncookie.MIN_LAG_NS,
        "COOKIE_MAX_LAG_NS": syncookie.MAX_LAG_NS,
        "COOKIE_SPAN_NS": syncookie.SPAN_NS,
    }


def segment_fields() -> tuple[str, ...]:
    """The fields of decode.packets.Segment, in order: the C batches build Segments
    positionally (new_segment), each field at the index SEG_<NAME> the header gives."""
    return tuple(f.name for f in dataclasses.fields(packets.Segment))


def sets() -> dict[str, frozenset[int]]:
    """Sets the C pass tests membership of, as IS_<NAME>(x) macros."""
    return {
        "VLAN_TPID": link.VLAN_TPIDS,
        "ICMP4_ERROR": ip.ICMP4_ERRORS,
        "ICMP6_ERROR": ip.ICMP6_ERRORS,
        # IPv6 headers the Python decoder walks past to find TCP or UDP: the C pass does
        # not, so a frame with one turns it off.
        "IPV6_WALKED_EXT": ip.EXT_GENERIC | {ip.EXT_FRAGMENT, ip.EXT_AH},
    }


def icmp_aborting() -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(family, ICMP error type) -> the ranges of codes whose errors the tracker takes as
    aborting a connect() (their kind is not one Linux ignores in SYN_SENT:
    track.connection.LINUX_TCP_IGNORED_KINDS): the C pass counts a SYN answered by one."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for family, errors in ((4, ip.ICMP4_ERRORS), (6, ip.ICMP6_ERRORS)):
        for icmp_type in sorted(errors):
            ranges: list[tuple[int, int]] = []
            for code in range(256):
                if icmp_kind(family, icmp_type, code) in LINUX_TCP_IGNORED_KINDS:
                    continue
                if ranges and ranges[-1][1] == code - 1:
                    ranges[-1] = (ranges[-1][0], code)
                else:
                    ranges.append((code, code))
            if ranges:
                out[(family, icmp_type)] = ranges
    return out


def _code_in(lo: int, hi: int) -> str:
    """C for "code (c) in [lo, hi]": (c) is a uint8_t, so without a comparison that always
    holds (the compiler warns of those)."""
    if lo == 0 and hi == 255:
        return "1"
    if lo == 0:
        return f"(c) <= {hi}"
    return f"(c) >= {lo}" if hi == 255 else f"((c) >= {lo} && (c) <= {hi})"


def _strings() -> dict[str, Iterable[str]]:
    """The definition of a plain connection the C pass implements (track/plain.py)."""
    return {
        "PLAIN_EVENTS": plain.PLAIN_EVENTS,
        "REPAIRED_EVENTS": plain.REPAIRED_EVENTS,
        "REPAIRED_BY": [f"{k}>{v}" for k, v in plain.REPAIRED_BY.items()],
        "PLAIN_UDP_EVENTS": plain.PLAIN_UDP_EVENTS,
        **{f"PLAIN_END_{k}": v for k, v in plain.PLAIN_END.items()},
        **{f"PLAIN_UDP_END_{k}": v for k, v in plain.PLAIN_UDP_END.items()},
        "MIDSTREAM_EVENTS": plain.MIDSTREAM_EVENTS,
        "MIDSTREAM_REPAIRED_EVENTS": plain.MIDSTREAM_REPAIRED_EVENTS,
        **{
            f"MIDSTREAM_{event}_{name}": values
            for event, fields in plain.MIDSTREAM_FIELDS.items()
            for name, values in fields.items()
        },
    }


def _body() -> str:
    lines = [
        "/* Generated from the Python definitions by pcapdiag/accel/shared.py at build time:",
        " * do not edit, do not commit. */",
        "#ifndef PCAPDIAG_SHARED_H",
        "#define PCAPDIAG_SHARED_H",
        "",
    ]
    for name, value in constants().items():
        lines.append(f"#define {name} {value:#x}u" if value >= 0 else f"#define {name} {value}")
    lines.append("")
    for i, name in enumerate(segment_fields()):
        lines.append(f"#define SEG_{name.upper()} {i}")
    lines.append(f"#define SEGMENT_NFIELDS {len(segment_fields())}")
    lines.append("")
    for name, members in sets().items():
        test = " || ".join(f"(x) == {m:#x}" for m in sorted(members))
        lines.append(f"#define IS_{name}(x) ({test})")
    aborting = " || ".join(
        f"((f) == {family} && (t) == {icmp_type} && ("
        + " || ".join(_code_in(lo, hi) for lo, hi in ranges)
        + "))"
        for (family, icmp_type), ranges in icmp_aborting().items()
    )
    lines.append(f"#define ICMP_ABORTS_CONNECT(f, t, c) ({aborting or 0})")
    lines.append("")
    lines.append("/* What the first pass proves of a connection it sets aside (track/plain.py). */")
    for name, words in _strings().items():
        text = " ".join(sorted(str(w) for w in words))
        lines.append(f'#define {name.upper()} "{text}"')
    return "\n".join(lines) + "\n"


@functools.cache
def digest() -> str:
    """The sha256 of the header's definitions: what a module built from them exposes."""
    return hashlib.sha256(_body().encode()).hexdigest()


def header() -> str:
    return _body() + f'\n#define SHARED_DIGEST "{digest()}"\n\n#endif\n'


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(header(), encoding="utf-8")
