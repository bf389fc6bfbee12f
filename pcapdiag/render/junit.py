"""JUnit XML: one test suite per capture, one failed test case per finding that names an errno
(other findings are reported as passed cases with their text in system-out), so CI systems
list each failure. ElementTree does the XML escaping; control characters, which XML 1.0 cannot
carry at all, are replaced first."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pcapdiag.findings.model import Report
from pcapdiag.findings.plural import counted
from pcapdiag.render.text import confidence_line, headline, origin_line


def _xml_text(text: str) -> str:
    return "".join(ch if ch in "\t\n" or ch.isprintable() else "\ufffd" for ch in text)


def to_junit(report: Report) -> str:
    root = ET.Element("testsuites", name="pcapdiag")
    total_failures = 0
    for cap in report.captures:
        findings = [f for f in report.findings if f.capture == cap.path]
        suite = ET.SubElement(root, "testsuite", name=_xml_text(cap.path))
        failures = 0
        if cap.damage is not None:
            case = ET.SubElement(suite, "testcase", classname="pcapdiag.capture", name="readable")
            ET.SubElement(
                case,
                "error",
                message=_xml_text(
                    f"damaged at byte {cap.damage.offset} (frame {cap.damage.frame}): "
                    f"{cap.damage.message}"
                ),
            )
        for f in findings:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pcapdiag.{f.rule}",
                name=_xml_text(f"{f.flow.proto} {f.flow.client} -> {f.flow.server} ({f.side})"),
            )
            text = _xml_text(
                f"{f.title}\n{confidence_line(f)}\norigin: {origin_line(f)}\n{f.cause}\n"
                f"frames: {', '.join(map(str, f.frames))}\nwireshark: {f.flow_filter}"
            )
            # A failure is an errno claimed; a low-confidence possibility is only written out.
            errno = f.claimed_errno
            if errno is not None:
                failures += 1
                failure = ET.SubElement(case, "failure", message=_xml_text(headline(f)), type=errno)
                failure.text = text
            else:
                ET.SubElement(case, "system-out").text = text
        for g in report.groups:
            if not g.unlisted or g.capture != cap.path:
                continue
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pcapdiag.{g.rule}",
                name=_xml_text(
                    f"{counted(g.unlisted, 'more finding', sep=',')} alike to {g.server} ({g.side})"
                ),
            )
            text = _xml_text(g.describe())
            errno = g.claimed_errno
            if errno is not None:
                failures += 1
                ET.SubElement(case, "failure", message=text, type=errno).text = text
            else:
                ET.SubElement(case, "system-out").text = text
        if not findings and cap.damage is None:
            ET.SubElement(suite, "testcase", classname="pcapdiag.capture", name="no failures")
        suite.set("tests", str(max(1, len(suite))))
        suite.set("failures", str(failures))
        suite.set("errors", "1" if cap.damage is not None else "0")
        total_failures += failures
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in root)))
    root.set("failures", str(total_failures))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
