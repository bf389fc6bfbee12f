"""Compare pcapdiag's findings on a generated capture with the generator's truth.

    python bench/check.py F.pcap [--report R.json] [--truth F.truth.json]

runs `python -m pcapdiag analyze --format json F.pcap` (or reads an existing JSON report) and
checks, per connection and side (flow client, server, proto; the side whose application
fails):

- every failure in F.truth.json is found, and the first errno pcapdiag reports for that
  connection and side (findings ordered by first time, then frames) is exactly the truth's;
- no finding with an errno falls on a connection and side the truth does not list (every flow
  the generator did not make fail is healthy, and so is the other side of a failed one).

Findings beyond --max-alike are only counted, in the report's groups (same rule, side, errno
and server address). A failure not among the findings listed is found when a group with its
errno, side and server address still has a counted finding to claim; counted findings no
failure claims are false errnos.

Prints the misses (absent or wrong errno) and the false errnos; exit 1 if there is any, else 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, str, str, str]  # proto, client, server, side


@dataclass
class Verdict:
    failures: int = 0
    found: int = 0
    errno_findings: int = 0
    counted: int = 0  # failures found among the findings a group only counts
    misses: list[str] = field(default_factory=list)  # absent, or a different first errno
    false_errnos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.misses and not self.false_errnos

    def summary(self) -> str:
        head = (
            f"{self.found}/{self.failures} injected failures found with the right errno"
            + (
                f" ({self.counted} of them only counted, beyond --max-alike)"
                if self.counted
                else ""
            )
            + f"; {len(self.misses)} misses, {len(self.false_errnos)} false errnos"
        )
        if self.ok:
            return head + ": no misses, no false errnos"
        return head


def truth_path(pcap: Path) -> Path:
    name = pcap.name[:-5] if pcap.name.endswith(".pcap") else pcap.name
    return pcap.with_name(name + ".truth.json")


def _key(f: dict[str, Any]) -> Key:
    flow = f["flow"]
    return (flow["proto"], flow["client"], flow["server"], f["side"])


def compare(report: dict[str, Any], truth: dict[str, Any]) -> Verdict:
    v = Verdict()
    want: dict[Key, dict[str, Any]] = {}
    for t in truth["failures"]:
        k = (t["proto"], t["client"], t["server"], t["side"])
        if k in want:
            v.notes.append(f"truth lists {k} twice")
        want[k] = t
    v.failures = len(want)
    got: dict[Key, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        if f.get("errno") is None:
            continue
        v.errno_findings += 1
        got.setdefault(_key(f), []).append(f)
        if f["flow"].get("instance", 1) != 1:
            v.notes.append(f"{_key(f)}: instance {f['flow']['instance']} (ports never reused)")
    for findings in got.values():
        findings.sort(key=lambda f: (f["first_time"], f["frames"]))
    # (errno, side, server address) -> findings only counted, left to claim
    counted: dict[tuple[str, str, str], int] = {}
    for g in report.get("groups", ()):
        if g.get("errno") is not None and g["count"] > g["listed"]:
            gk = (g["errno"]["name"], g["side"], g["server"])
            counted[gk] = counted.get(gk, 0) + g["count"] - g["listed"]
    for k, t in want.items():
        label = f"{t['kind']} {k[0]} {k[1]} -> {k[2]} {k[3]} (truth frame {t.get('frame')})"
        mine = got.get(k)
        if not mine:
            gk = (t["errno"], k[3], k[2].rpartition(":")[0])
            if counted.get(gk, 0) > 0:
                counted[gk] -= 1
                v.found += 1
                v.counted += 1
                continue
            v.misses.append(f"MISS {label}: expected {t['errno']}, pcapdiag reports no errno")
            continue
        first = mine[0]
        if first["errno"]["name"] != t["errno"]:
            v.misses.append(
                f"WRONG {label}: expected {t['errno']}, pcapdiag says {first['call']} "
                f"{first['errno']['name']} ({first['rule']}, frames {first['frames']})"
            )
            continue
        v.found += 1
    for k, findings in got.items():
        if k in want:
            continue
        for f in findings:
            v.false_errnos.append(
                f"FALSE {k[0]} {k[1]} -> {k[2]} {k[3]}: {f['call']} {f['errno']['name']} "
                f"({f['rule']} {f['rule_name']}, frames {f['frames']}); truth: healthy"
            )
    for (errno, side, server), left in counted.items():
        if left:
            v.false_errnos.append(
                f"FALSE {left} findings counted in a group ({side} {errno} to {server}) that no "
                "failure of the truth claims"
            )
    return v


def run_pcapdiag(pcap: Path, extra: list[str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pcapdiag", "analyze", "--format", "json", *(extra or [])]
    res = subprocess.run([*cmd, str(pcap)], capture_output=True, text=True, check=False)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"pcapdiag exited {res.returncode}: {res.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def check(
    pcap: Path, report: dict[str, Any] | None = None, truth_file: Path | None = None
) -> Verdict:
    truth = json.loads((truth_file or truth_path(pcap)).read_text())
    if report is None:
        report = run_pcapdiag(pcap)
    v = compare(report, truth)
    frames = report["summary"]["frames"]
    if frames != truth["frames"]:
        v.notes.append(f"pcapdiag read {frames} frames, the generator wrote {truth['frames']}")
    return v


def print_verdict(v: Verdict, limit: int = 50, out: Any = None) -> None:
    out = out or sys.stdout
    for line in (v.misses + v.false_errnos)[:limit]:
        print(line, file=out)
    more = len(v.misses) + len(v.false_errnos) - limit
    if more > 0:
        print(f"... and {more} more", file=out)
    for note in v.notes[:limit]:
        print(f"note: {note}", file=out)
    print(f"correctness: {v.summary()}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pcap", type=Path)
    ap.add_argument("--report", type=Path, help="an existing pcapdiag JSON report to check")
    ap.add_argument("--truth", type=Path, help="default: F.truth.json beside F.pcap")
    ap.add_argument("--limit", type=int, default=50, help="problems to print (default 50)")
    args = ap.parse_args(argv)
    report = json.loads(args.report.read_text()) if args.report else None
    v = check(args.pcap, report, args.truth)
    print_verdict(v, args.limit)
    return 0 if v.ok and not v.notes else 1


if __name__ == "__main__":
    sys.exit(main())
