"""A lineage graph as offline HTML: an SVG laid out in columns by depth from the root, and a table of every node's
details. No script, no CDN; every label and value escaped (``keel.core.html``).

>>> write_lineage_html(prediction_lineage("req-42", "churn"), "lineage.html")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.html import PALETTE, esc, is_keel_report, page
from keel.govern.graph import NODE_KINDS, LineageGraph, Node

__all__ = ["check_writable", "graph_svg", "lineage_html", "nodes_table", "write_lineage_html"]

_W, _H, _COL, _ROW, _PAD = 210, 42, 290, 58, 16
_COLORS = {kind: PALETTE[i % len(PALETTE)] for i, kind in enumerate(NODE_KINDS)}


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _layout(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    """Top-left corner of each node: one column per depth, nodes in insertion order down the column."""
    columns: dict[int, list[str]] = {}
    for key, depth in graph.depths().items():
        columns.setdefault(depth, []).append(key)
    return {key: (_PAD + depth * _COL, _PAD + row * _ROW) for depth, keys in columns.items() for row, key in enumerate(keys)}


def _tooltip(node: Node) -> str:
    return json.dumps(node.attrs, default=str, ensure_ascii=False, sort_keys=True)[:600]


def graph_svg(graph: LineageGraph) -> str:
    """The graph as one SVG: nodes as boxes coloured by kind, edges as arrows labelled with their relation."""
    where = _layout(graph)
    if not where:
        return ""
    width = max(x for x, _ in where.values()) + _W + _PAD
    height = max(y for _, y in where.values()) + _H + _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" role="img" '
        f'font-family="system-ui,sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#888"/></marker></defs>',
    ]
    for edge in graph.edges:
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        forward = x2 > x1
        sx, ex = (x1 + _W, x2) if forward else (x1, x2 + _W) if x2 < x1 else (x1 + _W, x2 + _W)
        sy, ey = y1 + _H / 2, y2 + _H / 2
        bend = (ex - sx) / 2 if forward or x2 < x1 else 40.0
        path = f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}"
        parts.append(f'<path d="{path}" fill="none" stroke="#aaa" stroke-width="1.2" marker-end="url(#arrow)">'
                     f"<title>{esc(edge.relation)}</title></path>")  # fmt: skip
        parts.append(f'<text x="{(sx + ex) / 2:.1f}" y="{(sy + ey) / 2 - 3:.1f}" font-size="9" fill="#666" '
                     f'text-anchor="middle">{esc(_short(edge.relation, 26))}</text>')  # fmt: skip
    for key, (x, y) in where.items():
        node = graph.nodes[key]
        color = _COLORS.get(node.kind, "#7f7f7f")
        parts.append(
            f'<g class="node" data-kind="{esc(node.kind)}"><title>{esc(node.kind)} {esc(node.id)}: {esc(_tooltip(node))}</title>'
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="#fff" stroke="{color}" stroke-width="2"/>'
            f'<text x="{x + 8}" y="{y + 15}" font-size="9" fill="{color}">{esc(node.kind.replace("_", " "))}</text>'
            f'<text x="{x + 8}" y="{y + 32}" font-size="12">{esc(_short(node.label))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return esc(json.dumps(value, default=str, ensure_ascii=False, sort_keys=True))
    return esc("-" if value is None else value)


def nodes_table(graph: LineageGraph) -> str:
    """Every node with its attributes and its outgoing relations, as an HTML table."""
    rows = []
    for node in graph.nodes.values():
        attrs = "<br>".join(f"<b>{esc(k)}</b>: {_value(v)}" for k, v in node.attrs.items() if v not in (None, "", [], {}))
        out = "<br>".join(f"{esc(e.relation)} → {esc(graph.nodes[e.target].label)}" for e in graph.edges if e.source == node.key)
        rows.append(f"<tr><td class=l>{esc(node.kind)}</td><td class=l>{esc(node.label)}</td>"
                    f"<td class=l>{attrs}</td><td class=l>{out}</td></tr>")  # fmt: skip
    return ("<table><tr><th class=l>kind</th><th class=l>node</th><th class=l>details</th><th class=l>links</th></tr>"
            + "".join(rows) + "</table>")  # fmt: skip


def lineage_html(graph: LineageGraph, title: str) -> str:
    """A whole offline page: the graph drawn, then every node's details."""
    body = (f"<p class=muted>{len(graph.nodes)} nodes, {len(graph.edges)} links; columns by distance from "
            f"{esc(graph.nodes[graph.root].label) if graph.root else '-'}.</p>"
            f"<div class=wide>{graph_svg(graph)}</div><h2>Details</h2><div class=wide>{nodes_table(graph)}</div>")  # fmt: skip
    return page(title, body)


def check_writable(path: str | Path, field: str = "--html") -> Path:
    """``path`` as a Path, refusing a file keel did not write (a report never overwrites anyone else's file)."""
    target = Path(path)
    if target.exists() and not is_keel_report(target):
        raise InvalidArgument.for_field(field, str(target), "a new file or a report keel wrote (this file is not one)")
    return target


def write_lineage_html(graph: LineageGraph, path: str | Path, title: str = "Lineage") -> Path:
    """Write ``lineage_html(graph)`` to ``path`` and return it; refuses (``InvalidArgument``) to overwrite a
    file that is not a report keel wrote."""
    target = check_writable(path)
    target.write_text(lineage_html(graph, title), encoding="utf-8")
    return target
