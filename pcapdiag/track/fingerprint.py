"""What one host's packets of a flow look like, kept in a few fields per direction: the
evidence for the platform a host runs (findings/platform.py) and for where the capture was
taken (findings/vantage.py).

An IP packet leaves its host with the initial TTL (hop limit) of its stack and loses one per
router; the initial values in use are 64 (Linux, BSD, macOS), 128 (Windows) and 255 (network
devices, some Unix): RFC 1700 lists 64 as the recommended default, and p0f v3 classifies
hosts by the same three. A packet captured with exactly its initial TTL was captured on the
host that sent it (or one LAN hop away on a switch port: nothing routed it).

The IPv4 Identification tells whose stack made a packet (RFC 6864): Linux numbers a
connected socket's packets from its own counter, started at random and stepped once per
segment sent (include/net/ip.h ip_select_ident_segs(); with segmentation offload a captured
frame steps it by the segments it holds), and sends 0 with DF set when no socket is involved
(a RST answering a segment for no socket, tcp_v4_send_reset()), as iptables' REJECT
--reject-with tcp-reset does (nf_reject_iphdr_put()); Windows numbers all its packets from
one counter; OpenBSD and macOS pick them at random. A RST whose ID follows its claimed
sender's count came from that sender's socket; one with ID 0 from a sender that counts did
not.
"""

from __future__ import annotations

from dataclasses import dataclass

from pcapdiag.slots import compact_pickle

INITIAL_TTLS = (32, 64, 128, 255)
# The widest step between two of one sender's packets on a connection that still counts as
# its counter going on: a host-wide counter (Windows) moves with everything else the host
# sends in between.
IP_ID_STEP = 2048


def initial_ttl(ttl: int) -> int:
    """The smallest usual initial TTL at or above `ttl`: the value the sender started with,
    when it is fewer than 32 hops away (paths are far shorter: RFC 1812 hosts see 10-20)."""
    for start in INITIAL_TTLS:
        if ttl <= start:
            return start
    return 255


def captured_on_sender(own: int | None, other: int | None) -> bool:
    """Whether a capture whose two sides' packets arrive with TTLs `own` and `other` was taken
    on the host sending `own`: its packets carry their initial TTL, the other side's crossed a
    router. False when either is unknown, or when no router shows between them."""
    if own is None or other is None:
        return False
    return initial_ttl(own) == own and initial_ttl(other) > other


def ip_id_step(last: int, new: int) -> str:
    """What the step from one IPv4 ID to the next of the same sender shows: "zero" (both 0),
    "counter" (a small step forward), "random", or "" (the same ID: the frame again)."""
    d = (new - last) & 0xFFFF
    if d == 0:
        return "zero" if new == 0 else ""
    return "counter" if d <= IP_ID_STEP else "random"


def ip_id_kind(kind: str, step: str) -> str:
    """A sender's IP ID behaviour so far (`kind`, "" before two packets) after one more
    `step`: the step's kind while they agree, "mixed" once they do not."""
    if not step or step == kind:
        return kind
    return step if not kind else "mixed"


def ip_id_fit(rst_id: int, last: int, kind: str) -> str:
    """Whether a RST's IPv4 ID fits its claimed sender's earlier packets on the connection
    (their last ID `last`, their behaviour `kind`): "follows" (its counter's next, or 0 from
    a sender that sends 0), "zero" (0 from a sender that counts: made without its socket),
    "off" (neither), "unknown" (IPv6, no earlier packet, or a sender picking IDs at random)."""
    if rst_id < 0 or last < 0 or kind in ("random", "mixed"):
        return "unknown"
    if kind == "zero":
        return "follows" if rst_id == 0 else "off"
    if 0 < (rst_id - last) & 0xFFFF <= IP_ID_STEP:
        return "follows"
    return "zero" if rst_id == 0 else "off"


@compact_pickle
@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One side of a flow as its packets show it. None: not seen in the capture."""

    ttl: int | None = None  # TTL / hop limit of the side's first packet captured
    syn_layout: str | None = None  # options layout of its SYN or SYN-ACK (TcpOptions.layout)
    syn_window: int | None = None  # window field of its SYN or SYN-ACK
    syn_mss: int | None = None
    bad_checksum_frame: int | None = None  # its SYN's TCP checksum was wrong (offload)
    # IPv4 ID behaviour of its packets after the handshake (ip_id_kind; "": fewer than two)
    # and the DF bits they carried ("set", "clear", "mixed"; "": none IPv4).
    ip_ids: str = ""
    df: str = ""

    @property
    def hops(self) -> int | None:
        """Routers between the sender and the capture point (0: captured on its host or on
        its own LAN)."""
        return None if self.ttl is None else initial_ttl(self.ttl) - self.ttl


NOT_SEEN = Fingerprint()
# Endpoint.df_seen bits: a packet without DF, one with DF.
DF_CLEAR, DF_SET = 1, 2
DF_NAMES = ("", "clear", "set", "mixed")
