"""An offline HTML report of runs: a summary table and one SVG chart per metric curve.

No JavaScript and no CDN: the file opens anywhere, from disk, years later.

>>> html = runs_report(client, [run.id for run in runs], title="sweep")   # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from keel.core.entities import Metric, Run
from keel.core.html import PALETTE, figure, page, swatch
from keel.tracking.client import Client

WIDTH, HEIGHT, PAD = 560, 260, 44

_LOWER_IS_BETTER = ("loss", "error", "err", "std", "mae", "mse", "rmse", "latency", "time", "duration")


def lower_is_better(key: str) -> bool:
    """Whether a smaller value of this metric is the better one (losses, errors, spreads, times)."""
    words = key.lower().replace("-", "_").replace("/", "_").replace(".", "_").split("_")
    return any(w in _LOWER_IS_BETTER for w in words)


def best_value(key: str, values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if lower_is_better(key) else max(finite)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return str(x) if not math.isfinite(x) else f"{x:.4g}"


def line_chart(title: str, series: Sequence[tuple[str, Sequence[Metric]]]) -> str:
    """An SVG line chart: one line per (label, history); non-finite values are left out of the lines."""
    points = [(m.step, m.value) for _, hist in series for m in hist if math.isfinite(m.value)]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD + (y - y0) / (y1 - y0) * -(HEIGHT - 2 * PAD)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
    ]
    for value in (y0, (y0 + y1) / 2, y1):
        y = sy(value)
        parts.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(value)}</text>')
    for value in (x0, x1):
        parts.append(f'<text x="{sx(value):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">{value:g}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">step</text>')
    for i, (label, hist) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        finite = [(sx(m.step), sy(m.value)) for m in hist if math.isfinite(m.value)]
        if len(finite) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in finite)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{coords}">')
            parts.append(f"<title>{html.escape(label)}</title></polyline>")
        for x, y in finite if len(finite) <= 30 else finite[-1:]:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def runs_report(client: Client, run_ids: Sequence[str], title: str = "keel runs") -> str:
    """The HTML of a report on ``run_ids``: params, latest metrics (best in bold), metric curves."""
    runs: list[Run] = [client.get_run(r) for r in run_ids]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    out = ["<h2>Runs</h2><div class=wide><table><tr><th class=l>run</th><th class=l>status</th>"]
    out += [f"<th class=l>{html.escape(k)}</th>" for k in param_keys]
    out += [f"<th>{html.escape(k)}</th>" for k in metric_keys]
    out.append("</tr>")
    best = {key: best_value(key, [r.metric(key) for r in runs]) for key in metric_keys}
    for i, run in enumerate(runs):
        out.append(f"<tr><td class=l>{swatch(i)}{html.escape(run.name)} <small>{run.id[:8]}</small></td>")
        out.append(f"<td class=l>{run.status.value}</td>")
        out += [f"<td class=l>{html.escape(run.params.get(k, '-'))}</td>" for k in param_keys]
        for key in metric_keys:
            value = run.metric(key)
            cls = " class=best" if value is not None and value == best[key] and len(runs) > 1 else ""
            out.append(f"<td{cls}>{_fmt(value)}</td>")
        out.append("</tr>")
    out.append("</table></div><p><small>bold: the best value of each metric (the lowest for losses, errors, ")
    out.append("spreads and times; the highest otherwise)</small></p>")
    charts = []
    for key in metric_keys:
        histories = [(r.name, client.get_metric_history(r.id, key)) for r in runs]
        if max(len(h) for _, h in histories) < 2:
            continue  # a single value is in the table already
        chart = line_chart(key, histories)
        if chart:
            charts.append(figure(key, chart, [n for n, _ in histories]))
    if charts:
        out.append("<h2>Metric curves</h2><div class=charts>" + "".join(charts) + "</div>")
    return page(title, "".join(out))
