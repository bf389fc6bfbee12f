"""Every decoder gives a segment the same fields: the C batches, the Python fast path and the
general decoder, frame by frame, on the project's captures (the recordings hold Linux's
timestamps and IP IDs, the rule captures RSTs of many kinds). The fast paths leave out the
options the tracker does not read (None) and the checksum check of SYNs; everything else,
IP ID, DF and TSval included, must be the general decoder's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from pcapdiag.accel import triage
from pcapdiag.accel.batches import records
from pcapdiag.accel.fast_decode import decode_fast, ethernet_segment
from pcapdiag.accel.triage import Plan
from pcapdiag.decode.link import decode
from pcapdiag.decode.packets import Segment
from pcapdiag.io.reader import Record, open_capture
from pcapdiag.io.records import Frame

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(
    p
    for pattern in ("rules/*/*.pcap", "samples/*.pcap", "samples/recorded/*/*.pcap")
    for p in ROOT.glob(pattern)
)


def _frame(rec: Record) -> Frame:
    return Frame(rec.number, rec.ts_ns, rec.linktype, bytes(rec.buf[rec.start : rec.stop]), 0)


def _without_options(seg: Segment) -> Segment:
    return dataclasses.replace(seg, options=None, bad_checksum=False)


def _compare(path: Path) -> int:
    """Compare the paths on every frame of `path`; how many took the fast path."""
    fast = 0
    with open_capture(str(path)) as reader:
        for rec in reader.records():
            assert isinstance(rec, Record)
            frame = _frame(rec)
            if frame.linktype != 1:
                continue
            quick = ethernet_segment(frame.data, 0, len(frame.data), frame.number, frame.ts_ns)
            if quick is None:
                continue
            general = decode(frame)
            assert isinstance(general, Segment)
            assert quick == _without_options(general)
            fast += 1
    return fast


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_paths_give_the_general_decoders_fields(path: Path) -> None:
    _compare(path)


def test_timestamped_segments_take_the_fast_path() -> None:
    # The comparison must not pass because nothing took the fast path: the recording's
    # Linux segments carry timestamps in the common layout, and all but SYNs go fast.
    path = ROOT / "samples/recorded/syncookies/client.pcap"
    assert _compare(path) >= 20


@pytest.mark.skipif(not triage.available(), reason="the C pass is not built")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_c_batches_give_the_python_fast_paths_segments(path: Path) -> None:
    with open_capture(str(path)) as reader:
        n = reader_frames = 0
        plan = Plan(bits=b"", own=b"", plain=0, plain_udp=0, records=0)
        built = {}
        for item in records(reader, plan, decode_in_c=True):
            if isinstance(item, Segment):
                built[item.frame] = item
            n += 1
    with open_capture(str(path)) as reader:
        for rec in reader.records():
            assert isinstance(rec, Record)
            reader_frames += 1
            if rec.number in built:
                quick = decode_fast(_frame(rec))
                assert built[rec.number] == quick
    assert n == reader_frames


def _cut_ts_frame(keep: int) -> bytes:
    """A data segment with NOP, NOP, timestamps, its bytes cut `keep` bytes into the TCP
    header (a snap length: the fuzzer found a cut inside the timestamps option)."""
    pkt = (
        Ether()
        / IP(src="10.0.0.1", dst="10.0.0.2", id=7)
        / TCP(flags="PA", options=[("NOP", None), ("NOP", None), ("Timestamp", (11, 22))])
        / (b"x" * 10)
    )
    return bytes(pkt)[: 14 + 20 + keep]


@pytest.mark.parametrize("keep", [28, 31, 32])
def test_a_timestamps_option_cut_short_is_the_general_decoders(keep: int, tmp_path) -> None:
    data = _cut_ts_frame(keep)
    general = decode(Frame(1, 0, 1, data, len(data)))
    assert isinstance(general, Segment)
    assert general.ts_val == (11 if keep >= 32 else -1)
    quick = ethernet_segment(data, 0, len(data), 1, 0)
    assert quick is None or quick == _without_options(general)
    assert (quick is None) == (keep < 32)
    if triage.available():
        path = tmp_path / "cut.pcap"
        wrpcap(str(path), [data])
        with open_capture(str(path)) as reader:
            plan = Plan(bits=b"", own=b"", plain=0, plain_udp=0, records=0)
            (item,) = list(records(reader, plan, decode_in_c=True))
        assert isinstance(item, Segment) == (keep >= 32)
