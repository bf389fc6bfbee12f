"""`pcapdiag analyze --annotate OUT.pcapng`: the findings as packet comments that Wireshark
shows, on the frames the report names; refused before the analysis when the capture cannot be
copied frame for frame into one file."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from pcapdiag import cli
from pcapdiag.io.reader import open_capture
from tests.cli.test_cli import run
from tests.support import pcapng as ng
from tests.support.scenario import Talk, write_merged
from tests.support.tshark import comments, fields, needs_tshark

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"
# Captured on the client's host, which resets its own connection (frame 6, RST|ACK): the
# server's recv() fails with ECONNRESET (PD-TCP-005) and the client aborted (PD-TCP-023,
# no errno), two findings on the one frame (tests/support/build_captures.py).
CLIENT_ABORT = ROOT / "rules/local-abort/client-abort.pcap"
REFUSED = ROOT / "rules/syn-refused/refused.pcap"
T0_NS = 1_700_000_000 * 10**9
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101


def expected_comment(f: dict[str, Any]) -> str:
    """The comment of a finding of the JSON report: its id, side, failing call and errno
    (or its title, without an errno), rule, and its confidence when not high."""
    sure = "" if f["confidence"] == "high" else f", {f['confidence']} confidence"
    if f["errno"] is None:
        what = f"{f['side']}, no errno: {f['title']}"
    else:
        what = f"{f['side']} {f['call']}() -> {f['errno']['name']}"
    return f"pcapdiag {f['id']}: {what} ({f['rule']}{sure})"


def by_frame(report: dict[str, Any]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for f in report["findings"]:
        for n in f["frames"]:
            out.setdefault(n, []).append(expected_comment(f))
    return out


@pytest.fixture
def no_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """A usage error must come before the analysis: running one fails the test."""

    def fail(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("analysed before refusing")

    monkeypatch.setattr(cli, "run_analysis", fail)


# -- what Wireshark shows ----------------------------------------------------------------------


@needs_tshark
def test_tshark_finds_the_report_findings_on_their_frames(capsys, tmp_path: Path) -> None:
    out = tmp_path / "demo.pcapng"
    report_file = tmp_path / "report.json"
    code, _, err = run(
        capsys, "analyze", "--format", "json", "-o", report_file, "--annotate", out, DEMO
    )
    assert code == 0, err
    assert err == f"pcapdiag: wrote {out} (11 comments on 11 frames)\n"
    rows = fields(
        out, "frame.number", "frame.comment", display_filter='frame.comment contains "pcapdiag"'
    )
    report = json.loads(report_file.read_text())
    expected = by_frame(report)
    # One comment per frame here: tshark would join several with commas.
    assert rows == [[str(n), ",".join(expected[n])] for n in sorted(expected)]
    # The README's demo findings: frames 1 2, 22 23, 24 25, 26 27, 28 30 31.
    assert sorted(expected) == [1, 2, 22, 23, 24, 25, 26, 27, 28, 30, 31]
    assert rows[0] == [
        "1",
        "pcapdiag F-db48d0064718: client connect() -> ECONNREFUSED (PD-TCP-001)",
    ]
    # Every frame as it was: what tshark shows of the copy is what it shows of the capture.
    names = ("frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols")
    assert fields(out, *names) == fields(DEMO, *names)


@needs_tshark
def test_a_frame_of_two_findings_shows_both(capsys, tmp_path: Path) -> None:
    out = tmp_path / "abort.pcapng"
    report_file = tmp_path / "report.json"
    code, _, err = run(
        capsys, "analyze", "--format", "json", "-o", report_file, "--annotate", out, CLIENT_ABORT
    )
    assert code == 0, err
    assert err == f"pcapdiag: wrote {out} (2 comments on 1 frame)\n"
    report = json.loads(report_file.read_text())
    assert sorted(f["rule"] for f in report["findings"]) == ["PD-TCP-005", "PD-TCP-023"]
    shown = comments(out)
    assert shown == by_frame(report)
    assert sorted(shown[6]) == [
        "pcapdiag F-0860c393aefc: client, no errno: The capturing host aborted its own "
        "connection (PD-TCP-023)",
        "pcapdiag F-197f24897ec7: server recv() -> ECONNRESET (PD-TCP-005, medium confidence)",
    ]


def two_interfaces_two_sections(path: Path) -> None:
    """Three connections refused (SYN answered by RST|ACK, ECONNREFUSED) seen through three
    interfaces, the pcapng reader's every way of telling them apart:
      section 1 (little-endian): interface 0 Ethernet in microseconds, interface 1 raw IPv4
        (LINKTYPE_RAW) in nanoseconds with times between microseconds;
        frame 1 SYN A (if 0), 2 SYN B (if 1), 3 a Custom Block, 4 RST A (if 0), 5 RST B (if 1);
      section 2 (big-endian, interface ids start again): interface 0 Ethernet, 96-byte
        snaplen; frame 6 SYN C, 7 RST C, 8 a UDP datagram cut short by the snaplen."""
    a, b, c = Talk(cport=40001, sport=81), Talk(cport=40002, sport=82), Talk(cport=40003, sport=83)
    syn_a, syn_b, syn_c = (t.tcp("c", "S") for t in (a, b, c))
    rst_a, rst_b, rst_c = (t.tcp("s", "RA", seq=0, ack=t.cisn + 1) for t in (a, b, c))
    datagram = bytes(c.udp("c", b"x" * 300))
    us = (T0_NS + 1_000_000) // 1000  # interface 0 units: microseconds
    ns = T0_NS + 1_500_123  # interface 1 units: nanoseconds, not whole microseconds
    data = b"".join(
        [
            ng.shb(),
            ng.idb(LINKTYPE_ETHERNET),
            ng.idb(LINKTYPE_RAW, tsresol=9),
            ng.epb(0, us, bytes(syn_a)),
            ng.epb(1, ns, bytes(syn_b.payload)),  # the IP packet, without Ethernet
            ng.custom(b"a block Wireshark numbers as frame 3"),
            ng.epb(0, us + 1000, bytes(rst_a)),
            ng.epb(1, ns + 1_000_333, bytes(rst_b.payload)),
            ng.shb(">"),
            ng.idb(LINKTYPE_ETHERNET, snaplen=96, order=">"),
            ng.epb(0, us + 5000, bytes(syn_c), order=">"),
            ng.epb(0, us + 6000, bytes(rst_c), order=">"),
            ng.epb(0, us + 7000, datagram[:96], orig_len=len(datagram), order=">"),
        ]
    )
    path.write_bytes(data)


@needs_tshark
def test_several_interfaces_and_sections(capsys, tmp_path: Path) -> None:
    cap = tmp_path / "mixed.pcapng"
    two_interfaces_two_sections(cap)
    out = tmp_path / "copy.pcapng"
    report_file = tmp_path / "report.json"
    code, _, err = run(
        capsys, "analyze", "--format", "json", "-o", report_file, "--annotate", out, cap
    )
    assert code == 0, err
    assert err == (
        f"pcapdiag: wrote {out} (6 comments on 6 frames; a placeholder for 1 block that is "
        "not a packet)\n"
    )
    report = json.loads(report_file.read_text())
    frames = sorted(tuple(f["frames"]) for f in report["findings"])
    assert frames == [(1, 4), (2, 5), (6, 7)]
    assert comments(out) == by_frame(report)
    # The same frames as tshark numbers, times and lengths them, each with its link type.
    names = (
        "frame.number",
        "frame.time_epoch",
        "frame.len",
        "frame.cap_len",
        "frame.encap_type",
    )
    shown = fields(cap, *names)
    assert fields(out, *names)[:2] + fields(out, *names)[3:] == shown[:2] + shown[3:]
    assert [row[0] for row in fields(out, "frame.number")] == [str(n) for n in range(1, 9)]
    assert shown[1][1] == "1700000000.001500123"  # not rounded to microseconds
    assert shown[7][2:4] == ["342", "96"]  # the cut datagram stays cut
    # The copy is one section: an interface of its own for each of the capture's, section 2's
    # interface 0 included (tshark numbers interfaces within their section).
    assert fields(out, "frame.interface_id") == [
        [i] for i in ("0", "1", "", "0", "1", "2", "2", "2")
    ]
    original = [(f.number, f.ts_ns, f.linktype, f.data, f.orig_len) for f in open_capture(str(cap))]
    copied = [(f.number, f.ts_ns, f.linktype, f.data, f.orig_len) for f in open_capture(str(out))]
    assert copied == original
    assert {f.linktype for f in open_capture(str(out))} == {LINKTYPE_ETHERNET, LINKTYPE_RAW}


@needs_tshark
def test_only_listed_findings_have_comments(capsys, tmp_path: Path) -> None:
    # Three connections refused by one server, findings alike: --max-alike 1 lists the
    # first and counts the other two, which have no frames in the report to mark.
    talks = []
    for i in range(3):
        t = Talk(cport=40001 + i, sport=81 + i, t=1_700_000_000.0 + i)
        t.tcp("c", "S")
        t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
        talks.append(t)
    cap = Path(write_merged(tmp_path / "alike.pcap", talks))
    out = tmp_path / "alike.pcapng"
    report_file = tmp_path / "report.json"
    code, _, err = run(
        capsys, "analyze", "--format", "json", "-o", report_file, "--max-alike", "1",
        "--annotate", out, cap,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(report_file.read_text())
    assert len(report["findings"]) == 1 and report["groups"][0]["count"] == 3
    assert comments(out) == by_frame(report)
    assert sorted(comments(out)) == [1, 2]


@needs_tshark
def test_damaged_capture_is_copied_up_to_the_damage(capsys, tmp_path: Path) -> None:
    data = DEMO.read_bytes()
    offset = 24  # pcap file header; then records: 16-byte header, captured bytes
    for _ in range(25):
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    cap = tmp_path / "cut.pcap"
    cap.write_bytes(data[: offset + 16 + 10])  # frame 26 cut inside its bytes
    out = tmp_path / "cut.pcapng"
    code, _, err = run(capsys, "analyze", "--annotate", out, cap)
    assert code == 4
    lines = err.splitlines()
    assert lines[0] == f"pcapdiag: wrote {out} (6 comments on 6 frames; copied up to the " + (
        "damage: 25 frames)"
    )
    assert lines[1].startswith(f"pcapdiag: {cap}: damaged at byte {offset} (frame 26)")
    assert [r[0] for r in fields(out, "frame.number")] == [str(n) for n in range(1, 26)]
    assert sorted(comments(out)) == [1, 2, 22, 23, 24, 25]


def test_quiet_says_nothing(capsys, tmp_path: Path) -> None:
    out = tmp_path / "r.pcapng"
    code, _, err = run(capsys, "analyze", "-q", "--annotate", out, REFUSED)
    assert (code, err) == (0, "")
    assert [f.number for f in open_capture(str(out))] == [1, 2]


# -- refused before the analysis -----------------------------------------------------------------


def test_several_captures_are_refused(capsys, no_analysis, tmp_path: Path) -> None:
    out = tmp_path / "o.pcapng"
    code, _, err = run(capsys, "analyze", "--annotate", out, DEMO, REFUSED)
    assert code == 2
    assert "--annotate copies one capture file, and 2 were given" in err
    assert not out.exists()


def test_a_directory_of_several_captures_is_refused(capsys, no_analysis, tmp_path: Path) -> None:
    where = tmp_path / "caps"
    where.mkdir()
    for name in ("a.pcap", "b.pcap"):
        (where / name).write_bytes(REFUSED.read_bytes())
    code, _, err = run(capsys, "analyze", "--annotate", tmp_path / "o.pcapng", where)
    assert code == 2 and "2 were given" in err


def test_standard_input_is_refused(capsys, no_analysis, tmp_path: Path) -> None:
    code, _, err = run(capsys, "analyze", "--annotate", tmp_path / "o.pcapng", "-")
    assert code == 2
    assert "--annotate reads the capture a second time, and standard input cannot be read" in (
        " ".join(err.split())
    )


def test_the_capture_itself_is_refused(capsys, no_analysis, tmp_path: Path) -> None:
    cap = tmp_path / "r.pcap"
    cap.write_bytes(REFUSED.read_bytes())
    os.symlink(cap, tmp_path / "link.pcapng")
    for out in (cap, tmp_path / "link.pcapng"):
        code, _, err = run(capsys, "analyze", "--annotate", out, cap)
        assert code == 2 and "is the capture itself" in err
    assert cap.read_bytes() == REFUSED.read_bytes()


def test_a_missing_directory_is_refused(capsys, no_analysis, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "o.pcapng"
    code, _, err = run(capsys, "analyze", "--annotate", out, REFUSED)
    assert code == 2 and f"directory {out.parent} does not exist" in err


def test_one_file_in_a_directory_is_one_capture(capsys, tmp_path: Path) -> None:
    where = tmp_path / "caps"
    where.mkdir()
    (where / "r.pcap").write_bytes(REFUSED.read_bytes())
    out = tmp_path / "o.pcapng"
    code, _, err = run(capsys, "analyze", "--annotate", out, where)
    assert code == 0, err
    assert err == f"pcapdiag: wrote {out} (2 comments on 2 frames)\n"
