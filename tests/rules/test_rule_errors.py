"""Invalid rule files: every mistake is reported with the file and the line it is on, as exit
code 5 from the CLI (or one RuleError from the library), never as a traceback.

Each case starts from BASE, a valid copy of rules/syn-refused with its own id, and puts one
mistake on a known line. The line numbers asserted are the lines of the mistakes in the text
written (numbered in BASE's comment block below).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pcapdiag.cli import main
from pcapdiag.errors import RuleError
from pcapdiag.rules.loader import (
    MAX_RULE_FILE_BYTES,
    builtin_rules_dir,
    load_rules,
    rule_files,
)

# The built-in rules, which every run of `rules list` and `rules check` includes.
BUILTIN = len(rule_files(builtin_rules_dir()))

ROOT = Path(__file__).resolve().parents[2]
SYN_REFUSED = ROOT / "rules" / "syn-refused"

# Line numbers of BASE (1-based), referred to by the cases below:
#  2 id, 5 title, 7 severity, 14 params, 16 default, 19 sequence, 20-22 the syn step,
#  23-29 the rst step (26 where, 28-29 its predicates), 30 outcome, 31 side, 33 linux effects,
#  34 macos effects, 37 evidence, 39-43 first test (40 capture), 44-47 second test.
BASE = """\
schema: pcapdiag.rule/v1
id: PD-TEST-001
rev: 1
name: test-refused
title: Test copy of connection refused
status: test
severity: high
description: >
  A copy of syn-refused for the tests: the client's SYN is answered by an acceptable RST.
references:
  - RFC 9293 section 3.10.7.3
tags: [tcp, test]
proto: tcp
params:
  min_ms:
    default: 0
    description: a parameter the rule declares
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
          - {field: accepted, eq: true}
          - {field: receiver_state, eq: SYN_SENT}
outcome:
  side: client
  effects:
    linux: [{call: connect, errno: ECONNREFUSED}]
    macos: [{call: connect, errno: ECONNREFUSED}]
  cause: >
    {server} answered the SYN (frame {syn.frame}) with a RST (frame {rst.frame}).
  evidence: [syn, rst]
tests:
  - name: refused
    capture: refused.pcap
    why: built packet by packet; the SYN is answered by RST|ACK
    expect:
      - {side: client, call: connect, errno: ECONNREFUSED, frames: [1, 2]}
  - name: bad ack ignored
    capture: rst-bad-ack.pcap
    why: a RST whose ACK does not acknowledge the SYN is ignored
    expect: []
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle` (checks the test's own arithmetic)."""
    hits = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def write_rule(directory: Path, text: str, name: str = "rule.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for cap in SYN_REFUSED.glob("*.pcap"):
        if not (directory / cap.name).exists():
            shutil.copyfile(cap, directory / cap.name)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def check(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["rules", "check", "--no-builtin-rules", *map(str, paths)])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def problems(*paths: Path) -> list[str]:
    with pytest.raises(RuleError) as exc:
        load_rules(list(paths), builtin=False)
    assert exc.value.problems
    return exc.value.problems


def assert_reported(
    capsys: pytest.CaptureFixture[str], path: Path, line: int, *words: str
) -> list[str]:
    """CLI exit 5 with a `path:line:` problem containing `words`; same from the library."""
    code, out, err = check(capsys, path.parent)
    assert code == 5, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith("pcapdiag: invalid rules:")
    located = [ln.strip() for ln in err.splitlines() if ln.strip().startswith(f"{path}:{line}:")]
    assert located, f"nothing reported at {path}:{line}:\n{err}"
    assert any(all(w.lower() in ln.lower() for w in words) for ln in located), (words, err)
    probs = problems(path.parent)
    assert any(p.startswith(f"{path}:{line}:") for p in probs), probs
    return probs


# -- the base rule is valid ---------------------------------------------------------------------


def test_base_rule_is_valid(capsys, tmp_path: Path) -> None:
    write_rule(tmp_path, BASE)
    code, out, err = check(capsys, tmp_path)
    assert (code, out.strip(), err) == (0, "1 rule OK", "")
    (rule,) = load_rules([tmp_path], builtin=False)
    assert rule.id == "PD-TEST-001"
    # the line numbers the cases rely on
    assert line_of(BASE, "title:") == 5
    assert line_of(BASE, "severity:") == 7
    assert line_of(BASE, "event: syn") == 21
    assert line_of(BASE, "field: receiver_state") == 29
    assert line_of(BASE, "evidence:") == 37
    assert line_of(BASE, "capture: refused.pcap") == 40
    assert line_of(BASE, "macos: [") == 34
    assert line_of(BASE, "      from: client") == 22
    assert line_of(BASE, "field: accepted") == 28
    assert line_of(BASE, "tags:") == 12
    assert line_of(BASE, "proto:") == 13


# -- YAML and schema ----------------------------------------------------------------------------


def test_yaml_syntax_error(capsys, tmp_path: Path) -> None:
    # an unclosed flow sequence on line 12
    text = replace_once(BASE, "tags: [tcp, test]", "tags: [tcp, test")
    path = write_rule(tmp_path, text)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    assert "YAML error" in err
    # PyYAML notices the unclosed bracket at the next key; the reported line must be the
    # bracket's line or the line right after it, never line 1.
    located = [ln for ln in err.splitlines() if f"{path}:" in ln]
    assert len(located) == 1
    line = int(located[0].split(f"{path}:")[1].split(":")[0])
    assert line in (12, 13), err


def test_yaml_mapping_value_in_scalar(capsys, tmp_path: Path) -> None:
    # "key: value: more" is a YAML syntax error on that very line (7)
    text = replace_once(BASE, "severity: high\n", "severity: high: very\n")
    path = write_rule(tmp_path, text)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    assert f"{path}:7: YAML error" in err
    assert "Traceback" not in err


def test_yaml_bad_indentation(capsys, tmp_path: Path) -> None:
    # a mapping key indented under a scalar on line 4
    text = replace_once(BASE, "name: test-refused\n", "name: test-refused\n  bad: indent\n")
    path = write_rule(tmp_path, text)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    assert f"{path}:5:" in err and "YAML error" in err


def test_missing_title(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "title: Test copy of connection refused\n", "")
    path = write_rule(tmp_path, text)
    # a missing key is reported at the top-level mapping (line 1)
    assert_reported(capsys, path, 1, "title", "required")


def test_wrong_severity(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "severity: high", "severity: catastrophic")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 7, "severity", "catastrophic")


def test_unknown_top_level_key(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "proto: tcp\n", "proto: tcp\nfrobnicate: yes\n")
    path = write_rule(tmp_path, text)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    assert "frobnicate" in err
    assert f"{path}:" in err


def test_unknown_event_name(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "      event: syn\n", "      event: synn\n")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 21, "synn")


def test_unknown_field_in_where(capsys, tmp_path: Path) -> None:
    text = replace_once(
        BASE, "{field: receiver_state, eq: SYN_SENT}", "{field: receiver_mood, eq: SYN_SENT}"
    )
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 29, "receiver_mood")


def test_binding_used_before_bound(capsys, tmp_path: Path) -> None:
    # the first step's `from` refers to the rst binding, bound only by the second step
    text = replace_once(BASE, "      from: client\n", "      from: {sender_of: rst}\n")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 22, "rst", "not bound")


def test_evidence_names_unknown_binding(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "evidence: [syn, rst]", "evidence: [syn, synack]")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 37, "synack")


def test_unknown_param(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "{field: accepted, eq: true}", "{field: accepted, eq: $nope}")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 28, "$nope")


def _with_count(ge: str, cause_cites: str) -> str:
    """BASE with a count of the client's SYN retransmissions (lines 30-34) and a cause that
    cites it."""
    text = replace_once(
        BASE,
        "outcome:\n",
        "  counts:\n"
        "    - as: tries\n"
        "      event: retransmission\n"
        "      between: [syn, rst]\n"
        f"      ge: {ge}\n"
        "outcome:\n",
    )
    return replace_once(text, "(frame {rst.frame}).", f"(frame {{rst.frame}}), {cause_cites}.")


def test_a_count_that_may_be_empty_cited_by_the_cause(capsys, tmp_path: Path) -> None:
    # ge: 0 would let the cause read "after the SYNs at frames " with no frame: the
    # write-after-peer-close rule did this before it required one write.
    text = _with_count("0", "after the SYNs at frames {tries.frames}")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, line_of(text, "- as: tries"), "tries", "ge: 0", "cause")


def test_a_count_that_may_be_empty_through_its_parameter(capsys, tmp_path: Path) -> None:
    # $min_ms defaults to 0 (BASE line 16): the same mistake through a parameter.
    text = _with_count("$min_ms", "after the SYNs at frames {tries.frames}")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, line_of(text, "- as: tries"), "tries", "may match nothing")


def test_a_count_that_may_be_empty_cited_only_by_its_count_is_fine(capsys, tmp_path) -> None:
    # {tries.count} reads "0" when nothing matched: true, so it is allowed.
    write_rule(tmp_path, _with_count("0", "after {tries.count} retries"))
    code, out, err = check(capsys, tmp_path)
    assert (code, out.strip(), err) == (0, "1 rule OK", "")


def test_errno_not_defined_on_platform(capsys, tmp_path: Path) -> None:
    # ENONET exists on Linux but not on macOS (errno-semantics.md section 4)
    text = replace_once(
        BASE,
        "macos: [{call: connect, errno: ECONNREFUSED}]",
        "macos: [{call: connect, errno: ENONET}]",
    )
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 34, "ENONET", "macos")


def test_errno_made_up(capsys, tmp_path: Path) -> None:
    text = replace_once(
        BASE,
        "linux: [{call: connect, errno: ECONNREFUSED}]",
        "linux: [{call: connect, errno: ECONNREFUZED}]",
    )
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 33, "ECONNREFUZED", "linux")


def test_missing_test_capture(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "capture: refused.pcap", "capture: no-such-file.pcap")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 40, "no-such-file.pcap", "not found")


def test_duplicate_ids_across_files(capsys, tmp_path: Path) -> None:
    first = write_rule(tmp_path / "a", BASE)
    second_text = replace_once(BASE, "name: test-refused", "name: test-refused-two")
    second = write_rule(tmp_path / "b", second_text)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    located = [ln.strip() for ln in err.splitlines() if "duplicate" in ln]
    assert len(located) == 1, err
    # the second file loaded (b/ sorts after a/) is the duplicate; its id is on line 2
    assert located[0].startswith(f"{second}:2:")
    assert "PD-TEST-001" in located[0] and str(first) in located[0]


def test_overrides_unknown_rule(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "proto: tcp\n", "proto: tcp\noverrides: [PD-TCP-999]\n")
    path = write_rule(tmp_path, text)
    assert line_of(text, "overrides:") == 14
    assert_reported(capsys, path, 14, "PD-TCP-999")


def test_overrides_builtin_rule_is_fine(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "proto: tcp\n", "proto: tcp\noverrides: [PD-TCP-001]\n")
    write_rule(tmp_path, text)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["rules", "check", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert out.strip() == f"{BUILTIN + 1} rules OK"


# -- hostile files ------------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb(capsys, tmp_path: Path) -> None:
    path = write_rule(tmp_path, BILLION_LAUGHS)
    # the first alias (*a) is on line 2
    assert_reported(capsys, path, 2, "alias")


def test_alias_inside_a_rule(capsys, tmp_path: Path) -> None:
    text = replace_once(BASE, "tags: [tcp, test]", "tags: &t [tcp, test]\nfalsepositives: *t")
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 13, "alias")


def test_file_over_256_kib(capsys, tmp_path: Path) -> None:
    padding = "# padding\n" * (MAX_RULE_FILE_BYTES // 10 + 1)
    path = write_rule(tmp_path, BASE + padding)
    assert path.stat().st_size > 256 * 1024
    assert_reported(capsys, path, 1, str(MAX_RULE_FILE_BYTES))


def test_file_exactly_256_kib_is_read(capsys, tmp_path: Path) -> None:
    body = BASE + "#" * (MAX_RULE_FILE_BYTES - len(BASE.encode()) - 1) + "\n"
    write_rule(tmp_path, body)
    assert (tmp_path / "rule.yaml").stat().st_size == MAX_RULE_FILE_BYTES
    assert check(capsys, tmp_path)[0] == 0


def test_python_object_tag(capsys, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = replace_once(
        BASE,
        "rev: 1\n",
        f"rev: 1\nx: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    path = write_rule(tmp_path, text)
    assert_reported(capsys, path, 4, "python/object")
    assert not marker.exists()


def test_not_a_mapping(capsys, tmp_path: Path) -> None:
    path = write_rule(tmp_path, "- just\n- a list\n")
    assert_reported(capsys, path, 1, "mapping")


def test_not_utf8(capsys, tmp_path: Path) -> None:
    path = write_rule(tmp_path, "")
    path.write_bytes(b"id: \xff\xfe\n")
    assert_reported(capsys, path, 1)


def test_missing_rules_directory(capsys, tmp_path: Path) -> None:
    code, _, err = check(capsys, tmp_path / "nowhere")
    assert code == 5
    assert "nowhere" in err
    assert "Traceback" not in err


def test_every_problem_is_listed(capsys, tmp_path: Path) -> None:
    bad1 = write_rule(tmp_path / "one", replace_once(BASE, "severity: high", "severity: x"))
    text2 = replace_once(BASE, "id: PD-TEST-001", "id: PD-TEST-002")
    text2 = replace_once(text2, "capture: refused.pcap", "capture: gone.pcap")
    bad2 = write_rule(tmp_path / "two", text2)
    code, _, err = check(capsys, tmp_path)
    assert code == 5
    assert f"{bad1}:7:" in err
    assert f"{bad2}:40:" in err


def test_analyze_with_invalid_rules_exits_5(capsys, tmp_path: Path) -> None:
    write_rule(tmp_path, replace_once(BASE, "severity: high", "severity: x"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--rules", str(tmp_path), str(SYN_REFUSED / "refused.pcap")])
    _, err = capsys.readouterr()
    assert exc.value.code == 5
    assert "Traceback" not in err


# -- a valid custom rule ------------------------------------------------------------------------


def test_custom_rule_is_listed_and_fires(capsys, tmp_path: Path) -> None:
    src = (SYN_REFUSED / "rule.yaml").read_text(encoding="utf-8")
    text = replace_once(src, "id: PD-TCP-001", "id: PD-TEST-001")
    text = replace_once(text, "name: syn-refused", "name: test-syn-refused")
    write_rule(tmp_path / "test-syn-refused", text)

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["rules", "list", "--rules", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    ids = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
    assert "PD-TEST-001" in ids and "PD-TCP-001" in ids
    assert len(ids) == BUILTIN + 1

    with pytest.raises(SystemExit) as exc:
        main(["rules", "check", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    assert out.strip() == f"{BUILTIN + 1} rules OK"

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "analyze",
                "--format",
                "json",
                "--no-builtin-rules",
                "--rules",
                str(tmp_path),
                str(SYN_REFUSED / "refused.pcap"),
            ]
        )
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    doc = json.loads(out)
    assert [
        (f["rule"], f["rule_name"], f["call"], f["errno"]["name"]) for f in doc["findings"]
    ] == [("PD-TEST-001", "test-syn-refused", "connect", "ECONNREFUSED")]
    assert doc["findings"][0]["frames"] == [1, 2]

    with pytest.raises(SystemExit) as exc:
        main(["rules", "test", "PD-TEST-001", "--no-builtin-rules", "--rules", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert exc.value.code == 0
    assert out.splitlines()[-1] == "3 passed, 0 failed"
