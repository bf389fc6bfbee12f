"""Two views of one connection side by side (`analyze --join`, HTML report): the client's
host's capture on the left lifeline, the server's host's on the right. Each packet is an
arrow from the lifeline of the view it left in to the one it arrived in, with its frame
number in each file at either end; one that never arrived stops half way with a cross, one
that arrived without ever leaving the sender's host starts half way (made on the way).

Rows are packets in the order they were first seen on the reference clock; a long
connection is folded as the one-view ladder is (render/svg.py kept_rows): the first packets,
and those around the finding's evidence and around every packet only one view holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from pcapdiag.findings.contract import iso_time
from pcapdiag.findings.crossing import BOTH, LOST, RESEGMENTED, UNSEEN, UNSENT, Crossing, TwoViews
from pcapdiag.findings.model import Finding
from pcapdiag.findings.plural import counted
from pcapdiag.render.svg import arrow_head, endpoint_box, esc, figure, kept_rows

_W = 900
_LF_X = 10  # frame number in the client's view
_TIME_X = 140
_CX = 250
_SX = 690
_MX = (_CX + _SX) // 2
_RF_X = 890  # frame number in the server's view (right-aligned)
_TOP = 62
_ROW_H = 46
_GAP_H = 36
_SLANT = 16
_HEAD = 3  # first rows always shown
_CONTEXT = 2  # rows shown around each row that matters
MAX_ROWS = 80  # the most rows drawn; the rest are counted in gaps

# What a packet only one view holds is, in words (the arrow's tooltip and the legend).
_WORDS = {
    BOTH: "left one host and reached the other",
    LOST: "never reached the other host's capture, which was running",
    UNSENT: "never left the sender's host (its capture was running): made on the way",
    RESEGMENTED: "its bytes crossed, cut or joined differently (segmentation offload)",
    UNSEEN: "the other capture was not running then",
}


def _rows(f: Finding, tv: TwoViews) -> list[Crossing | int]:
    """The crossings drawn, with the count of each run left out between them."""
    cs = tv.crossings
    own = set(f.frames)
    marked = []
    for i, c in enumerate(cs):
        at = tv.at(c, f.capture)
        if (at is not None and at[0] in own) or c.status in (LOST, UNSENT):
            marked.append(i)
    keep = set(sorted(kept_rows(len(cs), marked, _HEAD, _CONTEXT))[:MAX_ROWS])
    out: list[Crossing | int] = []
    hidden = 0
    for i, c in enumerate(cs):
        if i in keep:
            if hidden:
                out.append(hidden)
                hidden = 0
            out.append(c)
        else:
            hidden += 1
    if hidden:
        out.append(hidden)
    return out


def two_views_svg(f: Finding, tv: TwoViews, index: int = 0) -> str:
    """The figure for finding `f`, from its connection's crossings."""
    items = _rows(f, tv)
    own = set(f.frames)
    height = _TOP + sum(_ROW_H if isinstance(it, Crossing) else _GAP_H for it in items) + 16
    t0 = tv.crossings[0].first_ns if tv.crossings else 0
    body: list[str] = []
    bands: list[str] = []
    y = _TOP
    for it in items:
        if isinstance(it, int):
            mid = y + _GAP_H / 2
            text = f"\N{HORIZONTAL ELLIPSIS} {it} packet{'s' if it != 1 else ''} not shown"
            body.append(
                f'<g class="gap"><text x="{_W / 2:.0f}" y="{mid + 4:.1f}" '
                f'text-anchor="middle">{esc(text)}</text></g>'
            )
            y += _GAP_H
            continue
        c = it
        at_own = tv.at(c, f.capture)
        is_ev = at_own is not None and at_own[0] in own
        if is_ev:
            bands.append(
                f'<rect class="ev-band" x="2" y="{y + 3}" width="{_W - 4}" height="{_ROW_H - 4}"'
                ' rx="4"/>'
            )
        body.append(_arrow(c, y, t0, c.sender == "client", is_ev))
        y += _ROW_H
    bottom = height - 8
    cv, sv = tv.client_view, tv.server_view
    heads = [
        endpoint_box(_CX, f"client \N{MIDDLE DOT} {_short(cv)}", tv.client, "client"),
        endpoint_box(_SX, f"server \N{MIDDLE DOT} {_short(sv)}", tv.server, "server"),
    ]
    lines = [
        f'<line class="lifeline" x1="{_CX}" y1="50" x2="{_CX}" y2="{bottom}"/>',
        f'<line class="lifeline" x1="{_SX}" y1="50" x2="{_SX}" y2="{bottom}"/>',
        f'<line class="netline" x1="{_MX}" y1="50" x2="{_MX}" y2="{bottom}"/>',
    ]
    counts = {s: sum(c.status == s for c in tv.crossings) for s in _WORDS}
    aria = (
        f"Both views of finding {index}: {counted(len(tv.crossings), 'packet')}, "
        f"{counts[LOST]} lost between the captures, {counts[UNSENT]} never sent by "
        "their sender's host"
    )
    svg = (
        f'<svg class="ladder two-views" role="img" aria-label="{esc(aria)}" width="{_W}" '
        f'height="{height}" viewBox="0 0 {_W} {height}" data-finding="{esc(f.id)}">'
        + "".join(bands)
        + "".join(lines)
        + "".join(heads)
        + "".join(body)
        + "</svg>"
    )
    legend = (
        '<span class="lg lg-c2s">client \N{RIGHTWARDS ARROW} server</span>'
        '<span class="lg lg-s2c">server \N{RIGHTWARDS ARROW} client</span>'
        + ('<span class="lg lg-lost">lost between the captures</span>' if counts[LOST] else "")
        + ('<span class="lg lg-net">never sent by its host</span>' if counts[UNSENT] else "")
        + (
            '<span class="lg lg-unseen">the other capture was not running</span>'
            if counts[UNSEEN]
            else ""
        )
        + '<span class="lg lg-ev">evidence frame</span>'
        f'<span class="muted">Both views side by side: frame number in {esc(_short(cv))} at '
        f"the left, in {esc(_short(sv))} at the right; time on {esc(_short(tv.reference))}"
        "&#x27;s clock"
        "</span>"
    )
    return figure(svg, legend)


def _arrow(c: Crossing, y: float, t0: int, from_client: bool, is_ev: bool) -> str:
    src, dst = (_CX, _SX) if from_client else (_SX, _CX)
    y1, y2 = y + 24, y + 24 + _SLANT
    cls = "arrow " + ("c2s" if from_client else "s2c")
    if c.status == LOST or (c.got is None and c.status != RESEGMENTED):
        x1, x2 = src, _MX
        y2 = y1 + _SLANT / 2
        cls += " lost" if c.status == LOST else " unseen"
    elif c.status == UNSENT or (c.sent is None and c.status != RESEGMENTED):
        x1, x2 = _MX, dst
        y1 = y1 + _SLANT / 2
        cls = "arrow net" if c.status == UNSENT else cls + " unseen"
    else:
        x1, x2 = src, dst
    if is_ev:
        cls += " evidence"
    lx2 = x2 - (x2 - x1) / abs(x2 - x1) * 2
    parts = [f'<line x1="{x1}" y1="{y1:.1f}" x2="{lx2:.1f}" y2="{y2:.1f}"/>']
    if c.status == LOST:
        # A cross where the packet stops: it never reached the other host.
        parts.append(
            f'<path class="cross" d="M{x2 - 6} {y2 - 6:.1f} L{x2 + 6} {y2 + 6:.1f} '
            f'M{x2 - 6} {y2 + 6:.1f} L{x2 + 6} {y2 - 6:.1f}"/>'
        )
    else:
        parts.append(arrow_head(x2, y2, x1, y1))
    left = c.sent if from_client else c.got
    right = c.got if from_client else c.sent
    first = c.sent or c.got
    assert first is not None
    tip = (
        f"{c.label}: {_WORDS[c.status]}"
        + (f"; sent {iso_time(c.sent[1])} (frame {c.sent[0]})" if c.sent else "")
        + (f"; arrived {iso_time(c.got[1])} (frame {c.got[0]})" if c.got else "")
    )
    flags, _, detail = c.label.partition(" seq=")
    label = f'<tspan class="flags">{esc(flags)}</tspan>'
    if detail:
        label += f'<tspan class="detail" dx="6">{esc("seq=" + detail)}</tspan>'
    lx = (x1 + x2) / 2
    parts.append(
        f'<text class="label" x="{lx:.1f}" y="{min(y1, y2) - 6:.1f}" text-anchor="middle">'
        f"{label}</text>"
    )
    if left is not None:
        parts.append(f'<text class="frame" x="{_LF_X}" y="{y1 + 5:.1f}">#{left[0]}</text>')
    if right is not None:
        parts.append(
            f'<text class="frame" x="{_RF_X}" y="{y2 + 5:.1f}" text-anchor="end">#{right[0]}</text>'
        )
    dt = (first[1] - t0) / 1e9
    parts.append(
        f'<text class="time" x="{_TIME_X}" y="{y1 + 5:.1f}" text-anchor="end">{dt:.3f} s</text>'
    )
    return f'<g class="{cls}"><title>{esc(tip)}</title>' + "".join(parts) + "</g>"


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def crossing_rows(f: Finding, tv: TwoViews) -> Sequence[Crossing | int]:
    """The rows the figure shows, with the count of each run left out (also the Markdown
    report's table)."""
    return _rows(f, tv)
