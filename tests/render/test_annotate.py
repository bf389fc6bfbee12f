"""--annotate's library side (pcapdiag/annotate.py, pcapdiag/render/pcapng.py): the copy holds
every frame as the capture has it, comments where they are asked for, and the frame numbers
of the original; checked with pcapdiag's reader, dpkt's and tshark's."""

from __future__ import annotations

import gzip
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import dpkt
import pytest

from pcapdiag.annotate import PLACEHOLDER, comment_text, frame_comments, write_annotated
from pcapdiag.api import analyze, annotate_capture
from pcapdiag.errors import CaptureError
from pcapdiag.findings.confidence import Confidence
from pcapdiag.io.reader import open_capture
from pcapdiag.io.records import Frame
from tests.support import pcapng as ng
from tests.support.tshark import comments, fields, needs_tshark

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"  # 31 frames, five findings (README)
T0_NS = 1_700_000_000 * 10**9


def frames_of(path: Path) -> list[Frame]:
    return list(open_capture(str(path)))


def same_frames(a: list[Frame], b: list[Frame]) -> None:
    """Frame for frame: number, time, link type, bytes, original length (not the interface:
    the copy numbers its interfaces afresh)."""
    assert [(f.number, f.ts_ns, f.linktype, f.data, f.orig_len) for f in a] == [
        (f.number, f.ts_ns, f.linktype, f.data, f.orig_len) for f in b
    ]


def pcap_bytes(records: list[tuple[int, bytes, int]], *, nano: bool, snaplen: int = 65535) -> bytes:
    """A little-endian pcap of (ts_ns, data, orig_len) records, Ethernet."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)]
    for ts_ns, data, orig_len in records:
        sec, ns = divmod(ts_ns, 10**9)
        frac = ns if nano else ns // 1000
        out.append(struct.pack("<IIII", sec, frac, len(data), orig_len) + data)
    return b"".join(out)


def packet(i: int, size: int = 60) -> bytes:
    """Distinct bytes per frame, so that a frame copied out of place shows."""
    return bytes((i * 11 + k) & 0xFF for k in range(size))


# -- the comments --------------------------------------------------------------------------------


def test_comment_names_the_finding_its_call_errno_and_rule(builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules)
    by_id = {f.id: f for f in report.findings}
    # README: [1] client connect() -> ECONNREFUSED, PD-TCP-001, finding F-db48d0064718.
    assert comment_text(by_id["F-db48d0064718"]) == (
        "pcapdiag F-db48d0064718: client connect() -> ECONNREFUSED (PD-TCP-001)"
    )
    # README: [4] is the one finding at medium confidence.
    assert comment_text(by_id["F-e5538f90938b"]) == (
        "pcapdiag F-e5538f90938b: client recv() -> ECONNREFUSED (PD-UDP-001, medium confidence)"
    )


def test_a_finding_without_errno_gives_its_title(builtin_rules) -> None:
    f = analyze([str(DEMO)], builtin_rules).findings[0]
    bare = replace(
        f,
        effects={
            p: tuple(replace(e, errno=None, result="ok") for e in es) for p, es in f.effects.items()
        },
        title="Line one\nline\ttwo\x1b[31m",
        confidence=Confidence("low", ("a reason",)),
    )
    # One line whatever the rule file's title holds: control characters become spaces.
    assert comment_text(bare) == (
        f"pcapdiag {f.id}: client, no errno: Line one line two [31m ({f.rule}, low confidence)"
    )


def test_each_frame_gets_one_comment_per_finding_citing_it(builtin_rules) -> None:
    first, second = analyze([str(DEMO)], builtin_rules).findings[:2]
    # A second finding on frames 2 and 22: both frames are cited twice, in finding order.
    other = replace(second, frames=(22, 2, 2))
    got = frame_comments([first, other])
    assert got == {
        1: [comment_text(first)],
        2: [comment_text(first), comment_text(other)],
        22: [comment_text(other)],
    }


# -- the copy ------------------------------------------------------------------------------------


def test_demo_copy_has_every_frame_and_the_comments(tmp_path: Path, builtin_rules) -> None:
    report = analyze([str(DEMO)], builtin_rules)
    out = tmp_path / "demo.pcapng"
    done = annotate_capture(report, out)
    same_frames(frames_of(out), frames_of(DEMO))
    assert (done.frames, done.placeholders, done.clamped, done.damage) == (31, 0, 0, None)
    # Evidence frames of the README's five findings: 1 2, 22 23, 24 25, 26 27, 28 30 31.
    assert (done.comments, done.commented_frames) == (11, 11)
    # dpkt's reader, another implementation, reads the same packet bytes in the same order.
    with DEMO.open("rb") as a, out.open("rb") as b:
        assert [bytes(p) for _, p in dpkt.pcapng.Reader(b)] == [
            bytes(p) for _, p in dpkt.pcap.Reader(a)
        ]


@needs_tshark
def test_several_comments_on_one_frame_all_show(tmp_path: Path) -> None:
    out = tmp_path / "c.pcapng"
    notes = {2: ["pcapdiag F-1: first", "pcapdiag F-2: second, with a comma"], 30: ["pcapdiag F-3"]}
    done = write_annotated(str(DEMO), notes, out)
    assert (done.comments, done.commented_frames) == (3, 2)
    assert comments(out) == notes
    rows = fields(out, "frame.number", display_filter='frame.comment contains "pcapdiag"')
    assert rows == [["2"], ["30"]]


@needs_tshark
def test_times_and_lengths_are_what_tshark_shows_of_the_capture(tmp_path: Path) -> None:
    out = tmp_path / "demo.pcapng"
    write_annotated(str(DEMO), {}, out)
    names = ("frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.encap_type")
    assert fields(out, *names) == fields(DEMO, *names)


@needs_tshark
def test_nanoseconds_and_cut_frames_are_kept(tmp_path: Path) -> None:
    # A nanosecond pcap (magic 0xA1B23C4D) whose times are not whole microseconds, and a frame
    # cut short by a 64-byte snaplen (200 bytes on the wire): the copy needs if_tsresol 9 and
    # must not make the cut frame look whole.
    records = [
        (T0_NS + 1_000_000_123, packet(1), 60),
        (T0_NS + 1_000_000_999, packet(2, 64), 200),
        (T0_NS + 2_000_000_000, packet(3), 60),
    ]
    cap = tmp_path / "nano.pcap"
    cap.write_bytes(pcap_bytes(records, nano=True, snaplen=64))
    out = tmp_path / "nano.pcapng"
    write_annotated(str(cap), {2: ["pcapdiag cut"]}, out)
    same_frames(frames_of(out), frames_of(cap))
    assert [f.ts_ns for f in frames_of(out)] == [r[0] for r in records]
    with out.open("rb") as fh:
        idb = dpkt.pcapng.Reader(fh).idb
    assert [(o.code, o.data) for o in idb.opts if o.code == ng.OPT_IF_TSRESOL] == [(9, b"\x09")]
    assert idb.snaplen == 64
    names = ("frame.number", "frame.time_epoch", "frame.len", "frame.cap_len")
    assert fields(out, *names) == fields(cap, *names)
    assert fields(out, "frame.len", "frame.cap_len")[1] == ["200", "64"]


def test_microsecond_captures_stay_in_microseconds(tmp_path: Path) -> None:
    out = tmp_path / "demo.pcapng"
    write_annotated(str(DEMO), {}, out)
    with out.open("rb") as fh:
        idb = dpkt.pcapng.Reader(fh).idb
    # No if_tsresol: pcapng's default, microseconds, as the pcap's magic says.
    assert [o.code for o in idb.opts if o.code == ng.OPT_IF_TSRESOL] == []


def test_gzip_capture_is_copied(tmp_path: Path) -> None:
    cap = tmp_path / "demo.pcap.gz"
    cap.write_bytes(gzip.compress(DEMO.read_bytes()))
    out = tmp_path / "demo.pcapng"
    done = write_annotated(str(cap), {1: ["pcapdiag x"]}, out)
    assert done.frames == 31
    same_frames(frames_of(out), frames_of(DEMO))


@needs_tshark
def test_custom_blocks_keep_their_frame_numbers(tmp_path: Path) -> None:
    # Wireshark numbers a Custom Block as a frame (tests/io/test_reader.py): frames 2 and 5
    # are custom blocks, the packets are 1, 3, 4 and 6. The copy puts a placeholder where
    # each stood, so that packet 6 is still frame 6.
    data = b"".join(
        [
            ng.shb(),
            ng.idb(1),
            ng.epb(0, 1_000_000, packet(1)),
            ng.custom(b"first"),
            ng.epb(0, 2_000_000, packet(3)),
            ng.epb(0, 3_000_000, packet(4)),
            ng.custom(b"second"),
            ng.epb(0, 4_000_000, packet(6)),
            ng.custom(b"last, after every packet"),
        ]
    )
    cap = tmp_path / "custom.pcapng"
    cap.write_bytes(data)
    out = tmp_path / "copy.pcapng"
    done = write_annotated(str(cap), {6: ["pcapdiag six"]}, out)
    assert (done.frames, done.placeholders) == (7, 3)
    same_frames(frames_of(out), frames_of(cap))
    assert [f.number for f in frames_of(out)] == [1, 3, 4, 6]
    assert comments(out) == {6: ["pcapdiag six"]}
    assert fields(out, "frame.number") == [[str(n)] for n in range(1, 8)]
    packets = ("frame.number", "frame.time_epoch", "frame.len")
    assert fields(out, *packets, display_filter="eth") == fields(
        cap, *packets, display_filter="eth"
    )
    assert PLACEHOLDER.encode() in out.read_bytes()


def test_damaged_capture_is_copied_up_to_the_damage(tmp_path: Path) -> None:
    data = DEMO.read_bytes()
    # Records of demo.pcap: 16-byte header, then the bytes; cut inside frame 20's bytes.
    offset = 24
    for _ in range(19):
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    cap = tmp_path / "cut.pcap"
    cap.write_bytes(data[: offset + 16 + 10])
    out = tmp_path / "cut.pcapng"
    done = write_annotated(str(cap), {2: ["pcapdiag two"]}, out)
    assert done.frames == 19 and done.damage is not None and done.damage.frame == 20
    same_frames(frames_of(out), frames_of(DEMO)[:19])


def test_no_copy_of_standard_input(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="standard input cannot be read twice"):
        write_annotated("-", {}, tmp_path / "out.pcapng")
    assert not (tmp_path / "out.pcapng").exists()


def test_the_capture_itself_is_not_overwritten(tmp_path: Path) -> None:
    cap = tmp_path / "demo.pcap"
    shutil.copy(DEMO, cap)
    link = tmp_path / "same.pcapng"
    link.symlink_to(cap)
    for out in (cap, link):
        with pytest.raises(ValueError, match="is the capture itself"):
            write_annotated(str(cap), {}, out)
    assert cap.read_bytes() == DEMO.read_bytes()


def test_a_capture_changed_since_the_analysis_leaves_no_copy(tmp_path: Path, builtin_rules) -> None:
    cap = tmp_path / "demo.pcap"
    shutil.copy(DEMO, cap)
    report = analyze([str(cap)], builtin_rules)
    cap.write_bytes(pcap_bytes([(T0_NS, packet(1), 60)], nano=False))
    out = tmp_path / "out.pcapng"
    with pytest.raises(
        CaptureError, match=r"changed since it was analysed \(31 frames then, 1 now"
    ):
        annotate_capture(report, out)
    assert not out.exists()


def test_a_report_of_several_captures_is_refused(tmp_path: Path, builtin_rules) -> None:
    refused = ROOT / "rules/syn-refused/refused.pcap"
    report = analyze([str(DEMO), str(refused)], builtin_rules)
    with pytest.raises(ValueError, match="this report has 2"):
        annotate_capture(report, tmp_path / "out.pcapng")
