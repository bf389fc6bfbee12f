"""`pcapdiag flows`: every flow in Zeek's vocabulary (conn_state, history), with its duration,
packets and payload bytes each way, as text, CSV and JSON. The expected values are read
from the packets (tshark, or the test's own packet list), not from pcapdiag's output."""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pcapdiag.render.flows import FIELDS
from tests.cli.test_cli import run
from tests.support.scenario import T0, Talk, write_merged

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "samples" / "recorded"
FIN_DATA_RST = ROOT / "rules" / "write-after-peer-close" / "fin-data-rst.pcap"
PORT_REUSE = ROOT / "tests" / "captures" / "port-reuse.pcap"
FLOWS_SCHEMA = json.loads(
    resources.files("pcapdiag").joinpath("schemas/flows-v1.schema.json").read_text()
)
REPORT_SCHEMA = json.loads(
    resources.files("pcapdiag").joinpath("schemas/report-v1.schema.json").read_text()
)
HEADER = (
    "proto",
    "client",
    "server",
    "conn_state",
    "duration",
    "c pkts",
    "c bytes",
    "s pkts",
    "s bytes",
    "client state",
    "server state",
    "history",
    "end",
    "failed",
)


def table_rows(out: str) -> list[dict[str, str]]:
    """The text table's rows by column. Every column but the numbers is left-aligned under
    its header; the numbers are right-aligned to its end: a cell lies between the end of the
    previous column's header (or its start, for a left-aligned one) and the next header."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    header = lines[0]
    starts = [header.index(f"{h}  ") if h != "failed" else header.index(h) for h in HEADER]
    assert starts == sorted(starts), header
    bounds = [*starts[1:], None]
    return [
        {h: ln[a:b].strip() for h, a, b in zip(HEADER, starts, bounds, strict=True)}
        for ln in lines[1:]
    ]


@pytest.fixture(scope="module")
def three_flows(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three flows:
    1. 10.0.0.1:40001 -> 10.0.0.2:80, frames 1-9, 1 ms apart: SYN (S), SYN-ACK (h), ACK (A),
       5 bytes from the client (D), 7 from the server (d), the client's ACK, the server's
       FIN (f), the client's FIN (F), the server's ACK (a): SF, ShADdfFa, client 5 packets
       and 5 bytes, server 4 and 7. The server closed first: it ends in TIME_WAIT, the
       client CLOSED. The stamps (tshark) put frame 9 0.007999 s after frame 1.
    2. 10.0.0.1:40002 -> 10.0.0.9:5432, frame 10: one SYN, nothing back: S0, S; the server
       sent nothing, so its state is unknown.
       It starts 1 s after the first, 3 s before the capture ends: a failed attempt.
    3. UDP 10.0.0.1:50000 -> 10.0.0.53:53, frames 11-12, 4 s after the first: 20 bytes, 60
       back: SF, Dd, 1 ms."""
    a = Talk(cport=40001, t=T0)
    a.handshake()
    a.tcp("c", "PA", b"hello")
    a.tcp("s", "PA", b"goodbye")
    a.tcp("c", "A", options=[])
    a.tcp("s", "FA")
    a.tcp("c", "FA")
    a.tcp("s", "A")
    b = Talk(cport=40002, server="10.0.0.9", sport=5432, t=T0 + 1)
    b.tcp("c", "S")
    c = Talk(cport=50000, server="10.0.0.53", sport=53, t=T0 + 4)
    c.udp("c", b"q" * 20)
    c.udp("s", b"a" * 60)
    return write_merged(tmp_path_factory.mktemp("flows") / "three.pcap", [a, b, c])


def test_text_table(capsys, three_flows: str) -> None:
    code, out, err = run(capsys, "flows", three_flows)
    assert code == 0, err
    tcp, syn, udp = table_rows(out)
    assert tcp == {
        "proto": "tcp",
        "client": "10.0.0.1:40001",
        "server": "10.0.0.2:80",
        "conn_state": "SF",
        "duration": "0.007999",
        "c pkts": "5",
        "c bytes": "5",
        "s pkts": "4",
        "s bytes": "7",
        "client state": "CLOSED",
        "server state": "TIME_WAIT",
        "history": "ShADdfFa",
        "end": "closed",
        "failed": "",
    }
    assert (syn["conn_state"], syn["history"], syn["duration"]) == ("S0", "S", "0.000000")
    assert (syn["c pkts"], syn["s pkts"]) == ("1", "0")
    assert (syn["client state"], syn["server state"]) == ("SYN_SENT", "unknown")
    assert syn["failed"] == "yes"  # a SYN left unanswered for 3 s is a finding
    assert (udp["proto"], udp["conn_state"], udp["history"]) == ("udp", "SF", "Dd")
    assert (udp["c bytes"], udp["s bytes"], udp["duration"]) == ("20", "60", "0.001000")


def test_csv(capsys, three_flows: str) -> None:
    code, out, _ = run(capsys, "flows", "--format", "csv", three_flows)
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == FIELDS
    tcp, syn, udp = list(reader)
    assert (tcp["conn_state"], tcp["history"], tcp["duration_s"]) == ("SF", "ShADdfFa", "0.007999")
    assert (tcp["client_packets"], tcp["client_bytes"]) == ("5", "5")
    assert (tcp["server_packets"], tcp["server_bytes"]) == ("4", "7")
    assert (tcp["first_frame"], tcp["instance"], tcp["failed"]) == ("1", "1", "false")
    assert (syn["conn_state"], syn["server_state"], syn["failed"]) == ("S0", "unknown", "true")
    assert (udp["conn_state"], udp["client_state"], udp["first_frame"]) == ("SF", "UDP", "11")


def test_json_document_validates_and_says_the_same(capsys, three_flows: str) -> None:
    code, out, _ = run(capsys, "flows", "--format", "json", three_flows)
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, FLOWS_SCHEMA)
    assert doc["schema"] == "pcapdiag.flows/v1"
    tcp, syn, udp = doc["flows"]
    assert list(tcp) == list(FIELDS)
    assert tcp["conn_state"] == "SF" and tcp["duration_s"] == 0.007999
    assert tcp["first_time"] == "2023-11-14T22:13:20.001000Z"
    assert (syn["conn_state"], syn["server_state"], syn["server_packets"]) == ("S0", "unknown", 0)
    assert (udp["history"], udp["server_bytes"]) == ("Dd", 60)
    # The text is what json.dumps writes for the whole document, streamed or not.
    assert out == json.dumps(doc, indent=2) + "\n"


def test_the_json_schema_catches_a_wrong_state(capsys, three_flows: str) -> None:
    _code, out, _ = run(capsys, "flows", "--format", "json", three_flows)
    doc = json.loads(out)
    doc["flows"][0]["conn_state"] = "ESTABLISHED"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, FLOWS_SCHEMA)


def test_no_report_claims_a_listener_nothing_showed(capsys, three_flows: str) -> None:
    # The unanswered SYN: the server sent nothing. Neither the listing nor the JSON report
    # (every flow, and the failed flows of the default report) says LISTEN.
    for args in (("--all",), ()):
        code, out, _ = run(capsys, "analyze", "--format", "json", "--quiet", *args, three_flows)
        assert code == 0
        doc = json.loads(out)
        jsonschema.validate(doc, REPORT_SCHEMA)
        (syn,) = [f for f in doc["flows"] if f["server"] == "10.0.0.9:5432"]
        assert (syn["client_state"], syn["server_state"]) == ("SYN_SENT", "unknown")
        assert all("LISTEN" not in (f["client_state"], f["server_state"]) for f in doc["flows"])
    _code, out, _ = run(capsys, "flows", three_flows)
    assert "LISTEN" not in out


def test_schema_command_prints_the_flows_schema(capsys) -> None:
    code, out, _ = run(capsys, "schema", "--flows")
    assert code == 0 and json.loads(out) == FLOWS_SCHEMA
    jsonschema.Draft202012Validator.check_schema(FLOWS_SCHEMA)
    code, _out, err = run(capsys, "schema", "--flows", "--rule")
    assert code == 2 and "one schema at a time" in err


def test_fin_data_rst(capsys) -> None:
    # Frames (tshark): 1 S, 2 SA, 3 A, 4 27 bytes from the client, 5 A, 6 40 from the
    # server, 7 A, 8 the server's FIN, 9 A, 10 23 bytes from the client, 11 the server's RST.
    # Letters: S h A D a d f r. Zeek: the server CLOSED then RESET (the client had sent no
    # FIN), the client ESTABLISHED: RSTR.
    code, out, err = run(capsys, "flows", FIN_DATA_RST)
    assert code == 0, err
    (row,) = table_rows(out)
    assert (row["client"], row["server"]) == ("10.0.0.1:40000", "10.0.0.2:80")
    assert (row["conn_state"], row["history"], row["duration"]) == ("RSTR", "ShADadfr", "0.208999")
    assert (row["c pkts"], row["c bytes"], row["s pkts"], row["s bytes"]) == ("6", "50", "5", "40")
    # The server's RST (frame 11) ends the connection on both sides.
    assert (row["client state"], row["server state"]) == ("CLOSED", "CLOSED")
    assert row["failed"] == "yes"


def test_two_connections_on_one_tuple(capsys) -> None:
    # port-reuse: a clean connection (frames 1-10: the client's FIN at 8, the server's at 9;
    # the client closed first, so it ends in TIME_WAIT), then a new SYN on the same 4-tuple
    # that the server resets (11-12).
    code, out, _ = run(capsys, "flows", PORT_REUSE)
    assert code == 0
    first, second = table_rows(out)
    assert first["client"] == second["client"] == "10.0.0.1:40000"
    assert (first["conn_state"], first["history"]) == ("SF", "ShADadFf")
    assert (first["c pkts"], first["s pkts"]) == ("6", "4")
    assert (first["client state"], first["server state"]) == ("TIME_WAIT", "CLOSED")
    assert first["failed"] == ""
    assert (second["conn_state"], second["history"]) == ("REJ", "Sr")
    assert (second["c pkts"], second["s pkts"], second["failed"]) == ("1", "1", "yes")


# Recordings of real kernels (samples/recorded/*/client.pcap), read with tshark: frames 1-2
# are the client's ARP; times are tshark's frame.time_relative.
RECORDINGS = {
    # 3 S, 4 SA, 5 A, 6 100 bytes (D), 7 A (a), 8 100 bytes (d), 9 A, 10 the server's FIN (f),
    # 11 the client's FIN (F), 12 A: SF; client frames 3 5 6 9 11, server 4 7 8 10 12.
    "orderly-close": ("SF", "ShADadfF", 5, 100, 5, 100, 0.063704 - 0.007338),
    # 3 S, 4 SA, 5 A, 6 100 bytes (D), 7 the client's FIN (F), 8 A (a), 9 300 bytes (d),
    # 10 A, 11 the server's FIN (f), 12 A: SF; the client half-closed first.
    "half-close": ("SF", "ShADFadf", 6, 100, 4, 300, 0.020256 - 0.004396),
    # 3 S, 4 SA, 5 A, 6 100 bytes (D), 7 A (a), 8 100 bytes (d), 9 A, 10 the client's RST
    # (R): the originator aborted an established connection, RSTO.
    "local-abort": ("RSTO", "ShADadR", 5, 100, 3, 100, 0.325812 - 0.004681),
    # 3 S, 4 the server's RST-ACK (r): REJ.
    "refused": ("REJ", "Sr", 1, 0, 1, 0, 0.012008 - 0.007657),
    # 3-8 the same SYN six times, nothing back: S0, one s (the same sequence number).
    "syn-timeout": ("S0", "S", 6, 0, 0, 0, 5.101245 - 0.009072),
}


@pytest.mark.parametrize("scenario", sorted(RECORDINGS))
def test_recordings(capsys, scenario: str) -> None:
    state, history, c_pkts, c_bytes, s_pkts, s_bytes, duration = RECORDINGS[scenario]
    code, out, _ = run(capsys, "flows", "--format", "json", RECORDED / scenario / "client.pcap")
    assert code == 0
    (flow,) = json.loads(out)["flows"]
    assert (flow["conn_state"], flow["history"]) == (state, history)
    got = (flow["client_packets"], flow["client_bytes"], flow["server_packets"])
    assert got == (c_pkts, c_bytes, s_pkts)
    assert flow["server_bytes"] == s_bytes
    assert flow["duration_s"] == pytest.approx(duration, abs=1e-6)
    assert flow["first_frame"] == 3
    if scenario == "syn-timeout":
        assert (flow["client_state"], flow["server_state"]) == ("SYN_SENT", "unknown")
