"""Which engine reads the frames: the compiled first pass (pcapdiag/accel, built from C when
pcapdiag is installed with a C compiler) or Python alone. Both give the same reports; what
differs is time, so a user should know which runs (`pcapdiag --version`), and hear once, on a
large capture, what building the pass would save.
"""

from __future__ import annotations

# Past this size a capture is worth the note (the size from which --jobs starts workers too:
# below it a run takes seconds either way).
NOTE_FROM_BYTES = 64 * 1024 * 1024

# How much slower Python alone is than with the compiled pass, on the 1M-frame benchmark
# capture: docs/performance.md, "Without the compiled first pass" (measured, not estimated).
SLOWDOWN = 7
MEASURED = "the 1M-frame benchmark, 550 MB, took 3.9 s with it and 26 s without"

ACTIVE, MISSING, STALE = "active", "missing", "stale"

# A wheel built where no C compiler was is pure Python: the pass is built at install time
# from the source (hatch_build.py), so the cure is a compiler, the headers, and a reinstall.
BUILD_HINT = (
    "to build it, install a C compiler and Python's headers (Debian, Ubuntu: apt-get install "
    "gcc python3-dev), then reinstall pcapdiag from its source (in a checkout: pip install -e .)"
)


def state() -> str:
    """ACTIVE: built and from the definitions in force; MISSING: not built (no C compiler at
    install, or PCAPDIAG_PURE=1); STALE: built from other definitions, so never used
    (accel/triage.available)."""
    try:
        from pcapdiag.accel import triage
    except ImportError:
        return MISSING
    if triage.available():
        return ACTIVE
    return STALE if triage._triage is not None else MISSING


def version_line(current: str | None = None) -> str:
    """The line `pcapdiag --version` adds: which engine runs."""
    current = current or state()
    if current == ACTIVE:
        return "first pass: compiled (C), active"
    what = "not built" if current == MISSING else "built from other sources, not used"
    return (
        f"first pass: {what}: every frame is read in Python, about {SLOWDOWN}x slower on large "
        f"captures; {BUILD_HINT}"
    )


def slow_note(size: int, current: str | None = None) -> str | None:
    """What `analyze` says once on standard error before reading `size` bytes without the
    compiled pass; None when it runs, or when the capture is too small to matter."""
    current = current or state()
    if current == ACTIVE or size < NOTE_FROM_BYTES:
        return None
    what = "is not built" if current == MISSING else "was built from other sources"
    return (
        f"the compiled first pass {what}, so every frame of these {size / 1e6:,.0f} MB is read "
        f"in Python: about {SLOWDOWN}x slower (docs/performance.md: {MEASURED}); {BUILD_HINT}"
    )
