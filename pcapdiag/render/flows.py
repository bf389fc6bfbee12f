"""The flow listing (`pcapdiag flows`, and the table `analyze --all` ends with): every flow
with Zeek's conn_state and history, its duration, packets and payload bytes per direction
and its final TCP states, as a text table, CSV or JSON (pcapdiag.flows/v1, published as
schemas/flows-v1.schema.json). docs/reports.md says what each column means.

The client is Zeek's originator (orig), the server its responder (resp). Each renderer
yields its text in pieces, a flow at a time, so that a listing of many flows is written as
it is made.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.model import FlowSummary, Report

FLOWS_SCHEMA = "pcapdiag.flows/v1"

# The fields of a flow in JSON and CSV, in order.
FIELDS = (
    "proto",
    "client",
    "server",
    "instance",
    "first_frame",
    "first_time",
    "duration_s",
    "conn_state",
    "history",
    "client_packets",
    "client_bytes",
    "server_packets",
    "server_bytes",
    "client_state",
    "server_state",
    "roles",
    "end_reason",
    "failed",
)

# The text table: header and the field each column shows; numbers are right-aligned.
_COLUMNS = (
    ("proto", "proto"),
    ("client", "client"),
    ("server", "server"),
    ("conn_state", "conn_state"),
    ("duration", "duration_s"),
    ("c pkts", "client_packets"),
    ("c bytes", "client_bytes"),
    ("s pkts", "server_packets"),
    ("s bytes", "server_bytes"),
    ("client state", "client_state"),
    ("server state", "server_state"),
    ("history", "history"),
    ("end", "end_reason"),
    ("failed", "failed"),
)
_NUMERIC = frozenset(
    {"duration_s", "client_packets", "client_bytes", "server_packets", "server_bytes"}
)
# JSON and CSV are written in pieces of about this many characters.
_CHUNK = 1 << 16


def flow_fields(s: FlowSummary) -> dict[str, Any]:
    """One flow as JSON and CSV give it (FIELDS, in order). conn_state is None for an
    unanswered ARP / NDP run, which has none."""
    return {
        "proto": s.proto,
        "client": s.client,
        "server": s.server,
        "instance": s.instance,
        "first_frame": s.first_frame,
        "first_time": iso_time(s.first_ts_ns),
        "duration_s": round((s.last_ts_ns - s.first_ts_ns) / 1e9, 6),
        "conn_state": s.conn_state or None,
        "history": s.history,
        "client_packets": s.client_packets,
        "client_bytes": s.client_bytes,
        "server_packets": s.server_packets,
        "server_bytes": s.server_bytes,
        "client_state": s.client_state,
        "server_state": s.server_state,
        "roles": s.roles,
        "end_reason": s.end_reason,
        "failed": s.failed,
    }


def _cell(field: str, value: object) -> str:
    if value is None or value == "":
        return "-"
    if field == "duration_s":
        return f"{value:.6f}"
    if field == "failed":
        return "yes" if value else ""
    return str(value)


def flows_text(report: Report) -> list[str]:
    """The text table: a header and one line a flow ("-" for no value)."""
    rows = [tuple(head for head, _f in _COLUMNS)]
    for s in report.flows:
        d = flow_fields(s)
        rows.append(tuple(_cell(f, d[f]) for _h, f in _COLUMNS))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if f in _NUMERIC else c.ljust(w)
            for c, w, (_h, f) in zip(r, widths, _COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def iter_flows_csv(report: Report) -> Iterator[str]:
    """CSV (RFC 4180 quoting, one line a flow): a header row of FIELDS, then the flows.
    No value is empty; booleans are true and false."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(FIELDS)
    for s in report.flows:
        d = flow_fields(s)
        out.writerow(_csv_value(d[f]) for f in FIELDS)
        if buf.tell() >= _CHUNK:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"  # the duration, to the microsecond as the text table has it
    return value


def iter_flows_json(report: Report) -> Iterator[str]:
    """The JSON document {"schema": "pcapdiag.flows/v1", "flows": [...]}, indented as
    json.dumps(doc, indent=2) writes it, a flow at a time."""
    yield '{\n  "schema": ' + json.dumps(FLOWS_SCHEMA) + ',\n  "flows": ['
    first = True
    for s in report.flows:
        item = json.dumps(flow_fields(s), indent=2).replace("\n", "\n    ")
        yield ("\n    " if first else ",\n    ") + item
        first = False
    yield "]\n}\n" if first else "\n  ]\n}\n"
