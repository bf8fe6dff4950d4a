"""UI pages of one run: everything it recorded (``/ui/runs/{ref}``), its artifacts as files for the previews
(``/ui/runs/{ref}/artifacts/{path}``), and the chart data of its metrics (``/ui/data/metrics``).

A run is named by its id or a prefix of it (keel prints 12 characters). A run of a project the caller may not read
answers 404 as a run that does not exist: its existence is not told (the path parameter is ``ref``, not ``run_id``,
so ``authorize`` does not answer 403 for it first).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from keel.core.entities import NOTE_TAG, Run, RunKind, RunStatus, ViewType
from keel.core.errors import InvalidArgument, KeelError, NotFound
from keel.server.auth import caller_of
from keel.tracking import failures as run_failures
from keel.ui import charts, previews
from keel.ui.downsample import downsample
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

MIN_PREFIX = 4
MAX_CANDIDATES = 10
DEFAULT_CHARTS = 6
MAX_POINTS = 10_000
PACKAGES_BYTES = 256 * 1024
PARENT_KINDS = (RunKind.PIPELINE, RunKind.STUDY, RunKind.SWEEP)


class RunNotShown(LookupError):
    """No run the caller may read has this id or prefix (``candidates``: several do, for a prefix). The pages turn it
    into their 404 (a page, or ``NotFound`` for the JSON routes): it never leaves the UI, so it is not a keel error."""

    def __init__(self, message: str, candidates: list[Run] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []


def _readable(request: Request, run: Run) -> bool:
    store = request.app.state.store
    try:
        project = store.get_experiment(run.experiment_id).project
    except NotFound:
        return False
    return bool(caller_of(request).may_in("read", project))


def find_run(request: Request, ref: str) -> Run:
    """The run ``ref`` names (a full id, or a unique prefix of at least 4 characters) among those the caller may
    read, deleted ones included; ``RunNotShown`` otherwise, as for a run that does not exist."""
    store = request.app.state.store
    try:
        run: Run = store.get_run(ref)
    except NotFound:
        pass
    else:
        if _readable(request, run):
            return run
        raise RunNotShown(f"no run {ref!r}")
    if len(ref) < MIN_PREFIX or not ref.isalnum():  # isalnum: the prefix goes into a LIKE filter as it is
        raise RunNotShown(f"no run {ref!r} (give a run id or at least {MIN_PREFIX} of its characters)")
    page_ = store.search_runs(None, f"run_id like '{ref.lower()}%'", max_results=MAX_CANDIDATES + 1, view=ViewType.ALL)
    matches = [r for r in page_.runs if _readable(request, r)]
    if len(matches) == 1:
        found: Run = matches[0]
        return found
    if not matches:
        raise RunNotShown(f"no run id starts with {ref!r}")
    raise RunNotShown(f"run id prefix {ref!r} is ambiguous: give more characters", matches)


def not_found(request: Request, exc: RunNotShown) -> HTMLResponse:
    """The 404 page of a run that cannot be shown (with the runs a too-short prefix matched)."""
    return page(request, "run_notfound.html", title="Run not found", status=404, nav="runs", message=str(exc),
                candidates=exc.candidates)  # fmt: skip


@router.get("/ui/runs/{ref}")
def run_page(request: Request, ref: str) -> HTMLResponse:
    """Everything one run recorded: params, metrics (charts), tags, code, environment, datasets, artifacts with
    previews, a failure's traceback, child runs; a pipeline's DAG, a study's or sweep's parallel coordinates."""
    try:
        run = find_run(request, ref)
    except RunNotShown as exc:
        return not_found(request, exc)
    store = request.app.state.store
    artifacts_store = request.app.state.artifacts
    experiment = store.get_experiment(run.experiment_id)
    refs = sorted(store.list_artifacts(run.id), key=lambda a: a.path)
    shown = [previews.preview(artifacts_store, a) for a in refs[: previews.MAX_PREVIEWS]]
    children = store.list_child_runs(run.id) if run.kind in PARENT_KINDS else []
    keys = sorted(run.metrics)
    chosen = [k for k in request.query_params.getlist("chart") if k in run.metrics] or keys[:DEFAULT_CHARTS]
    context: dict[str, Any] = {
        "run": run, "experiment": experiment, "artifacts": shown, "more_artifacts": refs[previews.MAX_PREVIEWS :],
        "failures": run_failures.failures(store, artifacts_store, run, {a.path for a in refs}),
        "children": children, "parent": _parent(request, run), "keys": keys, "charted": chosen,
        "tags": {k: v for k, v in sorted(run.tags.items()) if k != NOTE_TAG}, "packages": _packages(request, run),
        "datasets": _datasets(store, run.id), "dag": None, "parallel": None,
        "series": [{"run": run.id, "label": run.name}],
    }  # fmt: skip
    if run.kind is RunKind.PIPELINE and children:
        context["dag"] = Markup(charts.dag_svg(charts.dag_steps(children)))  # labels escaped in keel.ui.charts
    if run.kind in (RunKind.STUDY, RunKind.SWEEP) and children:
        context["parallel"] = Markup(parallel(run, children))  # labels escaped in keel.ui.charts
    return page(request, "run.html", title=f"Run {run.name}", nav="runs", **context)


def _parent(request: Request, run: Run) -> Run | None:
    if run.parent_run_id is None:
        return None
    try:
        parent: Run = request.app.state.store.get_run(run.parent_run_id)
    except NotFound:
        return None
    return parent


def _packages(request: Request, run: Run) -> str | None:
    """The package list the run's environment points to (a blob of the artifact store), its first 256 KB."""
    blob = run.environment.packages_blob
    if not blob:
        return None
    try:
        data = request.app.state.artifacts.get_bytes(blob)
    except KeelError:
        return None
    text: str = data[:PACKAGES_BYTES].decode("utf-8", errors="replace")
    return text


def _datasets(store: Any, run_id: str) -> list[Any]:
    try:
        return list(store.datasets.versions_of_run(run_id))
    except KeelError:  # a store without datasets
        return []


def parallel(run: Run, children: list[Run]) -> str:
    """The trials of a study or sweep in parallel coordinates: their params, then the objective (``keel.metric``);
    the best complete trial (in ``keel.direction``) drawn on top."""
    from keel.core import ranking

    trials = [c for c in children if c.kind is RunKind.TRIAL]
    if not trials:
        return ""
    metric = run.tags.get("keel.metric", "")
    direction = run.tags.get("keel.direction") or ranking.direction_for(metric or "value")
    names = sorted({k for t in trials for k in (t.trial.params if t.trial and t.trial.params else t.params)})

    def objective(t: Run) -> float | None:
        if t.trial is not None and t.trial.value is not None:
            return t.trial.value
        latest = t.metrics.get(metric)
        return latest.value if latest is not None else None

    rows = []
    for t in trials:
        params = t.trial.params if t.trial and t.trial.params else t.params
        rows.append((t.name, [_as_axis(params.get(k)) for k in names] + [objective(t)]))
    done = [objective(t) if t.status is RunStatus.FINISHED else None for t in trials]
    best = ranking.best_index(done, direction)
    return charts.parallel_svg([*names, metric or "objective"], rows, best)


def _as_axis(value: Any) -> str | float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


@router.get("/ui/runs/{ref}/artifacts/{path:path}")
def artifact_file(request: Request, ref: str, path: str) -> Response:
    """One artifact's bytes for the previews: images and HTML as themselves, under ``Content-Security-Policy:
    sandbox`` (``keel.ui.previews``)."""
    try:
        run = find_run(request, ref)
    except RunNotShown:
        return Response("not found", status_code=404, media_type="text/plain")
    for item in request.app.state.store.list_artifacts(run.id):
        if item.path == path:
            headers = previews.response_headers(item)
            media = headers.pop("content-type")
            data = request.app.state.artifacts.get_bytes(item.sha256)
            return Response(data, media_type=media, headers=headers)
    return Response("not found", status_code=404, media_type="text/plain")


@router.get("/ui/data/metrics")
def metric_data(request: Request, run: str, key: str, points: int = 2000) -> JSONResponse:
    """``{steps, values, count, downsampled, nonfinite}`` of one metric of one run, at most ``points`` of them
    (``keel.ui.downsample``: the min and max of each bucket of steps, the first and last point)."""
    if not 4 <= points <= MAX_POINTS:
        raise InvalidArgument.for_field("points", points, f"an integer from 4 to {MAX_POINTS}")
    try:
        found = find_run(request, run)
    except RunNotShown as exc:
        raise NotFound(str(exc)) from None
    if key not in found.metrics:
        raise NotFound(f"run {found.id[:12]} has no metric {key!r}")
    steps, values = request.app.state.store.metric_series(found.id, key)
    return JSONResponse(downsample(steps, values, points).as_json(), headers={"cache-control": "no-store"})
