"""Server-side SVG for the run pages: a pipeline run's DAG and a study's or sweep's parallel coordinates.

No script: both are plain SVG inlined in the page, every label escaped with ``keel.core.html.esc``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from keel.core.entities import Run, RunStatus
from keel.core.html import PALETTE, esc
from keel.core.numbers import short

__all__ = ["DagStep", "dag_steps", "dag_svg", "parallel_svg"]

STATUS_COLORS = {RunStatus.FINISHED: "#1a7f37", RunStatus.FAILED: "#cf222e", RunStatus.RUNNING: "#0969da",
                 RunStatus.KILLED: "#9a6700"}  # fmt: skip
CACHED_COLOR = "#8250df"
_W, _H, _COL, _ROW, _PAD = 170, 44, 220, 60, 14


@dataclass(frozen=True, slots=True)
class DagStep:
    """A step of a pipeline run as drawn: its node id, run, status, whether it was a cache hit, and its inputs."""

    node: str
    run_id: str
    status: RunStatus
    cached: bool
    upstream: tuple[str, ...]


def dag_steps(children: Sequence[Run]) -> list[DagStep]:
    """The steps of a pipeline run from its step runs: each step run is named for its node and lists the nodes it
    read in its ``keel.inputs`` tag (``keel.pipelines.runner``); steps never started have no run and are not drawn."""
    steps = []
    for run in children:
        try:
            inputs = json.loads(run.tags.get("keel.inputs", "{}"))
        except ValueError:
            inputs = {}
        upstream = tuple(sorted(inputs)) if isinstance(inputs, dict) else ()
        cached = (run.step is not None and run.step.cached_from is not None) or run.tags.get("keel.cached") == "true"
        steps.append(DagStep(run.name, run.id, run.status, cached, upstream))
    return steps


def _depths(steps: Sequence[DagStep]) -> dict[str, int]:
    """Each node's column: one more than its deepest input (inputs outside the drawing count as roots)."""
    by_node = {s.node: s for s in steps}
    depth: dict[str, int] = {}

    def visit(node: str, seen: frozenset[str]) -> int:
        if node in depth:
            return depth[node]
        if node in seen or node not in by_node:  # a cycle cannot happen in a DAG; guard anyway
            return -1
        d = 1 + max((visit(u, seen | {node}) for u in by_node[node].upstream), default=-1)
        depth[node] = d
        return d

    for s in steps:
        visit(s.node, frozenset())
    return depth


def dag_svg(steps: Sequence[DagStep]) -> str:
    """Boxes in columns by depth, coloured by status, ``cached`` marked; an arrow from each input to its reader.
    The steps table under the drawing links each step's run (a link inside SVG is not a plain ``<a>`` to scripts
    that read ``href``)."""
    if not steps:
        return ""
    depth = _depths(steps)
    rows: dict[int, int] = {}
    where: dict[str, tuple[int, int]] = {}
    for s in steps:
        d = depth[s.node]
        where[s.node] = (_PAD + d * _COL, _PAD + rows.get(d, 0) * _ROW)
        rows[d] = rows.get(d, 0) + 1
    width = max(x for x, _ in where.values()) + _W + _PAD
    height = max(y for _, y in where.values()) + _H + _PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width}" height="{height}" role="img" '
             'font-family="system-ui,sans-serif"><defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#888"/></marker>'
             "</defs>"]  # fmt: skip
    for s in steps:
        x2, y2 = where[s.node]
        for u in s.upstream:
            if u not in where:
                continue
            x1, y1 = where[u]
            sx, sy, ex, ey = x1 + _W, y1 + _H / 2, x2, y2 + _H / 2
            bend = max((ex - sx) / 2, 20)
            parts.append(f'<path d="M{sx},{sy} C{sx + bend},{sy} {ex - bend},{ey} {ex},{ey}" fill="none" stroke="#aaa" '
                         f'stroke-width="1.2" marker-end="url(#dag-arrow)"/>')  # fmt: skip
    for s in steps:
        x, y = where[s.node]
        color = STATUS_COLORS.get(s.status, "#7f7f7f")
        label = s.node if len(s.node) <= 22 else s.node[:21] + "…"
        mark, dash = "", ""
        if s.cached:
            mark = f'<text x="{x + _W - 8}" y="{y + 14}" font-size="9" text-anchor="end" fill="{CACHED_COLOR}">cached</text>'
            dash = ' stroke-dasharray="5 3"'
        parts.append(
            f'<g class="step" data-run="{esc(s.run_id)}" data-status="{esc(s.status.value)}" '
            f'data-cached="{str(s.cached).lower()}">'
            f"<title>{esc(s.node)}: {esc(s.status.value)}{' (cached)' if s.cached else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="#fff" stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{x + 8}" y="{y + 14}" font-size="9" fill="{color}">{esc(s.status.value)}</text>{mark}'
            f'<text x="{x + 8}" y="{y + 32}" font-size="12" fill="#1f2328">{esc(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _axis_value(text: str | float | None) -> float | str | None:
    if text is None:
        return None
    if isinstance(text, float):
        return text if math.isfinite(text) else None
    try:
        x = float(text)
    except ValueError:
        return text
    return x if math.isfinite(x) else None


def parallel_svg(axes: Sequence[str], rows: Sequence[tuple[str, Sequence[str | float | None]]], best: int | None,
                 width: int = 900, height: int = 300) -> str:  # fmt: skip
    """Parallel coordinates: one vertical axis per name in ``axes`` (params, then the objective last), one line per
    row ``(label, values)``. Numeric axes are scaled from their min to their max; an axis with text values spaces
    its distinct values evenly. The line of row ``best`` is drawn last and thick; missing values break a line."""
    if not axes or not rows:
        return ""
    top, bottom, side = 24, 28, 60
    step = (width - 2 * side) / max(len(axes) - 1, 1)
    scales = []
    for i in range(len(axes)):
        column = [_axis_value(values[i]) for _, values in rows]
        numbers = [v for v in column if isinstance(v, float)]
        texts = sorted({str(v) for v in column if isinstance(v, str)})
        if texts:  # categorical: a mixed column counts its numbers as categories too
            cats = sorted({str(v) for v in column if v is not None}, key=lambda c: (c not in texts, c))
            scales.append(("cat", cats, 0.0, 0.0))
        else:
            lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
            scales.append(("num", [], lo, hi))

    def y_of(i: int, value: float | str | None) -> float | None:
        v = _axis_value(value)
        kind, cats, lo, hi = scales[i]
        if v is None:
            return None
        if kind == "cat":
            pos = cats.index(str(v)) / max(len(cats) - 1, 1) if len(cats) > 1 else 0.5
        else:
            pos = (float(v) - lo) / (hi - lo) if hi > lo else 0.5
        return top + (1 - pos) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="parallel" width="{width}" height="{height}" role="img" '
             'font-family="system-ui,sans-serif" font-size="10">']  # fmt: skip
    order = [i for i in range(len(rows)) if i != best] + ([best] if best is not None else [])
    for r in order:
        label, values = rows[r]
        points = [(side + i * step, y_of(i, values[i])) for i in range(len(axes))]
        segments: list[list[str]] = [[]]
        for x, y in points:
            if y is None:
                segments.append([])
            else:
                segments[-1].append(f"{x:.1f},{y:.1f}")
        color = PALETTE[0] if r == best else "#8c959f"
        wide = "2.5" if r == best else "1"
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline class="trial{" best" if r == best else ""}" points="{" ".join(seg)}" fill="none" '
                             f'stroke="{color}" stroke-width="{wide}" stroke-opacity="0.8"><title>{esc(label)}</title>'
                             "</polyline>")  # fmt: skip
    for i, name in enumerate(axes):
        x = side + i * step
        kind, cats, lo, hi = scales[i]
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#57606a"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" font-weight="600">{esc(name)}</text>')
        if kind == "cat":
            ticks = [(c, y_of(i, c) or top) for c in cats[:12]]
        else:
            middle = (top + height - bottom) / 2
            ticks = [(short(hi), float(top)), (short(lo), float(height - bottom))] if hi > lo else [(short(lo), middle)]
        for text, y in ticks:
            parts.append(f'<text x="{x + 4:.1f}" y="{y + 3:.1f}" fill="#57606a">{esc(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
