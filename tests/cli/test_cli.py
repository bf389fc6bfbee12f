"""The command line: output, exit codes, error messages, standard input.

Expected values come from the frame-by-frame descriptions in tests/build_captures.py and from
the rule files under rules/, not from pcapdiag's own output.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from pcapdiag import __version__, cli
from pcapdiag.cli import main
from pcapdiag.errors import CaptureError
from pcapdiag.findings.expect import load_expectation
from pcapdiag.rules.loader import builtin_rules_dir, rule_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
FIN_DATA_RST = RULES / "write-after-peer-close" / "fin-data-rst.pcap"
RESET_MID = RULES / "rst-established" / "reset-mid-connection.pcap"
REFUSED = RULES / "syn-refused" / "refused.pcap"
HEALTHY = ROOT / "tests" / "captures" / "ipv6-wraparound.pcap"
PORT_REUSE = ROOT / "tests" / "captures" / "port-reuse.pcap"
DEMO = ROOT / "samples" / "demo.pcap"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run `pcapdiag ARGV` in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out, err


def run_proc(*argv: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PCAPDIAG_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "pcapdiag", *map(str, argv)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def pcap_records(data: bytes) -> list[tuple[int, int]]:
    """(offset, incl_len) of each record of a little-endian classic pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "expected a little-endian microsecond pcap"
    out = []
    off = 24
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        out.append((off, incl))
        off += 16 + incl
    assert off == len(data)
    return out


# -- analyze: text and JSON --------------------------------------------------------------------


def test_text_report_names_the_failed_call(capsys) -> None:
    code, out, err = run(capsys, "analyze", FIN_DATA_RST)
    assert code == 0, err
    # build_captures.fin_data_rst: server FIN (8), client data (10), RST (11) -> client
    # send() fails with EPIPE on Linux (errno-semantics 7.8).
    # The health table names the service and what failed there, the kinds list the call.
    # The failure's time is its evidence's first frame's: the server's FIN, frame 8, at
    # 1700000000.007999 (22:13:20.007999Z, the date in the header line).
    lines = out.splitlines()
    assert lines[4:7] == [
        "Services with failures: 1 of 1 service",
        "  service      proto  connections  failed  first failure     last failure      "
        "what failed",
        "  10.0.0.2:80  tcp              1       1  22:13:20.007999Z  22:13:20.007999Z  "
        "client send() EPIPE x1",
    ]
    assert '  [1] 1 x client send() -> EPIPE ("Broken pipe") to 10.0.0.2:80 (PD-TCP-006)' in lines
    assert "    connection: TCP client 10.0.0.1:40000 -> server 10.0.0.2:80" in lines
    assert "11 frames" in out.splitlines()[0]
    assert "PD-TCP-006" in out
    assert err == ""


def test_json_report_contract(capsys) -> None:
    code, out, err = run(capsys, "analyze", "--format", "json", RESET_MID)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "pcapdiag.report/v1"
    assert doc["platform"] == "auto"  # each finding names its side's platform
    assert doc["summary"]["frames"] == 9
    assert doc["summary"]["tcp_connections"] == 1
    assert len(doc["findings"]) == 1
    f = doc["findings"][0]
    assert f["flow"]["proto"] == "tcp"
    assert f["flow"]["client"] == "10.0.0.1:40000"
    assert f["flow"]["server"] == "10.0.0.2:80"
    assert f["side"] == "client"
    assert f["call"] == "recv"
    assert f["errno"]["name"] == "ECONNRESET"
    assert f["errno"]["number"] == 104
    assert isinstance(f["errno"]["message"], str) and f["errno"]["message"]
    assert f["frames"] == [9]  # frame 9 is the RST (build_captures.reset_mid_connection)
    assert f["rule"] == "PD-TCP-005"
    # The built capture's hosts send TTL 64 and no SYN signature a platform owns: Linux is
    # assumed, not decided; ECONNRESET is the errno on every platform the TTL fits, so the
    # finding stays high. Both sides at their initial TTL: no router between, vantage unknown.
    assert f["platform"]["name"] == "linux" and f["platform"]["inferred"] is True
    assert f["platform"]["decided"] is False
    assert f["confidence"] == "high" and f["confidence_reasons"] == []
    assert f["vantage"]["where"] == "unknown"
    assert doc["summary"]["by_confidence"] == {"high": 1, "medium": 0, "low": 0}
    assert doc["captures"][0]["frames"] == 9
    assert doc["captures"][0]["damage"] is None


def test_json_platform_macos_numbers(capsys) -> None:
    code, out, _ = run(capsys, "analyze", "--format", "json", "--platform", "macos", RESET_MID)
    assert code == 0
    doc = json.loads(out)
    assert doc["platform"] == "macos"
    (f,) = doc["findings"]
    assert f["errno"]["name"] == "ECONNRESET"
    assert f["errno"]["number"] == 54
    assert f["errno_by_platform"]["linux"]["number"] == 104


def test_output_file(capsys, tmp_path: Path) -> None:
    dest = tmp_path / "report.json"
    code, out, _ = run(capsys, "analyze", "--format", "json", "-o", dest, REFUSED)
    assert code == 0
    assert out == ""
    doc = json.loads(dest.read_text(encoding="utf-8"))
    assert [f["errno"]["name"] for f in doc["findings"]] == ["ECONNREFUSED"]


# -- --fail-on ----------------------------------------------------------------------------------


def test_fail_on_severity(capsys) -> None:
    # syn-refused is severity high
    assert run(capsys, "analyze", "--fail-on", "high", REFUSED)[0] == 1
    assert run(capsys, "analyze", "--fail-on", "critical", REFUSED)[0] == 0


def test_fail_on_errno(capsys) -> None:
    assert run(capsys, "analyze", "--fail-on", "ECONNREFUSED", REFUSED)[0] == 1
    assert run(capsys, "analyze", "--fail-on", "ECONNRESET", REFUSED)[0] == 0
    assert run(capsys, "analyze", "--fail-on", "ECONNREFUSED", HEALTHY)[0] == 0
    assert run(capsys, "analyze", "--fail-on", "any", HEALTHY)[0] == 0
    assert run(capsys, "analyze", "--fail-on", "any", REFUSED)[0] == 1


def test_fail_on_bogus_is_usage_error(capsys) -> None:
    code, _, err = run(capsys, "analyze", "--fail-on", "bogus", HEALTHY)
    assert code == 2
    assert "bogus" in err
    assert "Traceback" not in err


def test_unknown_option_is_usage_error(capsys) -> None:
    code, _, err = run(capsys, "analyze", "--no-such-option", HEALTHY)
    assert code == 2
    assert "--no-such-option" in err


def test_missing_argument_is_usage_error(capsys) -> None:
    assert run(capsys, "analyze")[0] == 2


def test_unknown_platform_is_usage_error(capsys) -> None:
    assert run(capsys, "analyze", "--platform", "plan9", HEALTHY)[0] == 2


# -- unreadable and damaged input ---------------------------------------------------------------


def test_text_file_is_unreadable() -> None:
    proc = run_proc("analyze", ROOT / "pyproject.toml")
    assert proc.returncode == 3
    err = proc.stderr.decode()
    assert len(err.splitlines()) == 1, err
    assert "pyproject.toml" in err
    assert "Traceback" not in err
    assert proc.stdout == b""


def test_missing_file_is_unreadable(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pcap"
    code, out, err = run(capsys, "analyze", missing)
    assert code == 3
    assert str(missing) in err
    assert len(err.splitlines()) == 1
    assert out == ""


def test_empty_file_is_unreadable(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "analyze", empty)
    assert code == 3
    assert len(err.splitlines()) == 1
    assert "empty" in err


def test_one_unreadable_among_several_fails_the_run(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"hello, this is not a capture\n")
    assert run(capsys, "analyze", REFUSED, bad)[0] == 3


def test_truncated_capture_is_damaged(capsys, tmp_path: Path) -> None:
    data = RESET_MID.read_bytes()
    recs = pcap_records(data)
    assert len(recs) == 9
    last_off, last_len = recs[-1]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: last_off + 16 + last_len // 2])
    code, out, err = run(capsys, "analyze", "--format", "json", "--all", cut)
    assert code == 4
    assert str(last_off) in err and "byte" in err
    assert "frame 9" in err
    assert "Traceback" not in err
    doc = json.loads(out)
    cap = doc["captures"][0]
    assert cap["frames"] == 8
    assert cap["damage"]["offset"] == last_off
    assert cap["damage"]["frame"] == 9
    # the eight frames before the damage are the handshake, request/response and 2nd request
    (flow,) = doc["flows"]
    assert flow["proto"] == "tcp"
    assert flow["packets"] == 8
    assert flow["client"] == "10.0.0.1:40000"
    # the RST (frame 9) was cut off, so no reset is reported
    assert doc["findings"] == []


def test_truncated_capture_keeps_earlier_findings(capsys, tmp_path: Path) -> None:
    # refused.pcap (SYN, RST|ACK) followed by half of a third record
    data = REFUSED.read_bytes()
    recs = pcap_records(data)
    off, incl = recs[-1]
    damaged = tmp_path / "refused-damaged.pcap"
    damaged.write_bytes(data + data[off : off + 16 + incl // 2])
    code, out, err = run(capsys, "analyze", damaged)
    assert code == 4
    assert f"byte {len(data)}" in err
    assert "frame 3" in err
    assert "connect() -> ECONNREFUSED" in out
    assert "DAMAGED" in out


def test_damage_beats_fail_on(capsys, tmp_path: Path) -> None:
    data = REFUSED.read_bytes()
    off, _ = pcap_records(data)[-1]
    damaged = tmp_path / "d.pcap"
    damaged.write_bytes(data + data[off : off + 20])
    assert run(capsys, "analyze", "--fail-on", "any", damaged)[0] == 4


def _damaged_refused(tmp_path: Path) -> tuple[Path, int]:
    """refused.pcap (SYN 1, RST|ACK 2) followed by half of a copy of its last record: the
    damage starts at the end of the intact file, frame 3."""
    data = REFUSED.read_bytes()
    off, incl = pcap_records(data)[-1]
    damaged = tmp_path / "refused-damaged.pcap"
    damaged.write_bytes(data + data[off : off + 16 + incl // 2])
    return damaged, len(data)


@pytest.mark.parametrize("met", [True, False])
def test_check_of_a_damaged_capture_prints_the_damage_and_exits_4(
    met: bool, capsys, tmp_path: Path
) -> None:
    damaged, at = _damaged_refused(tmp_path)
    errno = "ECONNREFUSED" if met else "ECONNRESET"
    expect = tmp_path / "e.yaml"
    expect.write_text(f"findings:\n  - {{rule: PD-TCP-001, errno: {errno}}}\n")
    code, out, err = run(capsys, "check", damaged, "--expect", expect)
    # exit 4 as analyze's, whether or not the frames before the damage met the expectation
    assert code == 4
    assert err.startswith(f"pcapdiag: {damaged}: damaged at byte {at} (frame 3): ")
    assert err.count("\n") == 1
    if met:
        assert out == f"OK: 1 finding as expected ({expect}) (up to the damage)\n"
    else:
        assert out.startswith("- missing (0 of 1 found): rule=PD-TCP-001 errno=ECONNRESET")
        assert out.splitlines()[-1].endswith("(up to the damage)")


# -- standard input -----------------------------------------------------------------------------


def test_stdin() -> None:
    proc = run_proc("analyze", "--format", "json", "-", stdin=REFUSED.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["captures"][0]["path"] == "-"
    assert doc["summary"]["frames"] == 2
    (f,) = doc["findings"]
    assert (f["call"], f["errno"]["name"], f["frames"]) == ("connect", "ECONNREFUSED", [1, 2])


def test_stdin_gzip() -> None:
    proc = run_proc("analyze", "--format", "json", "-", stdin=gzip.compress(RESET_MID.read_bytes()))
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["captures"][0]["compressed"] is True
    assert doc["summary"]["frames"] == 9
    assert [f["errno"]["name"] for f in doc["findings"]] == ["ECONNRESET"]


def test_gzip_file(capsys, tmp_path: Path) -> None:
    gz = tmp_path / "refused.pcap.gz"
    gz.write_bytes(gzip.compress(REFUSED.read_bytes()))
    code, out, _ = run(capsys, "analyze", "--fail-on", "ECONNREFUSED", gz)
    assert code == 1
    assert "connect() -> ECONNREFUSED" in out


def test_stdin_garbage_is_unreadable() -> None:
    proc = run_proc("analyze", "-", stdin=b"definitely not a capture\n" * 10)
    assert proc.returncode == 3
    err = proc.stderr.decode()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_stdin_empty_is_unreadable() -> None:
    proc = run_proc("analyze", "-", stdin=b"")
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr.decode()


# -- several captures ---------------------------------------------------------------------------


def test_several_captures(capsys) -> None:
    code, out, err = run(capsys, "analyze", "--format", "json", REFUSED, RESET_MID, HEALTHY)
    assert code == 0, err
    doc = json.loads(out)
    assert [c["path"] for c in doc["captures"]] == [str(REFUSED), str(RESET_MID), str(HEALTHY)]
    assert doc["summary"]["frames"] == 2 + 9 + 10
    assert doc["summary"]["tcp_connections"] == 3
    by_capture = {f["capture"]: (f["rule"], f["errno"]["name"]) for f in doc["findings"]}
    assert by_capture == {
        str(REFUSED): ("PD-TCP-001", "ECONNREFUSED"),
        str(RESET_MID): ("PD-TCP-005", "ECONNRESET"),
    }
    assert sorted(doc["summary"]["by_errno"].items()) == [("ECONNREFUSED", 1), ("ECONNRESET", 1)]


# -- rules --------------------------------------------------------------------------------------


def builtin_ids() -> list[str]:
    ids = []
    for path in rule_files(builtin_rules_dir()):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("id: "):
                ids.append(line[4:].strip())
                break
    return ids


def test_rules_list(capsys) -> None:
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0
    listed = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
    ids = builtin_ids()
    # one per rule directory, and none of the 18 the project had lost
    assert len(ids) == len(list(RULES.glob("*/rule.yaml"))) >= 18
    assert sorted(listed) == sorted(ids)
    assert "PD-TCP-001" in listed and "PD-UDP-001" in listed


def test_rules_show(capsys) -> None:
    code, out, _ = run(capsys, "rules", "show", "PD-TCP-001")
    assert code == 0
    text = (RULES / "syn-refused" / "rule.yaml").read_text(encoding="utf-8")
    # named as built in, not by a path inside site-packages or a checkout (rules/show.py)
    assert out.splitlines()[0] == (
        f"# built-in rule PD-TCP-001 (syn-refused), as installed with pcapdiag {__version__}"
    )
    assert str(RULES) not in out
    assert text in out


def test_rules_show_by_name(capsys) -> None:
    code, out, _ = run(capsys, "rules", "show", "rst-established")
    assert code == 0
    assert "id: PD-TCP-005" in out


def test_rules_show_unknown(capsys) -> None:
    code, _, err = run(capsys, "rules", "show", "PD-NOPE-999")
    assert code == 2
    assert "PD-NOPE-999" in err


def test_rules_check(capsys) -> None:
    code, out, _ = run(capsys, "rules", "check")
    assert code == 0
    n = len(list(RULES.glob("*/rule.yaml")))
    assert n >= 18
    assert out.strip() == f"{n} rules OK"


def test_rules_test(capsys) -> None:
    code, out, err = run(capsys, "rules", "test")
    assert code == 0, out + err
    n_cases = 0
    for path in RULES.glob("*/rule.yaml"):
        n_cases += sum(1 for ln in path.read_text().splitlines() if ln.startswith("  - name:"))
    assert n_cases >= 26  # at least two cases per rule
    assert out.splitlines()[-1] == f"{n_cases} passed, 0 failed"
    assert "FAIL" not in out


def test_rules_test_one_rule(capsys) -> None:
    code, out, _ = run(capsys, "rules", "test", "PD-TCP-001")
    assert code == 0
    # syn-refused has three test cases (refused, windows-retries, rst-bad-ack)
    assert out.splitlines()[-1] == "3 passed, 0 failed"


# -- help, version, tracebacks ------------------------------------------------------------------


def test_help_mentions_exit_codes(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "Exit codes" in out
    for token in ("0 analysed", "2 usage", "3 unreadable", "4 damaged", "5 invalid rules", "70"):
        assert token in " ".join(out.split()), token


def test_analyze_help_mentions_exit_codes(capsys) -> None:
    code, out, _ = run(capsys, "analyze", "--help")
    assert code == 0
    assert "Exit codes" in out
    assert "--fail-on" in out


def test_check_help_has_its_own_epilog(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    words = " ".join(out.split())
    assert "pcapdiag analyze" not in out  # not analyze's examples
    assert "--fail-on" not in out  # nor its exit code 1
    for token in (
        "0 the findings are as expected",
        "1 a difference",
        "2 usage error",
        "3 unreadable input",
        "4 damaged input (checked up to the damage)",
        "5 invalid rules",
    ):
        assert token in words, token
    examples = out.split("Examples:")[1].split()
    assert examples.count("pcapdiag") == examples.count("check") == 3
    # The example expectation file is a valid one.
    block = out.split("An expectation file")[1].split("\n\n")[0].splitlines()[2:]
    example = tmp_path / "e.yaml"
    example.write_text("\n".join(line[4:] for line in block) + "\n")
    spec = load_expectation(example)
    assert spec["exclusive"] is True and len(spec["findings"]) == 2


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("pcapdiag")


def test_subprocess_no_traceback_on_directory(tmp_path: Path) -> None:
    proc = run_proc("analyze", tmp_path)
    assert proc.returncode in (2, 3)
    assert "Traceback" not in proc.stderr.decode()


def test_entry_point_exit_code_propagates() -> None:
    proc = run_proc("analyze", "--fail-on", "ECONNREFUSED", REFUSED)
    assert proc.returncode == 1
    assert b"connect() -> ECONNREFUSED" in proc.stdout


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_reader_that_goes_away_is_not_an_error(fmt: str, tmp_path: Path) -> None:
    # `pcapdiag analyze ... | head -1`: the report is larger than a pipe holds; when the reader
    # closes its end, pcapdiag stops quietly with exit 0 (not click's 1, not a traceback).
    sys.path.insert(0, str(ROOT / "bench"))
    from floods import write

    cap = tmp_path / "scan.pcap"
    write(cap, "port-scan", 3000)
    cmd = [sys.executable, "-m", "pcapdiag", "analyze", "-q", "--format", fmt, str(cap)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert first.strip() and err == b""


# -- outcomes as click exceptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (cli.ReaderGone, 0),
        (cli.FailOnMet, 1),
        (cli.BadUsage, 2),
        (cli.Unreadable, 3),
        (cli.Damaged, 4),
        (cli.InvalidRules, 5),
    ],
)
def test_each_outcome_carries_its_exit_code(outcome: type[cli.Outcome], code: int, capsys) -> None:
    assert issubclass(outcome, click.ClickException)
    assert outcome.exit_code == code
    outcome("a message\x1b[31m").show()
    assert capsys.readouterr().err == "pcapdiag: a message\\x1b[31m\n"  # made visible
    outcome().show()
    assert capsys.readouterr().err == ""  # said before, by the report or the damage lines


def test_an_outcome_raised_by_a_command_ends_the_run(capsys, monkeypatch) -> None:
    def unreadable(*_: object, **__: object) -> None:
        raise CaptureError("x.pcap: not a pcap or pcapng file")

    monkeypatch.setattr(cli, "run_analysis", unreadable)
    assert run(capsys, "analyze", "x.pcap") == (
        3,
        "",
        "pcapdiag: x.pcap: not a pcap or pcapng file\n",
    )


@pytest.mark.parametrize(
    ("exc", "code", "err"),
    [
        (KeyboardInterrupt(), 130, "\npcapdiag: interrupted\n"),  # click closes the ^C line
        (
            ZeroDivisionError("boom"),
            70,
            "pcapdiag: internal error: ZeroDivisionError: boom (a bug; set PCAPDIAG_DEBUG=1 "
            "to see the traceback)\n",
        ),
    ],
)
def test_main_translates_what_click_cannot(exc, code, err, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PCAPDIAG_DEBUG", raising=False)

    def failing(*_: object, **__: object) -> None:
        raise exc

    monkeypatch.setattr(cli, "run_analysis", failing)
    assert run(capsys, "analyze", "-q", REFUSED) == (code, "", err)


# -- ladders and --export: the second pass -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "ladders"),
    [
        (("--format", "markdown"), True),
        (("--format", "html"), True),
        (("--format", "json", "--html", "{tmp}/r.html"), True),
        (("--format", "text"), False),
        (("--format", "json"), False),
        (("--format", "junit"), False),
        (("--export", "{tmp}/out"), False),
    ],
)
def test_ladders_are_read_only_for_the_formats_that_draw_them(
    args: tuple[str, ...], ladders: bool, capsys, monkeypatch, tmp_path: Path
) -> None:
    asked: list[bool] = []
    real = cli.run_analysis

    def recording(analysis: Any, *a: Any, **kw: Any) -> Any:
        asked.append(analysis.ladders)
        return real(analysis, *a, **kw)

    monkeypatch.setattr(cli, "run_analysis", recording)
    argv = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run(capsys, "analyze", "-q", *argv, DEMO)
    assert code == 0, err
    assert asked == [ladders]


def test_markdown_and_html_draw_the_ladders(capsys, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    code, out, _ = run(capsys, "analyze", "--format", "markdown", "--html", page, DEMO)
    assert code == 0
    assert out.count("| frame | time | direction |") == 5
    assert page.read_text(encoding="utf-8").count('<svg class="ladder"') == 5


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--export", "{tmp}/out"), "--export"),
        (("--format", "html"), "--format html"),
        (("--format", "json", "--html", "{tmp}/r.html"), "--html"),
        (("--format", "html", "--export", "{tmp}/out"), "--export and --format html"),
    ],
)
@pytest.mark.parametrize("captures", [("-",), (str(DEMO), "-")])
def test_a_second_read_of_standard_input_is_refused_before_reading(
    args: tuple[str, ...],
    named: str,
    captures: tuple[str, ...],
    capsys,
    monkeypatch,
    tmp_path: Path,
) -> None:
    # --export and the HTML ladders read the capture again (evidence.py): with "-" among
    # the captures that cannot work, so the run is a usage error before anything is read.
    def reading(*a: Any, **kw: Any) -> Any:
        raise AssertionError("the capture was read")

    monkeypatch.setattr(cli, "run_analysis", reading)
    argv = [a.format(tmp=tmp_path) for a in args]
    code, out, err = run(capsys, "analyze", "-q", *argv, *captures)
    assert (code, out) == (2, "")
    assert f"{named} read the capture a second time" in err
    assert "standard input cannot be read twice" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.html").exists()


def test_export_of_standard_input_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_proc("analyze", "--export", out, "-", stdin=REFUSED.read_bytes())
    assert proc.returncode == 2, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    assert b"save the capture to a file" in proc.stderr
    assert proc.stdout == b"" and not out.exists()


def test_markdown_of_standard_input_is_drawn_without_evidence_tables() -> None:
    # Markdown is still a whole report without ladders: a note, not a refusal.
    proc = run_proc("analyze", "--format", "markdown", "-", stdin=REFUSED.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"**client `connect()`** fails with **ECONNREFUSED**" in proc.stdout
    assert b"| frame | time | direction |" not in proc.stdout
    assert proc.stderr.decode() == (
        "pcapdiag: standard input cannot be read twice: the Markdown report lists no evidence "
        "packets for its findings (save the capture to a file for them)\n"
    )
    quiet = run_proc("analyze", "-q", "--format", "markdown", "-", stdin=REFUSED.read_bytes())
    assert (quiet.returncode, quiet.stderr) == (0, b"")
    assert quiet.stdout == proc.stdout


def test_no_accel_reads_every_frame_in_python_with_the_same_report(capsys, monkeypatch) -> None:
    from pcapdiag.accel import triage

    passes: list[object] = []
    real = triage.first_pass

    def counting(*args: Any, **kw: Any) -> Any:
        passes.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(triage, "first_pass", counting)
    demo = str(ROOT / "samples/demo.pcap")
    code, fast, _ = run(capsys, "analyze", "--format", "json", demo)
    assert code == 0 and len(passes) == 1
    code, pure, _ = run(capsys, "analyze", "--format", "json", "--no-accel", demo)
    assert code == 0 and len(passes) == 1  # no first pass the second time
    assert pure == fast


def test_fail_on_counts_findings_at_the_minimum_confidence(capsys) -> None:
    # tests/captures/quality/ended-before-outcome.pcap: the client's ETIMEDOUT is medium (the
    # capture ends while it still retransmits).
    cap = str(ROOT / "tests" / "captures" / "quality" / "ended-before-outcome.pcap")
    code, _, _ = run(capsys, "analyze", "--fail-on", "ETIMEDOUT", cap)
    assert code == 1  # default --min-confidence medium: counted
    code, _, _ = run(capsys, "analyze", "--fail-on", "ETIMEDOUT", "--min-confidence", "high", cap)
    assert code == 0
    code, _, err = run(capsys, "analyze", "--min-confidence", "sure", cap)
    assert code == 2 and "--min-confidence" in err
