"""Tests for pcapdiag.capture: framing of pcap / pcapng / gzip, damage reporting, errors.

Public captures are compared frame by frame with two independent readers: tshark (frame
numbers, timestamps, lengths, interface ids) and dpkt (timestamps and bytes).
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import random
import shutil
import struct
import subprocess
import types
from decimal import Decimal
from pathlib import Path

import dpkt
import pytest

from pcapdiag.errors import CaptureError
from pcapdiag.io.reader import MAX_CAPLEN, CaptureReader, open_capture
from pcapdiag.io.records import Frame

REPO = Path(__file__).resolve().parents[2]
PUBLIC = Path(
    os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", str(REPO.parent / "shared" / "captures" / "public"))
)
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")


def public_files() -> list[object]:
    if not PUBLIC.is_dir():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(
                    reason=f"public captures not found at {PUBLIC} (set PCAPDIAG_PUBLIC_CAPTURES)"
                ),
                id="no-public-captures",
            )
        ]
    files = sorted(
        p for p in PUBLIC.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES)
    )
    return [pytest.param(p, id=str(p.relative_to(PUBLIC))) for p in files]


def read_all(source: str | Path) -> tuple[CaptureReader, list[Frame]]:
    reader = open_capture(str(source))
    frames = list(reader)
    return reader, frames


# -- builders ------------------------------------------------------------------------------------


def pcap_file(
    records: list[tuple[int, int, bytes, int]],
    *,
    order: str = "<",
    nano: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
) -> bytes:
    """pcap file: 24-byte header, then per record 16-byte header + data."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, data, orig_len in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig_len) + data)
    return b"".join(out)


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    """pcapng block: type, total length, body padded to 32 bits, total length again."""
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str = "<", major: int = 1, bom: int = 0x1A2B3C4D) -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", bom, major, 0, -1), order)


def idb(linktype: int = 1, snaplen: int = 0, options: bytes = b"", order: str = "<") -> bytes:
    if options:
        options += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(ifid: int, units: int, data: bytes, orig_len: int | None = None, order: str = "<") -> bytes:
    orig = len(data) if orig_len is None else orig_len
    head = struct.pack(order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(data), orig)
    return block(6, head + data, order)


def spb(data: bytes, orig_len: int, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", orig_len) + data, order)


def packet(i: int, size: int = 60) -> bytes:
    """Distinct packet bytes, so that a frame can be matched to the record it came from."""
    return bytes((i * 7 + k) & 0xFF for k in range(size))


def write(tmp_path: Path, data: bytes, name: str = "t.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# Three records of 60, 70 and 80 bytes. Offsets: file header 0..24; record 1 at 24 (16 + 60 =
# 76 bytes); record 2 at 100 (16 + 70 = 86); record 3 at 186 (16 + 80 = 96); end at 282.
THREE = [(1_600_000_000 + i, 250_000 * i, packet(i, 60 + 10 * i), 1500) for i in range(3)]
THREE_PCAP = pcap_file(THREE)
REC_OFFSETS = [24, 100, 186, 282]


def test_three_record_layout_is_as_reasoned() -> None:
    assert len(THREE_PCAP) == REC_OFFSETS[-1]


# -- pcap ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_both_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    records = [(1_700_000_000, 123_456_789 if nano else 123_456, b"abc", 99)]
    reader, frames = read_all(
        write(tmp_path, pcap_file(records, order=order, nano=nano, linktype=113))
    )
    assert reader.format == "pcap" and reader.nanosecond is nano and reader.damage is None
    assert reader.linktypes == [113]
    expected_ns = 1_700_000_000_123_456_789 if nano else 1_700_000_000_123_456_000
    assert frames == [Frame(1, expected_ns, 113, b"abc", 99)]


def test_pcap_reads_all_records(tmp_path: Path) -> None:
    reader, frames = read_all(write(tmp_path, THREE_PCAP))
    assert [f.number for f in frames] == [1, 2, 3]
    assert [f.data for f in frames] == [r[2] for r in THREE]
    assert frames[1].ts_ns == 1_600_000_001_250_000_000
    assert reader.damage is None and reader.numbered == 3
    assert reader.size == len(THREE_PCAP) and reader.compressed is False


def test_pcap_global_header_only_is_an_empty_capture(tmp_path: Path) -> None:
    # Cut right after the 24-byte file header: a valid capture with zero frames, no damage.
    reader, frames = read_all(write(tmp_path, THREE_PCAP[:24]))
    assert frames == [] and reader.damage is None


def test_pcap_cut_inside_global_header_is_an_error(tmp_path: Path) -> None:
    # Without the link type there is nothing to decode: not a capture we can read at all.
    with pytest.raises(CaptureError, match="file header cut short") as info:
        open_capture(str(write(tmp_path, THREE_PCAP[:10])))
    assert "\n" not in str(info.value)


def test_pcap_cut_inside_record_header(tmp_path: Path) -> None:
    # Cut 8 bytes into record 2's header (record 2 starts at 100): frame 1 delivered, damage at
    # offset 100 naming frame 2.
    reader, frames = read_all(write(tmp_path, THREE_PCAP[: REC_OFFSETS[1] + 8]))
    assert [f.number for f in frames] == [1]
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (100, 2)
    assert "record header" in reader.damage.message


def test_pcap_cut_inside_packet_data(tmp_path: Path) -> None:
    # Cut 40 bytes into record 3's data (header at 186, data from 202): frames 1-2 delivered,
    # damage at offset 186 naming frame 3.
    reader, frames = read_all(write(tmp_path, THREE_PCAP[: REC_OFFSETS[2] + 16 + 40]))
    assert [f.data for f in frames] == [THREE[0][2], THREE[1][2]]
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (186, 3)
    assert "packet data" in reader.damage.message


@pytest.mark.parametrize("garbage", [b"garbage", b"\xff" * 40])
def test_pcap_garbage_after_last_record(tmp_path: Path, garbage: bytes) -> None:
    # 7 bytes cannot be a record header; 40 bytes of 0xff claim a 4 GB record. Both: damage at
    # the end of record 3 (offset 282), frame 4, after all 3 frames.
    reader, frames = read_all(write(tmp_path, THREE_PCAP + garbage))
    assert len(frames) == 3
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (282, 4)


def test_pcap_caplen_over_limit_is_damage(tmp_path: Path) -> None:
    # Record 2's header claims MAX_CAPLEN + 1 bytes (Wireshark refuses such records).
    data = bytearray(THREE_PCAP)
    struct.pack_into("<I", data, REC_OFFSETS[1] + 8, MAX_CAPLEN + 1)
    reader, frames = read_all(write(tmp_path, bytes(data)))
    assert len(frames) == 1
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (100, 2)


def test_pcap_frame_over_64k_is_read(tmp_path: Path) -> None:
    big = packet(5, 80_094)  # like tcpdump/bigtcp-ipv6-hbh.pcap
    reader, frames = read_all(write(tmp_path, pcap_file([(1, 0, big, len(big))], snaplen=262144)))
    assert reader.damage is None and frames[0].data == big


# -- pcapng ------------------------------------------------------------------------------------


# Layout used by the damage tests (little-endian section, one Ethernet interface):
#   SHB at 0 (28 bytes), IDB at 28 (20 bytes), EPB1 at 48 (32 + 60 = 92 bytes),
#   EPB2 at 140 (32 + 72 = 104 bytes), EPB3 at 244 (32 + 80 = 112 bytes), end at 356.
NG_PARTS = [
    shb(),
    idb(1),
    epb(0, 1_000_000, packet(1, 60)),
    epb(0, 2_000_000, packet(2, 70)),  # 70 bytes padded to 72
    epb(0, 3_000_000, packet(3, 80)),
]
NG_OFFSETS = [0, 28, 48, 140, 244, 356]


def ng(*parts: bytes) -> bytes:
    return b"".join(parts)


def test_pcapng_layout_is_as_reasoned() -> None:
    offsets = [0]
    for part in NG_PARTS:
        offsets.append(offsets[-1] + len(part))
    assert offsets == NG_OFFSETS


def test_pcapng_basic(tmp_path: Path) -> None:
    reader, frames = read_all(write(tmp_path, ng(*NG_PARTS), "t.pcapng"))
    assert reader.format == "pcapng" and reader.damage is None and reader.linktypes == [1]
    assert [f.number for f in frames] == [1, 2, 3]
    # Default resolution is microseconds (if_tsresol absent).
    assert [f.ts_ns for f in frames] == [1_000_000_000, 2_000_000_000, 3_000_000_000]
    assert frames[1].data == packet(2, 70) and frames[1].orig_len == 70


def test_pcapng_unknown_block_is_skipped_without_number(tmp_path: Path) -> None:
    unknown = block(0x12345678, b"12345678")
    nrb_isb = block(4, b"\0" * 4) + block(5, b"\0" * 12)  # name resolution, interface stats
    data = ng(*NG_PARTS[:3], unknown, nrb_isb, *NG_PARTS[3:])
    reader, frames = read_all(write(tmp_path, data, "t.pcapng"))
    assert [f.number for f in frames] == [1, 2, 3] and reader.damage is None


def test_pcapng_custom_block_uses_a_frame_number_like_wireshark(tmp_path: Path) -> None:
    # Wireshark (tshark 4.0) lists Custom Blocks as frames ("PCAPNG data"), see
    # gopacket/be/test202.pcapng, so the packet after one is numbered one higher.
    custom = block(0x00000BAD, struct.pack("<I", 32473) + b"custom data!")
    path = write(tmp_path, ng(*NG_PARTS[:3], custom, *NG_PARTS[3:]), "t.pcapng")
    reader, frames = read_all(path)
    assert [f.number for f in frames] == [1, 3, 4] and reader.numbered == 4
    if shutil.which("tshark"):
        assert len(tshark_rows(str(path))) == 4


def test_pcapng_bad_byte_order_magic_in_later_section(tmp_path: Path) -> None:
    # A second SHB right after EPB1 (offset 140) with a byte-order magic that is neither order.
    bad = shb(bom=0x11223344)
    reader, frames = read_all(write(tmp_path, ng(*NG_PARTS[:3], bad, *NG_PARTS[3:]), "t.pcapng"))
    assert [f.number for f in frames] == [1]
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (140, 2)
    assert "byte-order" in reader.damage.message


def test_pcapng_bad_byte_order_magic_in_first_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="byte-order magic"):
        open_capture(str(write(tmp_path, ng(shb(bom=0x11223344), *NG_PARTS[1:]), "t.pcapng")))


def test_pcapng_sections_switch_byte_order_and_reset_interfaces(tmp_path: Path) -> None:
    # Section 2 is big-endian with a NULL interface, tsresol 10^-9 and tsoffset 100 s.
    opts = option(9, b"\x09", ">") + option(14, struct.pack(">q", 100), ">")
    second = shb(">") + idb(0, options=opts, order=">") + epb(0, 5, b"\x02\0\0\0", order=">")
    reader, frames = read_all(write(tmp_path, ng(*NG_PARTS, second), "t.pcapng"))
    assert reader.damage is None and reader.linktypes == [0, 1] and reader.sections == 2
    last = frames[-1]
    assert (last.number, last.linktype, last.ts_ns) == (4, 0, 100_000_000_005)


def test_pcapng_interface_id_from_previous_section_is_damage(tmp_path: Path) -> None:
    # Interface ids are per section: after a new SHB, interface 0 must be described again.
    # The SHB is at 356 (28 bytes), so the EPB that uses the stale interface is at 384.
    data = ng(*NG_PARTS, shb(), epb(0, 1, b"x"))
    reader, frames = read_all(write(tmp_path, data, "t.pcapng"))
    assert len(frames) == 3
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (384, 4)


def test_pcapng_bad_interface_id(tmp_path: Path) -> None:
    # EPB2 (offset 140) names interface 1; only interface 0 exists.
    data = ng(*NG_PARTS[:3], epb(1, 2_000_000, packet(2, 70)), NG_PARTS[4])
    reader, frames = read_all(write(tmp_path, data, "t.pcapng"))
    assert [f.number for f in frames] == [1]
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (140, 2)
    assert "interface 1" in reader.damage.message


@pytest.mark.parametrize(
    ("length", "words"),
    [(102, "multiple of 4"), (8, ">= 12"), (100_000, "past the end"), (400, "past the end")],
)
def test_pcapng_bad_block_length(tmp_path: Path, length: int, words: str) -> None:
    # Overwrite EPB2's leading length (at 140 + 4). 102 is not a multiple of 4, 8 is below the
    # 12-byte minimum, 100000 and 400 run past the end of the 356-byte file.
    data = bytearray(ng(*NG_PARTS))
    struct.pack_into("<I", data, 144, length)
    reader, frames = read_all(write(tmp_path, bytes(data), "t.pcapng"))
    assert [f.number for f in frames] == [1]
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (140, 2)
    assert words in reader.damage.message


def test_pcapng_trailing_length_mismatch(tmp_path: Path) -> None:
    # EPB2's leading length is 100 instead of 104: then its "trailer" (the 4 bytes at 140 + 96)
    # is packet data, not 100.
    data = bytearray(ng(*NG_PARTS))
    struct.pack_into("<I", data, 144, 100)
    reader, frames = read_all(write(tmp_path, bytes(data), "t.pcapng"))
    assert len(frames) == 1
    assert reader.damage is not None and (reader.damage.offset, reader.damage.frame) == (140, 2)
    assert "trailing length" in reader.damage.message


@pytest.mark.parametrize(("cut", "frames_before"), [(244 + 5, 2), (244 + 50, 2), (356 + 3, 3)])
def test_pcapng_cut_short(tmp_path: Path, cut: int, frames_before: int) -> None:
    # Cut inside EPB3's header (244 + 5), inside its data (244 + 50): damage at 244, frame 3.
    # 3 bytes of garbage after the last block (356 + 3): damage at 356, frame 4.
    data = ng(*NG_PARTS) + b"abc"
    reader, frames = read_all(write(tmp_path, data[:cut], "t.pcapng"))
    assert len(frames) == frames_before
    block_start = 244 if cut < 356 else 356
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (block_start, frames_before + 1)


def test_pcapng_timestamp_resolutions(tmp_path: Path) -> None:
    ns_if = idb(1, options=option(9, b"\x09"))  # 10^-9
    bin_if = idb(1, options=option(9, b"\x8a"))  # 2^-10
    ms_if = idb(1, options=option(9, b"\x03") + option(14, struct.pack("<q", -5)))  # 10^-3, -5 s
    data = ng(
        shb(),
        ns_if,
        bin_if,
        ms_if,
        epb(0, 1_500_000_000_123_456_789, b"a"),
        epb(1, 1024 * 7 + 512, b"b"),  # 7.5 s
        epb(2, 10_250, b"c"),  # 10.25 s - 5 s
    )
    reader, frames = read_all(write(tmp_path, data, "t.pcapng"))
    assert [f.ts_ns for f in frames] == [1_500_000_000_123_456_789, 7_500_000_000, 5_250_000_000]
    assert [f.interface for f in frames] == [0, 1, 2]
    assert reader.nanosecond is True


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    # SPB: interface 0, captured length = min(original length, snaplen); no timestamp (0).
    # Obsolete Packet Block (type 2): 16-bit interface id and drops count.
    pb = block(2, struct.pack("<HHIIII", 0, 0, 0, 42, 3, 3) + b"xyz")
    data = ng(shb(), idb(1, snaplen=4), spb(b"abcd", 10), pb)
    reader, frames = read_all(write(tmp_path, data, "t.pcapng"))
    assert frames == [Frame(1, 0, 1, b"abcd", 10), Frame(2, 42_000, 1, b"xyz", 3)]
    assert reader.damage is None


def test_pcapng_empty_section(tmp_path: Path) -> None:
    reader, frames = read_all(write(tmp_path, ng(shb(), idb(1)), "t.pcapng"))
    assert frames == [] and reader.damage is None and reader.linktypes == [1]


# -- not a capture, gzip, stdin ------------------------------------------------------------------


def test_text_file_is_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, b"Hello, world\n", "x.txt")
    with pytest.raises(CaptureError) as info:
        open_capture(str(path))
    message = str(info.value)
    assert message == f"{path}: not a pcap or pcapng file (starts with bytes 48 65 6c 6c)"


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"empty file$"):
        open_capture(str(write(tmp_path, b"")))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"file not found$"):
        open_capture(str(tmp_path / "nope.pcap"))


def test_directory_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="directory"):
        open_capture(str(tmp_path))


@pytest.mark.parametrize("content", [THREE_PCAP, ng(*NG_PARTS)])
def test_gzip_file(tmp_path: Path, content: bytes) -> None:
    reader, frames = read_all(write(tmp_path, gzip.compress(content), "t.cap.gz"))
    assert reader.compressed is True and reader.damage is None
    assert [f.number for f in frames] == [1, 2, 3]


def test_gzip_of_text_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        open_capture(str(write(tmp_path, gzip.compress(b"just text"), "t.gz")))


def big_pcap(count: int = 3000) -> bytes:
    rng = random.Random(7)  # incompressible data, so the gzip stream is long
    return pcap_file([(i, 0, rng.randbytes(100), 100) for i in range(count)])


def test_gzip_truncated_keeps_frames_before(tmp_path: Path) -> None:
    raw = big_pcap()
    packed = gzip.compress(raw)
    reader, frames = read_all(write(tmp_path, packed[: len(packed) // 2], "t.pcap.gz"))
    assert 0 < len(frames) < 3000
    assert [f.data for f in frames] == [f.data for f in read_all_bytes(tmp_path, raw)][
        : len(frames)
    ]
    assert reader.damage is not None and reader.damage.frame == len(frames) + 1
    assert "gzip stream is truncated" in reader.damage.message
    # The damage offset is in the decompressed stream, where the next record starts.
    assert reader.damage.offset == 24 + len(frames) * 116


def test_gzip_corrupt_keeps_frames_before(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(big_pcap()))
    middle = len(packed) * 3 // 4
    packed[middle : middle + 64] = b"\xff" * 64  # not a valid deflate stream any more
    reader, frames = read_all(write(tmp_path, bytes(packed), "t.pcap.gz"))
    assert 0 < len(frames) < 3000
    assert reader.damage is not None and "gzip" in reader.damage.message


def test_gzip_trailer_crc_error_is_damage(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(THREE_PCAP))
    packed[-8] ^= 0xFF  # CRC-32 in the gzip trailer (RFC 1952 section 2.3)
    reader, frames = read_all(write(tmp_path, bytes(packed), "t.pcap.gz"))
    # Every record was decompressed before the trailer was checked: all 3 frames, then damage
    # at the end of the data (282), frame 4.
    assert len(frames) == 3
    assert reader.damage is not None and "gzip" in reader.damage.message
    assert (reader.damage.offset, reader.damage.frame) == (282, 4)


def read_all_bytes(tmp_path: Path, raw: bytes) -> list[Frame]:
    return read_all(write(tmp_path, raw, "plain.pcap"))[1]


@pytest.mark.parametrize("compress", [False, True])
def test_stdin(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    content = gzip.compress(THREE_PCAP) if compress else THREE_PCAP
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(content)))
    reader, frames = read_all("-")
    assert reader.size is None and reader.compressed is compress
    assert [f.data for f in frames] == [r[2] for r in THREE]


def test_stdin_damage_offset_matches_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # The chunked reader must report the same offsets as the mmap reader.
    data = big_pcap(20_000)[:-50]  # 2.3 MB: several refills; cut inside the last record
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    reader, frames = read_all("-")
    assert len(frames) == 19_999
    assert reader.damage is not None
    assert (reader.damage.offset, reader.damage.frame) == (24 + 19_999 * 116, 20_000)


def test_stdin_not_a_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(b"GET / HTTP")))
    with pytest.raises(CaptureError, match="<stdin>: not a pcap"):
        open_capture("-")


def test_context_manager_and_single_iteration(tmp_path: Path) -> None:
    with open_capture(str(write(tmp_path, THREE_PCAP))) as reader:
        assert len(list(reader)) == 3
        with pytest.raises(RuntimeError):
            iter(reader)


# -- public captures ------------------------------------------------------------------------------


@functools.cache
def tshark_rows(path: str) -> list[tuple[int, str, int, int, str]]:
    """tshark's frames: number, epoch time text, captured length, length, interface id."""
    fields = ["frame.number", "frame.time_epoch", "frame.cap_len", "frame.len"]
    fields.append("frame.interface_id")
    cmd = ["tshark", "-n", "-r", path, "-T", "fields"]
    for field in fields:
        cmd += ["-e", field]
    # For a corrupt file tshark prints the frames before the error, then fails: keep those.
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    rows = []
    for line in out.splitlines():
        number, when, caplen, length, iface = line.split("\t")
        rows.append((int(number), when, int(caplen), int(length), iface))
    return rows


def epoch_text_to_ns(text: str) -> int:
    if not text:
        return 0  # Wireshark shows no time for a Simple Packet Block; we use 0
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("path", public_files())
def test_public_capture_matches_tshark(path: Path) -> None:
    reader, frames = read_all(path)
    rows = tshark_rows(str(path))
    # Same count (tshark counts the frames before a corruption too), same numbering.
    assert reader.numbered == len(rows)
    by_number = {row[0]: row for row in rows}
    for frame in frames:
        _number, when, caplen, length, iface = by_number[frame.number]
        assert frame.ts_ns == epoch_text_to_ns(when), frame.number
        assert (len(frame.data), frame.orig_len) == (caplen, length), frame.number
        assert frame.interface == int(iface or 0), frame.number


# dpkt.pcapng.Reader handles one section with the first IDB's resolution and skips SPBs: files
# beyond that are compared with tshark only (above).
DPKT_CANNOT_READ = {
    "gopacket/be/test202.pcapng": "several sections of both byte orders and SPBs",
}
# Files whose damage dpkt does not notice: it yields a short or garbage last record instead.
DAMAGED = {
    "scapy/bad_rsn_parsing_overrides_ssid.pcap": 2,  # cut inside record 2
    "suricata-verify/10.7.29.101_49898-178.63.41.150_25.pcap": 19,  # 3.9 GB record 19
    "suricata-verify/tls_DER-incomplete-header.pcap": 7,  # 4.3 MB record 7
}


def dpkt_packets(path: Path) -> list[tuple[object, bytes]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    fileobj = io.BytesIO(raw)
    is_ng = raw[:4] == b"\x0a\x0d\x0d\x0a"
    reader = dpkt.pcapng.Reader(fileobj) if is_ng else dpkt.pcap.Reader(fileobj)
    packets = []
    try:
        for ts, data in reader:
            packets.append((ts, data))
    except dpkt.NeedData:
        pass  # a file cut inside a record header: dpkt stops there too
    return packets


@pytest.mark.parametrize("path", public_files())
def test_public_capture_matches_dpkt(path: Path) -> None:
    name = str(path.relative_to(PUBLIC))
    if name in DPKT_CANNOT_READ:
        pytest.skip(f"dpkt cannot read {name}: {DPKT_CANNOT_READ[name]}")
    reader, frames = read_all(path)
    theirs = dpkt_packets(path)
    if name in DAMAGED:
        assert reader.damage is not None and reader.damage.frame == DAMAGED[name]
        theirs = theirs[: len(frames)]
    else:
        assert reader.damage is None
    assert len(frames) == len(theirs)
    for frame, (ts, data) in zip(frames, theirs, strict=True):
        assert frame.data == data, frame.number
        if isinstance(ts, Decimal):  # dpkt's nanosecond pcap timestamps are exact
            assert frame.ts_ns == int(ts * 1_000_000_000), frame.number
        elif reader.format == "pcap":  # microseconds as a float: exact once rounded to 1 us
            assert frame.ts_ns == round(ts * 1_000_000) * 1000, frame.number
        elif frame.interface == 0:
            # pcapng: float seconds, about 0.24 us of precision at today's epoch. dpkt applies
            # the first interface's if_tsresol to every interface, so only interface 0 counts
            # (zeek/pcapng-multi-interface.pcapng: interface 1 is in us, interface 0 in ns;
            # the tshark test checks every interface).
            assert abs(frame.ts_ns - ts * 1e9) < 1000, frame.number


def test_public_damaged_files_report_where(tmp_path: Path) -> None:
    if not PUBLIC.is_dir():
        pytest.skip(f"public captures not found at {PUBLIC}")
    # Record 19 of the hand-edited SMTP capture claims 3925868813 bytes: header at 3695.
    reader, frames = read_all(PUBLIC / "suricata-verify/10.7.29.101_49898-178.63.41.150_25.pcap")
    assert len(frames) == 18
    assert reader.damage is not None and (reader.damage.offset, reader.damage.frame) == (3695, 19)
    # The radiotap file ends 24 bytes into its second record.
    reader, frames = read_all(PUBLIC / "scapy/bad_rsn_parsing_overrides_ssid.pcap")
    assert len(frames) == 1
    assert reader.damage is not None and reader.damage.frame == 2


def _records_and_frames(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    def record(buf, start, stop, number, ts, link, orig) -> tuple[object, ...]:
        return (number, ts, link, bytes(buf[start:stop]), orig)

    try:
        in_place = open_capture(str(path))
        got = [*(record(*r) for r in in_place.records()), (in_place.numbered, in_place.damage)]
        reader = open_capture(str(path))
        frames = list(reader)
    except CaptureError as exc:
        return [("error", str(exc))], [("error", str(exc))]
    want = [(f.number, f.ts_ns, f.linktype, f.data, f.orig_len) for f in frames]
    want.append((reader.numbered, reader.damage))
    # The reader also keeps the first and last timestamps for its caller (api).
    if frames:
        assert (in_place.first_ts_ns, in_place.last_ts_ns) == (frames[0].ts_ns, frames[-1].ts_ns)
    return got, want


@pytest.mark.parametrize(
    "path",
    sorted(REPO.glob("tests/data/damaged/*"))
    + sorted(REPO.glob("tests/data/fuzz/*.pcap*"))
    + sorted(REPO.glob("rules/*/*.pcap"))
    + [REPO / "samples/demo.pcap"],
    ids=lambda p: p.name,
)
def test_records_read_in_place_are_the_frames(path: Path) -> None:
    # The hot path (CaptureReader.records, bytes read where they lie) must see exactly the
    # frames, numbers, timestamps and damage that iterating Frames gives.
    got, want = _records_and_frames(path)
    assert got == want
