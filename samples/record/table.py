"""The table of recorded scenarios in docs/recordings.md: what the capture shows, what the
real application saw, and what pcapdiag reports of each capture alone and of both joined.
``python -m record.table samples/recorded`` (with samples on PYTHONPATH, from the repository
root) prints it; tests/cli/test_readme.py checks the document has it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _saw(truth: dict[str, Any]) -> str:
    seen = []
    for sock in truth["sockets"]:
        first = next((c for c in sock["calls"] if c["result"] == "error"), None)
        if first is not None:
            seen.append(f"{sock['host']} {first['call']}() {first['errno']}")
    return "; ".join(seen) or "no error"


def _cause(truth: dict[str, Any]) -> str:
    """Who caused the failure, as the scenario records it (per host where they differ)."""
    by_host = truth.get("origin_by_host", {})
    if by_host:
        return ", ".join(f"{actor} (for the {host})" for host, actor in sorted(by_host.items()))
    return truth.get("origin") or "-"


def _reported(scenario_dir: Path, rules: Any) -> str:
    from pcapdiag.api import analyze

    seen: dict[str, list[str]] = {}
    for host in ("client", "server"):
        report = analyze([str(scenario_dir / f"{host}.pcap")], rules)
        for f in report.findings:
            prim = f.primary("linux")
            if prim is not None and prim.errno is not None:
                what = f"{f.side} {prim.call}() {prim.errno}, {f.rule}, origin {f.origin.actor}"
                seen.setdefault(what, []).append(f"{host}.pcap")
    return "; ".join(f"{k} ({', '.join(v)})" for k, v in seen.items()) or "no errno"


def _joined(scenario_dir: Path, rules: Any) -> str:
    """What `analyze --join client.pcap server.pcap` says: each errno with its origin."""
    from pcapdiag.api import analyze

    views = [str(scenario_dir / f"{host}.pcap") for host in ("client", "server")]
    seen = []
    for f in analyze(views, rules, join=True).findings:
        prim = f.primary("linux")
        if prim is not None and prim.errno is not None:
            seen.append(
                f"{f.side} {prim.call}() {prim.errno}, origin {f.origin.actor} "
                f"({f.origin.confidence})"
            )
    return "; ".join(dict.fromkeys(seen)) or "no errno"


def readme_table(recordings: Path) -> str:
    from pcapdiag.rules.loader import load_rules

    rules = load_rules()
    lines = [
        "| scenario | what happened on the wire | the real application saw | caused by "
        "| pcapdiag reports | with `--join client.pcap server.pcap` |",
        "|---|---|---|---|---|---|",
    ]
    for truth_path in sorted(recordings.glob("*/truth.json")):
        truth = json.loads(truth_path.read_text())
        what = truth["description"].split(". ")[0].split(" (Client link")[0].rstrip(".")
        lines.append(
            f"| {truth['scenario']} | {what.replace('|', '/')} | {_saw(truth)} | "
            f"{_cause(truth)} | {_reported(truth_path.parent, rules)} | "
            f"{_joined(truth_path.parent, rules)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(readme_table(Path(sys.argv[1] if len(sys.argv) > 1 else "samples/recorded")))
