"""A trail drawn as an SVG: suppliers on the left, customers on the right, the lot in between.

Nodes are placed in columns by their distance from the starting lot along the
trail's edges (upstream negative, downstream positive), and in rows by order of
appearance. The picture is plain SVG, rendered on the server: no script, no CDN.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from foodtrace.trail import Node, Trail

COL_W, ROW_H, BOX_W, BOX_H, PAD = 210, 64, 180, 46, 16
COLOURS = {
    "lot": "#0b6e4f",
    "material_lot": "#2e90fa",
    "supplier": "#7a5af8",
    "customer": "#f79009",
    "enterprise": "#98a2b3",
}


def lot_link(node: Node) -> str | None:
    """Each lot box opens that lot's records (each with its ledger seq and hash)."""
    if node.type != "lot" or node.outside or not node.credit_code or not node.code:
        return None
    return f"/regulator/lots/{node.credit_code}/{quote(node.code, safe='')}"


@dataclass
class Placed:
    id: str
    x: int
    y: int


def layers(trail: Trail) -> dict[str, int]:
    """Signed distance of every node from the start (edges point downstream)."""
    out = {trail.start: 0}
    nbrs: dict[str, list[tuple[str, int]]] = {}
    for e in trail.edges:
        nbrs.setdefault(e.source, []).append((e.target, 1))
        nbrs.setdefault(e.target, []).append((e.source, -1))
    queue = deque([trail.start])
    while queue:
        n = queue.popleft()
        for m, step in nbrs.get(n, []):
            if m not in out:
                out[m] = out[n] + step
                queue.append(m)
    for n in trail.nodes:
        out.setdefault(n, 0)
    return out


MIN_SCALE = 0.7
"""The smallest a graph is drawn to fit its box: a wider one scrolls (the traced lot in view)."""


def _units(ch: str) -> int:
    """A character's width in half-em units (CJK and full-width forms take two)."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def clip(text: str, units: int) -> str:
    """``text`` cut to ``units`` half-em units, with an ellipsis where it was cut."""
    if sum(_units(c) for c in text) <= units:
        return text
    out, used = [], 1
    for c in text:
        if used + _units(c) > units:
            break
        out.append(c)
        used += _units(c)
    return "".join(out) + "…"


def _lines(node: Node, gettext: Callable[[str], str]) -> tuple[str, str, str]:
    """A box's bold code, the name beside it, and its second line (whose it is)."""
    label = node.label or ""
    code = node.code if node.code and node.code in label else ""
    name = label.replace(code, "").strip() if code else label
    owner = node.enterprise or ""
    if node.type in ("supplier", "customer") and (not owner or owner == label):
        owner = gettext("Supplier") if node.type == "supplier" else gettext("Customer")
    return code, name, owner


def svg(
    trail: Trail,
    link: Callable[[Node], str | None] | None = None,
    *,
    title: str = "",
    gettext: Callable[[str], str] = lambda s: s,
) -> str:
    """The trail as an SVG document (string). ``link(node)`` gives a box's href, if any.

    The picture scales to its box (``width: 100%`` of a ``viewBox``), down to ``MIN_SCALE``
    of its size and never above it; the traced lot's box carries ``data-start`` (the page's
    script scrolls a wider graph to it). ``title`` names the picture for a screen reader."""
    layer = layers(trail)
    low = min(layer.values())
    columns: dict[int, list[str]] = {}
    for n in trail.nodes:
        columns.setdefault(layer[n] - low, []).append(n)
    placed: dict[str, Placed] = {}
    for col, ids in columns.items():
        for row, n in enumerate(ids):
            placed[n] = Placed(n, PAD + col * COL_W, PAD + row * ROW_H)
    width = PAD * 2 + (max(columns) + 1) * COL_W - (COL_W - BOX_W)
    height = PAD * 2 + max(len(v) for v in columns.values()) * ROW_H - (ROW_H - BOX_H)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="group" aria-label="{escape(title)}" class="trail-graph" '
        f'style="max-width:{width}px;min-width:{round(width * MIN_SCALE)}px" '
        f'data-width="{width}" preserveAspectRatio="xMinYMin meet" '
        'font-family="system-ui, sans-serif" font-size="12">'
    ]
    for e in trail.edges:
        a, b = placed[e.source], placed[e.target]
        colour = "#d92d20" if e.finding else "#98a2b3"
        parts.append(
            f'<line x1="{a.x + BOX_W}" y1="{a.y + BOX_H // 2}" x2="{b.x}" '
            f'y2="{b.y + BOX_H // 2}" stroke="{colour}" stroke-width="1.5"/>'
        )
    for n, p in placed.items():
        node = trail.nodes[n]
        colour = COLOURS.get(node.type, "#667085")
        tip = escape(f"{node.enterprise or ''} · {node.label}")
        dash = ' stroke-dasharray="4 3"' if node.outside else ""
        start = n == trail.start
        stroke = "#d92d20" if start else colour
        href = link(node) if link else None
        code, name, owner = _lines(node, gettext)
        room = (BOX_W - 16) // 6  # half-em units of 12 px type
        first = (
            f'<tspan font-weight="700">{escape(code)}</tspan>'
            + (f" {escape(clip(name, room - len(code) - 2))}" if name else "")
            if code
            else f'<tspan font-weight="600">{escape(clip(name, room - 1))}</tspan>'
        )
        parts.append(
            (f'<a href="{escape(href)}">' if href else "")
            + f'<g data-node="{escape(n)}"{" data-start" if start else ""}><title>{tip}</title>'
            f'<rect x="{p.x}" y="{p.y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="{"#fff4f2" if start else "#fff"}" stroke="{stroke}" '
            f'stroke-width="{3 if start else 2}"{dash}/>'
            f'<text x="{p.x + 8}" y="{p.y + 19}" fill="{colour}">{first}</text>'
            f'<text x="{p.x + 8}" y="{p.y + 37}" fill="#5b6573">'
            f"{escape(clip(owner, room))}</text></g>" + ("</a>" if href else "")
        )
    parts.append("</svg>")
    return "".join(parts)
