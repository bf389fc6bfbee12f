"""Selection that keeps frame numbers (pcapdiag/selection.py): --host, --port, --since,
--until, --rule and --errno narrow the analysis while the capture is read, and every finding
still cites the frames by their numbers in the file.

samples/demo.pcap, frame by frame (tshark -r samples/demo.pcap; times from frame 1, which is
2023-11-14T22:13:20.001000Z):
   1-2   10.0.0.1:40001 -> 10.0.0.2:8080  SYN, RST|ACK                 (refused)
   3-12  10.0.0.1:40002 -> 10.0.0.2:80    a whole healthy connection
  13-19  10.0.0.1:40003 -> 10.0.0.2:80    handshake and a request ...
  20-23  10.0.0.1:40004 -> 10.0.0.2:443   handshake, RST|ACK at 0.0367 s  (reset)
  24-25  10.0.0.1:40005 -> 10.0.7.7:5432  SYN at 0.0402 s; ICMP host prohibited from
                                          10.0.1.254 quoting it (EHOSTUNREACH)
  26-27  10.0.0.1:50000 -> 10.0.0.53:53   UDP query; ICMP port unreachable from 10.0.0.53
  28-31  ... 40003: the server's FIN at 0.0763 s, more data from the client, RST  (EPIPE)
"""

from __future__ import annotations

import json

import pytest

from pcapdiag.selection import SelectionError, TimeBound, parse_host, parse_time

from .test_cli import DEMO, run, run_proc


def _findings(capsys, *options: str) -> dict[str, list[int]]:
    code, out, err = run(capsys, "analyze", "--format", "json", *options, DEMO)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["frames"] == 31  # every frame is read, and numbered
    return {f["rule"]: f["frames"] for f in doc["findings"]}


def test_host_keeps_the_frame_numbers_of_the_file(capsys) -> None:
    assert _findings(capsys, "--host", "10.0.0.2") == {
        "PD-TCP-001": [1, 2],
        "PD-TCP-004": [22, 23],
        "PD-TCP-006": [28, 30, 31],
    }


def test_an_icmp_error_is_selected_by_the_packet_it_quotes(capsys) -> None:
    # Frame 25 comes from a router (10.0.1.254) to the client: neither is the selected host,
    # but the SYN it quotes went to 10.0.7.7.
    assert _findings(capsys, "--host", "10.0.7.7") == {"PD-TCP-002": [24, 25]}
    assert _findings(capsys, "--host", "10.0.1.254") == {}


def test_port_selects_tcp_and_udp_alike(capsys) -> None:
    assert _findings(capsys, "--port", "53") == {"PD-UDP-001": [26, 27]}
    assert _findings(capsys, "--port", "8080", "--port", "5432") == {
        "PD-TCP-001": [1, 2],
        "PD-TCP-002": [24, 25],
    }
    # Host and port both: a packet must match each.
    assert _findings(capsys, "--host", "10.0.0.2", "--port", "443") == {"PD-TCP-004": [22, 23]}


def test_since_and_until_cut_the_capture_in_time(capsys) -> None:
    # From 40 ms after the first frame: frames 24-31. The EPIPE connection is then seen
    # from its server's FIN on, which is all its finding needs.
    assert _findings(capsys, "--since", "40ms") == {
        "PD-TCP-002": [24, 25],
        "PD-UDP-001": [26, 27],
        "PD-TCP-006": [28, 30, 31],
    }
    # Up to 22:13:20.040Z (39 ms after the first frame): frames 1-23, the EPIPE connection
    # cut before its server closed.
    assert _findings(capsys, "--until", "2023-11-14T22:13:20.040Z") == {
        "PD-TCP-001": [1, 2],
        "PD-TCP-004": [22, 23],
    }
    # Both, the end as a time of another zone: 22:13:20.045Z = 23:13:20.045+01:00; from
    # 38 ms on, after the reset of frame 23 (36.7 ms), whose lone RST would be a finding.
    assert _findings(capsys, "--since", "0.038s", "--until", "2023-11-14T23:13:20.045+01:00") == {
        "PD-TCP-002": [24, 25]
    }


def test_rule_and_errno_select_findings(capsys) -> None:
    assert _findings(capsys, "--rule", "syn-refused", "--rule", "PD-TCP-004") == {
        "PD-TCP-001": [1, 2],
        "PD-TCP-004": [22, 23],
    }
    assert _findings(capsys, "--errno", "econnrefused") == {
        "PD-TCP-001": [1, 2],
        "PD-UDP-001": [26, 27],
    }
    assert _findings(capsys, "--errno", "EPIPE", "--rule", "syn-refused") == {}


def test_the_text_report_counts_only_what_is_selected(capsys) -> None:
    code, out, _err = run(capsys, "analyze", "--host", "10.0.0.2", DEMO)
    assert code == 0
    lines = out.splitlines()
    # Three connections to 10.0.0.2:80 and :8080 and :443... of which 40002 is healthy.
    assert lines[1].startswith("4 TCP connections, 0 UDP flows; 3 failed calls")
    assert "Services with failures: 3 of 3 services" in lines


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--host", "10.0.0.300", "not an IPv4 or IPv6 address"),
        ("--since", "yesterday", "neither an ISO 8601 time"),
        ("--until", "5 minutes", "neither an ISO 8601 time"),
        ("--errno", "EFOO", "not an errno name"),
        ("--rule", "no-such-rule", "no such rule id or name"),
        ("--port", "70000", "70000"),
    ],
)
def test_bad_selection_is_a_usage_error(option: str, value: str, says: str) -> None:
    res = run_proc("analyze", option, value, DEMO)
    assert res.returncode == 2
    assert says in res.stderr.decode()
    assert res.stdout == b""


def test_flows_take_the_same_selection(capsys) -> None:
    code, out, err = run(capsys, "flows", "--format", "csv", "--port", "80", DEMO)
    assert code == 0, err
    rows = out.splitlines()[1:]
    assert [r.split(",")[1:3] for r in rows] == [
        ["10.0.0.1:40002", "10.0.0.2:80"],
        ["10.0.0.1:40003", "10.0.0.2:80"],
    ]


def test_times_read_as_written() -> None:
    assert parse_time("1.5m") == TimeBound(offset_ns=90 * 10**9)
    assert parse_time("+250ms") == TimeBound(offset_ns=250_000_000)
    assert parse_time("2h") == TimeBound(offset_ns=7200 * 10**9)
    assert parse_time("0.000001s") == TimeBound(offset_ns=1000)
    # 1700000000 s after the epoch is 2023-11-14T22:13:20Z; without a zone, UTC.
    assert parse_time("2023-11-14T22:13:20Z") == TimeBound(at_ns=1_700_000_000 * 10**9)
    assert parse_time("2023-11-14T22:13:20.5") == TimeBound(at_ns=1_700_000_000_500_000_000)
    assert parse_time("2023-11-14T17:13:20-05:00") == TimeBound(at_ns=1_700_000_000 * 10**9)
    assert TimeBound(offset_ns=5).resolve(100) == 105
    with pytest.raises(SelectionError):
        parse_time("-5s")


def test_hosts_of_either_family() -> None:
    assert parse_host("10.0.0.2") == bytes([10, 0, 0, 2])
    assert parse_host("[::1]") == bytes(15) + b"\x01"
    with pytest.raises(SelectionError):
        parse_host("example.com")
