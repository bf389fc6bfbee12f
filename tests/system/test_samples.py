"""`pcapdiag check` holds every sample to its hand-written expectation file (as CI would)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pcapdiag.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
EXPECTATIONS = sorted(SAMPLES.rglob("*.expect.yaml"))


def _check(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(["check", *args])
    return int(exc.value.code or 0)


@pytest.mark.parametrize("expect_file", EXPECTATIONS, ids=[p.name for p in EXPECTATIONS])
def test_sample_matches_expectation(expect_file: Path, capsys) -> None:
    assert _check("--expect", str(expect_file)) == 0, capsys.readouterr().out


def test_there_is_a_sample() -> None:
    assert EXPECTATIONS


def test_check_reports_a_wrong_errno_and_an_unlisted_finding(tmp_path: Path, capsys) -> None:
    spec = yaml.safe_load((SAMPLES / "demo.expect.yaml").read_text())
    spec["findings"][0]["errno"] = "ETIMEDOUT"  # the refused connect is ECONNREFUSED
    spec["capture"] = str(SAMPLES / "demo.pcap")
    bad = tmp_path / "bad.expect.yaml"
    bad.write_text(yaml.safe_dump(spec))
    assert _check("--expect", str(bad)) == 1
    out = capsys.readouterr().out
    assert "- missing (0 of 1 found): rule=PD-TCP-001" in out and "errno=ETIMEDOUT" in out
    assert "+ unexpected: rule=PD-TCP-001" in out and "errno=ECONNREFUSED" in out


def test_non_exclusive_expectation_allows_other_findings(tmp_path: Path) -> None:
    f = tmp_path / "one.expect.yaml"
    f.write_text(
        f"capture: {SAMPLES / 'demo.pcap'}\n"
        "findings:\n  - {rule: PD-TCP-006, errno: EPIPE, side: client}\n"
    )
    assert _check("--expect", str(f)) == 0


def test_invalid_expectation_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "x.expect.yaml"
    f.write_text("findings:\n  - {rule: PD-TCP-001, colour: red}\n")
    assert _check(str(SAMPLES / "demo.pcap"), "--expect", str(f)) == 2
