"""Golden reports: a digest of every report format for every committed and public capture.

The restructure into stage packages (and any later change meant to leave reports alone) must
give byte-identical reports; tests/findings/test_golden_reports.py holds the package to the
digests recorded in tests/data/golden/reports.json. An intended change of output re-records
them: `python -m tests.support.golden --write` (then review the diff of the reports, e.g. with
`--dump DIR` before and after).

Each capture is analysed through the command line, in-process, from a fixed working
directory with a relative path (the path is part of every report): committed captures from
the repository's root, public ones from the public captures' directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden" / "reports.json"
SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")
COMMITTED = ("samples", "tests/captures", "tests/data/damaged", "tests/data/fuzz")

# (name, arguments after the capture): every renderer, the flows table, other platforms.
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("json", ("--format", "json")),
    ("json-all", ("--format", "json", "--all")),
    ("json-windows", ("--format", "json", "--platform", "windows")),
    ("json-darwin", ("--format", "json", "--platform", "darwin")),
    ("text", ("--format", "text", "--color", "never")),
    ("text-all", ("--format", "text", "--color", "never", "--all")),
    ("rich", ("--format", "text", "--color", "always")),
    ("markdown", ("--format", "markdown")),
    ("junit", ("--format", "junit")),
    ("html", ("--format", "html")),
)


def public_dir() -> Path:
    return Path(os.environ.get("PCAPDIAG_PUBLIC_CAPTURES", ROOT.parent / "shared/captures/public"))


def captures() -> Iterator[tuple[str, Path, str]]:
    """(key, working directory, relative path) of every capture with a golden report."""
    for top in COMMITTED:
        for p in sorted((ROOT / top).rglob("*")):
            if p.is_file() and (p.name.endswith(SUFFIXES) or top.startswith("tests/data")):
                rel = str(p.relative_to(ROOT))
                yield rel, ROOT, rel
    pub = public_dir()
    if pub.is_dir():
        for p in sorted(pub.rglob("*")):
            if p.is_file() and p.name.endswith(SUFFIXES):
                rel = str(p.relative_to(pub))
                yield "public/" + rel, pub, rel


def run(workdir: Path, rel: str, args: tuple[str, ...], tmp: Path) -> tuple[int, bytes]:
    from pcapdiag.cli import main

    runner = CliRunner()
    old = Path.cwd()
    os.chdir(workdir)
    code = 0
    try:
        with runner.isolation(env={"COLUMNS": "100"}) as (out, _err, *_):
            try:
                main(["analyze", rel, "--quiet", "--jobs", "1", *args])
            except SystemExit as exc:
                code = int(exc.code or 0)
            data = out.getvalue()
    finally:
        os.chdir(old)
    return code, data


def export_digest(workdir: Path, rel: str, tmp: Path) -> str:
    out = tmp / "export"
    if out.exists():
        for f in out.iterdir():
            f.unlink()
    run(workdir, rel, ("--format", "json", "--export", str(out)), tmp)
    h = hashlib.sha256()
    for f in sorted(out.iterdir()) if out.exists() else []:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def record(tmp: Path, dump: Path | None = None, only: str | None = None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, workdir, rel in captures():
        if only is not None and only not in key:
            continue
        entry: dict[str, object] = {}
        for name, args in VARIANTS:
            code, data = run(workdir, rel, args, tmp)
            entry[name] = f"{code} {hashlib.sha256(data).hexdigest()}"
            if dump is not None:
                target = dump / key.replace("/", "__") / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        entry["export"] = export_digest(workdir, rel, tmp)
        out[key] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="record the digests in " + str(GOLDEN))
    ap.add_argument("--dump", type=Path, help="also write every report under this directory")
    ap.add_argument("--only", help="only captures whose key contains this")
    a = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as t:
        got = record(Path(t), a.dump, a.only)
    if a.write:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{len(got)} captures recorded in {GOLDEN}")
        return 0
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    bad = [f"{k} {v}" for k in got for v in got[k] if want.get(k, {}).get(v) != got[k][v]]
    print("\n".join(bad) or f"{len(got)} captures: all reports as recorded")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
