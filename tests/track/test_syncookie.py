"""SYN cookies in the server's timestamps (track/syncookie.py, rule PD-TCP-022): the numbers
against Linux's cookie_init_timestamp(), the tracker's event, the first pass agreeing with it
(a cookie's connection is never set aside as plain), and how sure each vantage point is on
the recordings (rules/syn-cookies, recorded with tcp_syncookies=2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.accel import triage
from pcapdiag.api import analyze
from pcapdiag.settings import Settings
from pcapdiag.track import syncookie
from tests.support.scenario import Talk

ROOT = Path(__file__).resolve().parents[2]
COOKIES = ROOT / "rules" / "syn-cookies"


def test_options_code_is_the_kernels() -> None:
    # cookie_init_timestamp(): wscale_ok ? snd_wscale : 0xf, | TS_OPT_SACK (16), | TS_OPT_ECN
    # (32). The recordings' three connections: (wscale 10, SACK), (wscale 0, SACK: SO_RCVBUF
    # 4096 on the client), (wscale 10, ECN, no SACK): 26, 16, 42 are what their TSvals end in.
    assert syncookie.options_code(10, True, True, False) == 26
    assert syncookie.options_code(0, True, True, False) == 16
    assert syncookie.options_code(10, True, False, True) == 42
    # No window scale agreed (or the SYN was not captured): 0xf.
    assert syncookie.options_code(7, False, True, False) == 15 | 16
    assert syncookie.options_code(None, True, False, False) == 15


def test_lag_counts_one_tsval_unit_per_millisecond() -> None:
    ms = 1_000_000
    # An ordinary SYN-ACK: the clock moved 10 ms in 10 ms of capture time.
    assert syncookie.lag_ns(1000, 0, 1010, 10 * ms) == 0
    # A cookie's: 30 ms behind. The TSval may wrap between the two.
    assert syncookie.lag_ns(1000, 0, 1040, 10 * ms) == 30 * ms
    assert syncookie.lag_ns(2**32 - 5, 0, 35, 10 * ms) == 30 * ms
    assert syncookie.is_cookie_lag(30 * ms) and syncookie.is_cookie_lag(syncookie.MIN_LAG_NS)
    assert not syncookie.is_cookie_lag(2 * ms)  # milliseconds cut, and path delay
    assert not syncookie.is_cookie_lag(70 * ms)  # more than a cookie's 63 ms: another clock
    assert not syncookie.is_cookie_lag(-20 * ms)
    # Past SPAN_NS, the two clocks may have drifted apart: no judgement.
    assert syncookie.lag_ns(1000, 0, 1000 + 11_000 + 30, 11_000 * ms) is None


def _cookie_talk(lag_ms: int) -> Talk:
    """A handshake whose SYN-ACK's TSval is `lag_ms` behind the clock the server's next
    segment (its response, 20 ms later) shows; Linux options, built packet by packet, as
    captured on the server's host (its TTL 64, the client's 60)."""
    t = Talk(client_ttl=60, server_ttl=64)
    syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (5000, 0)), ("NOP", None)]
    t.tcp("c", "S", options=[*syn_opts, ("WScale", 7)])
    t.tcp(
        "s",
        "SA",
        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (90_000, 5000)), ("WScale", 7)],
    )
    t.tcp("c", "A", options=[("NOP", None), ("NOP", None), ("Timestamp", (5001, 90_000))])
    t.tcp(
        "c",
        "PA",
        b"GET / HTTP/1.1\r\n\r\n",
        options=[("NOP", None), ("NOP", None), ("Timestamp", (5002, 90_000))],
    )
    # 20 ms after the SYN-ACK (two segments of 1 ms, then 18 ms).
    t.tcp(
        "s",
        "PA",
        b"HTTP/1.1 200 OK\r\n\r\n",
        dt=0.018,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (90_020 + lag_ms, 5002))],
    )
    t.tcp("c", "FA", options=[("NOP", None), ("NOP", None), ("Timestamp", (5030, 90_050))])
    t.tcp("s", "FA", options=[("NOP", None), ("NOP", None), ("Timestamp", (90_051, 5030))])
    t.tcp("c", "A", options=[("NOP", None), ("NOP", None), ("Timestamp", (5031, 90_051))])
    return t


PATHS = [Settings(accelerate=False), Settings(accelerate=False, fast_decode=False)]
if triage.available():
    PATHS.insert(0, Settings())


@pytest.mark.parametrize("settings", PATHS, ids=lambda s: f"accel={s.accelerate}")
@pytest.mark.parametrize(("lag_ms", "found"), [(0, False), (2, False), (25, True), (63, True)])
def test_every_path_finds_the_cookie(
    settings: Settings, lag_ms: int, found: bool, builtin_rules, tmp_path: Path
) -> None:
    # The first pass must hand a cookie's connection to the tracker (it is otherwise plain)
    # and set an ordinary one aside: the same findings on every path.
    path = tmp_path / "cookie.pcap"
    _cookie_talk(lag_ms).write(path)
    findings = analyze([str(path)], builtin_rules, settings=settings).findings
    cookies = [f for f in findings if f.rule == "PD-TCP-022"]
    assert len(cookies) == found
    if found:
        (f,) = cookies
        assert f.frames == (2, 5)
        assert f"{lag_ms} ms behind" in f.cause
        # 90_000 & 63 = 16, not the options' 23: only the lag shows the cookie.
        assert "low 6 bits" not in " ".join(f.notes)


@pytest.mark.parametrize(
    ("capture", "level", "origin"),
    [
        # The options in the TSval: the cookie is certain (origin high); the finding is
        # medium only for the generic doubt of a claim about the far host.
        ("cookies-no-ts-offset.pcap", "medium", "high"),
        # The server's clock, first hand, but no options to confirm it.
        ("cookies-server-host.pcap", "medium", "medium"),
        # Only the lag, away from the server: path delay could look the same. No claim.
        ("cookies-client-host.pcap", None, None),
    ],
)
def test_how_sure_each_view_is(capture: str, level: str, origin: str, builtin_rules) -> None:
    found = analyze([str(COOKIES / capture)], builtin_rules).findings
    assert len(found) == (3 if level else 0)
    for f in found:
        assert f.rule == "PD-TCP-022" and f.primary() is None
        assert f.confidence.level == level
        assert (f.origin.actor, f.origin.confidence) == ("peer", origin)
