"""The labelled public captures: tests/data/public-expect/*.yaml against the built-in rules.

Each YAML is an expectation file for `pcapdiag check` about one file of
../shared/captures/public (its name is the capture's path with `/` turned into `__`). What it
expects was decided by reading the packets with tshark and ../shared/docs/errno-semantics.md,
not from pcapdiag's output; every entry says why in its `why`. Where pcapdiag disagrees with
the packets the test is a strict xfail naming the disagreement (KNOWN_DISAGREEMENTS): it
stays visible, and turns into a failure once pcapdiag is fixed, so the entry can go.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.findings.expect import check, load_expectation
from tests.support.paths import ROOT, public_captures_dir

PUBLIC = public_captures_dir()
EXPECT_DIR = ROOT / "tests" / "data" / "public-expect"

if not PUBLIC.is_dir():
    pytest.skip(
        f"public captures not found at {PUBLIC} (set PCAPDIAG_PUBLIC_CAPTURES to their directory)",
        allow_module_level=True,
    )

EXPECTATIONS = sorted(EXPECT_DIR.glob("*.yaml"))
NAMES = [p.name for p in EXPECTATIONS]

# Expectations pcapdiag does not meet yet, each with what the packets show against what it says.
KNOWN_DISAGREEMENTS = {
    "chrissanders-packets__synscan.pcapng.yaml": (
        "the SYNs are raw nmap probes (one ISN for 1000 flows, random TTL and IP ID, one "
        "source port for 1000 ports), so no connect() exists; pcapdiag claims connect() "
        "ECONNREFUSED at high confidence for the five probes answered by RST"
    ),
    "zeek__psql-aws-ssl-require.pcap.yaml": (
        "the server's ACKs (f26, f28: ack 4032772626) never cover the client's FIN, and its "
        "FIN f28 left before the client's RST f27 could arrive; pcapdiag puts the server in "
        "CLOSE_WAIT and reports the RST as challenge-ACKed (rst-ignored) instead of a reset "
        "after the server's own close (rst-after-close)"
    ),
}


def capture_of(expectation: Path) -> Path:
    return PUBLIC / expectation.name.removesuffix(".yaml").replace("__", "/")


def test_known_disagreements_name_existing_files() -> None:
    assert set(KNOWN_DISAGREEMENTS) <= set(NAMES)


def test_every_expectation_names_a_capture_and_explains_itself() -> None:
    assert EXPECTATIONS, f"no expectation files in {EXPECT_DIR}"
    for path in EXPECTATIONS:
        assert capture_of(path).is_file(), f"{path.name}: no capture {capture_of(path)}"
        spec = load_expectation(path)
        assert spec.get("why", "").strip(), f"{path.name}: no top-level why"
        assert spec.get("source", "").strip(), f"{path.name}: no source"
        for i, entry in enumerate(spec["findings"]):
            assert str(entry.get("why", "")).strip(), f"{path.name}: finding {i} has no why"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.name,
            marks=(
                [pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[p.name])]
                if p.name in KNOWN_DISAGREEMENTS
                else []
            ),
        )
        for p in EXPECTATIONS
    ],
)
def test_public_capture_meets_its_expectation(path: Path, builtin_rules) -> None:
    spec = load_expectation(path)
    report = analyze([str(capture_of(path))], builtin_rules, platform=spec.get("platform", "auto"))
    assert not report.damaged
    assert check(report, spec) == []
