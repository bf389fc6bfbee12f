"""Several captures in one run: directories, and --merge of a rotated capture."""

from __future__ import annotations

from pathlib import Path

import dpkt

from pcapdiag.api import analyze
from pcapdiag.io.reader import open_capture

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "samples/demo.pcap"


def _split(tmp_path: Path, at: int) -> tuple[Path, Path]:
    """Cut samples/demo.pcap after frame `at`, as tcpdump -C would rotate it."""
    frames = list(open_capture(str(DEMO)))
    parts = []
    for name, chunk in (("b-first.pcap", frames[:at]), ("a-second.pcap", frames[at:])):
        path = tmp_path / name  # names sort the wrong way round: order must come from time
        with path.open("wb") as fh:
            w = dpkt.pcap.Writer(fh, linktype=1, nano=True)
            for fr in chunk:
                sec, ns = divmod(fr.ts_ns, 1_000_000_000)
                fh.write(w._pack_hdr(sec, ns, len(fr.data), fr.orig_len) + fr.data)
        parts.append(path)
    return parts[0], parts[1]


def _facts(report):
    return sorted(
        (f.rule, f.flow.client, f.primary("linux").errno, f.frames) for f in report.findings
    )


def test_merge_tracks_connections_across_files(tmp_path: Path, builtin_rules) -> None:
    first, second = _split(tmp_path, 20)  # the EPIPE connection (frames 13-19, 28-31) spans both
    whole = analyze([str(DEMO)], builtin_rules)
    merged = analyze([str(second), str(first)], builtin_rules, merge=True)
    assert _facts(merged) == _facts(whole)
    assert [c.frames for c in merged.captures] == [20, 11]
    epipe = next(f for f in merged.findings if f.rule == "PD-TCP-006")
    assert epipe.capture == f"{first} + {second}" and epipe.frames == (28, 30, 31)


def test_without_merge_each_file_stands_alone(tmp_path: Path, builtin_rules) -> None:
    first, second = _split(tmp_path, 20)
    apart = analyze([str(first), str(second)], builtin_rules)
    # In the second file alone the EPIPE connection has no handshake: its FIN, data and RST are
    # frames 8, 10 and 11 of that file (original 28, 30, 31 minus the 20 before it),
    # and the roles are guessed from the ports.
    epipe = next(f for f in apart.findings if f.rule == "PD-TCP-006")
    assert epipe.capture == str(second) and epipe.frames == (8, 10, 11)
    assert epipe.flow.roles == "guessed"


def test_a_directory_means_its_capture_files(tmp_path: Path, builtin_rules) -> None:
    first, second = _split(tmp_path, 20)
    (tmp_path / "notes.txt").write_text("not a capture")
    report = analyze([str(tmp_path)], builtin_rules)
    assert [c.path for c in report.captures] == [str(second), str(first)]  # sorted by name


def test_merge_by_dir_makes_one_rotation_of_each_directory(tmp_path: Path, builtin_rules) -> None:
    # Two hosts, each with demo.pcap rotated in two pieces in a directory of its own: each
    # host is one capture, its EPIPE connection tracked across its own two files.
    pieces = {}
    for host in ("host-a", "host-b"):
        (tmp_path / host).mkdir()
        pieces[host] = _split(tmp_path / host, 20)
    files = [str(p) for host in ("host-a", "host-b") for p in reversed(pieces[host])]
    report = analyze(files, builtin_rules, merge=True, merge_by_dir=True)
    labels = [f"{pieces[h][0]} + {pieces[h][1]}" for h in ("host-a", "host-b")]
    epipe = [f for f in report.findings if f.rule == "PD-TCP-006"]
    assert sorted(f.capture for f in epipe) == labels
    assert all(f.frames == (28, 30, 31) for f in epipe)
    assert [c.frames for c in report.captures] == [20, 11, 20, 11]
    # One capture of all four files, without --merge-by-dir: the hosts' connections in one
    # table, frames numbered on across the four.
    one = analyze(files, builtin_rules, merge=True)
    [label] = {f.capture for f in one.findings}
    assert sorted(label.split(" + ")) == sorted(files)
