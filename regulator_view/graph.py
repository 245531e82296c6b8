"""A trail drawn as an SVG: suppliers on the left, customers on the right, the lot in between.

Nodes are placed in columns by their distance from the starting lot along the
trail's edges (upstream negative, downstream positive), and in rows by order of
appearance. The picture is plain SVG, rendered on the server: no script, no CDN.
"""

from __future__ import annotations

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


def svg(trail: Trail, link: Callable[[Node], str | None] | None = None) -> str:
    """The trail as an SVG document (string). ``link(node)`` gives a box's href, if any."""
    layer = layers(trail)
    low = min(layer.values())
    columns: dict[int, list[str]] = {}
    for n in trail.nodes:
        columns.setdefault(layer[n] - low, []).append(n)
    placed: dict[str, Placed] = {}
    for col, ids in columns.items():
        for row, n in enumerate(ids):
            placed[n] = Placed(n, PAD + col * COL_W, PAD + row * ROW_H)
    width = PAD * 2 + (max(columns) + 1) * COL_W
    height = PAD * 2 + max(len(v) for v in columns.values()) * ROW_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="group" class="trail-graph" '
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
        title = escape(f"{node.enterprise or ''} · {node.label}")
        dash = ' stroke-dasharray="4 3"' if node.outside else ""
        stroke = "#d92d20" if n == trail.start else colour
        href = link(node) if link else None
        parts.append(
            (f'<a href="{escape(href)}">' if href else "")
            + f'<g data-node="{escape(n)}"><title>{title}</title>'
            f'<rect x="{p.x}" y="{p.y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="#fff" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{p.x + 8}" y="{p.y + 18}" fill="{colour}" font-weight="600">'
            f"{escape((node.label or '')[:22])}</text>"
            f'<text x="{p.x + 8}" y="{p.y + 36}" fill="#5b6573">'
            f"{escape((node.enterprise or '')[:16])}</text></g>" + ("</a>" if href else "")
        )
    parts.append("</svg>")
    return "".join(parts)
