"""Tests for pcapdiag.io.probe: the first and last timestamps of a capture from its head and tail.

The oracle is the project's reader (`open_capture`, iterated to the end) and, for files built
here, scapy. Most tests run twice: with the module's read sizes, where every sample fits in the
head and tail reads (the whole-file walk), and with small read sizes, so that the tail logic
(pcap record chains, pcapng backward walk) runs on the real samples too.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import struct
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pcapdiag.errors import CaptureError
from pcapdiag.io import probe as probe_mod
from pcapdiag.io.probe import Probe, probe_file, probe_path
from pcapdiag.io.reader import open_capture

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
CAPTURES = REPO / "tests" / "captures"
PUBLIC = Path(
    os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", str(REPO.parent / "shared" / "captures" / "public"))
)

SMALL_HEAD = 1024
SMALL_TAIL = 2048
BASE_SEC = 1_700_000_000  # 2023-11-14: timestamps of the built files start here


@pytest.fixture
def small_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Head and tail reads of a few KiB, so that files of tens of KiB are probed from their ends."""
    monkeypatch.setattr(probe_mod, "HEAD_BYTES", SMALL_HEAD)
    monkeypatch.setattr(probe_mod, "PCAP_TAIL_BYTES", SMALL_TAIL)
    monkeypatch.setattr(probe_mod, "PCAPNG_TAIL_BYTES", SMALL_TAIL)


@pytest.fixture(params=["whole", "tail"])
def mode(request: pytest.FixtureRequest) -> str:
    """Built files are probed whole (default read sizes) and from the tail (small reads)."""
    if request.param == "tail":
        request.getfixturevalue("small_reads")
    return str(request.param)


# -- the oracles ---------------------------------------------------------------------------------


@dataclass
class Truth:
    """What the reader says about a file, read to the end."""

    fmt: str
    first: int | None
    last: int | None
    damaged: bool
    sections: int
    record_starts: list[int]  # pcap only: the file offset of every record yielded


def read_truth(path: Path) -> Truth:
    reader = open_capture(str(path))
    frames = list(reader)
    starts: list[int] = []
    if reader.format == "pcap":
        pos = 24
        for f in frames:
            starts.append(pos)
            pos += 16 + len(f.data)
    return Truth(
        reader.format,
        frames[0].ts_ns if frames else None,
        frames[-1].ts_ns if frames else None,
        reader.damage is not None,
        reader.sections,
        starts,
    )


def scapy_ns(path: Path) -> list[int]:
    """Every packet's time in integer ns, as scapy reads the file (scapy knows pcap us/ns and
    pcapng if_tsresol, but not if_tsoffset)."""
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as packets:
        return [int(Decimal(p.time) * 1_000_000_000) for p in packets]


def same_ts(probed: int | None, truth: int | None, fmt: str) -> bool:
    """The reader gives a Simple Packet Block (no timestamp) ts 0; the probe gives None."""
    return probed == truth or (fmt == "pcapng" and truth == 0 and probed is None)


# -- builders ------------------------------------------------------------------------------------


def pcap_header(order: str = "<", nano: bool = False, snaplen: int = 65535) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)


def pcap_record(sec: int, frac: int, data: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data


def pcap_file(count: int, *, order: str = "<", nano: bool = False, seed: int = 1) -> bytes:
    """`count` records of 60..400 bytes, a second and some fraction apart."""
    rnd = random.Random(seed)
    frac_max = 1_000_000_000 if nano else 1_000_000
    out = [pcap_header(order, nano)]
    for i in range(count):
        data = rnd.randbytes(rnd.randint(60, 400))
        out.append(pcap_record(BASE_SEC + i, rnd.randrange(frac_max), data, order))
    return b"".join(out)


def ng_block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(order + "II", btype, blen) + body + struct.pack(order + "I", blen)


def ng_shb(order: str = "<", section_length: int = -1) -> bytes:
    return ng_block(
        0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, section_length), order
    )


def ng_idb(order: str = "<", tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    if tsoffset is not None:
        opts += struct.pack(order + "HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack(order + "HH", 0, 0)
    return ng_block(1, struct.pack(order + "HHI", 1, 0, 0) + opts, order)


def ng_epb(ifid: int, units: int, data: bytes, order: str = "<") -> bytes:
    hdr = struct.pack(order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
    return ng_block(6, hdr + data, order)


def ng_pb(ifid: int, units: int, data: bytes, order: str = "<") -> bytes:
    hdr = struct.pack(
        order + "HHIIII", ifid, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return ng_block(2, hdr + data, order)


def ng_spb(data: bytes, order: str = "<") -> bytes:
    return ng_block(3, struct.pack(order + "I", len(data)) + data, order)


def ng_isb(ifid: int, units: int, order: str = "<") -> bytes:
    return ng_block(5, struct.pack(order + "III", ifid, units >> 32, units & 0xFFFFFFFF), order)


def ng_epbs(
    count: int, ifid: int, start_units: int, step: int, order: str = "<", seed: int = 2
) -> bytes:
    """`count` EPBs of 200 bytes, `step` units apart (plus up to one step of jitter)."""
    rnd = random.Random(seed)
    return b"".join(
        ng_epb(ifid, start_units + i * step + rnd.randrange(step), rnd.randbytes(200), order)
        for i in range(count)
    )


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def check_against_reader(path: Path) -> tuple[Probe, Truth]:
    """Probe `path`; assert that what it says agrees with the reader. Returns both."""
    truth = read_truth(path)
    got = probe_path(str(path))
    assert got.size == path.stat().st_size
    assert same_ts(got.first_ts_ns, truth.first, truth.fmt)
    assert got.last_ts_ns is None or same_ts(got.last_ts_ns, truth.last, truth.fmt)
    return got, truth


# -- the project's own captures -----------------------------------------------------------------


def local_captures() -> list[Any]:
    files = sorted(
        p
        for root in (SAMPLES, CAPTURES)
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".gz"))
    )
    return [pytest.param(p, id=str(p.relative_to(REPO))) for p in files]


# Samples that legitimately give last_ts_ns = None although the reader reads them whole: none.
# (The recorded `server.pcap` files of 24 bytes have no record at all: the reader's last
# timestamp is None as well, which the equality below checks.)
LAST_NONE_OK: frozenset[str] = frozenset()


def test_local_captures_are_found() -> None:
    assert len(local_captures()) > 20


@pytest.mark.parametrize("reads", ["default", "small"])
@pytest.mark.parametrize("path", local_captures())
def test_local_capture_agrees_with_reader(
    path: Path, reads: str, request: pytest.FixtureRequest
) -> None:
    """Why: the probe must give the reader's first timestamp and, when it gives one, its last."""
    if reads == "small":
        request.getfixturevalue("small_reads")
    if path.name.endswith(".gz"):
        got = probe_path(str(path))
        assert (got.first_ts_ns, got.last_ts_ns) == (None, None)
        return
    got, truth = check_against_reader(path)  # first: the reader's; last: None or the reader's
    if truth.damaged:
        return
    if reads == "default":
        # Every sample so far fits in the head and tail reads: walked whole, as the reader does.
        if path.name not in LAST_NONE_OK:
            assert same_ts(got.last_ts_ns, truth.last, truth.fmt)
        return
    # Small reads: proven from the tail when the tail read holds enough of the file.
    size = path.stat().st_size
    if size <= SMALL_HEAD + SMALL_TAIL:
        assert same_ts(got.last_ts_ns, truth.last, truth.fmt)
    elif truth.fmt == "pcap":
        in_tail = sum(1 for s in truth.record_starts if s >= size - SMALL_TAIL)
        if in_tail >= probe_mod.MIN_CHAIN:
            assert got.last_ts_ns == truth.last
        else:
            assert got.last_ts_ns is None  # too few records in the tail to be believed


def test_small_reads_take_the_tail_path(small_reads: None) -> None:
    """Why: the small-read runs above must really exercise the tail logic on real files."""
    proven = 0
    for param in local_captures():
        (path,) = param.values
        size = path.stat().st_size
        if size > SMALL_HEAD + SMALL_TAIL and probe_path(str(path)).last_ts_ns is not None:
            proven += 1
    assert proven >= 10


# -- public captures -----------------------------------------------------------------------------


def public_files() -> list[Any]:
    if not PUBLIC.is_dir():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(reason=f"public captures not found at {PUBLIC}"),
                id="no-public-captures",
            )
        ]
    files = sorted(p for p in PUBLIC.rglob("*") if p.is_file())
    return [pytest.param(p, id=str(p.relative_to(PUBLIC))) for p in files]


@pytest.mark.parametrize("reads", ["default", "small"])
@pytest.mark.parametrize("path", public_files())
def test_public_capture(path: Path, reads: str, request: pytest.FixtureRequest) -> None:
    """Why: files written by other tools (and two corrupt ones) must never make the probe raise
    or lie; only a non-capture raises CaptureError, as it does in the reader."""
    if reads == "small":
        request.getfixturevalue("small_reads")
    try:
        reader = open_capture(str(path))
    except CaptureError:
        reader = None
    try:
        got = probe_path(str(path))
    except CaptureError as exc:
        assert reader is None, f"probe refused a file the reader opens: {exc}"
        assert str(path) in str(exc)
        return
    if reader is None:
        assert (got.first_ts_ns, got.last_ts_ns) == (None, None)
        return
    reader.close()
    if path.name.endswith(".gz"):
        assert (got.first_ts_ns, got.last_ts_ns) == (None, None)
        return
    truth = read_truth(path)
    if reads == "default" or got.first_ts_ns is not None:
        assert same_ts(got.first_ts_ns, truth.first, truth.fmt)
    if truth.damaged and reads == "small":
        # The reader stops at damage in the middle of the file, which the probe does not
        # read: its last time is that of the file's real last record, not the reader's.
        return
    assert got.last_ts_ns is None or same_ts(got.last_ts_ns, truth.last, truth.fmt)
    if reads == "default" and not truth.damaged and truth.last is not None:
        assert same_ts(got.last_ts_ns, truth.last, truth.fmt)


def test_public_pcapng_proven_from_the_tail(small_reads: None) -> None:
    """Why: the backward walk must prove the last time of pcapng files written by Wireshark and
    other tools, not only of the files built here."""
    if not PUBLIC.is_dir():
        pytest.skip(f"public captures not found at {PUBLIC}")
    proven = 0
    for path in sorted(PUBLIC.rglob("*.pcapng")):
        if path.stat().st_size > SMALL_HEAD + SMALL_TAIL:
            got = probe_path(str(path))
            if got.last_ts_ns is not None:
                assert got.last_ts_ns == read_truth(path).last
                proven += 1
    assert proven >= 3


# -- built pcap files ----------------------------------------------------------------------------


def test_pcap_cut_inside_last_record(tmp_path: Path, small_reads: None) -> None:
    """Why: no record chain ends at the end of a cut file, so the last time is not proven."""
    data = pcap_file(120)
    whole = write(tmp_path, "whole.pcap", data)
    cut = write(tmp_path, "cut.pcap", data[:-50])
    got, truth = check_against_reader(cut)
    assert truth.damaged
    assert got.first_ts_ns == scapy_ns(whole)[0]
    assert got.last_ts_ns is None
    # Uncut, the same file is proven from its tail.
    assert probe_path(str(whole)).last_ts_ns == scapy_ns(whole)[-1]


def test_pcap_cut_file_read_whole_gives_the_readers_last(tmp_path: Path) -> None:
    """Why: a file that fits the reads is walked as the reader walks it, up to the damage."""
    data = pcap_file(20)
    cut = write(tmp_path, "cut.pcap", data[:-50])
    got, truth = check_against_reader(cut)
    assert truth.damaged
    assert got.last_ts_ns == truth.last == scapy_ns(write(tmp_path, "w.pcap", data))[-2]


def fake_chain(count: int, *, sec: int = BASE_SEC + 5000, flaw: str = "none") -> bytes:
    """`count` records of 30 bytes to hide in a payload: plausible, or with one flaw that
    makes each header impossible for a real record."""
    out = []
    for k in range(count):
        frac, caplen, orig = 1000 * k, 30, 30
        if flaw == "orig-zero":
            orig = 0
        elif flaw == "orig-short":
            orig = caplen - 1
        elif flaw == "frac":
            frac = 1_000_000 + k  # not a microsecond count
        rec_sec = BASE_SEC - 2 * 86_400 if flaw == "early" else sec + k
        out.append(struct.pack("<IIII", rec_sec, frac, caplen, orig) + bytes([0x41 + k]) * caplen)
    return b"".join(out)


REAL_LAST = (BASE_SEC + 200) * 10**9 + 777_000  # the time of the record built below


def with_payload(payload: bytes) -> bytes:
    """pcap_file(100) and a last record (at REAL_LAST) whose payload ends the file."""
    return pcap_file(100) + pcap_record(BASE_SEC + 200, 777, b"\x00" * 37 + payload)


@pytest.mark.parametrize("fakes", [1, 3])
def test_pcap_payload_holding_record_headers(tmp_path: Path, small_reads: None, fakes: int) -> None:
    """Why: a payload can end with bytes that look like records ending at the end of the file;
    chains shorter than MIN_CHAIN are not believed, and the real chain is found."""
    assert fakes < probe_mod.MIN_CHAIN
    path = write(tmp_path, "payload.pcap", with_payload(fake_chain(fakes)))
    got, _truth = check_against_reader(path)
    assert got.last_ts_ns == scapy_ns(path)[-1] == REAL_LAST


def test_pcap_payload_holding_a_long_fake_chain(tmp_path: Path, small_reads: None) -> None:
    """Why: a payload holding a whole chain of MIN_CHAIN records that ends at the end of the
    file competes with the real chain: two chains that disagree prove nothing."""
    path = write(tmp_path, "payload.pcap", with_payload(fake_chain(probe_mod.MIN_CHAIN)))
    got, _truth = check_against_reader(path)
    assert got.last_ts_ns is None
    assert got.first_ts_ns == scapy_ns(path)[0]


@pytest.mark.parametrize("flaw", ["orig-zero", "orig-short", "frac", "early"])
def test_pcap_payload_holding_impossible_records(
    tmp_path: Path, small_reads: None, flaw: str
) -> None:
    """Why: headers no real record can have (origlen 0 or below caplen, a fraction of a second
    out of range, a time days before the first frame) make no chain, so the real one wins."""
    path = write(tmp_path, "payload.pcap", with_payload(fake_chain(8, flaw=flaw)))
    got, _truth = check_against_reader(path)
    assert got.last_ts_ns == scapy_ns(path)[-1] == REAL_LAST


def test_pcap_first_record_corrupt(tmp_path: Path, small_reads: None) -> None:
    """Why: a first record header the reader refuses (caplen past its limit) gives no first
    time, and so no bound to judge tail records by: nothing is told."""
    data = bytearray(pcap_file(100))
    struct.pack_into("<I", data, 24 + 8, 0xFFFFFFF0)
    path = write(tmp_path, "bad.pcap", bytes(data))
    truth = read_truth(path)
    assert truth.damaged and truth.first is None
    assert probe_path(str(path)) == Probe(None, None, len(data))


def test_pcap_damage_in_the_middle(tmp_path: Path, small_reads: None) -> None:
    """Why: documents that the middle of the file is not read: the reader stops at a corrupt
    record there, the probe gives the time of the file's real last record."""
    data = bytearray(pcap_file(100))
    good = write(tmp_path, "good.pcap", bytes(data))
    mid = read_truth(good).record_starts[50]
    struct.pack_into("<I", data, mid + 8, 0xFFFFFFF0)
    path = write(tmp_path, "bad.pcap", bytes(data))
    truth = read_truth(path)
    assert truth.damaged
    got = probe_path(str(path))
    assert got.first_ts_ns == truth.first
    assert got.last_ts_ns == scapy_ns(good)[-1] != truth.last


@pytest.mark.parametrize("nano", [False, True], ids=["usec", "nsec"])
@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_pcap_byte_orders_and_resolutions(
    tmp_path: Path, mode: str, order: str, nano: bool
) -> None:
    """Why: big-endian and nanosecond pcap files keep their own header and fraction units."""
    path = write(tmp_path, "f.pcap", pcap_file(150, order=order, nano=nano))
    got, truth = check_against_reader(path)
    times = scapy_ns(path)
    assert (got.first_ts_ns, got.last_ts_ns) == (times[0], times[-1])
    assert (truth.first, truth.last) == (times[0], times[-1])
    if nano:
        assert times[-1] % 1000 != 0 or times[-2] % 1000 != 0  # really ns fractions


def test_pcap_with_only_a_file_header(tmp_path: Path, small_reads: None) -> None:
    """Why: a capture with no record has no first or last time."""
    path = write(tmp_path, "empty.pcap", pcap_header())
    assert probe_path(str(path)) == Probe(None, None, 24)


# -- built pcapng files --------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_pcapng_tsresol_ns_and_tsoffset(tmp_path: Path, mode: str, order: str) -> None:
    """Why: if_tsresol=9 units are ns and if_tsoffset (seconds) is added to every time."""
    offset = -3600
    units0 = (BASE_SEC - offset) * 10**9 + 123_456_789
    data = (
        ng_shb(order)
        + ng_idb(order, tsresol=9, tsoffset=offset)
        + ng_epbs(120, 0, units0, 10**9 + 7, order)
    )
    path = write(tmp_path, "ns.pcapng", data)
    got, _truth = check_against_reader(path)
    times = [t + offset * 10**9 for t in scapy_ns(path)]  # scapy ignores if_tsoffset
    assert (got.first_ts_ns, got.last_ts_ns) == (times[0], times[-1])
    assert times[-1] % 1000 != 0


def test_pcapng_power_of_two_resolution_second_interface(tmp_path: Path, mode: str) -> None:
    """Why: the last packet's interface id picks its IDB (here 2^-20 s units, a divisor)."""
    units0 = BASE_SEC * 2**20 + 12345
    data = (
        ng_shb()
        + ng_idb(tsresol=6)
        + ng_idb(tsresol=0x80 | 20)
        + ng_epbs(60, 0, BASE_SEC * 10**6, 10**6)
        + ng_epbs(60, 1, units0 + 61 * 2**20, 2**20)
    )
    path = write(tmp_path, "p2.pcapng", data)
    got, truth = check_against_reader(path)
    assert (got.first_ts_ns, got.last_ts_ns) == (truth.first, truth.last)
    last_units = struct.unpack_from("<II", data, len(data) - 232 + 12)  # the last EPB's
    assert got.last_ts_ns == ((last_units[0] << 32) | last_units[1]) * 10**9 // 2**20


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_pcapng_isb_after_last_epb(tmp_path: Path, mode: str, order: str) -> None:
    """Why: blocks that are not packets (ISB, custom) after the last EPB are stepped over."""
    units0 = BASE_SEC * 10**6
    data = (
        ng_shb(order)
        + ng_idb(order)
        + ng_epbs(100, 0, units0, 10**6, order)
        + ng_isb(0, units0 + 500 * 10**6, order)
        + ng_block(0x00000BAD, b"custom block", order)
        + ng_isb(0, units0 + 600 * 10**6, order)
    )
    path = write(tmp_path, "isb.pcapng", data)
    got, _truth = check_against_reader(path)
    times = scapy_ns(path)
    assert (got.first_ts_ns, got.last_ts_ns) == (times[0], times[-1])
    assert got.last_ts_ns < (BASE_SEC + 500) * 10**9  # the EPB's, not the ISB's


def test_pcapng_obsolete_packet_block_last(tmp_path: Path, mode: str) -> None:
    """Why: an obsolete Packet Block (type 2) carries a timestamp like an EPB."""
    data = (
        ng_shb()
        + ng_idb(tsresol=3)
        + ng_epbs(80, 0, BASE_SEC * 1000, 1000)
        + ng_pb(0, (BASE_SEC + 90) * 1000 + 5, b"x" * 100)
    )
    path = write(tmp_path, "pb.pcapng", data)
    got, _truth = check_against_reader(path)
    times = scapy_ns(path)
    assert (got.first_ts_ns, got.last_ts_ns) == (times[0], times[-1])
    assert got.last_ts_ns == (BASE_SEC + 90) * 10**9 + 5_000_000


def test_pcapng_simple_packet_block_last(tmp_path: Path, mode: str) -> None:
    """Why: a Simple Packet Block has no timestamp (the reader gives 0): nothing to tell."""
    data = ng_shb() + ng_idb() + ng_epbs(80, 0, BASE_SEC * 10**6, 10**6) + ng_spb(b"y" * 64)
    path = write(tmp_path, "spb.pcapng", data)
    got, truth = check_against_reader(path)
    assert truth.last == 0
    assert got.last_ts_ns is None
    assert got.first_ts_ns == truth.first


@dataclass
class Sections:
    """A two-section pcapng file: section 2's interface 0 has another resolution or offset."""

    data: bytes
    shb2_at: int  # offset of the second Section Header Block


def two_sections(
    n1: int,
    n2: int,
    *,
    order2: str = "<",
    resol: tuple[int, int] = (6, 9),
    offset2: int | None = None,
    seclen: bool = False,
) -> Sections:
    resol1, resol2 = resol
    body1 = ng_idb(tsresol=resol1) + ng_epbs(n1, 0, BASE_SEC * 10**resol1, 10**resol1)
    shb1 = ng_shb(section_length=len(body1) if seclen else -1)
    start2 = (BASE_SEC + 10_000) * 10**resol2
    section2 = (
        ng_shb(order2)
        + ng_idb(order2, tsresol=resol2, tsoffset=offset2)
        + ng_epbs(n2, 0, start2, 10**resol2, order2, seed=3)
    )
    return Sections(shb1 + body1 + section2, len(shb1) + len(body1))


TWO_SECTION_KINDS = {
    "us-ns": {"resol": (6, 9)},
    "ns-us": {"resol": (9, 6)},
    "us-100ns": {"resol": (6, 7)},
    "tsoffset": {"resol": (6, 6), "offset2": 3600},  # same resolution, times 1 h apart
}


@pytest.mark.parametrize("seclen", [False, True], ids=["no-section-length", "section-length"])
@pytest.mark.parametrize("kind", sorted(TWO_SECTION_KINDS))
@pytest.mark.parametrize("order2", ["<", ">"], ids=["le2", "be2"])
def test_pcapng_two_sections_never_wrong(
    tmp_path: Path, small_reads: None, order2: str, kind: str, seclen: bool
) -> None:
    """Why: the head's IDBs are not those of a later section: the last time is the reader's
    or None, whether the second section header lies in the head, between, or in the tail."""
    outcomes = set()
    for n1, n2 in [(2, 200), (60, 60), (100, 100), (200, 2), (200, 30)]:
        built = two_sections(n1, n2, order2=order2, seclen=seclen, **TWO_SECTION_KINDS[kind])
        between = SMALL_HEAD <= built.shb2_at < len(built.data) - SMALL_TAIL
        if kind == "tsoffset" and between and not seclen:
            continue  # the known blind spot: test_pcapng_two_sections_blind_spot
        path = write(tmp_path, f"two-{n1}-{n2}.pcapng", built.data)
        got, truth = check_against_reader(path)
        assert truth.sections == 2 and not truth.damaged
        assert got.first_ts_ns == truth.first
        assert got.last_ts_ns in (None, truth.last)
        outcomes.add(got.last_ts_ns is None)
    assert outcomes == {True, False}  # proven when section 2 starts in the tail, else not


@pytest.mark.xfail(strict=True, reason="known limit, see the probe module docstring")
def test_pcapng_two_sections_blind_spot(tmp_path: Path, small_reads: None) -> None:
    """Why: documents the one case the probe gets wrong. The second section header lies
    between the head and tail reads, the first header gives no section length, and section 2's
    interface differs only by if_tsoffset: nothing read tells it from a single section."""
    built = two_sections(100, 100, **TWO_SECTION_KINDS["tsoffset"])
    assert SMALL_HEAD <= built.shb2_at < len(built.data) - SMALL_TAIL
    path = write(tmp_path, "blind.pcapng", built.data)
    truth = read_truth(path)
    assert probe_path(str(path)).last_ts_ns in (None, truth.last)


def test_pcapng_two_sections_read_whole(tmp_path: Path) -> None:
    """Why: a two-section file that fits the reads is walked whole: both sections are known."""
    path = write(tmp_path, "two.pcapng", two_sections(50, 50, order2=">").data)
    got, truth = check_against_reader(path)
    assert got.last_ts_ns == truth.last
    # Section 2 (ns units) starts at BASE_SEC + 10000 s, one packet a second or so.
    assert (BASE_SEC + 10_049) * 10**9 <= got.last_ts_ns < (BASE_SEC + 10_051) * 10**9


def test_pcapng_single_section_with_section_length(tmp_path: Path, small_reads: None) -> None:
    """Why: a section length that spans the whole file proves there is one section."""
    body = ng_idb(tsresol=9) + ng_epbs(100, 0, BASE_SEC * 10**9, 10**9)
    path = write(tmp_path, "one.pcapng", ng_shb(section_length=len(body)) + body)
    got, _truth = check_against_reader(path)
    assert got.last_ts_ns == scapy_ns(path)[-1]


def test_pcapng_interface_defined_after_the_head(tmp_path: Path, small_reads: None) -> None:
    """Why: an interface whose IDB the head did not see has no known resolution."""
    data = (
        ng_shb()
        + ng_idb()
        + ng_epbs(60, 0, BASE_SEC * 10**6, 10**6)
        + ng_idb(tsresol=9)
        + ng_epbs(60, 1, (BASE_SEC + 100) * 10**9, 10**9)
    )
    path = write(tmp_path, "late-idb.pcapng", data)
    got, _truth = check_against_reader(path)
    assert got.last_ts_ns is None


# -- other inputs --------------------------------------------------------------------------------


def test_gzip_is_not_probed(tmp_path: Path) -> None:
    """Why: a gzip stream cannot be read from its end."""
    path = write(tmp_path, "f.pcap.gz", gzip.compress(pcap_file(10)))
    assert probe_path(str(path)) == Probe(None, None, path.stat().st_size)


@pytest.mark.parametrize("content", [b"hello, world\n", b"ab", b"PK\x03\x04" + b"\0" * 100])
def test_not_a_capture_raises_naming_the_file(tmp_path: Path, content: bytes) -> None:
    """Why: input that is not a capture is an error, named like the reader's."""
    path = write(tmp_path, "notes.txt", content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng file") as exc:
        probe_path(str(path))
    assert str(path) in str(exc.value)
    with pytest.raises(CaptureError):
        open_capture(str(path))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    """Why: probe_path reports a missing file or a directory like the reader."""
    with pytest.raises(CaptureError, match="file not found"):
        probe_path(str(tmp_path / "nope.pcap"))
    with pytest.raises(CaptureError, match="directory"):
        probe_path(str(tmp_path))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_every_truncation_never_raises_nor_lies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Why: a file cut anywhere (even inside the header) gives the reader's times or None."""
    monkeypatch.setattr(probe_mod, "HEAD_BYTES", 200)
    monkeypatch.setattr(probe_mod, "PCAP_TAIL_BYTES", 700)
    monkeypatch.setattr(probe_mod, "PCAPNG_TAIL_BYTES", 700)
    if fmt == "pcap":
        rnd = random.Random(5)
        recs = [pcap_record(BASE_SEC + i, i, rnd.randbytes(rnd.randint(1, 90))) for i in range(40)]
        data = pcap_header() + b"".join(recs)
    else:
        rnd = random.Random(6)
        data = (
            ng_shb()
            + ng_idb(tsresol=9)
            + b"".join(
                ng_epb(0, (BASE_SEC + i) * 10**9 + i, rnd.randbytes(rnd.randint(1, 90)))
                for i in range(40)
            )
        )
    proven = 0
    for cut in range(len(data) + 1):
        path = write(tmp_path, f"cut.{fmt}", data[:cut])
        got = probe_path(str(path))
        try:
            truth = read_truth(path)
        except CaptureError:  # empty, or cut inside the file header
            assert (got.first_ts_ns, got.last_ts_ns) == (None, None)
            continue
        assert got.first_ts_ns == truth.first
        assert got.last_ts_ns in (None, truth.last), cut
        proven += got.last_ts_ns is not None
    assert proven > 40


def test_corrupt_tails_never_raise(tmp_path: Path, small_reads: None) -> None:
    """Why: random bytes written over the tail must not make the probe raise or lie."""
    rnd = random.Random(7)
    for fmt, data in [
        ("pcap", pcap_file(120)),
        ("pcapng", ng_shb() + ng_idb() + ng_epbs(60, 0, BASE_SEC * 10**6, 10**6)),
    ]:
        for _ in range(60):
            buf = bytearray(data)
            at = rnd.randrange(len(buf) - 3000, len(buf))
            buf[at : at + rnd.randint(1, 40)] = rnd.randbytes(40)
            path = write(tmp_path, f"bad.{fmt}", bytes(buf))
            got = probe_path(str(path))
            truth = read_truth(path)
            assert got.first_ts_ns == truth.first
            if not truth.damaged:
                assert got.last_ts_ns in (None, truth.last)


# -- how the file is read ------------------------------------------------------------------------


class CountingFile(io.BytesIO):
    """A seekable file that counts its reads and the bytes they return."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self.reads += 1
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_big_file_read_with_two_small_reads(tmp_path: Path, fmt: str) -> None:
    """Why: with the real read sizes, a big file costs one head read and one tail read."""
    if fmt == "pcap":
        data = pcap_file(8000, seed=9)
        tail = probe_mod.PCAP_TAIL_BYTES
    else:
        data = ng_shb() + ng_idb(tsresol=9) + ng_epbs(10_000, 0, BASE_SEC * 10**9, 10**9)
        tail = probe_mod.PCAPNG_TAIL_BYTES
    assert len(data) > probe_mod.HEAD_BYTES + tail
    fh = CountingFile(data)
    fh.seek(12345)  # positioned anywhere
    got = probe_file(fh, len(data))
    assert fh.reads == 2
    assert fh.bytes_read == probe_mod.HEAD_BYTES + tail
    truth = read_truth(write(tmp_path, f"big.{fmt}", data))
    assert (got.first_ts_ns, got.last_ts_ns) == (truth.first, truth.last)
    assert got.last_ts_ns is not None


def test_fsspec_file_few_range_requests(tmp_path: Path) -> None:
    """Why: on an object store every read is a range request: two for a big file."""
    fsspec = pytest.importorskip("fsspec")
    from fsspec.spec import AbstractBufferedFile

    blobs = {"bucket/big.pcap": pcap_file(6000, seed=11), "bucket/notes.txt": b"hello world"}
    fetched: list[tuple[int, int]] = []

    class RangeFile(AbstractBufferedFile):  # type: ignore[misc]
        """An object whose every read is fetched as one byte range (as s3fs does)."""

        def _fetch_range(self, start: int, end: int) -> bytes:
            fetched.append((start, end))
            return blobs[self.path][start:end]

    def open_object(key: str) -> Any:
        fs = fsspec.filesystem("memory")
        return RangeFile(fs, key, mode="rb", cache_type="none", size=len(blobs[key]))

    data = blobs["bucket/big.pcap"]
    got = probe_file(open_object("bucket/big.pcap"), len(data))
    assert len(fetched) == 2
    assert sum(end - start for start, end in fetched) <= (
        probe_mod.HEAD_BYTES + probe_mod.PCAP_TAIL_BYTES
    )
    truth = read_truth(write(tmp_path, "big.pcap", data))
    assert (got.first_ts_ns, got.last_ts_ns) == (truth.first, truth.last)
    assert got.last_ts_ns is not None

    with pytest.raises(CaptureError, match=r"bucket/notes\.txt"):
        probe_file(open_object("bucket/notes.txt"), 11)
