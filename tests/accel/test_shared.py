"""The C first pass takes what it shares with the Python pipeline from the Python definitions
(accel/shared.py writes them as a header at build time), and a module built from other
definitions is never used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pcapdiag.accel import shared, triage
from pcapdiag.api import analyze
from pcapdiag.settings import Settings
from pcapdiag.track import plain

ROOT = Path(__file__).resolve().parents[2]
C_SOURCE = (ROOT / "pcapdiag/accel/_triage.c").read_text(encoding="utf-8")


def test_the_built_module_comes_from_the_definitions_in_force() -> None:
    from pcapdiag.accel import _triage

    assert shared.digest() == _triage.SHARED_DIGEST
    assert triage.available()


def test_a_module_built_from_other_definitions_is_not_used(
    builtin_rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = str(ROOT / "samples/demo.pcap")
    want = analyze([demo], builtin_rules, settings=Settings(accelerate=False)).to_dict()
    # As if track/plain.py had changed since the module was built: a RST would be "plain".
    monkeypatch.setattr(plain, "PLAIN_EVENTS", plain.PLAIN_EVENTS | {"rst"})
    shared.digest.cache_clear()
    try:
        assert not triage.available()
        calls: list[object] = []
        monkeypatch.setattr(triage, "_triage", _Spy(calls))
        assert analyze([demo], builtin_rules).to_dict() == want
        assert calls == []  # the stale module was never asked to judge a connection
    finally:
        shared.digest.cache_clear()


class _Spy:
    """A stand-in for a stale built module: records any use."""

    SHARED_DIGEST = "0" * 64

    def __init__(self, calls: list[object]) -> None:
        self._calls = calls

    def __getattr__(self, name: str) -> object:
        self._calls.append(name)
        raise AttributeError(name)


@pytest.mark.parametrize("name", [*shared.constants(), *(f"IS_{s}" for s in shared.sets())])
def test_the_c_source_defines_no_shared_name_itself(name: str) -> None:
    assert not re.search(rf"#define\s+{name}\b", C_SOURCE), f"{name} is defined by hand"


@pytest.mark.parametrize(
    "literal",
    ["0x8100", "0x88A8", "0x9100", "0x0800", "0x86DD", "4789", "nh == 58", "proto == 47"],
)
def test_the_c_source_copies_no_decoder_number(literal: str) -> None:
    # The numbers that used to be written out in _triage.c, now taken from the header.
    assert literal.lower() not in C_SOURCE.lower()


def test_every_definition_reaches_the_header() -> None:
    text = shared.header()
    for name, value in shared.constants().items():
        assert re.search(rf"#define {name} {value:#x}u\n", text), name
    for name, members in shared.sets().items():
        macro = re.search(rf"#define IS_{name}\(x\) \((.*)\)\n", text)
        assert macro is not None
        assert {int(v, 16) for v in re.findall(r"== (0x[0-9a-f]+)", macro.group(1))} == members
    assert '#define PLAIN_EVENTS "data end fin handshake syn synack"' in text
    assert '#define MIDSTREAM_ANOMALY_KIND "ack-of-unseen-data"' in text
    assert f'#define SHARED_DIGEST "{shared.digest()}"' in text


def test_the_c_batches_fill_every_field_of_a_segment() -> None:
    # new_segment builds decode.packets.Segment positionally: each field, by the index the
    # header gives it, and nothing by a bare number.
    body = C_SOURCE[C_SOURCE.index("static PyObject *new_segment") :]
    body = body[: body.index("\n}\n")]
    for name in shared.segment_fields():
        assert f"args[SEG_{name.upper()}] = " in body, name
    assert not re.search(r"args\[\d+\]", body)
