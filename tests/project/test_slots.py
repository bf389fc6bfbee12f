"""compact_pickle: the classes workers send back in bulk pickle as a tuple of their fields,
and come back equal, frozen ones included."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from pcapdiag.cluster.tasks import analyze_task
from pcapdiag.session import Analysis
from pcapdiag.slots import compact_pickle

ROOT = Path(__file__).resolve().parents[2]


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class _Frozen:
    a: int
    b: tuple[str, ...] = ()
    c: object = None


@compact_pickle
@dataclasses.dataclass(slots=True)
class _One:
    only: list[int]


@pytest.mark.parametrize(
    "obj", [_Frozen(1), _Frozen(2, ("x", "y"), _Frozen(3)), _One([1, 2])], ids=repr
)
def test_state_is_the_fields_and_comes_back_equal(obj: object) -> None:
    state = obj.__getstate__()  # type: ignore[attr-defined]
    assert state == tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]
    back = pickle.loads(pickle.dumps(obj, protocol=5))
    assert back == obj and type(back) is type(obj)
    if isinstance(obj, _Frozen):
        with pytest.raises(dataclasses.FrozenInstanceError):
            back.a = 5  # type: ignore[misc]


def test_a_worker_part_pickles_to_the_same_findings(builtin_rules) -> None:
    capture = str(ROOT / "samples" / "demo.pcap")
    analysis = Analysis(sources=(capture,), rules=tuple(builtin_rules))
    part = analyze_task(analysis, 0, [capture], (0, 1))
    back = pickle.loads(pickle.dumps(part, protocol=5))
    assert part.report is not None and part.collector is not None
    assert back.report is not None and back.collector is not None
    findings, groups = part.collector.result()
    assert findings and back.collector.result() == (findings, groups)
    assert back.report.captures == part.report.captures
    assert back.report.services.by == part.report.services.by
    assert back.report.hosts.keys() == part.report.hosts.keys()
