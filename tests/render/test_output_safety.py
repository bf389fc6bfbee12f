"""Every string that comes from a capture or a rule file is escaped in every output format.

Hostile strings (terminal escape sequences: SGR colour, OSC 8 hyperlink, backspace, carriage
return; HTML/script tags; Markdown table and link syntax) reach pcapdiag three ways:
- the capture's file name,
- a custom rule (written to tmp_path, loaded with --rules) whose title, description, cause,
  next steps, notes and effect texts contain them,
- a pcapng whose section and interface options (shb_hardware/os/userappl, if_name,
  if_description, comments) and packet comments contain them (pcapdiag does not print those:
  they must then never appear raw).

Assertions, for each way and each format (through the CLI, as a user runs it):
- text (plain, and coloured with --color always): no raw control character but newline
  (coloured: none but the SGR colour sequences pcapdiag emits itself, and never the hostile
  ones),
- HTML, JUnit: no unescaped `<script` or other tag from the strings; Markdown, rendered by a
  CommonMark renderer: no tag, link or image from the strings (inside a code span they are
  shown as written, which CommonMark renders as text),
- JUnit is well-formed XML; JSON parses and carries no raw control character,
- Markdown tables keep their column count on every row; hostile links are not live.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pcapdiag.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples" / "demo.pcap"
SYN_REFUSED = ROOT / "rules" / "syn-refused"

SGR = "\x1b[31mRED\x1b[0m"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\CLICK\x1b]8;;\x1b\\"
BACKSPACE = "ok\x08\x08FAKE"
CR = "line\rOVERWRITTEN"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
MD_TABLE = "| col | injected |"
MD_LINK = "[click me](http://evil.example/) ![pic](http://evil.example/x.png)"
NUL_ISH = "\x7f\x9b31m"  # DEL and the 8-bit CSI
HOSTILE_PARTS = (SGR, OSC8, BACKSPACE, CR, SCRIPT, IMG, MD_TABLE, MD_LINK, NUL_ISH)
HOSTILE = " ".join(HOSTILE_PARTS)
# Raw forms that must never reach any output.
RAW_NEEDLES = ("\x1b[31mRED", "\x1b]8", "\x08", "\r", "\x7f", "\x9b")
FORMATS = ("text", "markdown", "junit", "html", "json")

# A file name cannot hold "/" or NUL: the same strings without the URL slashes.
FILE_NAME = HOSTILE.replace("/", "_").replace("http:__", "http:").replace("\\", "BSL") + ".pcap"

# The rule: rules/syn-refused with its own id and every free text hostile. JSON strings are
# YAML double-quoted scalars, so json.dumps writes the control characters as escapes.
RULE = """\
schema: pcapdiag.rule/v1
id: PD-EVIL-001
rev: 1
name: evil-refused
title: {title}
status: test
severity: high
description: {text}
references:
  - {text}
tags: [tcp, test]
proto: tcp
match:
  sequence:
    - as: syn
      event: syn
      from: client
    - as: rst
      event: rst
      from: server
      where:
        all:
          - {{field: accepted, eq: true}}
          - {{field: receiver_state, eq: SYN_SENT}}
outcome:
  side: client
  effects:
    linux:
      - {{call: connect, errno: ECONNREFUSED, note: {text}, then: {text}}}
  cause: {cause}
  next_steps: {text}
  notes:
    - text: {text}
  evidence: [syn, rst]
tests:
  - name: {title}
    capture: refused.pcap
    why: {text}
    expect:
      - {{side: client, call: connect, errno: ECONNREFUSED, frames: [1, 2]}}
  - name: {text}
    capture: rst-bad-ack.pcap
    why: {text}
    expect: []
"""


def write_rule(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for capture in ("refused.pcap", "rst-bad-ack.pcap"):
        shutil.copyfile(SYN_REFUSED / capture, directory / capture)
    title = json.dumps(("EVIL " + SCRIPT + SGR + MD_TABLE + OSC8)[:120])
    text = json.dumps(HOSTILE)
    cause = json.dumps("{server} refused frame {syn.frame}: " + HOSTILE)
    path = directory / "rule.yaml"
    path.write_text(RULE.format(title=title, text=text, cause=cause), encoding="utf-8")
    return path


# -- pcapng with hostile options ------------------------------------------------------------


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _options(*opts: tuple[int, bytes]) -> bytes:
    out = b"".join(struct.pack("<HH", code, len(v)) + v + b"\0" * (-len(v) % 4) for code, v in opts)
    return out + struct.pack("<HH", 0, 0)


def hostile_pcapng() -> bytes:
    """samples/demo.pcap as pcapng with the hostile strings in every text option."""
    evil = HOSTILE.encode()
    shb = _block(
        0x0A0D0D0A,
        struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        + _options((1, evil), (2, evil), (3, evil), (4, evil)),
    )
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + _options((1, evil), (2, evil), (3, evil)))
    raw = DEMO.read_bytes()
    out = [shb, idb]
    pos = 24
    while pos < len(raw):
        sec, usec, caplen, orig = struct.unpack_from("<IIII", raw, pos)
        data = raw[pos + 16 : pos + 16 + caplen]
        units = sec * 1_000_000 + usec
        head = struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, caplen, orig)
        pad = b"\0" * (-len(data) % 4)
        out.append(_block(6, head + data + pad + _options((1, evil))))
        pos += 16 + caplen
    return b"".join(out)


# -- helpers ----------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def controls(text: str, *, allow: str = "\n") -> list[str]:
    """Control characters (C0, DEL, C1) in text, except those in `allow`."""
    return sorted(
        {
            repr(ch)
            for ch in text
            if ch not in allow and (ord(ch) < 0x20 or ord(ch) == 0x7F or 0x80 <= ord(ch) < 0xA0)
        }
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k in ("href", "src", "xlink:href")]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def tags_of(markup: str) -> Tags:
    parser = Tags()
    parser.feed(markup)
    parser.close()
    return parser


def markdown_tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def columns(row: str) -> int:
    """Cells of a GitHub-flavoured Markdown table row: unescaped pipes, minus the outer two."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def check_output(fmt: str, out: str) -> None:
    """The assertions every output must pass, by format."""
    for needle in RAW_NEEDLES:
        assert needle not in out, (fmt, needle)
    if fmt == "text":
        assert controls(out) == [], fmt
    elif fmt == "json":
        assert controls(out) == []
        json.loads(out)
    elif fmt == "junit":
        assert "<script" not in out.lower() and "<img" not in out.lower()
        assert controls(out) == []
        ET.fromstring(out)
    elif fmt == "markdown":
        assert controls(out) == []
        # A code span shows its text literally (CommonMark 6.1), hostile or not, so the proof
        # is the rendered page: no string became a tag, a link or an image.
        page = tags_of(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(out))
        assert not {"script", "img", "a", "iframe", "object", "embed"} & set(page.tags)
        assert page.hrefs == []
        for table in markdown_tables(out):
            widths = {columns(row) for row in table}
            assert len(widths) == 1, table
        # Hostile text must not start a table row or a heading of its own
        for line in out.splitlines():
            assert not line.startswith(("| col", "<")), line
    elif fmt == "html":
        assert "<script" not in out.lower()
        assert controls(out) == []
        page = tags_of(out)
        assert not {"script", "img", "iframe", "object", "embed"} & set(page.tags), page.tags
        # links only within the page (its own finding anchors), none from the strings
        assert all(h.startswith("#finding-") for h in page.hrefs), page.hrefs


# -- capture file names -----------------------------------------------------------------------


@pytest.fixture
def hostile_named_capture(tmp_path: Path) -> Path:
    path = tmp_path / FILE_NAME
    shutil.copyfile(DEMO, path)
    return path


def test_file_name_really_is_hostile(hostile_named_capture: Path) -> None:
    name = hostile_named_capture.name
    assert "\x1b[31m" in name and "\r" in name and "\x08" in name and "<script>" in name


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_name_is_escaped(
    fmt: str, hostile_named_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "analyze", "--format", fmt, str(hostile_named_capture))
    assert code == 0, err
    check_output(fmt, out)


def test_file_name_is_escaped_in_flows_and_check(
    hostile_named_capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "flows", str(hostile_named_capture))
    assert code == 0
    check_output("text", out + err)
    expect = tmp_path / "expect.yaml"
    expect.write_text((ROOT / "samples" / "demo.expect.yaml").read_text(), encoding="utf-8")
    code, out, err = run(capsys, "check", str(hostile_named_capture), "--expect", str(expect))
    assert code == 0, out + err
    check_output("text", out + err)


def test_file_name_is_escaped_in_damage_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(DEMO.read_bytes()[:-10])
    for fmt in FORMATS:
        code, out, err = run(capsys, "analyze", "--format", fmt, str(path))
        assert code == 4
        check_output(fmt, out)
        check_output("text", err)


def test_file_name_is_escaped_in_unreadable_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"not a capture at all")
    code, out, err = run(capsys, "analyze", str(path))
    assert code == 3 and out == ""
    check_output("text", err)


def test_file_name_is_escaped_in_the_coloured_terminal_report(
    hostile_named_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(capsys, "analyze", "--color", "always", str(hostile_named_capture))
    assert code == 0
    for needle in RAW_NEEDLES:
        assert needle not in out, needle
    # pcapdiag's own colours are SGR sequences; nothing else may be a control character
    assert controls(re.sub(r"\x1b\[[0-9;]*m", "", out)) == []


# -- a hostile rule ----------------------------------------------------------------------------


@pytest.fixture
def hostile_rule(tmp_path: Path) -> Path:
    write_rule(tmp_path / "evil")
    return tmp_path / "evil"


def test_hostile_rule_is_valid_and_matches(
    hostile_rule: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "analyze", "--format", "json", "--rules", str(hostile_rule), str(DEMO)
    )
    assert code == 0, err
    report = json.loads(out)
    (evil,) = [f for f in report["findings"] if f["rule"] == "PD-EVIL-001"]
    assert evil["frames"] == [1, 2]
    assert SCRIPT in evil["title"] and SGR in evil["title"]  # JSON keeps the text, escaped
    assert OSC8 in evil["cause"] and CR in evil["next_steps"]


# Found here, fixed in commit f2d4a94: render.finding_block() wrote the rule's title and each
# effect's `then` and `note` without clean(), and headline() the title of a finding without an
# errno, so the plain and the coloured text report carried a rule's raw ESC/OSC/BS/CR.
@pytest.mark.parametrize("fmt", FORMATS)
def test_rule_text_is_escaped(
    fmt: str, hostile_rule: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "analyze", "--format", fmt, "--rules", str(hostile_rule), str(DEMO)
    )
    assert code == 0, err
    check_output(fmt, out)
    assert "EVIL" in out


def test_rule_text_is_escaped_in_a_text_file(
    hostile_rule: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o FILE`: click.echo strips SGR sequences when stdout is not a terminal, a file gets
    whatever the renderer wrote."""
    out = tmp_path / "report.txt"
    code, _out, err = run(
        capsys, "analyze", "--rules", str(hostile_rule), "-o", str(out), str(DEMO)
    )
    assert code == 0, err
    check_output("text", out.read_text(encoding="utf-8"))


def test_rule_text_is_escaped_in_the_coloured_terminal_report(
    hostile_rule: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(
        capsys, "analyze", "--color", "always", "--rules", str(hostile_rule), str(DEMO)
    )
    assert code == 0
    for needle in RAW_NEEDLES:
        assert needle not in out, needle
    assert controls(re.sub(r"\x1b\[[0-9;]*m", "", out)) == []


@pytest.mark.parametrize(
    "args",
    [("rules", "list"), ("rules", "show", "PD-EVIL-001"), ("rules", "test", "PD-EVIL-001")],
    ids=lambda a: " ".join(a[:2]),
)
def test_rule_text_is_escaped_in_rules_commands(
    args: tuple[str, ...], hostile_rule: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args, "--rules", str(hostile_rule))
    assert code == 0, out + err
    check_output("text", out + err)


def test_rule_text_is_escaped_in_html_side_file(
    hostile_rule: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    code, _out, _err = run(
        capsys, "analyze", "--rules", str(hostile_rule), "--html", str(page), str(DEMO)
    )
    assert code == 0
    check_output("html", page.read_text(encoding="utf-8"))


# -- a pcapng with hostile options -------------------------------------------------------------


@pytest.fixture
def hostile_options_capture(tmp_path: Path) -> Path:
    path = tmp_path / "options.pcapng"
    path.write_bytes(hostile_pcapng())
    return path


def test_pcapng_with_hostile_options_reads_as_demo(
    hostile_options_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(capsys, "analyze", "--format", "json", str(hostile_options_capture))
    assert code == 0
    report = json.loads(out)
    assert report["captures"][0]["frames"] == 31
    assert len(report["findings"]) == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_pcapng_options_never_appear_raw(
    fmt: str, hostile_options_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "analyze", "--format", fmt, str(hostile_options_capture))
    assert code == 0, err
    check_output(fmt, out)
    assert "RED" not in out and "CLICK" not in out and "alert(" not in out  # not shown at all


def test_pcapng_options_never_appear_raw_in_the_coloured_report(
    hostile_options_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(capsys, "analyze", "--color", "always", str(hostile_options_capture))
    assert code == 0
    assert "RED" not in out and "CLICK" not in out and "alert(" not in out
    assert controls(re.sub(r"\x1b\[[0-9;]*m", "", out)) == []
