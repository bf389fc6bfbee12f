"""Names for ICMP and ICMPv6 error messages, as rules refer to them.

A rule never sees a raw type/code pair: it sees a stable `kind` such as "v4:host-prohibited" or
"v6:admin-prohibited", so that the errno each platform maps it to can be written in the rule as
data. Names follow RFC 792 / RFC 1812 section 5.2.7.1 (IPv4) and RFC 4443 section 3.1 (IPv6).
"""

from __future__ import annotations

from typing import Final

# IPv4 Destination Unreachable codes (RFC 792, RFC 1122, RFC 1812).
_V4_UNREACH: Final[dict[int, str]] = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "protocol-unreachable",
    3: "port-unreachable",
    4: "fragmentation-needed",
    5: "source-route-failed",
    6: "net-unknown",
    7: "host-unknown",
    8: "host-isolated",
    9: "net-prohibited",
    10: "host-prohibited",
    11: "net-unreachable-tos",
    12: "host-unreachable-tos",
    13: "admin-prohibited",
    14: "precedence-violation",
    15: "precedence-cutoff",
}

# ICMPv6 Destination Unreachable codes (RFC 4443 section 3.1).
_V6_UNREACH: Final[dict[int, str]] = {
    0: "no-route",
    1: "admin-prohibited",
    2: "beyond-scope",
    3: "address-unreachable",
    4: "port-unreachable",
    5: "policy-fail",
    6: "reject-route",
    7: "source-routing-error",
}

KINDS: Final = frozenset(
    [f"v4:{name}" for name in _V4_UNREACH.values()]
    + [
        "v4:unreachable-other",
        "v4:ttl-exceeded",
        "v4:reassembly-timeout",
        "v4:parameter-problem",
        "v4:source-quench",
        "v4:redirect",
        "v4:other",
    ]
    + [f"v6:{name}" for name in _V6_UNREACH.values()]
    + [
        "v6:unreachable-other",
        "v6:packet-too-big",
        "v6:hop-limit-exceeded",
        "v6:reassembly-timeout",
        "v6:parameter-problem",
        "v6:other",
    ]
)


def icmp_kind(family: int, icmp_type: int, code: int) -> str:
    """The stable kind name of an ICMP (family 4) or ICMPv6 (family 6) error."""
    if family == 4:
        if icmp_type == 3:
            return "v4:" + _V4_UNREACH.get(code, "unreachable-other")
        if icmp_type == 11:
            return "v4:ttl-exceeded" if code == 0 else "v4:reassembly-timeout"
        if icmp_type == 12:
            return "v4:parameter-problem"
        if icmp_type == 4:
            return "v4:source-quench"
        if icmp_type == 5:
            return "v4:redirect"
        return "v4:other"
    if icmp_type == 1:
        return "v6:" + _V6_UNREACH.get(code, "unreachable-other")
    if icmp_type == 2:
        return "v6:packet-too-big"
    if icmp_type == 3:
        return "v6:hop-limit-exceeded" if code == 0 else "v6:reassembly-timeout"
    if icmp_type == 4:
        return "v6:parameter-problem"
    return "v6:other"


def describe_kind(kind: str) -> str:
    """Plain words for a kind: "v6:admin-prohibited" -> "ICMPv6 admin prohibited"."""
    family, _, name = kind.partition(":")
    return ("ICMPv6 " if family == "v6" else "ICMP ") + name.replace("-", " ")
