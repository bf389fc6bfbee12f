"""Markdown escapes only what CommonMark would read as markup (render/markdown.py).

The proof is a CommonMark renderer: markdown-it-py (installed with rich), with GFM's tables
and strikethrough switched on as GitHub has them. Text escaped by md(), cell() or code() and
rendered must come back as the text it was, with no element but the one it was put in.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pcapdiag.api import analyze
from pcapdiag.render.markdown import cell, code, md, to_markdown
from pcapdiag.render.text import headline
from pcapdiag.settings import NO_ACCEL
from tests.support.scenario import Talk

RENDERER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


class Parts(HTMLParser):
    """The elements of rendered HTML and the text inside each element named in `keep`."""

    def __init__(self, keep: str) -> None:
        super().__init__(convert_charrefs=True)
        self.keep = keep
        self.tags: list[str] = []
        self.texts: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == self.keep:
            self._depth += 1
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self.keep:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.texts[-1] += data


def parts(markdown: str, keep: str) -> Parts:
    p = Parts(keep)
    p.feed(RENDERER.render(markdown))
    p.close()
    return p


def loopback_refused(path: Path) -> Path:
    """An IPv6 connection refused on the loopback address, so that the report's plain text
    holds "[::1]:81" and "connect() -> ECONNREFUSED": frames 1 SYN, 2 RST|ACK (ack = ISN + 1,
    as Linux's tcp_v6_send_reset answers a segment without ACK)."""
    t = Talk(client="::1", server="::1", sport=81)
    t.tcp("c", "S")
    t.tcp("s", "RA", seq=0, ack=t.cisn + 1)
    t.write(path)
    return path


@pytest.fixture(scope="module")
def report(builtin_rules, tmp_path_factory: pytest.TempPathFactory):
    capture = loopback_refused(tmp_path_factory.mktemp("md") / "loopback-refused.pcap")
    return analyze([str(capture)], builtin_rules, settings=NO_ACCEL, ladders=True)


def test_arrows_and_ipv6_addresses_stay_as_written(report) -> None:
    text = to_markdown(report)
    (f,) = report.findings
    assert headline(f) == 'client [::1]:40000: connect() -> ECONNREFUSED ("Connection refused")'
    # in a table cell and in a list item, as written
    assert '| client connect() -> ECONNREFUSED ("Connection refused") | to [::1]:81 |' in text
    assert "- **Cause:** [::1]:81 answered the client's SYN" in text
    assert "&gt;" not in text and "\\[" not in text and "\\]" not in text


def test_the_report_renders_to_its_own_text(report) -> None:
    text = to_markdown(report)
    (f,) = report.findings
    cells = parts(text, "td").texts
    assert 'client connect() -> ECONNREFUSED ("Connection refused")' in cells
    assert "to [::1]:81" in cells and "[::1]:81" in cells  # plain, and in a code span
    items = parts(text, "li").texts
    assert f"Cause: {f.cause}" in items
    assert f"Connection: TCP client {f.flow.client} → server {f.flow.server}" in items
    page = parts(text, "code")
    assert f.flow.client in page.texts and f.flow_filter in page.texts
    assert not {"a", "img", "em", "script"} & set(page.tags)


# Printable text rich in everything Markdown reads: punctuation, digits, IPv6 brackets, arrows.
TEXT = st.text(
    alphabet=st.sampled_from([*"ab1 :.-_*`[]()<>&;#|!~\\+=\"'", "é", "→", "€"]),
    max_size=40,
).map(str.strip)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_plain_text_round_trips(text: str) -> None:
    for markdown, keep in ((f"x {md(text)}", "p"), (f"- {md(text, start=True)}", "li")):
        got = parts(markdown, keep)
        assert got.tags == ([keep] if keep == "p" else ["ul", "li"]), (text, markdown)
        want = f"x {text}".strip() if keep == "p" else text
        assert got.texts == [want], (text, markdown)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_table_cells_round_trip(text: str) -> None:
    row = f"| a | b |\n|---|---|\n| {cell(text)} | {code(text, in_cell=True)} |\n"
    got = parts(row, "td")
    assert got.texts[0] == text, row
    assert got.texts[1] == text or (not text and got.texts[1] == " "), row


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("a `<>&|\\*_[]")), min_size=1, max_size=20))
def test_code_spans_show_their_text_unescaped(text: str) -> None:
    spans = parts(f"x {code(text)}", "code").texts
    assert spans == [text] or (not text.strip() and spans == [" "]), code(text)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("connect() -> ECONNREFUSED", "connect() -> ECONNREFUSED"),
        ("[::1]:443 and [fe80::1%eth0]", "[::1]:443 and [fe80::1%eth0]"),
        ("SYN_SENT tcp_retries2", "SYN_SENT tcp_retries2"),
        ("1 < 2 && 3 > 2", "1 < 2 && 3 > 2"),
        ("[x](http://evil.example/)", "[x\\](http://evil.example/)"),
        ("[x][y]", "[x\\][y]"),
        ("<b>bold</b>", "&lt;b>bold&lt;/b>"),
        ("&amp; &#38;", "&amp;amp; &amp;#38;"),
        ("_a_ *b* `c` ~d~ \\e", "\\_a\\_ \\*b\\* \\`c\\` \\~d\\~ \\\\e"),
    ],
)
def test_only_markup_is_escaped(text: str, escaped: str) -> None:
    assert md(text) == escaped


def test_a_pipe_is_escaped_in_table_cells_only() -> None:
    assert md("a|b") == "a|b" and cell("a|b") == "a\\|b"
    assert code("a|b") == "`a|b`" and code("a|b", in_cell=True) == "`a\\|b`"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("[x]: http://evil.example/", "\\[x]: http://evil.example/"),
        ("# heading", "\\# heading"),
        ("> quote", "\\> quote"),
        ("- item", "\\- item"),
        ("12. item", "12\\. item"),
        ("12.5 s", "12.5 s"),
    ],
)
def test_a_list_items_start_begins_no_block(text: str, escaped: str) -> None:
    assert md(text, start=True) == escaped
    assert md(text) == text.replace("[x]: http", "[x]: http")  # mid-line: as written
