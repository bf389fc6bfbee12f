"""The platform a finding names, where the capture was taken, and how sure the finding is:
on recordings of Linux hosts and on captures built with another stack's signature. What each
capture's packets carry (TTLs, SYN options, retries) is said next to each case."""

from __future__ import annotations

from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.findings.model import Finding
from tests.support.scenario import Talk

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "samples" / "recorded"


def _only(path: Path, builtin_rules, **kw: object) -> Finding:
    (f,) = analyze([str(path)], builtin_rules, **kw).findings
    return f


def test_a_linux_client_host_capture(builtin_rules) -> None:
    # epipe/client.pcap, taken on the client: its packets TTL 64 and Linux's SYN options
    # (mss,sackOK,ts,nop,ws); the server's arrive with 63 through the recorder's router.
    f = _only(RECORDED / "epipe" / "client.pcap", builtin_rules)
    assert (f.platform.name, f.platform.inferred, f.platform.decided) == ("linux", True, True)
    assert "TTL 64" in f.platform.why and "mss,sackOK,ts,nop,ws" in f.platform.why
    assert f.vantage.where == "client-host"
    assert f.confidence.level == "high" and f.primary().errno == "EPIPE"


def test_the_far_host_from_a_server_host_capture_is_inferred(builtin_rules) -> None:
    # epipe/server.pcap: the same connection seen on the server, whose packets leave with
    # 64 while the client's arrive with 63. The client's EPIPE is an inference there.
    f = _only(RECORDED / "epipe" / "server.pcap", builtin_rules)
    assert f.vantage.where == "server-host" and f.side == "client"
    assert f.primary().errno == "EPIPE" and f.confidence.level == "medium"
    assert any("taken on the server's host" in r for r in f.confidence.reasons)


def test_a_windows_client_that_retries_after_rsts(builtin_rules) -> None:
    # rules/syn-refused/windows-retries.pcap: TTL 128, mss,nop,ws,nop,nop,sackOK, and the SYN
    # sent again after each RST.
    f = _only(ROOT / "rules" / "syn-refused" / "windows-retries.pcap", builtin_rules)
    assert (f.platform.name, f.platform.decided) == ("windows", True)
    for clue in ("TTL 128", "mss,nop,ws,nop,nop,sackOK", "after a RST refused it"):
        assert clue in f.platform.why
    assert f.primary().errno == "WSAECONNREFUSED"


def test_a_syn_retried_after_an_icmp_error_is_not_linux(builtin_rules) -> None:
    # rules/syn-icmp-retried/retried.pcap: TTL 64 (Linux, BSD or macOS) and the SYN sent again
    # after host unreachable, which a Linux kernel never does: BSD or macOS, not decided.
    f = _only(ROOT / "rules" / "syn-icmp-retried" / "retried.pcap", builtin_rules)
    assert f.platform.candidates == {"freebsd", "macos"} and not f.platform.decided
    assert f.platform.name == "macos"
    (effect,) = f.own_effects
    assert (effect.call, effect.outcome) == ("connect", "pending")


def test_a_forced_platform_is_not_inferred(builtin_rules) -> None:
    f = _only(RECORDED / "epipe" / "client.pcap", builtin_rules, platform="macos")
    assert (f.platform.name, f.platform.inferred) == ("macos", False)
    assert f.primary().errno == "ECONNRESET"  # BSD: a RST in CLOSE_WAIT is ECONNRESET


def test_an_undecided_platform_lowers_only_an_errno_that_depends_on_it(builtin_rules) -> None:
    # rules/write-after-peer-close/fin-data-rst.pcap, built with TTL 64 and SYN options no
    # stack writes in that order: Linux, BSD or macOS. Linux says EPIPE, BSD and macOS
    # ECONNRESET: the claim is medium and says why.
    f = _only(ROOT / "rules" / "write-after-peer-close" / "fin-data-rst.pcap", builtin_rules)
    assert not f.platform.decided and f.platform.name == "linux"
    assert f.primary().errno == "EPIPE" and f.confidence.level == "medium"
    assert any("differs on FreeBSD, macOS" in r for r in f.confidence.reasons)
    # samples/demo.pcap's UDP query is as undecided, but ECONNREFUSED is every candidate's
    # errno for it: the platform is no reason to doubt it (its rule's own doubt, whether the
    # socket was connected, is).
    (udp,) = [
        f
        for f in analyze([str(ROOT / "samples/demo.pcap")], builtin_rules).findings
        if f.flow.proto == "udp"
    ]
    assert not udp.platform.decided
    assert not any("platform" in r for r in udp.confidence.reasons)
    assert [r for r in udp.confidence.reasons if "connected" in r]


def test_loopback_is_the_host_of_both_ends(builtin_rules, tmp_path: Path) -> None:
    # Both ends on 127.0.0.1: what the capture saw is what both kernels got.
    t = Talk(client="127.0.0.1", server="127.0.0.1")
    t.handshake()
    t.tcp("c", "PA", b"request")
    t.tcp("s", "R", seq=t.nxt["s"], ack=0)  # the client's data not yet acknowledged
    path = tmp_path / "loopback.pcap"
    t.write(path)
    f = _only(path, builtin_rules)
    assert f.vantage.where == "same-host"
    assert f.primary().errno == "ECONNRESET" and f.confidence.level == "high"
