"""pcapdiag: which call of which application failed with which errno, from a packet capture.

Library API (the CLI is a thin layer over it):

    from pcapdiag import analyze, load_rules
    report = analyze(["capture.pcap"], rules=load_rules(), platform="linux")
    for finding in report.findings: ...

The names are imported on first use: importing one stage (as the build does, to generate the
accelerator's header) does not pull in the whole package and its dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pcapdiag.api import Analysis, analyze, run_analysis
    from pcapdiag.errors import CaptureError, PcapdiagError, RuleError
    from pcapdiag.rules.loader import load_rules
    from pcapdiag.settings import Settings

_EXPORTS = {
    "analyze": "pcapdiag.api",
    "run_analysis": "pcapdiag.api",
    "Analysis": "pcapdiag.api",
    "Settings": "pcapdiag.settings",
    "load_rules": "pcapdiag.rules.loader",
    "CaptureError": "pcapdiag.errors",
    "PcapdiagError": "pcapdiag.errors",
    "RuleError": "pcapdiag.errors",
}

__all__ = [
    "Analysis",
    "CaptureError",
    "PcapdiagError",
    "RuleError",
    "Settings",
    "__version__",
    "analyze",
    "load_rules",
    "run_analysis",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pcapdiag' has no attribute {name!r}")
    return getattr(import_module(module), name)
