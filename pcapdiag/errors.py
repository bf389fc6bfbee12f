"""Errors that cross the library boundary.

Odd packets are never exceptions (they become warnings or anomaly events); exceptions are kept
for "the input cannot be read at all" and "a rule file is invalid". The CLI maps each class to
one exit code in one place (cli.py).
"""

from __future__ import annotations


class PcapdiagError(Exception):
    """Base class of every error pcapdiag raises on purpose."""


class CaptureError(PcapdiagError):
    """The input cannot be read as a capture at all (missing, not a capture, empty header)."""


class RuleError(PcapdiagError):
    """One or more rule files are invalid. `problems` holds every problem found, each with a
    location (`path:line`) so that a user can jump to it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
