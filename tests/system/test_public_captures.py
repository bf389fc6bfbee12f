"""Real captures written by other people (../shared/captures/public, see its MANIFEST.md).

Every file: the analysis never crashes, counts the frames tshark counts, flags exactly the
damaged files the MANIFEST names, and the CLI never ends in an internal error. Then a few
content checks on files whose MANIFEST row states the failure plainly; each expected errno was
decided by reading the capture with tshark and ../shared/docs/errno-semantics.md, as noted.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.cli import main
from pcapdiag.errors import CaptureError
from pcapdiag.findings.model import Report
from tests.support.paths import public_captures_dir

PUBLIC = public_captures_dir()
SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")

if not PUBLIC.is_dir():
    pytest.skip(
        f"public captures not found at {PUBLIC} (set PCAPDIAG_PUBLIC_CAPTURES to their directory)",
        allow_module_level=True,
    )

FILES = sorted(p for p in PUBLIC.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
IDS = [str(p.relative_to(PUBLIC)) for p in FILES]

# MANIFEST.md, "Truncated or corrupt files", with the frames read before the damage.
DAMAGED = {
    "scapy/bad_rsn_parsing_overrides_ssid.pcap": 1,
    "suricata-verify/10.7.29.101_49898-178.63.41.150_25.pcap": 18,
    "suricata-verify/tls_DER-incomplete-header.pcap": 6,
}
# Files that are not captures at all (CaptureError expected). The MANIFEST lists none: the two
# empty files are valid captures with a header and zero frames.
NOT_CAPTURES: set[str] = set()
EMPTY = {"zeek/empty.pcap", "tcpdump/empty.pcapng"}

# MANIFEST.md "Healthy controls" (whole files): no failure of any kind.
HEALTHY = [
    "chrissanders-packets/tcp_handshake.pcapng",
    "chrissanders-packets/tcp_teardown.pcapng",
    "chrissanders-packets/http_google.pcapng",
    "zeek/http-vlan-0.pcap",
    "zeek/http-qinq-0.pcap",
    "zeek/vxlan-encapsulated-http.pcap",
    "zeek/truncated-header.pcap",
    "zeek/timestamp.pcap",
    "zeek/wikipedia.pcap",
    "tcpdump/tcp-handshake-nano.pcap",
    "tcpdump/pptp.pcap",
    "gopacket/test_loopback.pcap",
]


def test_manifest_files_are_present() -> None:
    names = set(IDS)
    assert len(FILES) == 62  # "62 files" in MANIFEST.md
    for rel in [*DAMAGED, *EMPTY, *HEALTHY]:
        assert rel in names, rel


_REPORTS: dict[str, Report] = {}


def report(rel: str, rules: list) -> Report:
    """The analysis of one public file with the built-in rules (computed once per session)."""
    if rel not in _REPORTS:
        _REPORTS[rel] = analyze([str(PUBLIC / rel)], rules)
    return _REPORTS[rel]


@functools.cache
def tshark_frames(path: Path) -> int:
    proc = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    # tshark numbers frames 1..N; for the corrupt files it exits non-zero after the good ones
    assert [int(x) for x in lines] == list(range(1, len(lines) + 1))
    return len(lines)


# -- every file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", IDS)
def test_analysis_is_total(rel: str, builtin_rules) -> None:
    if rel in NOT_CAPTURES:
        with pytest.raises(CaptureError):
            analyze([str(PUBLIC / rel)], builtin_rules)
        return
    rep = report(rel, builtin_rules)
    assert rep.damaged is (rel in DAMAGED)
    if rel in DAMAGED:
        assert rep.frames == DAMAGED[rel]
        (cap,) = rep.captures
        assert cap.damage is not None and cap.damage.frame == DAMAGED[rel] + 1
    if rel in EMPTY:
        assert rep.frames == 0
        assert rep.findings == [] and rep.flows == []
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["schema"] == "pcapdiag.report/v1"
    assert doc["summary"]["frames"] == rep.frames
    assert len(doc["findings"]) == len(rep.findings)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("rel", IDS)
def test_frame_count_matches_tshark(rel: str, builtin_rules) -> None:
    if rel in NOT_CAPTURES:
        pytest.skip("not a capture")
    expected = tshark_frames(PUBLIC / rel)
    if rel in DAMAGED:
        assert expected == DAMAGED[rel]  # the MANIFEST's "N (then error)"
    assert report(rel, builtin_rules).frames == expected


@pytest.mark.parametrize("rel", IDS)
def test_cli_exit_code(rel: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--format", "json", str(PUBLIC / rel)])
    out, err = capsys.readouterr()
    code = exc.value.code
    assert code != 70, err
    assert "Traceback" not in err
    if rel in NOT_CAPTURES:
        assert code == 3
        return
    assert code == (4 if rel in DAMAGED else 0), err
    doc = json.loads(out)
    assert doc["schema"] == "pcapdiag.report/v1"
    if rel in DAMAGED:
        assert len(err.splitlines()) == 1
        assert f"(frame {DAMAGED[rel] + 1})" in err


@pytest.mark.parametrize("rel", HEALTHY)
def test_healthy_controls_have_no_findings(rel: str, builtin_rules) -> None:
    rep = report(rel, builtin_rules)
    assert [(f.rule, f.side, f.frames) for f in rep.findings] == []


# -- content checks -----------------------------------------------------------------------------


def summary(rep: Report, platform: str = "linux") -> list[tuple[str, str, str, str, str | None]]:
    out = []
    for f in rep.findings:
        prim = f.primary(platform)
        out.append(
            (
                f.flow.client,
                f.flow.server,
                f.side,
                prim.call if prim else "",
                prim.errno if prim else None,
            )
        )
    return out


def test_refused_connection(builtin_rules) -> None:
    # tshark: f1 192.168.100.138:3372 -> .1:80 SYN seq 951057939; f2 RST|ACK ack 951057940 =
    # ISN + 1. An acceptable RST in SYN_SENT: connect() fails with ECONNREFUSED (errno-semantics
    # 1.3, 5 row 1).
    rep = report("chrissanders-packets/tcp_refuseconnection.pcapng", builtin_rules)
    (f,) = rep.findings
    assert f.rule == "PD-TCP-001"
    assert (f.flow.client, f.flow.server, f.side) == (
        "192.168.100.138:3372",
        "192.168.100.1:80",
        "client",
    )
    prim = f.primary("linux")
    assert prim is not None and (prim.call, prim.errno) == ("connect", "ECONNREFUSED")
    assert f.frames == (1, 2)


def test_windows_client_refused_twice(builtin_rules) -> None:
    # tshark f1-f12: 192.168.0.4:26242 -> 212.227.15.188:110 and :26245 -> 212.227.15.171:110,
    # each SYN (same ISN, same port: Windows retries after a RST, KB 175523) answered three times
    # by RST|ACK with ack = ISN + 1. One refused connect() per server; the rest of the file is
    # five healthy POP3 sessions.
    # f25 SYN to 212.227.15.166:110, sent again 3.0 s later (f26), answered (f27): a slow
    # connect, information only (slow-connect).
    rep = report("zeek/pop3.pcap", builtin_rules)
    assert sorted(s for s in summary(rep) if s[4] is not None) == [
        ("192.168.0.4:26242", "212.227.15.188:110", "client", "connect", "ECONNREFUSED"),
        ("192.168.0.4:26245", "212.227.15.171:110", "client", "connect", "ECONNREFUSED"),
    ]
    assert sorted((f.rule, f.frames[0]) for f in rep.findings) == [
        ("PD-TCP-001", 1),
        ("PD-TCP-001", 7),
        ("PD-TCP-019", 25),
    ]
    assert {e for *_, e in summary(rep, "windows") if e is not None} == {"WSAECONNREFUSED"}


def test_refused_on_ipv6_then_reset(builtin_rules) -> None:
    # tshark: f1 [::1]:53098 -> 6379 SYN, f2 RST|ACK ack = ISN + 1 -> ECONNREFUSED.
    # f3-f5 handshake on 127.0.0.1:53099; f7 client sends 27 B, f8 server ACKs all of it, f9
    # server sends 42 B, f10 server RST|ACK with seq 3648929710 = 3648929668 + 42, exactly the
    # client's rcv_nxt, and the client had sent no FIN: ESTABLISHED -> the client's recv()
    # returns the 42 B and then fails with ECONNRESET (errno-semantics 1.3, 1.4). f12 (a RST
    # answering the client's ACK) changes nothing.
    rep = report("zeek/almost-resp.pcap", builtin_rules)
    assert summary(rep) == [
        ("[::1]:53098", "[::1]:6379", "client", "connect", "ECONNREFUSED"),
        ("127.0.0.1:53099", "127.0.0.1:6379", "client", "recv", "ECONNRESET"),
    ]
    refused, reset = rep.findings
    assert refused.frames == (1, 2)
    assert 10 in reset.frames and 12 not in reset.frames


@pytest.mark.parametrize(
    ("rel", "client", "server", "rst_frame"),
    [
        # tshark: client sends 605 B (f4), server ACKs (f5), sends a 21-byte banner (f6), then
        # RST|ACK (f7) at seq 3563139098 = 3563139077 + 21 = the client's rcv_nxt.
        ("zeek/get-to-ssh-server.pcap", "136.216.42.40:44338", "130.74.164.231:22", 7),
        # tshark: 82-byte request (f4), 51-byte reply (f6), client ACK (f7), server RST|ACK (f8)
        # at seq 2133193094 = 2133193043 + 51 = the client's rcv_nxt.
        ("zeek/curl_http_09.pcap", "127.0.0.1:49404", "127.0.0.1:80", 8),
    ],
)
def test_server_reset_after_reply(
    rel: str, client: str, server: str, rst_frame: int, builtin_rules
):
    # An acceptable RST reaching an ESTABLISHED client that sent no FIN: recv() returns the reply
    # and then ECONNRESET (errno-semantics 1.3, 1.4, 5 row 4).
    rep = report(rel, builtin_rules)
    claims = [s for s in summary(rep) if s[4] is not None]
    assert claims == [(client, server, "client", "recv", "ECONNRESET")]
    (f,) = [f for f in rep.findings if f.side == "client"]
    assert rst_frame in f.frames
    # Captured on loopback, the server's own RST is the capturing host's abort too
    # (local-abort): no errno for the server, whose application closed that way.
    for other in rep.findings:
        assert other is f or (other.rule, other.primary()) == ("PD-TCP-023", None)
    assert [s[4] for s in summary(rep, "macos") if s[2] == "client"] == ["ECONNRESET"]


# The TCP-carrying ICMPv6 destination-unreachable frames (type 1 code 0, no route) in
# arkime/ospf.pcap, from `tshark -Y "icmpv6.type==1"` minus the two quoting NTP (f218, f227).
OSPF_ICMP6_FRAMES = [
    25,
    180,
    182,
    184,
    186,
    188,
    190,
    192,
    194,
    196,
    198,
    220,
    233,
    237,
    239,
    241,
    243,
]


def test_icmpv6_no_route_during_connect(builtin_rules) -> None:
    # 17 IPv6 SYNs to :80 from a Linux host, each answered by ICMPv6 1/0 from 2001:bef::2 and
    # never retried: Linux aborts connect() on the first valid ICMP in SYN_SENT, and no route
    # maps to ENETUNREACH (errno-semantics 7.3, 7.4).
    rep = report("arkime/ospf.pcap", builtin_rules)
    assert len(rep.findings) == 17
    for f in rep.findings:
        assert f.rule == "PD-TCP-002"
        assert f.side == "client"
        assert f.flow.client.startswith("[2001:bef::a00:27ff:fe0d:5c3c]:")
        assert f.flow.server.endswith("]:80")
        prim = f.primary("linux")
        assert prim is not None and (prim.call, prim.errno) == ("connect", "ENETUNREACH")
    assert sorted(f.frames[-1] for f in rep.findings) == OSPF_ICMP6_FRAMES
