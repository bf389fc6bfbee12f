"""Counts in generated text agree with their number (findings/plural.py): "1 retransmission",
never "1 retransmissions (none apart)"."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapdiag.api import analyze
from pcapdiag.findings.plural import Count, Listed, counted, word
from pcapdiag.findings.quality import Tally, describe
from pcapdiag.findings.templates import render_template
from pcapdiag.render.markdown import to_markdown
from pcapdiag.settings import NO_ACCEL
from tests.support.scenario import Talk


def test_counted_and_word() -> None:
    assert counted(1, "frame") == "1 frame" and counted(0, "frame") == "0 frames"
    assert counted(12_000, "finding", sep=",") == "12,000 findings"
    assert word(1, "was", "were") == "was" and word(2, "was", "were") == "were"


@pytest.mark.parametrize(
    ("n", "said"),
    [(1, "1 retransmission, frame 7"), (2, "2 retransmissions, frames 7, 9")],
)
def test_a_template_picks_the_word_by_the_count(n: int, said: str) -> None:
    ctx = {"c": Count(n), "f": Listed(", ".join(["7", "9"][:n]), n)}
    got = render_template("{c:retransmission|retransmissions}, {f:frame|frames}", ctx)
    assert got == said
    # Without the spec, the number and the list as they always were.
    assert render_template("{c} ({f})", ctx) == f"{n} ({', '.join(['7', '9'][:n])})"


def syn_retried(path: Path, retries: int) -> Path:
    """A SYN sent again `retries` times, 1 s apart, and never answered; the capture ends
    there (syn-timeout, PD-TCP-003, counts one retransmission or more)."""
    t = Talk(sport=443)
    t.tcp("c", "S")
    for _ in range(retries):
        t.tcp("c", "S", seq=t.cisn, dt=1.0, advance=False)
    t.write(path)
    return path


@pytest.mark.parametrize(
    ("retries", "said"),
    [
        (1, "(frame 1) and 1 retransmission with no answer"),
        (3, "(frame 1) and 3 retransmissions (1.0 s, 1.0 s apart) with no answer"),
    ],
)
def test_a_rules_cause_is_grammatical(
    retries: int, said: str, tmp_path: Path, builtin_rules
) -> None:
    path = syn_retried(tmp_path / "syn.pcap", retries)
    report = analyze([str(path)], builtin_rules, settings=NO_ACCEL)
    (f,) = [f for f in report.findings if f.rule == "PD-TCP-003"]
    assert said in f.cause, f.cause
    assert "none apart" not in f.cause


def test_report_counts_of_one_are_singular(tmp_path: Path, builtin_rules) -> None:
    path = syn_retried(tmp_path / "syn.pcap", 1)
    text = to_markdown(analyze([str(path)], builtin_rules, settings=NO_ACCEL))
    assert ": pcap, 2 frames, " in text
    assert "- 1 TCP connection, 0 UDP flows, 1 finding; " in text
    assert describe("tcp-fragments", Tally(1, 4)).startswith(
        "1 frame was an IP fragment of a TCP segment (first: frame 4)"
    )
