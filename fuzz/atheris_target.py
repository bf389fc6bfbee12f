"""Coverage-guided fuzzing with atheris (libFuzzer) over the same targets as fuzz/run.py.

    pip install atheris
    mkdir -p /tmp/corpus && cp samples/demo.pcap rules/*/*.pcap /tmp/corpus/
    python fuzz/atheris_target.py /tmp/corpus -max_total_time=600 -timeout=10 \
        -artifact_prefix=fuzz/crashes/ [-rss_limit_mb=2048]

libFuzzer mutates bytes (no structure), guided by the coverage of pcapdiag's code; crashes land
in fuzz/crashes/crash-<sha1> and reproduce with `python fuzz/atheris_target.py <file>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["pcapdiag"]):
    from fuzz import harness


def test_one_input(data: bytes) -> None:
    harness.run_one(data, limit=harness.TIME_LIMIT_S)


def main() -> None:
    harness.rules()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
