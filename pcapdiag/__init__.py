"""pcapdiag: which call of which application failed with which errno, from a packet capture.

Library API (the CLI is a thin layer over it):

    from pcapdiag import analyze, load_rules
    report = analyze(["capture.pcap"], rules=load_rules(), platform="linux")
    for finding in report.findings: ...
"""

__version__ = "0.1.0"

from pcapdiag.api import analyze
from pcapdiag.errors import CaptureError, PcapdiagError, RuleError
from pcapdiag.rules.loader import load_rules

__all__ = ["CaptureError", "PcapdiagError", "RuleError", "__version__", "analyze", "load_rules"]
