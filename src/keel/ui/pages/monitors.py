"""UI pages: a monitor's windows as time series, its alerts (firing and resolved) and the actions they took.

The series are those of the monitor's offline report (``keel.monitor.report``: drift share and the top columns'
scores, realised and estimated performance, latency, throughput, traffic, data quality), picked with the report's
own helpers, and drawn in the browser with uPlot from ``/ui/data/monitors/{name}/windows``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core.clock import now_ms
from keel.core.monitoring import MonitorWindow
from keel.monitor.report import TOP_COLUMNS, drift_columns, performance_metrics, quality_names, ranked_by_score, window_series
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

MAX_METRICS = 8


@router.get("/ui/monitors/{name}")
def monitor(request: Request, name: str, span: str = "") -> HTMLResponse:
    """The monitor's definition, its newest window's values, its charts, and every alert with its actions."""
    store = request.app.state.store.monitors
    found = store.get_monitor(name)  # NotFound: 404
    windows = ordered(store.windows(name))
    alerts = sorted(store.alerts(monitor=name), key=lambda a: (a.state != "firing", -a.last_window_ms, a.id))
    actions = {a.id: store.actions(a.id) for a in alerts}
    newest = windows[-1] if windows else None
    return page(
        request, "monitor.html", title=f"Monitor {name}", nav="deployments", m=found, windows=len(windows), newest=newest,
        values=sorted(newest.values.items()) if newest else [], alerts=alerts, actions=actions, span=span,
    )  # fmt: skip


@router.get("/ui/data/monitors/{name}/windows")
def windows_data(request: Request, name: str, span: str = "") -> dict[str, Any]:
    """The monitor's charts as JSON (``keel/ui/static/deployments.js`` draws them): one per monitored family of
    numbers, over the windows' start times (the last ``span`` only when given: ``7d``, ``24h``)."""
    from keel.serve.predictions import window_ms

    store = request.app.state.store.monitors
    store.get_monitor(name)
    since = window_ms(span or None, "span", now_ms())
    return {"charts": charts(ordered(store.windows(name, since_ms=since)))}


def ordered(windows: list[MonitorWindow]) -> list[MonitorWindow]:
    """One window per start time (the last computed), oldest first: as the report orders them."""
    by_start = {w.start_ms: w for w in sorted(windows, key=lambda w: (w.start_ms, w.computed_at))}
    return [by_start[k] for k in sorted(by_start)]


def charts(windows: list[MonitorWindow]) -> list[dict[str, Any]]:
    """The report's time series (``keel.monitor.report``), as ``{title, x (s), series: [{label, values}]}``; a
    chart none of whose lines has a value is left out."""
    if not windows:
        return []
    x = [w.start_ms / 1000 for w in windows]

    def chart(title: str, lines: list[tuple[str, str]]) -> dict[str, Any]:
        series = [{"label": label, "values": window_series(windows, key)} for label, key in lines]
        return {"title": title, "x": x, "series": [s for s in series if any(v is not None for v in s["values"])]}

    top = ranked_by_score(windows[-1], drift_columns(windows), windows)[:TOP_COLUMNS]
    out = [chart("drift share", [("drift.share", "drift.share")]),
           chart("drift score, top columns", [(c, f"drift.{c}.score") for c in top])]  # fmt: skip
    for metric in performance_metrics(windows)[:MAX_METRICS]:
        out.append(chart(f"performance: {metric}", [("realised", f"performance.realised.{metric}"),
                                                     ("estimated", f"performance.estimated.{metric}")]))  # fmt: skip
    out.append(chart("latency (ms)", [("p50", "health.latency_p50_ms"), ("p99", "health.latency_p99_ms")]))
    out.append(chart("throughput (requests/s)", [("throughput", "health.throughput_per_s")]))
    out.append(chart("traffic per window", [("rows", "health.rows"), ("requests", "health.requests")]))
    if any(w.labelled_rows for w in windows):  # a field of the window, not one of its values
        labelled = [{"label": "labelled rows", "values": [float(w.labelled_rows) for w in windows]}]
        out.append({"title": "labelled rows per window", "x": x, "series": labelled})
    for check, columns in quality_names(windows).items():
        out.append(chart(f"quality: {check}", [(c, f"quality.{c}.{check}") for c in columns[:TOP_COLUMNS]]))
    return [c for c in out if c["series"]]
