"""The platform a host runs, as far as its packets of one flow show it (`--platform auto`).

Each clue narrows the set of platforms the host may run (TTL, then SYN options, then
behaviour); what is left decides, and a clue that would leave nothing is set aside (a
capture can mislead: a tunnel's TTL, a proxy's SYN). When more than one platform is left,
Linux is assumed if it is among them (the platform the recordings hold pcapdiag to), and the
guess says it is not decided.

Clues (../shared/docs/peers.md, "Passive OS fingerprinting"; p0f v3 p0f.fp):
- initial TTL: 128 is Windows; 64 is Linux, BSD or macOS (RFC 1700's default); 255 and 32
  decide nothing here (network devices, old stacks).
- the layout of the SYN's options: Linux writes mss,sackOK,ts,nop,ws (net/ipv4/tcp_output.c
  tcp_options_write()); Windows mss,nop,ws,nop,nop,sackOK; macOS mss,nop,ws,nop,nop,ts,
  sackOK,eol; FreeBSD mss,nop,ws,sackOK,ts.
- behaviour: a SYN sent again after a RST refused it is Windows (Microsoft KB 175523); a SYN
  sent again after a hard ICMP error is not Linux (tcp_v4_err()/tcp_v6_err() end the connect
  at once); SYN retransmissions 3 s apart are Windows (InitialRto 3 s, KB 2786464), 1 s apart
  are not; a one-byte keepalive probe is Windows (Linux and BSD send none, RFC 9293 3.8.4
  allows either).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from pcapdiag.errnos import PLATFORMS
from pcapdiag.slots import compact_pickle
from pcapdiag.track.connection import LINUX_TCP_IGNORED_KINDS
from pcapdiag.track.events import Event, IcmpErrorEvent, Keepalive, Retransmission, Rst
from pcapdiag.track.fingerprint import initial_ttl
from pcapdiag.track.flows import FlowRecord

AUTO = "auto"  # --platform auto: infer each host's platform
NAMES = {"linux": "Linux", "freebsd": "FreeBSD", "macos": "macOS", "windows": "Windows"}
# Which platform stands for a set that is not decided, in this order.
_PREFERENCE = ("linux", "macos", "freebsd", "windows")

_BSD_AND_LINUX = frozenset({"linux", "freebsd", "macos"})
_NOT_LINUX = frozenset({"freebsd", "macos", "windows"})
_NOT_WINDOWS = _BSD_AND_LINUX

# SYN option layouts (TcpOptions.layout) each stack writes; the trailing EOLs and a missing
# timestamp (sysctl off) keep the rest of the order.
_LAYOUTS: dict[str, frozenset[str]] = {
    "MSTNW": frozenset({"linux"}),
    "MNNSNW": frozenset({"linux"}),  # net.ipv4.tcp_timestamps = 0
    "MNNTNW": frozenset({"linux"}),  # net.ipv4.tcp_sack = 0
    "MNWNNS": frozenset({"windows"}),
    "MNWNNTNNS": frozenset({"windows"}),  # timestamps on (Windows Server)
    "MNNS": frozenset({"windows"}),  # no window scaling
    "MNWNNTSE": frozenset({"macos", "freebsd"}),
    "MNWNNTS": frozenset({"macos", "freebsd"}),
    "MNWST": frozenset({"freebsd"}),
    "MNWSTE": frozenset({"freebsd"}),
}


@compact_pickle
@dataclass(frozen=True, slots=True)
class PlatformGuess:
    """The platform whose errnos a finding names: asked for (`inferred` False) or inferred
    from the side's packets (`decided` False when more than one platform fits)."""

    name: str
    inferred: bool
    why: str
    decided: bool = True
    candidates: frozenset[str] = frozenset()  # the platforms the clues leave (inferred only)


def forced(name: str) -> PlatformGuess:
    return PlatformGuess(name, False, f"asked for (--platform {name})", True, frozenset({name}))


LINUX = forced("linux")


def infer(flow: FlowRecord, side: str) -> PlatformGuess:
    """The platform of the host on `side` of `flow`, from that host's packets in the flow."""
    host = flow.host(side)
    return _decide(host.ttl, host.syn_layout, side, tuple(_behaviour(flow.events, side)))


@functools.lru_cache(maxsize=4096)
def _decide(
    ttl: int | None,
    layout: str | None,
    side: str,
    behaviour: tuple[tuple[frozenset[str], str], ...],
) -> PlatformGuess:
    """The guess for these clues (cached: a flood's hosts show the same few)."""
    left = frozenset(PLATFORMS)
    clues: list[str] = []

    def narrow(fits: frozenset[str], clue: str) -> None:
        """Keep what `fits` allows, and the clue if it agrees with the others (a clue that
        would leave nothing is set aside)."""
        nonlocal left
        if left & fits:
            left &= fits
            clues.append(clue)

    if ttl is not None:
        start = initial_ttl(ttl)
        if start == 128:
            narrow(frozenset({"windows"}), f"TTL {ttl} (initial 128)")
        elif start == 64:
            narrow(_NOT_WINDOWS, f"TTL {ttl} (initial 64)")
    if layout:
        fits = _LAYOUTS.get(layout)
        if fits is not None:
            narrow(fits, f"SYN options {_spell(layout)}")
    # Behaviour last: a signature is the host's own, while what a packet's absence or
    # repetition means depends on where the capture was taken.
    for fits, clue in behaviour:
        narrow(fits, clue)
    name = next(p for p in _PREFERENCE if p in left)
    if len(left) == 1:
        return PlatformGuess(name, True, "inferred from " + ", ".join(clues), True, left)
    names = [NAMES[p] for p in _PREFERENCE if p in left]
    fits_all = ", ".join(names[:-1]) + " and " + names[-1]
    if clues:
        verb = "fits" if len(clues) == 1 else "fit"
        why = f"{NAMES[name]} assumed: " + ", ".join(clues) + f" {verb} {fits_all} alike"
    else:
        why = f"{NAMES[name]} assumed: nothing in the capture shows the {side}'s platform"
    return PlatformGuess(name, True, why, False, left)


def _behaviour(events: Sequence[Event], side: str) -> list[tuple[frozenset[str], str]]:
    """Clues from what the side's kernel did in this flow."""
    out: list[tuple[frozenset[str], str]] = []
    refused_at = hard_icmp_at = None
    told_refused = told_icmp = told_ka = False  # each behaviour is told once
    syn_times: list[int] = []
    for ev in events:
        if isinstance(ev, Rst) and ev.receiver == side and ev.receiver_state == "SYN_SENT":
            if ev.accepted and refused_at is None:
                refused_at = ev.frame
        elif (
            isinstance(ev, IcmpErrorEvent)
            and ev.receiver == side
            and ev.accepted
            and ev.receiver_state == "SYN_SENT"
            # Linux ends a connect at once on any error it does not ignore (tcp_v4_err()).
            and ev.kind not in LINUX_TCP_IGNORED_KINDS
            and hard_icmp_at is None
        ):
            hard_icmp_at = ev.frame
        elif ev.name == "syn" and ev.sender == side:
            syn_times.append(ev.ts_ns)
        elif isinstance(ev, Retransmission) and ev.sender == side and ev.kind == "syn":
            syn_times.append(ev.ts_ns)
            if refused_at is not None and not told_refused:
                told_refused = True
                out.append(
                    (
                        frozenset({"windows"}),
                        f"the SYN sent again (frame {ev.frame}) after a RST refused it "
                        f"(frame {refused_at})",
                    )
                )
            if hard_icmp_at is not None and not told_icmp:
                told_icmp = True
                out.append(
                    (
                        _NOT_LINUX,
                        f"the SYN sent again (frame {ev.frame}) after an ICMP error "
                        f"(frame {hard_icmp_at}), which ends a connect at once on Linux",
                    )
                )
        elif isinstance(ev, Keepalive) and ev.sender == side and ev.length == 1 and not told_ka:
            told_ka = True
            out.append((frozenset({"windows"}), f"a one-byte keepalive probe (frame {ev.frame})"))
    if len(syn_times) >= 2:
        first_gap = (syn_times[1] - syn_times[0]) / 1e9
        if 2.5 <= first_gap <= 3.5:
            out.append((frozenset({"windows"}), "SYN retransmitted after 3 s"))
        elif 0.8 <= first_gap <= 1.2:
            out.append((_NOT_WINDOWS, "SYN retransmitted after 1 s"))
    return out


def _spell(layout: str) -> str:
    words = {"M": "mss", "N": "nop", "W": "ws", "S": "sackOK", "K": "sack", "T": "ts", "E": "eol"}
    return ",".join(words.get(c, "?") for c in layout)
