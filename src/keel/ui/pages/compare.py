"""The compare page (``/ui/compare?run=ID&run=ID...``): metric curves of several runs overlaid, params side by side
(those that differ highlighted), latest metrics side by side with the best value of each marked, and, when the runs
are trials of one study or sweep, their parallel coordinates.

The best value follows the metric's direction as ``keel runs compare`` does (``keel.core.ranking``: lower is better
for losses, errors, spreads and times, higher for the rest).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from keel.core import ranking
from keel.core.entities import Run, RunKind
from keel.core.errors import NotFound
from keel.ui.pages.run_detail import DEFAULT_CHARTS, RunNotShown, find_run, parallel
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

MAX_RUNS = 20


@router.get("/ui/compare")
def compare_page(request: Request) -> HTMLResponse:
    """Runs side by side; which runs is the query (``run`` repeated), so a comparison is a link."""
    refs = list(dict.fromkeys(request.query_params.getlist("run")))[:MAX_RUNS]
    runs: list[Run] = []
    missing: list[str] = []
    for ref in refs:
        try:
            runs.append(find_run(request, ref))
        except RunNotShown:
            missing.append(ref)
    runs = list({r.id: r for r in runs}.values())  # two prefixes of one run: once
    param_rows = _params(runs)
    metrics = _metrics(runs)
    shared = [k for k in metrics if sum(k in r.metrics for r in runs) >= min(2, len(runs))]
    chosen = [k for k in request.query_params.getlist("chart") if k in metrics] or shared[:DEFAULT_CHARTS]
    return page(
        request, "compare.html", title=f"Compare {len(runs)} runs", nav="runs", runs=runs, missing=missing, param_rows=param_rows,
        metrics=metrics, keys=list(metrics), charted=chosen, parallel=_parallel(request, runs),
        series=[{"run": r.id, "label": f"{r.name} ({r.id[:12]})"} for r in runs],
    )  # fmt: skip


def _params(runs: list[Run]) -> list[dict[str, Any]]:
    """Every param any run has: its values in run order (None where a run has none) and whether they differ."""
    keys = sorted({k for r in runs for k in r.params})
    rows = []
    for key in keys:
        values = [r.params.get(key) for r in runs]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return rows


def _metrics(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Every metric any run has: latest values in run order, the best of them (None when fewer than two runs have
    one: nothing to beat) and the direction that decided it."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted({k for r in runs for k in r.metrics}):
        values = [r.metrics[key].value if key in r.metrics else None for r in runs]
        direction = ranking.direction_for(key)
        several = sum(v is not None for v in values) > 1
        best = ranking.best_index(values, direction) if several else None
        out[key] = {"values": values, "best": best, "direction": direction}
    return out


def _parallel(request: Request, runs: list[Run]) -> Markup | None:
    """Parallel coordinates of the compared runs when all are trials of one study or sweep."""
    parents = {r.parent_run_id for r in runs}
    if len(runs) < 2 or len(parents) != 1 or any(r.kind is not RunKind.TRIAL for r in runs):
        return None
    try:
        study = find_run(request, str(next(iter(parents))))
    except (RunNotShown, NotFound):
        return None
    svg = parallel(study, runs)
    return Markup(svg) if svg else None  # labels escaped in keel.ui.charts
