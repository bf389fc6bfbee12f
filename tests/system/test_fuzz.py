"""A short, bounded fuzz run (hypothesis, derandomized: the same inputs on every run) over the
capture reader, the decoders and the whole analysis with every renderer, plus the regression
inputs of every crash the long fuzz run (`python fuzz/run.py --minutes M`) found.

The properties (fuzz/harness.py): no exception but CaptureError, each input within
harness.TIME_LIMIT_S seconds, frame numbers increasing within 1..N, a Damage naming an offset
inside the file (pcap: exactly where the first undelivered record starts).

Every crash found has its minimized input in tests/data/fuzz/ (REGRESSIONS below). While a crash
is known and not fixed yet it is listed in KNOWN_BUGS and its regression tests are strict
xfails: the short fuzz run tolerates exactly those crashes (matched by exception type and the
pcapdiag function that raised), so that it stays green and still finds any new one. Once the
bug is fixed its xfail tests XPASS and fail: then remove its KNOWN_BUGS entry.
"""

from __future__ import annotations

import importlib.util
import random
import resource
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fuzz import harness  # noqa: E402
from pcapdiag.io.records import Frame  # noqa: E402

FUZZ_DATA = ROOT / "tests" / "data" / "fuzz"


@dataclass(frozen=True)
class KnownBug:
    name: str
    exc_types: tuple[type[BaseException], ...]
    module: str  # file name of the innermost pcapdiag frame
    function: str  # and its function
    reason: str


# Both crashes the long fuzz run found are fixed (commit f2d4a94); their inputs stay below as
# regression tests. A new known, unfixed crash goes here with its strict xfail test, e.g.:
#   KnownBug("iso-time-out-of-range", (ValueError, OSError, OverflowError), "report.py",
#            "iso_time", "report.iso_time(): datetime.fromtimestamp() out of range")
KNOWN_BUGS: tuple[KnownBug, ...] = ()


def known_bug(exc: BaseException) -> KnownBug | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/pcapdiag/" in f.filename]
    if not frames:
        return None
    inner = frames[-1]
    for bug in KNOWN_BUGS:
        if (
            isinstance(exc, bug.exc_types)
            and Path(inner.filename).name == bug.module
            and inner.name == bug.function
        ):
            return bug
    return None


def run_tolerating_known(data: bytes, *, cli: bool = False) -> None:
    note(f"input ({len(data)} bytes): {data[:512].hex()}")
    try:
        harness.run_one(data, cli=cli)
    except Exception as exc:
        if known_bug(exc) is None:
            raise


FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,  # harness.run_one bounds each input itself (SIGALRM)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=False,
)
SEED = st.integers(min_value=0, max_value=2**32 - 1)


# -- the short fuzz run ----------------------------------------------------------------------


@settings(FUZZ_SETTINGS, max_examples=500)
@given(seed=SEED)
def test_fuzz_whole_pipeline(seed: int) -> None:
    """Mutated seeds and generated captures through every target (the CLI on some)."""
    data, _compressed = harness.generate(random.Random(seed))
    run_tolerating_known(data, cli=seed % 16 == 0)


@settings(FUZZ_SETTINGS, max_examples=250)
@given(seed=SEED)
def test_fuzz_pcapng_blocks(seed: int) -> None:
    """Seeds converted to pcapng, then block lengths, interface ids, sections and options
    broken (the capture reader and decoders only: cheap, so many of them)."""
    rng = random.Random(seed)
    cap = harness.parse_pcap(rng.choice(harness.seeds()))
    assert cap is not None
    cap.records = cap.records[:30]
    data = harness.to_pcapng(cap, rng)
    for _ in range(rng.randint(1, 4)):
        data = harness.m_pcapng(data, rng)
    note(f"input ({len(data)} bytes): {data[:512].hex()}")
    with harness.time_limit(harness.TIME_LIMIT_S):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f.pcapng"
            path.write_bytes(data)
            frames = harness.target_capture(path, data)
            harness.target_decode(frames)


@settings(FUZZ_SETTINGS, max_examples=1500)
@given(seed=SEED)
def test_fuzz_decoders(seed: int) -> None:
    """Random frames (bogus IHL, TCP data offset, IPv6 extension-header chains, ICMP errors
    quoting truncated or nested ICMP, GRE, VXLAN, VLAN stacks) of every link type through the
    decoders, below decode()'s catch-all so that a bug shows as a traceback."""
    rng = random.Random(seed)
    linktype, data = harness.gen_frame(rng)
    if rng.random() < 0.3:
        linktype = rng.choice(harness.LINKTYPES)
    if rng.random() < 0.3:
        data = harness.mutate_frame(data, rng, linktype)
    note(f"linktype {linktype}, frame {data.hex()}")
    frame = Frame(1, 0, linktype, data, len(data))
    harness.target_decode([frame])


def test_every_seed_unmodified() -> None:
    """Every seed capture passes every target as it is."""
    for data in harness.seeds():
        harness.run_one(data)


def test_memory_stayed_sane() -> None:
    """After the fuzz tests above (same process), the peak RSS is far below a gigabyte."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1024 * 1024  # KiB


def test_a_hang_is_caught() -> None:
    import time

    with pytest.raises(harness.Hang), harness.time_limit(0.2):
        time.sleep(2)


def test_known_bug_matching_needs_type_and_function() -> None:
    def boom() -> None:
        raise ValueError("year 0 is out of range")

    try:
        boom()
    except ValueError as exc:
        assert known_bug(exc) is None  # raised here, not in pcapdiag/report.py iso_time


# -- regression inputs -----------------------------------------------------------------------


def _fuzz_make():
    spec = importlib.util.spec_from_file_location("fuzz_make", FUZZ_DATA / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (input, the bug it found, fixed in commit f2d4a94, or None while it is open)
REGRESSIONS: list[tuple[str, str, KnownBug | None]] = [
    ("iso-time-year-out-of-range.pcapng", "report.iso_time ValueError (year 38504)", None),
    ("iso-time-seconds-eoverflow.pcapng", "report.iso_time OSError EOVERFLOW", None),
    ("iso-time-overflow-time-t.pcapng", "report.iso_time OverflowError (time_t)", None),
    ("iso-time-before-year-one.pcapng", "report.iso_time ValueError (year -32873)", None),
    ("export-timestamp-after-2106.pcapng", "export_findings struct.error (> 2**32 s)", None),
    ("export-timestamp-before-1970.pcapng", "export_findings struct.error (< 0 s)", None),
    ("ng-batch-offset-beyond-64-bits.pcapng", "capture._ng_batches OverflowError", None),
]


def test_regression_files_are_what_make_py_writes(tmp_path: Path) -> None:
    make = _fuzz_make()
    assert make.main(["make.py", str(tmp_path)]) == 0
    names = {p.name for p in FUZZ_DATA.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert names == {n for n, _, _ in REGRESSIONS} == set(make.CASES)
    for name in names:
        assert (tmp_path / name).read_bytes() == (FUZZ_DATA / name).read_bytes(), name


def _params() -> list[object]:
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=bug.reason)] if bug else [],
        )
        for name, _found, bug in REGRESSIONS
    ]


@pytest.mark.parametrize("name", _params())
def test_regression_input_passes_every_target(name: str) -> None:
    harness.run_one((FUZZ_DATA / name).read_bytes(), cli=True)


@pytest.mark.parametrize("name", _params())
def test_regression_input_cli_exit_code(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI on the input, with every format and --export: exit 0 and no internal error."""
    from pcapdiag.cli import main

    for fmt in ("text", "json", "markdown", "junit", "html"):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(
                [
                    "analyze",
                    "--format",
                    fmt,
                    "--export",
                    str(tmp_path / fmt),
                    str(FUZZ_DATA / name),
                ]
            )
        err = capsys.readouterr().err
        assert exc.value.code == 0, (fmt, err)
        assert "internal error" not in err
    if name.startswith("export-"):
        # the refused connection is exported, its out-of-range times clamped and said so
        readme = (tmp_path / "json" / "README.txt").read_text()
        assert "PD-TCP-001" in readme and "2 timestamps outside 1970-2106 clamped" in readme
        (pcap,) = (tmp_path / "json").glob("*.pcap")
        from pcapdiag.io.reader import open_capture

        assert len(list(open_capture(str(pcap)))) == 2
