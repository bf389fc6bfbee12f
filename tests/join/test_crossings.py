"""Each packet of a joined connection as it left one host and arrived, or not, at the other,
from the recordings (samples/recorded: tcpdump on both hosts, truth.json) and drawn side by
side in the HTML report and tabulated in the Markdown one.

The expected fates are read from the two files with tcpdump: in inject-rst-oneway the
router's REJECT rule answers the client's second request (client.pcap frame 10, never in
server.pcap) with a RST in the server's name (client.pcap frame 11, never in server.pcap),
and swallows the RSTs the client's kernel sends to the server's FIN retransmissions
(client.pcap frames 13, 15, 17). In nat-data-timeout the client's request and its four
retransmissions (client.pcap frames 20-24) never reach server.pcap, and the server's FINs
(server.pcap frames 20-22) come after client.pcap's last frame.
"""

from __future__ import annotations

import re
from pathlib import Path

from pcapdiag.api import analyze
from pcapdiag.findings.crossing import BOTH, LOST, UNSEEN, UNSENT
from pcapdiag.render.html import to_html
from pcapdiag.render.markdown import to_markdown
from tests.render.test_html_report import (
    chromium_screenshot,
    colour_pixels,
    console_lines,
    needs_chromium,
)

RECORDED = Path(__file__).resolve().parents[2] / "samples" / "recorded"


def _joined(name: str, builtin_rules, **kw):
    views = [str(RECORDED / name / f"{h}.pcap") for h in ("client", "server")]
    return analyze(views, builtin_rules, join=True, **kw)


def _fates(report) -> list[tuple[str, int | None, int | None, str]]:
    (tv,) = report.crossings.values()
    return [(c.sender, c.sent and c.sent[0], c.got and c.got[0], c.status) for c in tv.crossings]


def test_a_forged_rst_never_left_the_server(builtin_rules) -> None:
    fates = _fates(_joined("inject-rst-oneway", builtin_rules))
    assert fates[:7] == [
        ("client", 3, 3, BOTH),
        ("server", 4, 4, BOTH),
        ("client", 5, 5, BOTH),
        ("client", 6, 6, BOTH),
        ("server", 7, 7, BOTH),
        ("server", 8, 8, BOTH),
        ("client", 9, 9, BOTH),
    ]
    assert ("client", 10, None, LOST) in fates  # the request the router answered
    assert ("server", None, 11, UNSENT) in fates  # its RST, in the server's name
    lost_rsts = [sent for who, sent, got, fate in fates if who == "client" and fate == LOST]
    assert lost_rsts == [10, 13, 15]
    # The last client RST comes after server.pcap's last frame: nothing said of it.
    assert ("client", 17, None, UNSEEN) in fates


def test_retransmissions_lost_through_nat(builtin_rules) -> None:
    report = _joined("nat-data-timeout", builtin_rules)
    (tv,) = report.crossings.values()
    # Each end as the view on its own host names it: the server behind the router's NAT.
    assert (tv.client, tv.server) == ("10.91.1.2:40001", "10.91.2.2:8080")
    fates = _fates(report)
    assert fates[0] == ("client", 12, 13, BOTH)
    assert [s for who, s, g, fate in fates if fate == LOST] == [20, 21, 22, 23, 24]
    assert [(who, s) for who, s, g, fate in fates if fate == UNSEEN] == [
        ("server", 20),
        ("server", 21),
        ("server", 22),
    ]
    times = [c.first_ns for c in tv.crossings]
    assert times == sorted(times)


def test_html_draws_both_views(builtin_rules) -> None:
    page = to_html(_joined("inject-rst-oneway", builtin_rules, ladders=True))
    (svg,) = re.findall(r'<svg class="ladder two-views".*?</svg>', page, re.S)
    assert svg.count('class="arrow c2s lost') == 3
    assert svg.count('<path class="cross"') == 3
    # The forged RST starts half way, as from the network, and arrives at client frame 11.
    (forged,) = re.findall(r'<g class="arrow net[^"]*">.*?</g>', svg, re.S)
    assert ">RST<" in forged and ">#11<" in forged
    assert "CLIENT" not in svg and "client · client.pcap" in svg
    # The one-view ladder is still there, after it.
    assert page.index("two-views") < page.index('<svg class="ladder" ')


def test_a_report_not_joined_has_no_two_views(builtin_rules) -> None:
    report = analyze([str(RECORDED / "inject-rst-oneway" / "client.pcap")], builtin_rules)
    assert report.crossings == {}
    page = to_html(report)
    assert "two-views" not in page and ".lg-lost" not in page


def test_markdown_table_of_what_each_view_saw(builtin_rules) -> None:
    text = to_markdown(_joined("inject-rst-oneway", builtin_rules))
    assert "What each view saw" in text
    assert "| server → client RST seq=101 | **11** | — | **never sent by its host** |" in text
    assert (
        "| client → server PSH ACK seq=101 len=100 | 10 | — | **lost between the captures** |"
        in (text)
    )


LOST_RGB = (0xC9, 0x2A, 0x2A)  # the lost packets' colour (also the "high" badge's)


@needs_chromium
def test_chromium_draws_the_lost_packets(builtin_rules, tmp_path: Path) -> None:
    page = tmp_path / "joined.html"
    page.write_text(to_html(_joined("inject-rst-oneway", builtin_rules, ladders=True)))
    bare = tmp_path / "bare.html"
    bare.write_text(
        re.sub(r'<svg class="ladder two-views".*?</svg>', "", page.read_text(), flags=re.S)
    )
    counts = []
    for html_file in (page, bare):
        shot = tmp_path / f"{html_file.stem}.png"
        log = chromium_screenshot(html_file, shot, 1200, 2600)
        assert console_lines(log) == []
        counts.append(len(colour_pixels(shot, {"lost": LOST_RGB})["lost"]))
    # Three dashed arrows about 200 px long and 2 px wide, three crosses and three labels:
    # well over 500 pixels of that colour more than the same page without the figure.
    assert counts[0] - counts[1] > 500, counts


def save_docs_picture(out: Path) -> None:
    """docs/reports.md's picture: the two-view figure of nat-data-timeout's finding, alone
    on a page with the report's style (`python -m tests.join.test_crossings OUT.png`)."""
    import tempfile

    from pcapdiag.rules.loader import load_rules

    page = to_html(_joined("nat-data-timeout", load_rules()))
    style = re.search(r"<style>.*?</style>", page, re.S)
    figure = re.search(
        r'<figure class="ladder-fig"><div class="ladder-scroll">'
        r'<svg class="ladder two-views".*?</figure>',
        page,
        re.S,
    )
    assert style is not None and figure is not None
    height = int(re.search(r'height="(\d+)"', figure.group(0)).group(1)) + 110
    with tempfile.TemporaryDirectory() as tmp:
        alone = Path(tmp) / "figure.html"
        alone.write_text(
            f'<!DOCTYPE html><html><head><meta charset="utf-8">{style.group(0)}</head>'
            f"<body><main>{figure.group(0)}</main></body></html>"
        )
        shot = Path(tmp) / "shot.png"
        assert console_lines(chromium_screenshot(alone, shot, 1000, height, scale=0.8)) == []
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(shot.read_bytes())
    print(f"{out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    import sys

    save_docs_picture(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/html-join.png"))
