"""Every report pcapdiag writes validates against the published schema pcapdiag.report/v1."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pcapdiag.api import analyze

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("rules/*/*.pcap")) + sorted(
    str(p.relative_to(ROOT)) for p in ROOT.glob("samples/*.pcap")
)
SCHEMA = json.loads(
    resources.files("pcapdiag").joinpath("schemas/report-v1.schema.json").read_text()
)


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("rel", CAPTURES)
@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_report_validates(rel: str, platform: str, builtin_rules) -> None:
    report = analyze([str(ROOT / rel)], builtin_rules, platform=platform)
    doc = json.loads(json.dumps(report.to_dict()))
    jsonschema.validate(doc, SCHEMA)


def test_finding_ids_are_stable(builtin_rules) -> None:
    path = str(ROOT / "samples/demo.pcap")
    first = [f.id for f in analyze([path], builtin_rules).findings]
    again = [f.id for f in analyze([path], builtin_rules).findings]
    assert first == again and len(set(first)) == len(first)


def test_a_schema_violation_is_caught(builtin_rules) -> None:
    # The test above must be able to fail: a report with a wrong errno shape does not validate.
    doc = analyze([str(ROOT / "samples/demo.pcap")], builtin_rules).to_dict()
    doc["findings"][0]["errno"] = "ECONNREFUSED"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize("rel", ["samples/demo.pcap", "rules/syn-unanswered/lone-syn.pcap"])
@pytest.mark.parametrize("max_alike", [None, 1])
def test_streamed_json_is_the_document_json_dumps_writes(rel, max_alike, builtin_rules) -> None:
    # The CLI writes the report piece by piece (render.iter_json); the text must be exactly
    # what json.dumps writes for the whole document, empty lists and groups included.
    from pcapdiag.render.text import iter_json

    report = analyze([str(ROOT / rel)], builtin_rules, keep_flows=True, max_alike=max_alike)
    whole = json.dumps(report.to_dict(), indent=2, ensure_ascii=True) + "\n"
    assert "".join(iter_json(report)) == whole


@pytest.mark.parametrize("scenario", ["epipe", "inject-rst-oneway", "data-timeout", "syn-timeout"])
def test_joined_report_validates(scenario: str, builtin_rules) -> None:
    # --join: findings cite both files, and `join` holds each view's clock (syn-timeout's
    # server capture is empty: its clock is unknown).
    views = [str(ROOT / "samples/recorded" / scenario / f"{h}.pcap") for h in ("client", "server")]
    doc = json.loads(json.dumps(analyze(views, builtin_rules, join=True).to_dict()))
    jsonschema.validate(doc, SCHEMA)
    assert [c["capture"] for c in doc["join"]["clocks"]] == views
    assert doc["join"]["clocks"][0]["how_sure"] == "reference"
