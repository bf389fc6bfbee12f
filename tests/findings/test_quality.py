"""Capture-quality warnings, each produced by a capture derived from a real recording
(tests/support/derive_captures.py says how each was made). The counts and frames expected
here were worked out from the recordings' packets (tshark), not read from pcapdiag's output:
see the comment on each case."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.findings.confidence import at_least
from pcapdiag.findings.model import Report
from pcapdiag.settings import NO_ACCEL
from tests.support import derive_captures

QUALITY = derive_captures.OUT

# name -> (code, count, first frame): what the derived capture must produce.
EXPECTED = {
    # data-timeout's client.pcap without the server's frames: one connection, from the
    # client's SYN (frame 3 after the two ARP frames); the client's ACK 101 covers the
    # server's 100-byte reply the capture no longer holds.
    "one-direction": ("one-direction", 1, 3),
    # lossy-transfer's client.pcap: only the server's ACKs after its SYN-ACK, the first of
    # them frame 1; the accelerator sets this connection aside and counts it.
    "one-direction-mid-stream": ("one-direction", 1, 1),
    # close-unread's client.pcap from the first data segment on (frame 1).
    "started-mid-flow": ("started-mid-flow", 1, 1),
    # lossy-transfer's client.pcap without frame 8 (bytes 2449-3897): the next segment, now
    # frame 8, starts at 3897.
    "capture-gap": ("capture-gap", 1, 8),
    # data-timeout's client.pcap with every TCP frame twice: the copies of the segments
    # carrying a SYN or data (frames 3, 4, 6, 8, 10 and the four retransmissions 11-14 of
    # the recording) are dropped; copies of bare ACKs change nothing and are not counted.
    # The first copy is frame 4 (the SYN's).
    "duplicate-frames": ("duplicate-frames", 9, 4),
    # data-timeout's client.pcap cut at frame 13: the data segment (frame 10) retransmitted at
    # frames 11, 12, 13 and the capture ends; the finding's first frame is 11.
    "ended-before-outcome": ("ended-before-outcome", 1, 11),
    # epipe's client.pcap with the server's SYN-ACK announcing MSS 64: the client's first
    # 100-byte request is frame 6.
    "offload-oversize": ("offload-oversize", 1, 6),
    # epipe's client.pcap with the client's checksums as offload leaves them: its SYN is
    # frame 3 (SYNs are where the checksum is checked).
    "bad-checksum-local": ("bad-checksum-local", 1, 3),
    # epipe's client.pcap with each of the client's two 100-byte writes (frames 6 and 10) in
    # two fragments, the second of each without the TCP header: frames 7 and 12 once the
    # first write's fragment has moved the second write on by one.
    "tcp-fragments": ("tcp-fragments", 2, 7),
    # the same from epipe-v6's client.pcap (frames 1-2 are NDP, as the ARP frames of epipe).
    "tcp-fragments-v6": ("tcp-fragments", 2, 7),
}


def _analyze(name: str, builtin_rules, **kw) -> Report:
    return analyze([str(QUALITY / f"{name}.pcap")], builtin_rules, **kw)


def _claims(report: Report) -> set[tuple[str, str, str, str | None]]:
    """(client, server, side, errno) of every errno claimed at medium confidence or more."""
    return {
        (f.flow.client, f.flow.server, f.side, f.primary().errno)
        for f in report.findings
        if f.primary() is not None
        and f.primary().errno is not None
        and at_least(f.confidence.level, "medium")
    }


def test_every_code_has_a_derived_capture() -> None:
    from pcapdiag.findings.quality import CODES

    assert {code for code, _, _ in EXPECTED.values()} == set(CODES)


def test_derived_captures_are_what_the_script_writes(tmp_path: Path) -> None:
    for path in derive_captures.build_all(tmp_path):
        assert path.read_bytes() == (QUALITY / path.name).read_bytes(), path.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_warning_is_produced(name: str, builtin_rules) -> None:
    code, count, frame = EXPECTED[name]
    report = _analyze(name, builtin_rules)
    got = {w.code: (w.count, w.frame) for w in report.warnings}
    assert got.get(code) == (count, frame), report.warnings
    # The JSON carries the code and the count.
    (doc,) = [w for w in report.to_dict()["warnings"] if w["code"] == code]
    assert (doc["count"], doc["frame"]) == (count, frame)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_claim_the_full_capture_does_not_make(name: str, builtin_rules) -> None:
    derived = next(d for d in derive_captures.DERIVED if d.name == name)
    full = analyze([str(derive_captures.RECORDED / derived.source / "client.pcap")], builtin_rules)
    assert _claims(_analyze(name, builtin_rules)) <= _claims(full)


@pytest.mark.parametrize("name", ["one-direction", "started-mid-flow", "ended-before-outcome"])
def test_the_findings_it_touches_say_so(name: str, builtin_rules) -> None:
    code, _, _ = EXPECTED[name]
    report = _analyze(name, builtin_rules)
    touched = [f for f in report.findings if code in f.quality] or [
        f for f in report.findings if f.flow.roles == "guessed"
    ]
    assert touched, report.findings
    for f in touched:
        assert f.confidence.level != "high", f.confidence
        assert f.confidence.reasons


def test_one_direction_lowers_the_finding_and_says_why(builtin_rules) -> None:
    (f,) = _analyze("one-direction", builtin_rules).findings
    assert "one-direction" in f.quality and "capture-gap" not in f.quality
    assert any("only the client's packets" in r for r in f.confidence.reasons)


def test_duplicates_are_not_retransmissions(builtin_rules) -> None:
    # The same four retransmissions as in the recording, not eight.
    (dup,) = _analyze("duplicate-frames", builtin_rules).findings
    assert "retransmitted data 4 times" in dup.cause


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_same_warnings_without_the_accelerator_and_with_two_jobs(
    name: str, builtin_rules
) -> None:
    def warnings(**kw: object) -> list[tuple[str, int, int | None, str]]:
        report = _analyze(name, builtin_rules, **kw)
        return [(w.code, w.count, w.frame, w.message) for w in report.warnings]

    first = warnings()
    assert warnings(settings=NO_ACCEL) == first
    assert warnings(jobs=2) == first
