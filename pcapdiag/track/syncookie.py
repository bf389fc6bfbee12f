"""SYN cookies seen in a server's timestamps.

A listener whose SYN queue is full (or that always uses cookies, tcp_syncookies=2) keeps no
state for a SYN: it answers with a SYN-ACK whose sequence number is the cookie, and it must
find the client's options again when the ACK comes back. Linux keeps them in the SYN-ACK's
TSval (net/ipv4/syncookies.c cookie_init_timestamp()): it takes its clock in milliseconds,
clears the low 6 bits, writes the options there (window scale or 0xf, SACK at bit 4, ECN at
bit 5) and, when that lands ahead of the clock, steps back 64 ms; the per-connection
random offset (tcp_timestamps=1) is added after. So a cookie SYN-ACK's TSval is behind the
server's clock by 0 to 63 ms, where an ordinary SYN-ACK's is on it, and the server's next
segment, stamped from the same clock, shows the step: its TSval has moved further than the
capture's clock between the two (the lag). Without the random offset (tcp_timestamps=2) the
low 6 bits are the options themselves.

The first pass (accel/_triage.c) judges handshakes by the same numbers: a connection that
shows a lag this module counts as a cookie's is never set aside as plain.
"""

from __future__ import annotations

# The lag, in ns, that this module counts as a cookie's: the clock's milliseconds are cut
# (up to 1 ms either way on an ordinary SYN-ACK), the path's delay may differ between the two
# segments, and a cookie puts the TSval up to 63 ms behind.
MIN_LAG_NS = 3_000_000
MAX_LAG_NS = 65_000_000
# The server's next segment must come this soon after the SYN-ACK: over longer spans the
# capture's clock and the server's may drift apart by more than a millisecond (50 ppm).
SPAN_NS = 10_000_000_000
_NO_WSCALE = 0x0F  # TS_OPT_WSCALE_MASK: no window scale in use
_SACK, _ECN = 1 << 4, 1 << 5  # TS_OPT_SACK, TS_OPT_ECN


def options_code(client_wscale: int | None, scaled: bool, sack: bool, ecn: bool) -> int:
    """The 6 bits a cookie SYN-ACK carries for the options the server agreed to: the
    client's window scale when the SYN-ACK offers scaling (else 0xf), SACK when it permits
    it, ECN when it sets ECE (cookie_init_timestamp())."""
    wscale = client_wscale if scaled and client_wscale is not None else _NO_WSCALE
    return (wscale & 0x0F) | (_SACK if sack else 0) | (_ECN if ecn else 0)


def lag_ns(synack_tsval: int, synack_ns: int, tsval: int, ts_ns: int) -> int | None:
    """How far the SYN-ACK's TSval (captured at synack_ns) was behind the clock of the
    server's next segment (TSval `tsval` captured at ts_ns), counting 1 ms per TSval unit
    (Linux, RFC 7323's recommended rate); None when that segment came too late to tell."""
    elapsed = ts_ns - synack_ns
    if not 0 <= elapsed <= SPAN_NS:
        return None
    d = (tsval - synack_tsval) & 0xFFFFFFFF
    if d >= 1 << 31:
        d -= 1 << 32
    return d * 1_000_000 - elapsed


def is_cookie_lag(lag: int | None) -> bool:
    return lag is not None and MIN_LAG_NS <= lag <= MAX_LAG_NS
