"""The runs page: an experiment's runs (or those of every experiment the caller may read) as a table.

Everything the user sets is in the query, so a view can be shared and reloaded:

- ``experiment``, ``project``: whose runs (none: every experiment of a project the caller may read);
- ``f``: a filter in the store's search grammar (``keel runs list -f``); a bad one shows the store's message;
- ``order``: one sort key, ``metrics.auc DESC`` (a column header toggles it);
- ``c``: the columns, repeated (``c=metrics.auc&c=params.C``); none: the defaults ``keel runs list`` picks
  (``keel.tracking.columns``), unless ``runs.js`` restores the user's last choice for the experiment;
- ``after``: the page's keyset cursor (the store's page token), ``p`` its number (display only);
- ``deleted=1`` shows deleted runs too;
- ``children=1`` shows the steps of pipelines and the trials of studies and sweeps. Without a filter they are hidden:
  a sweep of 500 trials would bury every other run, and a parent's own page lists its children (the table's kind
  column says which rows are pipelines, studies and sweeps). A filter is a question, so it is answered with every
  run that matches, children included (``metrics.value > 0`` finds the trials that logged ``value``); add
  ``kind != 'trial'`` to the filter to leave them out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core.entities import Experiment, Run, RunPage, ViewType
from keel.core.errors import InvalidArgument, NotFound
from keel.server.auth import caller_of
from keel.store.metadata import search
from keel.store.metadata.base import MetadataStore
from keel.tracking.columns import default_columns
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_COLUMNS = 40
HIDE_CHILDREN = "kind != 'step' and kind != 'trial'"
_PREFIXES = {"metrics": "metric", "params": "param", "tags": "tag"}


@dataclass(frozen=True, slots=True)
class Column:
    """A chosen column: ``spec`` as in the URL (``metrics.auc``), the kind of value and its key."""

    spec: str
    kind: str  # metric, param or tag
    key: str

    def value(self, run: Run) -> Any:
        """The run's value in this column: a metric's latest value, a param's or tag's text; None when missing."""
        if self.kind == "metric":
            metric = run.metrics.get(self.key)
            return None if metric is None else metric.value
        return (run.params if self.kind == "param" else run.tags).get(self.key)


def parse_columns(specs: list[str]) -> tuple[list[Column], list[str]]:
    """The columns of ``specs`` (``metrics.k``, ``params.k``, ``tags.k``), without repeats; and the specs refused."""
    columns: list[Column] = []
    refused: list[str] = []
    for spec in dict.fromkeys(specs):
        prefix, _, key = spec.partition(".")
        if prefix in _PREFIXES and key and len(columns) < MAX_COLUMNS:
            columns.append(Column(spec, _PREFIXES[prefix], key))
        elif spec:
            refused.append(spec)
    return columns, refused


def next_order(current: str, field: str) -> str:
    """The order a click on ``field``'s header asks for: descending first, then ascending, then descending..."""
    return f"{field} ASC" if current == f"{field} DESC" else f"{field} DESC"


def _experiments(store: MetadataStore, request: Request, view: ViewType) -> tuple[list[Experiment], Experiment | None]:
    """The experiments whose runs are listed, and the one named in the query if any; a named experiment in a project
    the caller may not read is ``NotFound``, as one that does not exist (its existence is not told)."""
    caller = caller_of(request)
    name = request.query_params.get("experiment")
    if name:
        project = request.query_params.get("project") or "default"
        try:
            experiment = store.get_experiment_by_name(name, project)
        except (NotFound, InvalidArgument):
            experiment = None
        if experiment is None or not caller.may_in("read", experiment.project):
            raise NotFound(f"experiment {name!r} does not exist in project {project!r}")
        return [experiment], experiment
    listed = store.list_experiments(view=ViewType.ALL if view is ViewType.ALL else ViewType.ACTIVE)
    return [e for e in listed if caller.may_in("read", e.project)], None


def _page_size(raw: str | None) -> int:
    try:
        size = int(raw) if raw else PAGE_SIZE
    except ValueError:
        size = PAGE_SIZE
    return min(max(size, 1), MAX_PAGE_SIZE)


def _page_number(raw: str | None) -> int:
    """Which page this is, for the reader only: the cursor alone says where the page starts."""
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


def _search(store: MetadataStore, ids: list[int] | None, request: Request, view: ViewType) -> RunPage:
    """One page of the search the query asks for; the store's ``InvalidArgument`` (a bad filter, order or cursor)
    goes up to the page, which shows its message."""
    q = request.query_params
    user_filter = q.get("f", "").strip()
    search.parse_filter(user_filter)  # first on its own: the message quotes the user's filter, not ours added to it
    parts = [p for p in (user_filter, "" if shows_children(request) else HIDE_CHILDREN) if p]
    order = [q["order"]] if q.get("order") else []
    return store.search_runs(ids, " and ".join(parts), order, _page_size(q.get("n")), q.get("after") or None, view)


def shows_children(request: Request) -> bool:
    """Steps and trials are listed when asked for (``children=1``) or when the page is filtered."""
    return request.query_params.get("children") == "1" or bool(request.query_params.get("f", "").strip())


def _keys(runs: list[Run], columns: list[Column]) -> dict[str, list[str]]:
    """What the column picker offers: the metric and param keys of the listed runs and the columns chosen."""
    metrics = {k for r in runs for k in r.metrics} | {c.key for c in columns if c.kind == "metric"}
    params = {k for r in runs for k in r.params} | {c.key for c in columns if c.kind == "param"}
    return {"metrics": sorted(metrics), "params": sorted(params)}


@router.get("/ui/runs")
def runs(request: Request) -> HTMLResponse:
    """The runs table: filter, sort, columns, keyset pages; checkboxes feed the compare page."""
    started = time.perf_counter()
    store: MetadataStore = request.app.state.store
    q = request.query_params
    view = ViewType.ALL if q.get("deleted") == "1" else ViewType.ACTIVE
    try:
        experiments, experiment = _experiments(store, request, view)
    except NotFound as exc:
        return _timed(page(request, "runs.html", title="Runs", status=404, **_empty(str(exc))), started)
    everything = experiment is None and not caller_of(request).authenticated
    ids = None if everything else [e.id for e in experiments]
    error = None
    try:
        found = RunPage([], None) if ids == [] else _search(store, ids, request, view)
    except InvalidArgument as exc:
        error, found = str(exc), RunPage([], None)
    columns, refused = parse_columns(q.getlist("c"))
    chosen = bool(columns)
    if not chosen:
        columns, _ = parse_columns(default_columns(found.runs))
    title = f"Runs of {experiment.name}" if experiment else "Runs"
    context: dict[str, Any] = {
        "nav": "runs",
        "runs": found.runs,
        "error": error,
        "refused": refused,
        "columns": columns,
        "chosen": chosen,
        "keys": _keys(found.runs, columns),
        "experiment": experiment,
        "names": {e.id: e.name for e in experiments},
        "next_token": found.next_page_token,
        "page_number": _page_number(q.get("p")) if q.get("after") else 1,
        "order": q.get("order", ""),
        "next_order": next_order,
        "show_children": q.get("children") == "1",
        "filtered": bool(q.get("f", "").strip()),
        "show_deleted": view is ViewType.ALL,
        "storage_key": f"{experiment.project}/{experiment.name}" if experiment else "*",
    }
    return _timed(page(request, "runs.html", title=title, **context), started)


def _empty(message: str) -> dict[str, Any]:
    return {"nav": "runs", "runs": [], "error": message, "refused": [], "columns": [], "chosen": False,
            "keys": {"metrics": [], "params": []}, "experiment": None, "names": {}, "next_token": None,
            "page_number": 1, "order": "", "next_order": next_order, "show_children": False, "filtered": False,
            "show_deleted": False, "storage_key": "*"}  # fmt: skip


def _timed(answer: HTMLResponse, started: float) -> HTMLResponse:
    """``answer`` with the server's own time in ``Server-Timing`` (the browser's devtools and bench/ui.py read it)."""
    answer.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return answer
