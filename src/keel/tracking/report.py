"""An offline HTML report of runs: a summary table and one SVG chart per metric curve.

No JavaScript and no CDN: the file opens anywhere, from disk, years later.

>>> html = runs_report(client, [run.id for run in runs], title="sweep")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from keel.core import ranking
from keel.core.entities import Run
from keel.core.html import figure, fmt, page, param, swatch, xy_chart
from keel.tracking.client import Client


def lower_is_better(key: str) -> bool:
    """Whether a smaller value of this metric is the better one (losses, errors, spreads, times)."""
    return ranking.direction_for(key) == "minimize"


def best_value(key: str, values: Sequence[float | None]) -> float | None:
    """The best of a metric's values across runs, in the direction its name says (``keel.core.ranking``)."""
    return ranking.best_value(values, ranking.direction_for(key))


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
        out += [f"<td class=l>{param(run.params.get(k, '-'))}</td>" for k in param_keys]
        for key in metric_keys:
            value = run.metric(key)
            cls = " class=best" if value is not None and value == best[key] and len(runs) > 1 else ""
            out.append(f"<td{cls}>{fmt(value)}</td>")
        out.append("</tr>")
    out.append("</table></div><p><small>bold: the best value of each metric (the lowest for losses, errors, ")
    out.append("spreads and times; the highest otherwise)</small></p>")
    charts = []
    for key in metric_keys:
        histories = [(r.name, client.get_metric_history(r.id, key)) for r in runs]
        if max(len(h) for _, h in histories) < 2:
            continue  # a single value is in the table already
        series = [(name, [float(m.step) for m in h], [m.value for m in h], "line") for name, h in histories]
        chart = xy_chart(series)
        if chart:
            charts.append(figure(key, chart, [n for n, _ in histories]))
    if charts:
        out.append("<h2>Metric curves</h2><div class=charts>" + "".join(charts) + "</div>")
    return page(title, "".join(out))
