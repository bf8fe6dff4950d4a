"""Offline HTML building blocks: one stylesheet, a page wrapper and SVG charts. No script, no CDN.

Reports from every capability use these, so they look alike and open from disk anywhere.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence

from keel.core.numbers import plain, short

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin:1.6rem 0 .4rem} h3{font-size:.95rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;font-size:.85rem}
td,th{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f6f6f6} td.l,th.l{text-align:left} .best{font-weight:700;color:#1a7f37}
.bad{color:#b42318;font-weight:600} .ok{color:#1a7f37} .warn{color:#b54708;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0;border:1px solid #e5e5e5;border-radius:6px;padding:.5rem}
figcaption{font-size:.85rem;font-weight:600} .legend span{display:inline-block;margin-right:.8rem;font-size:.8rem}
.wide{overflow-x:auto} td.l:first-child{white-space:nowrap} .muted{color:#666;font-size:.85rem}
.sw{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.25rem;vertical-align:middle}
"""


def esc(value: object) -> str:
    """``value`` as HTML text: every report field goes through here (or ``fmt``), whatever its type."""
    return html.escape(str(value), quote=True)


def fmt(x: object) -> str:
    """A number for a report cell (``keel.core.numbers.short``), escaped: stored values come from clients and need
    not be numbers."""
    if x is None:
        return "-"
    return short(x) if isinstance(x, float) else esc(x)


def as_number(text: object) -> float | int | None:
    """The number a logged parameter spells (params are stored as text: ``"0.1"``, ``"32"``), or None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or not text.strip() or text.strip().lower() in ("nan", "inf", "-inf", "infinity"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def param(value: object) -> str:
    """A parameter value for a report cell, escaped: a number to four significant digits with its full value on
    hover (``0.30000000000000004`` -> ``0.3``), anything else as it is."""
    number = as_number(value)
    if number is None or isinstance(number, int):
        return esc(value)
    cell, full = short(number), plain(number)
    return cell if cell == full else f"<span title='{full}'>{cell}</span>"


def pct(x: object, digits: int = 1) -> str:
    """A share as a percentage (``0.25`` -> ``25.0%``), escaped when it is not a number."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return f"{x:.{digits}%}"
    return fmt(x)


def count(x: object) -> str:
    """An integer with thousands separators, escaped when it is not one."""
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else fmt(x)


GENERATOR = "<meta name='generator' content='keel'>"


def is_keel_report(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is a report keel wrote (so writing over it destroys nothing of anyone else's)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return GENERATOR.encode() in head


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{GENERATOR}<title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>"
    )


def swatch(i: int) -> str:
    return f"<span class=sw style='background:{PALETTE[i % len(PALETTE)]}'></span>"


def legend(names: Sequence[str]) -> str:
    return "<div class=legend>" + "".join(f"<span>{swatch(i)}{esc(n)}</span>" for i, n in enumerate(names)) + "</div>"


def figure(caption: str, svg: str, names: Sequence[str] = ()) -> str:
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}{legend(names) if names else ''}</figure>"


def text_width(text: str, size: float = 10) -> float:
    """A generous estimate of ``text``'s width in px at ``size`` in a sans-serif face (DejaVu Sans' digits: 0.636 em)."""
    return len(text) * size * 0.65


def left_margin(tick_labels: Sequence[str], size: float = 10) -> int:
    """Room left of a y axis for its tick labels (drawn right-aligned 4 px off the axis), 44 px at least."""
    return max(44, math.ceil(max((text_width(t, size) for t in tick_labels), default=0) + 8))


def bar_chart(labels: Sequence[str], series: Sequence[Sequence[float]], width: int = 520, height: int = 220) -> str:
    """Grouped bars: one group per label, one bar per series (e.g. reference and current shares)."""
    top = max((v for s in series for v in s if math.isfinite(v)), default=0.0) or 1.0
    ticks = [(frac, fmt(top * frac)) for frac in (0.0, 0.5, 1.0)]
    pad_l, pad_b, pad_t = left_margin([t for _, t in ticks]), 40, 10
    groups = max(len(labels), 1)
    group_w = (width - pad_l - 8) / groups
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    inner_h = height - pad_b - pad_t
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for frac, tick in ticks:
        y = pad_t + inner_h * (1 - frac)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick}</text>')
    for g, label in enumerate(labels):
        x0 = pad_l + g * group_w + group_w * 0.1
        for s, values in enumerate(series):
            v = values[g] if g < len(values) and math.isfinite(values[g]) else 0.0
            h = inner_h * v / top
            x = x0 + s * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{pad_t + inner_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}" fill-opacity="0.85"><title>{esc(label)}: {fmt(v)}</title></rect>'
            )
        if groups <= 12 or g % max(1, groups // 6) == 0:
            parts.append(
                f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - pad_b + 14}" font-size="9" text-anchor="middle">'
                f"{esc(label[:12])}</text>"
            )
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 8}" y2="{pad_t + inner_h}" stroke="#999"/>')
    parts.append("</svg>")
    return "".join(parts)


def xy_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float], str]], width: int = 560, height: int = 260) -> str:
    """Lines or points: each series is (label, xs, ys, style) with style "line" or "points"."""
    pad = 44  # right, top and bottom; the left margin fits the y tick labels
    xs_all = [x for _, xs, _, _ in series for x in xs]
    ys_all = [y for _, _, ys, _ in series for y in ys if math.isfinite(y)]
    if not xs_all or not ys_all:
        return ""
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    x1 = x1 if x1 > x0 else x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    y_ticks = [(value, fmt(value)) for value in (y0, (y0 + y1) / 2, y1)]
    pad_l = left_margin([t for _, t in y_ticks])

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad)

    def sy(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for value, tick in y_ticks:
        parts.append(f'<line x1="{pad_l}" y1="{sy(value):.1f}" x2="{width - pad}" y2="{sy(value):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{pad_l - 4}" y="{sy(value) + 4:.1f}" font-size="10" text-anchor="end">{tick}</text>')
    for value in (x0, x1):
        parts.append(
            f'<text x="{sx(value):.1f}" y="{height - pad + 14}" font-size="10" text-anchor="middle">{short(value)}</text>'
        )
    for i, (label, xs, ys, style) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = [(sx(x), sy(y)) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
        if style == "line" and len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            line = f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{coords}">'
            parts.append(f"{line}<title>{esc(label)}</title></polyline>")
        else:
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" fill-opacity="0.7"/>' for x, y in points)
    parts.append("</svg>")
    return "".join(parts)
