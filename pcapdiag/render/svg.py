"""What the HTML report's diagrams share: safe text, arrow heads and endpoint boxes (the
ladder of one view, render/html.py, and the two views side by side, render/twoviews.py)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from pcapdiag.render.text import clean

_HEAD_LEN = 10
_HEAD_HALF = 4.5


def esc(text: object) -> str:
    """Text from a capture or a rule, made safe for HTML and SVG (XML) alike."""
    s = clean(str(text)).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(s, quote=True)


def arrow_head(x2: float, y2: float, x1: float, y1: float) -> str:
    """A filled head at (x2, y2) for a line coming from (x1, y1)."""
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    bx, by = x2 - ux * _HEAD_LEN, y2 - uy * _HEAD_LEN
    px, py = -uy * _HEAD_HALF, ux * _HEAD_HALF
    pts = f"{x2:.1f},{y2:.1f} {bx + px:.1f},{by + py:.1f} {bx - px:.1f},{by - py:.1f}"
    return f'<polygon points="{pts}"/>'


def endpoint_box(x: float, role: str, endpoint: str, cls: str) -> str:
    """A dark box at the top of a lifeline: its role above, its address below."""
    size = 13 if len(endpoint) <= 24 else (11 if len(endpoint) <= 32 else 9)
    # The role is set in small capitals with letter spacing (the page's CSS): ~8.6 px each.
    w = max(170.0, len(endpoint) * size * 0.62 + 28, len(role) * 8.6 + 24)
    return (
        f'<g class="endpoint {cls}">'
        f'<rect x="{x - w / 2:.1f}" y="6" width="{w:.1f}" height="44" rx="6"/>'
        f'<text class="role" x="{x:.1f}" y="22" text-anchor="middle">{esc(role)}</text>'
        f'<text class="addr" x="{x:.1f}" y="40" text-anchor="middle" font-size="{size}">'
        f"{esc(endpoint)}</text></g>"
    )


def kept_rows(n: int, marked: Iterable[int], head: int, context: int) -> set[int]:
    """Which of `n` rows a folded diagram shows: the first `head`, and every row within
    `context` rows of a marked one (by index). A run of a single row left out is shown
    instead, since its marker would take as much room; so is a last row left alone."""
    keep = set(range(min(head, n)))
    for idx in marked:
        keep.update(range(max(0, idx - context), min(n, idx + context + 1)))
    for idx in range(1, n - 1):
        if idx not in keep and idx - 1 in keep and idx + 1 in keep:
            keep.add(idx)
    if n - 1 not in keep and n - 2 in keep:
        keep.add(n - 1)
    return keep


def figure(svg: str, legend: str) -> str:
    """A diagram and its legend, scrolling sideways on a narrow page."""
    return (
        f'<figure class="ladder-fig"><div class="ladder-scroll">{svg}</div>'
        f"<figcaption>{legend}</figcaption></figure>"
    )
