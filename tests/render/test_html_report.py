"""The HTML report: structure (one ladder per finding, an arrow per shown packet, evidence and
states marked), escaping of everything that comes from a capture or a rule, folding of long
connections, and a real headless Chromium drawing the page with no console error.

`python tests/render/test_html_report.py docs/img/html-report.png` writes the README's screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pcapdiag import evidence  # noqa: E402
from pcapdiag.api import analyze  # noqa: E402
from pcapdiag.findings.ladder import LadderRow  # noqa: E402
from pcapdiag.findings.model import Report  # noqa: E402
from pcapdiag.io.records import Damage  # noqa: E402
from pcapdiag.render.html import Gap, fold, to_html  # noqa: E402
from pcapdiag.rules.loader import load_rules  # noqa: E402

DEMO = ROOT / "samples" / "demo.pcap"
EVIDENCE_RGB = (0xE8, 0x59, 0x0C)  # the diagram's evidence colour (render_html._CSS --ev)
LIFELINE_RGB = (0x24, 0x29, 0x2F)  # lifelines and endpoint boxes
EVIL = "<script>alert(1)</script>\x1b[31m"
Demo = tuple[Report, dict[str, list[LadderRow]], str]


# -- parsing helpers --------------------------------------------------------------------------


@dataclass
class Ladder:
    attrs: dict[str, str]
    arrows: list[tuple[int, set[str]]] = field(default_factory=list)  # (frame, classes)
    text: list[str] = field(default_factory=list)
    gaps: int = 0

    @property
    def frames(self) -> list[int]:
        return [frame for frame, _ in self.arrows]

    @property
    def evidence(self) -> set[int]:
        return {frame for frame, cls in self.arrows if "evidence" in cls}

    @property
    def joined(self) -> str:
        return " ".join(self.text)


class Page(HTMLParser):
    """Every element of the page, and the content of each ladder SVG."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.ladders: list[Ladder] = []
        self.text: list[str] = []
        self._svg: Ladder | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        classes = set(a.get("class", "").split())
        if tag == "svg" and "ladder" in classes:
            self._svg = Ladder(a)
            self.ladders.append(self._svg)
        elif self._svg is not None and tag == "g":
            if "arrow" in classes:
                self._svg.arrows.append((int(a["data-frame"]), classes))
            elif "gap" in classes:
                self._svg.gaps += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._svg is not None and data.strip():
            self._svg.text.append(data.strip())


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def svg_trees(page: str) -> list[ET.Element]:
    """Each inline SVG parsed as XML: it must be well-formed on its own."""
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, re.S)]


# -- the demo report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Demo:
    report = analyze([str(DEMO)], load_rules(), ladders=True)
    return report, report.ladders, to_html(report)


def _finding_ladder(report: Report, page: Page, rule: str) -> Ladder:
    idx = next(i for i, f in enumerate(report.findings) if f.rule == rule)
    return page.ladders[idx]


def test_one_ladder_per_finding_with_an_arrow_per_packet(demo: Demo) -> None:
    report, ladders, page_html = demo
    page = parse(page_html)
    assert len(report.findings) == 5
    assert len(page.ladders) == len(report.findings)
    assert len(svg_trees(page_html)) == len(report.findings)
    for f, ladder in zip(report.findings, page.ladders, strict=True):
        rows = ladders[f.id]
        assert ladder.attrs["data-finding"] == f.id
        # The demo's connections are short: nothing is folded, every packet is an arrow.
        assert ladder.frames == [r.frame for r in rows]
        assert ladder.gaps == 0
        assert int(ladder.attrs["data-shown"]) == len(rows)
        assert ladder.evidence == set(f.frames), f.rule
        assert f.flow.client in ladder.joined and f.flow.server in ladder.joined


def test_arrow_count_in_the_xml_of_each_svg(demo: Demo) -> None:
    report, ladders, page_html = demo
    for f, tree in zip(report.findings, svg_trees(page_html), strict=True):
        arrows = [g for g in tree.iter("g") if "arrow" in g.get("class", "").split()]
        assert len(arrows) == len(ladders[f.id])
        ev = [int(g.get("data-frame", "0")) for g in arrows if "evidence" in g.get("class", "")]
        assert ev == sorted(f.frames)
        # each arrow is a line, a head and a label
        for g in arrows:
            assert g.find("line") is not None and g.find("polygon") is not None


def test_states_are_written_where_they_change(demo: Demo) -> None:
    report, _, page_html = demo
    page = parse(page_html)
    epipe = _finding_ladder(report, page, "PD-TCP-006")
    # The client enters CLOSE_WAIT at the server's FIN (frame 28) and stays there for frames
    # 29 and 30: written once. The server goes FIN_WAIT_1, FIN_WAIT_2, then CLOSED.
    assert epipe.text.count("CLOSE_WAIT") == 1
    for state in ("SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSED"):
        assert state in epipe.text, state
    assert epipe.evidence == {28, 30, 31}
    refused = _finding_ladder(report, page, "PD-TCP-001")
    assert refused.text.count("CLOSED") == 2  # both ends, after the RST
    assert "SYN" in refused.text and "RST ACK" in refused.text


def test_icmp_error_comes_from_the_network_column(demo: Demo) -> None:
    report, _, page_html = demo
    page = parse(page_html)
    icmp = _finding_ladder(report, page, "PD-TCP-002")
    assert "network" in icmp.text
    (frame, classes) = icmp.arrows[-1]
    assert frame == 25 and {"net", "evidence"} <= classes
    assert "ICMP host prohibited" in icmp.text
    tcp_only = _finding_ladder(report, page, "PD-TCP-001")
    assert "network" not in tcp_only.text


def test_header_summary_and_sections(demo: Demo) -> None:
    report, _, page_html = demo
    page = parse(page_html)
    text = "".join(page.text)
    cap = report.captures[0]
    assert str(DEMO) in text and "pcap" in text and "31" in text
    assert "2023-11-14T22:13:20.001000Z to 2023-11-14T22:13:20.279299Z" in text
    # The services and the kinds, a row each (5 and 5) and a header row each table.
    rows = [a for tag, a in page.elements if tag == "tr"]
    assert len(rows) == 5 + 5 + 2
    assert cap.sha256 and cap.sha256 in text
    for i, f in enumerate(report.findings, 1):
        assert ("article", {"class": f"finding sev-{f.severity}", "id": f"finding-{i}"}) in (
            page.elements
        )
        for s in (f.title, f.cause, f.flow_filter, f.evidence_filter, f.rule, *f.notes):
            assert s in text, s
    for errno in ("ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "EPIPE", "Broken pipe"):
        assert errno in text


def test_page_is_self_contained(demo: Demo) -> None:
    _, _, page_html = demo
    lower = page_html.lower()
    for needle in ("http://", "https://", "src=", "url(", "@import", "<script", "<link"):
        assert needle not in lower, needle
    assert not re.search(r"[\"'(=]\s*//", lower), "a protocol-relative URL"
    page = parse(page_html)
    for tag, attrs in page.elements:
        assert tag not in ("script", "img", "iframe", "link", "object", "embed"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "xlink:href"):
                assert value.startswith("#"), value


def test_everything_from_capture_and_rules_is_escaped(tmp_path: Path) -> None:
    # A real file whose name is markup, and report strings that are.
    evil_file = tmp_path / "<img src=x onerror=alert(1)>\x1b[31m.pcap"
    shutil.copyfile(DEMO, evil_file)
    report = analyze([str(evil_file)], load_rules(), ladders=True)
    ladders = report.ladders
    assert len(ladders) == len(report.findings)  # the evil path was read again
    first = report.findings[0]
    report.findings[0] = replace(
        first, title=EVIL, cause=EVIL, next_steps=EVIL, notes=(EVIL,), rule_name=EVIL
    )
    report.captures.append(replace(report.captures[0], path=EVIL, damage=Damage(10, 3, EVIL)))
    rows = ladders[first.id]
    ladders[first.id] = [replace(rows[0], label=EVIL), *rows[1:]]
    page_html = to_html(report)

    assert "<script" not in page_html.lower()
    assert "<img" not in page_html.lower()
    assert "\x1b" not in page_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m" in page_html
    assert "&lt;img src=x onerror=alert(1)&gt;\\x1b[31m.pcap" in page_html
    page = parse(page_html)
    assert all(tag not in ("script", "img") for tag, _ in page.elements)
    assert all(not n.startswith("on") for _, a in page.elements for n in a)
    # the evil label is inside the SVG, which still parses as XML, as text
    trees = svg_trees(page_html)
    assert len(trees) == len(report.findings)
    flags = [t.text for t in trees[0].iter("tspan") if t.get("class") == "flags"]
    assert flags[0] == "<script>alert(1)</script>\\x1b[31m"
    assert "alert(1)" in page.ladders[0].joined


def test_standard_input_has_no_ladder_but_a_reason(demo: Demo) -> None:
    report, _, _ = demo
    piped = Report(platform=report.platform, captures=[replace(report.captures[0], path="-")])
    piped.findings = [replace(f, capture="-", sources=("-",)) for f in report.findings]
    piped.ladders = evidence.ladders(piped.findings)
    assert piped.ladders == {}
    page_html = to_html(piped)
    assert parse(page_html).ladders == []
    assert page_html.count("standard input cannot be read twice") == len(piped.findings)


# -- folding -----------------------------------------------------------------------------------


def _rows(n: int) -> list[LadderRow]:
    return [
        LadderRow(i + 1, i * 1000, "c2s", "ACK", i, 1, 10, "ESTABLISHED", "ESTABLISHED")
        for i in range(n)
    ]


def test_fold_keeps_the_head_and_the_evidence_neighbourhood() -> None:
    items = fold(_rows(50), [26])  # evidence is row index 25
    shown = [it.frame for it in items if isinstance(it, LadderRow)]
    assert shown == [1, 2, 3, *range(23, 30)]
    gaps = [it for it in items if isinstance(it, Gap)]
    assert gaps == [Gap(19, 4, 22), Gap(21, 30, 50)]
    # a lone hidden row is shown rather than replaced by a marker as tall as itself
    items = fold(_rows(12), [8])
    assert [it.frame for it in items if isinstance(it, LadderRow)] == list(range(1, 13))
    assert fold(_rows(2), [2]) == _rows(2)


def _long_connection(path: Path) -> int:
    """A download of 200 data segments, then the client's next request is answered by a RST
    from the server. Returns the RST's frame number."""
    from tests.support.scenario import Talk

    t = Talk(sport=8443)
    t.handshake()
    t.tcp("c", "PA", b"GET /big HTTP/1.1\r\n\r\n")
    for i in range(200):
        t.tcp("s", "A", bytes(1000), dt=0.002)
        if i % 20 == 19:
            t.tcp("c", "A")
    t.tcp("c", "PA", b"GET /next HTTP/1.1\r\n\r\n", dt=0.5)
    t.tcp("s", "R", seq=t.nxt["s"], ack=0)
    t.write(path)
    return len(t.packets)


def test_long_connection_is_folded_around_the_evidence(tmp_path: Path) -> None:
    pytest.importorskip("scapy")
    cap = tmp_path / "long.pcap"
    rst = _long_connection(cap)
    report = analyze([str(cap)], load_rules(), ladders=True)
    ladders = report.ladders
    findings = [f for f in report.findings if rst in f.frames]
    assert findings, [(f.rule, f.frames) for f in report.findings]
    page_html = to_html(report)
    page = parse(page_html)
    for f in findings:
        ladder = page.ladders[report.findings.index(f)]
        total = len(ladders[f.id])
        assert total == rst > 200
        assert len(ladder.arrows) < 30
        assert ladder.frames[:3] == [1, 2, 3]
        assert rst in ladder.evidence and ladder.frames[-1] == rst
        assert ladder.gaps >= 1 and "not shown" in ladder.joined
        hidden = sum(int(n) for n in re.findall(r"(\d+) packets? not shown", ladder.joined))
        assert hidden + len(ladder.arrows) == total


# -- a real browser ----------------------------------------------------------------------------


def chromium_screenshot(
    html_file: Path, png: Path, width: int, height: int, scale: float = 1.0
) -> str:
    """Screenshot `html_file` with headless Chromium, offline; returns its log (stderr)."""
    exe = shutil.which("chromium")
    assert exe is not None
    profile = png.parent / f"{png.stem}-profile"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        f"--force-device-scale-factor={scale}",
        "--enable-logging=stderr",
        "--v=0",
        html_file.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert png.is_file() and png.stat().st_size > 0, res.stderr[-3000:]
    shutil.rmtree(profile, ignore_errors=True)
    return res.stderr


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line]


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = ctype = depth = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a, c = (line[i - bpp], prev[i - bpp]) if i >= bpp else (0, 0)
                b = prev[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colour_pixels(
    png: Path, colours: dict[str, tuple[int, int, int]], tol: int = 24
) -> dict[str, list[tuple[int, int]]]:
    """(x, y) of every pixel of about each colour, by name."""
    _, _, bpp, rows = decode_png(png.read_bytes())
    out: dict[str, list[tuple[int, int]]] = {name: [] for name in colours}
    for y, row in enumerate(rows):
        pixels = zip(row[0::bpp], row[1::bpp], row[2::bpp], strict=True)
        for x, (r, g, b) in enumerate(pixels):
            if r == g == b:
                continue  # white, greys and black: none of the colours looked for
            for name, (cr, cg, cb) in colours.items():
                if abs(r - cr) <= tol and abs(g - cg) <= tol and abs(b - cb) <= tol:
                    out[name].append((x, y))
    return out


def demo_html(path: Path, *, relative: bool = False) -> Path:
    source = "samples/demo.pcap" if relative else str(DEMO)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        report = analyze([source], load_rules(), ladders=True)
        page_html = to_html(report)
    finally:
        os.chdir(cwd)
    path.write_text(page_html, encoding="utf-8")
    return path


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (Debian: apt-get install chromium); CI installs it",
)


@needs_chromium
def test_console_errors_would_be_seen(tmp_path: Path) -> None:
    """The console check below is not vacuous: a page that logs an error shows in the log."""
    page = tmp_path / "noisy.html"
    page.write_text('<!DOCTYPE html><p>x</p><script>console.error("boom")</script>')
    log = chromium_screenshot(page, tmp_path / "noisy.png", 400, 300)
    assert any("boom" in line for line in console_lines(log)), log[-3000:]


@needs_chromium
def test_chromium_draws_the_ladders(tmp_path: Path) -> None:
    page = demo_html(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    log = chromium_screenshot(page, shot, 1200, 2400)
    assert console_lines(log) == [], console_lines(log)

    assert struct.unpack(">II", shot.read_bytes()[16:24]) == (1200, 2400)
    found = colour_pixels(shot, {"evidence": EVIDENCE_RGB, "lifeline": LIFELINE_RGB})
    evidence = found["evidence"]
    # The first finding (connection refused) has two evidence arrows, each ~440 px long and
    # 3.5 px wide, in the first ladder, drawn between y = 600 and 1800 at this size.
    first = [(x, y) for x, y in evidence if 600 <= y < 1800]
    assert len(first) > 1500, len(first)
    ys = sorted(y for _, y in first)
    top, bottom = ys[0], ys[-1]
    # ... between two vertical lifelines that cross the whole evidence band
    columns: dict[int, int] = {}
    for x, y in found["lifeline"]:
        if top <= y <= bottom:
            columns[x] = columns.get(x, 0) + 1
    full = sorted(x for x, n in columns.items() if n >= (bottom - top) * 0.8)
    clusters = [x for i, x in enumerate(full) if i == 0 or x - full[i - 1] > 3]
    assert len(clusters) == 2, (full, top, bottom)
    left, right = clusters
    assert right - left > 400  # client and server lines are far apart
    # the evidence arrows run from one line to the other
    between = [x for x, _ in first if left < x < right]
    assert len(between) > 1500
    assert min(between) - left < 8 and right - max(between) < 8, (left, right)

    # Control: the same page without its SVGs has (almost) none of that colour, so the
    # pixels above are the diagram's.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<svg\b.*?</svg>", "", page.read_text(), flags=re.S))
    bare_shot = tmp_path / "bare.png"
    chromium_screenshot(bare, bare_shot, 1200, 2400)
    assert len(colour_pixels(bare_shot, {"evidence": EVIDENCE_RGB})["evidence"]) < 50


def save_readme_screenshot(out: Path) -> None:
    """The README's picture: the top of the demo report (header, summary, first two
    findings), at 0.8 scale to stay small."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        page = demo_html(Path(tmp) / "report.html", relative=True)
        shot = Path(tmp) / "shot.png"
        log = chromium_screenshot(page, shot, 1200, 2300, scale=0.8)
        assert console_lines(log) == []
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
    print(f"{out}: {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    save_readme_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/html-report.png"))
