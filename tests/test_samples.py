"""Every sample capture gives exactly the findings its hand-written expectation file lists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pcapdiag.api import analyze

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
EXPECTATIONS = sorted(SAMPLES.glob("*.expect.yaml"))


@pytest.mark.parametrize("expect_file", EXPECTATIONS, ids=[p.name for p in EXPECTATIONS])
def test_sample_matches_expectation(expect_file: Path, builtin_rules) -> None:
    spec = yaml.safe_load(expect_file.read_text())
    platform = spec.get("platform", "linux")
    report = analyze([str(SAMPLES / spec["capture"])], builtin_rules, platform=platform)
    got = []
    for f in report.findings:
        prim = f.primary(platform)
        got.append(
            {
                "rule": f.rule,
                "side": f.side,
                "client": f.flow.client,
                "server": f.flow.server,
                "call": prim.call if prim else None,
                "errno": prim.errno if prim else None,
                "frames": list(f.frames),
            }
        )
    for want in spec["findings"]:
        assert want in got, f"missing {want}\n got {got}"
    if spec.get("exclusive"):
        assert len(got) == len(spec["findings"]), f"unexpected findings: {got}"
    assert not report.damaged


def test_there_is_a_sample() -> None:
    assert EXPECTATIONS
