"""UI pages: the deployments (routes, weights, history), their traffic over time and the shadow comparison.

Traffic comes from what the store already keeps: the prediction log's index (``PredictionLogFile``: rows per time
span per replica) gives the request rate without opening a file; latency over time comes from the windows of the
deployment's monitors (``health.latency_p50_ms``...). The comparison of the models (``keel deploy compare``: the
same function, ``keel.serve.comparison.compare``) reads the log's Parquet files, so it runs only when asked for
(``?compare=1``), and says what to install when pyarrow is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core.clock import now_ms
from keel.core.deployments import Deployment, DeploymentChange
from keel.core.errors import InvalidArgument, KeelError, MissingExtra
from keel.core.predictions import PredictionLogFile
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

MAX_BUCKETS = 240  # points per line of the traffic chart
MAX_REPLICAS = 6  # lines per replica drawn (the busiest); the total is always drawn
DEFAULT_SPAN = "24h"


@router.get("/ui/deployments")
def deployments(request: Request) -> HTMLResponse:
    """Every deployment: its primary (with its share of traffic), shadows, canaries with weights, sticky key."""
    listed = request.app.state.store.deployments.list_deployments()
    return page(request, "deployments.html", title="Deployments", nav="deployments", deployments=listed)


@router.get("/ui/deployments/{name}")
def deployment(request: Request, name: str, compare: str = "", since: str = "1h", until: str = "",
               reference: str = "", span: str = DEFAULT_SPAN) -> HTMLResponse:  # fmt: skip
    """One deployment: routes and weights, every change (newest first), traffic and latency charts, its monitors,
    and (``compare=1``) the comparison of its models over ``since``..``until``."""
    store = request.app.state.store
    found = store.deployments.get(name)  # NotFound: the server's 404
    history = list(reversed(store.deployments.history(name)))
    monitors = store.monitors.list_monitors(name)
    firing = {m.name: len(store.monitors.alerts(monitor=m.name, state="firing")) for m in monitors}
    comparison, problem = None, ""
    if compare:
        comparison, problem = _comparison(request, name, since, until, reference)
    return page(
        request, "deployment.html", title=f"Deployment {name}", nav="deployments", d=found, routes=route_rows(found),
        history=[change_row(c) for c in history], monitors=monitors, firing=firing, comparison=comparison,
        problem=problem, span=span, metric_names=sorted({k for m in comparison.models for k in m.metrics}) if comparison else [],
    )  # fmt: skip


@router.get("/ui/data/deployments/{name}/traffic")
def traffic(request: Request, name: str, span: str = DEFAULT_SPAN) -> dict[str, Any]:
    """Charts as JSON (``keel/ui/static/deployments.js`` draws them): rows logged per second over the last ``span`` (from
    the log's index, per replica), and the latency the deployment's monitors measured per window."""
    from keel.serve.predictions import window_ms

    store = request.app.state.store
    store.deployments.get(name)
    now = now_ms()
    since = window_ms(span or None, "span", now)
    files = store.predictions.log_files(name, since_ms=since)
    charts = [rate_chart(files, since, now)]
    windows = [w for m in store.monitors.list_monitors(name) for w in store.monitors.windows(m.name, since_ms=since)]
    windows.sort(key=lambda w: w.start_ms)
    latency = [("p50 ms", "health.latency_p50_ms"), ("p99 ms", "health.latency_p99_ms")]
    series = [{"label": label, "values": [_finite(w.values.get(key)) for w in windows]} for label, key in latency]
    series = [s for s in series if any(v is not None for v in s["values"])]
    if series:
        charts.append({"title": "latency of the model call (ms, per monitor window)", "x": [w.start_ms / 1000 for w in windows],
                       "series": series})  # fmt: skip
    return {"charts": [c for c in charts if c["x"]]}


def rate_chart(files: Sequence[PredictionLogFile], since: int | None, until: int) -> dict[str, Any]:
    """Rows per second in at most ``MAX_BUCKETS`` buckets of ``[since, until]`` (the files' own span when ``since``
    is None): each file's rows spread evenly over its span, so a file of a minute of traffic adds to the buckets of
    that minute. A line for the total and one per replica (the busiest ``MAX_REPLICAS``) when there are several."""
    if not files:
        return {"title": "rows logged per second", "x": [], "series": []}
    start = since if since is not None else min(f.start_ms for f in files)
    end = max(until if since is not None else max(f.end_ms for f in files), start + 1)
    width = max(1000, math.ceil((end - start) / MAX_BUCKETS / 1000) * 1000)  # whole seconds
    n = max(1, math.ceil((end - start) / width))
    per_replica: dict[str, list[float]] = {}
    for f in files:
        counts = per_replica.setdefault(f.replica, [0.0] * n)
        lo, hi = max(f.start_ms, start), min(f.end_ms, end)
        if hi < lo:
            continue
        span = f.end_ms - f.start_ms
        if span <= 0 or lo == hi:
            counts[min(n - 1, (lo - start) // width)] += f.rows
            continue
        first, last = (lo - start) // width, min(n - 1, (hi - start) // width)
        for b in range(first, last + 1):
            b0, b1 = start + b * width, start + (b + 1) * width
            counts[b] += f.rows * (min(hi, b1) - max(lo, b0)) / span
    seconds = width / 1000
    total = [sum(c[i] for c in per_replica.values()) / seconds for i in range(n)]
    series = [{"label": "all replicas", "values": total}]
    if len(per_replica) > 1:
        busiest = sorted(per_replica, key=lambda r: -sum(per_replica[r]))[:MAX_REPLICAS]
        series += [{"label": r, "values": [c / seconds for c in per_replica[r]]} for r in busiest]
    x = [(start + b * width) / 1000 for b in range(n)]
    return {"title": f"rows logged per second ({seconds:g} s buckets)", "x": x, "series": series}


def route_rows(d: Deployment) -> list[dict[str, Any]]:
    """The routes of ``d`` as table rows: kind, model URI, share of the answered traffic (None for a shadow)."""
    rows: list[dict[str, Any]] = [{"kind": "primary", "model": d.primary, "weight": d.primary_weight}]
    rows += [{"kind": "canary", "model": m, "weight": w} for m, w in d.canaries]
    rows += [{"kind": "shadow", "model": m, "weight": None} for m in d.shadows]
    return rows


def change_row(c: DeploymentChange) -> dict[str, Any]:
    """A change for the history table: its routes before and after as short text (``-`` for the creation)."""
    return {"what": c.what, "actor": c.actor, "reason": c.reason, "at": c.at, "before": routes_text(c.from_routes),
            "after": routes_text(c.to_routes)}  # fmt: skip


def routes_text(routes: dict[str, Any] | None) -> str:
    """``{"primary", "shadows", "canaries", "sticky_key", "resolved"}`` as one line a person reads."""
    if routes is None:
        return "-"
    parts = [f"primary {routes.get('primary')}"]
    parts += [f"canary {m} ({_pct(w)})" for m, w in routes.get("canaries") or []]
    parts += [f"shadow {m}" for m in routes.get("shadows") or []]
    if routes.get("sticky_key"):
        parts.append(f"sticky by {routes['sticky_key']}")
    for alias, version in (routes.get("resolved") or {}).items():
        parts.append(f"{alias} = {version or '-'}")
    return "; ".join(parts)


def _pct(weight: Any) -> str:
    return f"{float(weight):.0%}" if isinstance(weight, (int, float)) else str(weight)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _comparison(request: Request, name: str, since: str, until: str, reference: str) -> tuple[Any, str]:
    """``keel deploy compare``'s result for the window, or (None, why not) when it cannot be computed."""
    from keel.context import Context
    from keel.serve.predictions import window_ms

    now = now_ms()
    try:
        start, end = window_ms(since or None, "since", now), window_ms(until or None, "until", now)
        if start is not None and end is not None and start > end:
            raise InvalidArgument(f"since ({since}) is after until ({until}); expected an earlier start")
        from keel.serve.comparison import compare

        ctx = Context(request.app.state.store, request.app.state.artifacts)
        return compare(name, start, end, reference=reference or None, ctx=ctx), ""
    except MissingExtra as exc:
        return None, f"the comparison reads the prediction log's Parquet files: {exc}"
    except ImportError as exc:  # pyarrow or pandas imported without keel's MissingExtra around it
        return None, f"the comparison needs pyarrow and pandas ({exc.name or exc}): pip install 'keel[serve]'"
    except KeelError as exc:
        return None, str(exc)
