"""Compare pcapdiag's verdicts with the recorded truth.

``python -m record.compare DIR [--markdown]`` (with ``samples`` on PYTHONPATH; run from the repo
root so that ``python -m pcapdiag`` is importable).  For every scenario and every capturing host,
each non-listener socket of that host is matched to pcapdiag's flow (local/remote endpoints,
instance number for 4-tuple reuse) and the side; pcapdiag's first finding with an errno for that
flow and side is compared with the first call whose result is ``error`` in truth.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def analyze(pcap: Path) -> dict:
    res = subprocess.run(
        [sys.executable, "-m", "pcapdiag", "analyze", "--format", "json", str(pcap)],
        capture_output=True,
        text=True,
    )
    if not res.stdout.strip():
        return {"error": f"exit {res.returncode}: {res.stderr.strip()[-300:]}", "findings": []}
    return json.loads(res.stdout)


def first_error(sock: dict) -> dict | None:
    for call in sock["calls"]:
        if call["result"] == "error":
            return call
    return None


def compare_dir(root: Path, all_hosts: bool = False) -> list[dict]:
    rows = []
    for truth_path in sorted(root.glob("*/truth.json")):
        truth = json.loads(truth_path.read_text())
        for host in ("client", "server"):
            socks = [
                s
                for s in truth["sockets"]
                if (all_hosts or s["host"] == host) and s["role"] != "listener"
            ]
            if not socks:
                continue
            report = analyze(truth_path.parent / f"{host}.pcap")
            seen: dict[tuple, int] = {}
            for sock in socks:
                side = "client" if sock["role"] == "client" else "server"
                if side == "client":
                    key = (sock["proto"], sock["local"], sock["remote"])
                else:
                    key = (sock["proto"], sock["remote"], sock["local"])
                seen[(sock["host"], *key)] = seen.get((sock["host"], *key), 0) + 1
                instance = seen[(sock["host"], *key)]
                found = [
                    f
                    for f in report["findings"]
                    if f["flow"]["proto"] == key[0]
                    and f["flow"]["client"] == key[1]
                    and f["flow"]["server"] == key[2]
                    and f["flow"].get("instance", 1) == instance
                    and f["side"] == side
                    and f.get("errno")
                ]
                found.sort(key=lambda f: (f.get("first_time") or "", f["frames"] or [0]))
                want = first_error(sock)
                got = found[0] if found else None
                want_s = f"{want['call']} {want['errno']}" if want else "no error"
                got_s = f"{got['call']} {got['errno']['name']}" if got else "no finding"
                match = not report.get("error") and (
                    (want is None and got is None)
                    or (
                        want is not None
                        and got is not None
                        and want["errno"] == got["errno"]["name"]
                    )
                )
                if report.get("error"):
                    got_s = f"pcapdiag failed: {report['error']}"
                rows.append(
                    {
                        "scenario": truth["scenario"],
                        "pcap": f"{host}.pcap",
                        "socket": f"{sock['host']}/{sock['role']} {sock['local']}->{sock['remote']}"
                        + (f" #{instance}" if instance > 1 else ""),
                        "truth": want_s,
                        "pcapdiag": got_s,
                        "rule": got["rule_name"] if got else "",
                        "frames": got["frames"] if got else [],
                        "call_match": bool(want and got and want["call"] == got["call"]),
                        "match": match,
                        "other": [
                            f"{f['rule_name']}:{f['side']}:{f['call']}:{f['errno']['name']}"
                            for f in found[1:]
                        ],
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--all-hosts",
        action="store_true",
        help="also compare the sockets of the host that did not capture (seen from afar)",
    )
    args = ap.parse_args(argv)
    rows = compare_dir(args.dir, all_hosts=args.all_hosts)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| scenario | pcap | socket | truth (first error) | pcapdiag | match |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        extra = f" ({r['rule']}, frames {r['frames']})" if r["rule"] else ""
        mark = "yes" if r["match"] else "**no**"
        if r["match"] and r["rule"] and not r["call_match"]:
            mark = "yes (call differs)"
        print(
            f"| {r['scenario']} | {r['pcap']} | {r['socket']} | {r['truth']} | "
            f"{r['pcapdiag']}{extra} | {mark} |"
        )
    total = len(rows)
    ok = sum(r["match"] for r in rows)
    print(f"\n{ok}/{total} sockets match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
