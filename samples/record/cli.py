"""Command line: ``python samples/record.py --out DIR [--only NAME ...] [--list]``."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from .runner import run_scenario
from .scenarios import all_scenarios


def first_error(sock: dict) -> str:
    for call in sock["calls"]:
        if call["result"] == "error":
            return f"{call['call']} {call['errno']} @{call['t']:.3f}s"
    return "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, help="output directory (one subdirectory per scenario)")
    ap.add_argument(
        "--only", action="append", default=[], help="scenario name (repeatable, or comma separated)"
    )
    ap.add_argument("--list", action="store_true", help="list scenario names and exit")
    ap.add_argument(
        "--delay-ms",
        type=float,
        default=2.0,
        help="one-way delay on the client link (default 2 ms)",
    )
    args = ap.parse_args(argv)
    scenarios = all_scenarios()
    if args.list:
        for sc in scenarios:
            print(f"{sc.name:28} {sc.description}")
        return 0
    if args.out is None:
        ap.error("--out is required")
    if os.geteuid() != 0:
        ap.error("must run as root (network namespaces)")
    wanted = {n for item in args.only for n in item.split(",") if n}
    unknown = wanted - {sc.name for sc in scenarios}
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    selected = [sc for sc in scenarios if not wanted or sc.name in wanted]
    failures = 0
    for idx, sc in enumerate(selected):
        prefix = f"pdrec-{os.getpid()}-{idx}-"
        t0 = time.monotonic()
        try:
            truth = run_scenario(sc, args.out, prefix, delay_ms=args.delay_ms)
        except Exception:
            failures += 1
            print(f"FAIL {sc.name}", file=sys.stderr)
            traceback.print_exc()
            continue
        errs = (
            "; ".join(
                f"{s['host']}/{s['role']}: {first_error(s)}"
                for s in truth["sockets"]
                if first_error(s) != "-"
            )
            or "no errors"
        )
        print(f"ok   {sc.name:28} {time.monotonic() - t0:5.1f}s  {errs}", flush=True)
    return 1 if failures else 0
