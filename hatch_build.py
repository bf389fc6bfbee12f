"""Build hook: compile the optional C accelerators, pcapdiag/accel/_triage.c (the first pass,
accel/triage.py) and pcapdiag/accel/_jsonindent.c (indented JSON text, render/jsontext.py).

Each extension is built with the machine's C compiler against the running Python's headers,
with a header generated from the Python definitions it shares (accel/shared.py). Without a
compiler the wheel is pure Python and pcapdiag reads every frame in Python: slower, the same
results. PCAPDIAG_PURE=1 skips the build on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = (
    Path("pcapdiag") / "accel" / "_triage.c",
    Path("pcapdiag") / "accel" / "_jsonindent.c",
)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("PCAPDIAG_PURE") == "1":
            return
        root = Path(self.root)
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        for source in SOURCES:
            name = f"{source.stem}{suffix}"
            if version == "editable":
                out = root / source.parent / name  # found through the source tree
            else:
                out = Path(self.directory) / "ext" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            if not build(root / source, out):
                continue
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            if version != "editable":
                build_data["force_include"][str(out)] = f"{source.parent.as_posix()}/{name}"


def build(source: Path, out: Path) -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = cc.split()[0]
    if shutil.which(compiler) is None:
        print(f"pcapdiag: no C compiler ({compiler}); building pure Python", file=sys.stderr)
        return False
    include = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory() as generated:
        # The constants and definitions _triage.c shares with the Python pipeline, written
        # from the Python modules themselves (which need nothing beyond the standard library).
        root = source.parents[2]
        gen = subprocess.run(
            [sys.executable, "-m", "pcapdiag.accel.shared", str(Path(generated) / "_shared.h")],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
        )
        if gen.returncode != 0:
            print(f"pcapdiag: cannot generate _shared.h:\n{gen.stderr}", file=sys.stderr)
            return False
        cmd = [*cc.split(), "-O2", "-fPIC", "-shared", f"-I{include}", f"-I{generated}"]
        cmd += [str(source), "-o", str(out)]
        if sys.platform == "darwin":
            cmd[1:1] = ["-undefined", "dynamic_lookup"]  # symbols come from the interpreter
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"pcapdiag: C build failed, building pure Python:\n{done.stderr}", file=sys.stderr)
        return False
    return True
