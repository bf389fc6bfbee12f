"""`analyze --join client.pcap server.pcap` on every recorded scenario (samples/record.py):
each socket of both hosts gets the first errno the kernel gave it (or none), at the
confidence of a capture on its own host, with the origin the scenario records or unknown;
and where the two views decide the origin (a RST the server never sent, packets lost
between the hosts), the joined report names it at high confidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcapdiag.api import analyze
from tests.system.test_recorded import TRUTHS, _check_socket


def _joined(truth_path: Path, builtin_rules):
    views = [str(truth_path.parent / f"{h}.pcap") for h in ("client", "server")]
    return analyze(views, builtin_rules, join=True)


@pytest.mark.parametrize("truth_path", TRUTHS, ids=[t.parent.name for t in TRUTHS])
def test_every_socket_of_both_hosts(truth_path: Path, builtin_rules) -> None:
    truth = json.loads(truth_path.read_text())
    report = _joined(truth_path, builtin_rules)
    assert report.join is not None and not report.damaged
    seen: dict[tuple[str, str, str, str], int] = {}
    problems = []
    for sock in truth["sockets"]:
        if sock["role"] == "listener":
            continue
        key = (sock["host"], sock["proto"], sock["local"], sock["remote"])
        seen[key] = instance = seen.get(key, 0) + 1
        problems.append(_check_socket(sock, instance, truth, report))
    assert not [p for p in problems if p], "\\n".join(p for p in problems if p)


@pytest.mark.parametrize(
    ("scenario", "why"),
    [
        # The server's capture ran past the RST's time and holds no such RST.
        ("inject-rst-oneway", "has none on this connection: the server never sent it"),
        # The client's packets seen leaving its host, missing on the server's.
        ("data-timeout", "packets never reached the server's host"),
        ("conntrack-idle-drop", "packets never reached the server's host"),
        ("pmtu-blackhole", "packets never reached the server's host"),
        # The same through SNAT/DNAT: the two views name the connection differently.
        ("nat-data-timeout", "packets never reached the server's host"),
    ],
)
def test_what_only_two_views_prove(scenario: str, why: str, builtin_rules) -> None:
    truth = ROOT / "samples" / "recorded" / scenario / "truth.json"
    report = _joined(truth, builtin_rules)
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    assert (f.origin.actor, f.origin.confidence) == ("network", "high"), f.origin.why
    assert why in f.origin.why


def test_a_rst_after_the_other_capture_stopped_proves_nothing(builtin_rules) -> None:
    # inject-rst-both: the server's capture has no frame after 10.333161 s; the forged RST
    # reaches the client at 10.336340 s. That the server never sent it is not proven (its
    # capture may have stopped): the single view's reading stands (TTL and IP ID: network).
    truth = ROOT / "samples" / "recorded" / "inject-rst-both" / "truth.json"
    report = _joined(truth, builtin_rules)
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    assert f.origin.actor == "network" and "never sent it" not in f.origin.why


def test_evidence_cites_every_view(builtin_rules) -> None:
    # epipe: the server's FIN, the client's data after it and the server's RST cross both
    # capture points: the finding cites the frames of each file.
    truth = ROOT / "samples" / "recorded" / "epipe" / "truth.json"
    report = _joined(truth, builtin_rules)
    (f,) = [f for f in report.findings if f.side == "client"]
    client, server = (str(truth.parent / h) for h in ("client.pcap", "server.pcap"))
    assert [n for c, n in f.evidence if c == client] == list(f.frames)
    assert [n for c, n in f.evidence if c == server]
    assert report.join.clocks[1].how_sure != "none"


def test_a_connection_both_views_saw_counts_once(builtin_rules) -> None:
    # epipe: one connection, in both files.
    truth = ROOT / "samples" / "recorded" / "epipe" / "truth.json"
    report = _joined(truth, builtin_rules)
    assert (report.tcp_connections, report.join.connections) == (1, 1)


def test_one_view_alone_is_not_joined(builtin_rules) -> None:
    report = analyze([str(ROOT / "samples" / "recorded" / "epipe" / "client.pcap")], builtin_rules)
    assert report.join is None
    d = report.to_dict()
    assert d["join"] is None
    (f,) = d["findings"]
    assert f["evidence"] == [{"capture": f["capture"], "frame": n} for n in f["frames"]]


ROOT = Path(__file__).resolve().parents[2]


def test_markdown_shows_each_view(builtin_rules) -> None:
    from pcapdiag.render.markdown import to_markdown

    truth = ROOT / "samples" / "recorded" / "epipe" / "truth.json"
    text = to_markdown(_joined(truth, builtin_rules))
    client, server = (str(truth.parent / h) for h in ("client.pcap", "server.pcap"))
    assert f"| `{client}` | reference |" in text
    assert "| view | frames of this evidence |" in text
    # The FIN, the data after it and the RST: frames 8, 10 and 11 in both files.
    assert f"| `{server}` | 8, 10, 11 |" in text


def test_the_round_trip_between_the_captures(builtin_rules) -> None:
    # epipe: 5 of the client's packets and 4 of the server's are in both files; the medians
    # of their one-way delays add up to 4.804 ms whatever the clocks' offset (worked out
    # separately from tcpdump -tt times of both files).
    truth = ROOT / "samples" / "recorded" / "epipe" / "truth.json"
    (f,) = [f for f in _joined(truth, builtin_rules).findings if f.side == "client"]
    (note,) = [n for n in f.notes if n.startswith("Round trip")]
    assert "4.804 ms (5 packets matched client to server, 4 server to client)" in note


def test_connections_through_address_translation_are_matched(builtin_rules) -> None:
    # nat-data-timeout: the client connects to the router's 10.91.1.1:8081, the server sees
    # 10.91.2.1:50000-50999 -> 10.91.2.2:8080 (DNAT and SNAT on the router). Both connections
    # are in both files under other names; each is matched to its own (truth.json: the
    # server's sockets in the order accepted, the client's in the order connected).
    truth_path = ROOT / "samples" / "recorded" / "nat-data-timeout" / "truth.json"
    truth = json.loads(truth_path.read_text())
    report = _joined(truth_path, builtin_rules)
    assert (report.join.connections, report.join.translated) == (2, 2)
    assert report.join.clocks[1].how_sure != "none"
    accepted = [s["remote"] for s in truth["sockets"] if s["host"] == "server" and s["remote"]]
    (f,) = [f for f in report.findings if f.side == "client" and f.primary() is not None]
    assert f.flow.client == "10.91.1.2:40001" and f.flow.server == "10.91.1.1:8081"
    (note,) = [n for n in f.notes if n.startswith("Address translation")]
    # The failing connection is the second the server accepted.
    assert f"as {accepted[1]} -> 10.91.2.2:8080" in note, note
    assert "initial sequence numbers" in note
