"""UI pages of the datasets: every dataset, a dataset's versions, one version (profile, validations, lineage) and the
drift between two versions, judged by the same test as ``keel data drift``.

Charts are server-side SVG from ``keel.core.html`` and ``keel.data.report``, which escape every label they draw: the
only markup a template here marks safe is theirs (``svg``), never a stored value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from keel.core.datasets import DatasetVersion, parse_ref
from keel.core.errors import InvalidArgument, KeelError
from keel.core.identity import DEFAULT_PROJECT
from keel.server.auth import caller_of, project_index
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

HIST_SIZE = (300, 130)
TOP_SHOWN = 10


def svg(markup: str) -> Markup:
    """SVG or HTML drawn by ``keel.core.html``/``keel.data.report``/``keel.govern.render`` (every label escaped there)."""
    return Markup(markup)  # built by keel's escaping chart helpers, never from raw stored text


def ui_context(request: Request) -> Any:
    """A ``keel.context.Context`` over the server's own stores (for the lineage queries), made once per app."""
    ctx = getattr(request.app.state, "ui_context", None)
    if ctx is None:
        from keel.context import Context
        from keel.core.config import load_settings

        ctx = Context(request.app.state.store, request.app.state.artifacts, settings=load_settings())
        request.app.state.ui_context = ctx
    return ctx


def readable_run(request: Request, run_id: str) -> bool:
    """Whether the caller may read the run (its project's ``read``): runs of other projects are not shown, not even
    as existing."""
    caller = caller_of(request)
    return caller.may_in("read", project_index(request).of_run(run_id) or DEFAULT_PROJECT)


def lineage_view(request: Request, graph: Any) -> dict[str, Any]:
    """A lineage graph for a page: run nodes the caller may not read are dropped (with their links), then drawn by
    ``keel.govern.render.graph_svg``; also its nodes as (kind, label, link) for a list under the drawing."""
    from keel.govern.graph import LineageGraph
    from keel.govern.render import graph_svg

    hidden = {k for k, n in graph.nodes.items() if n.kind == "run" and not readable_run(request, n.id)}
    shown = LineageGraph()
    for key, node in graph.nodes.items():
        if key not in hidden:
            shown.add(node.kind, node.id, node.label, **node.attrs)
    for edge in graph.edges:
        if edge.source not in hidden and edge.target not in hidden:
            shown.link(edge.source, edge.target, edge.relation)
    nodes = [(n.kind.replace("_", " "), n.label, _link(n)) for n in shown.nodes.values()]
    return {"svg": svg(graph_svg(shown)), "nodes": nodes, "hidden": len(hidden)}


def _link(node: Any) -> str | None:
    """The UI page of a lineage node, when it has one."""
    attrs = node.attrs
    if node.kind == "dataset_version" and "name" in attrs:
        return f"/ui/datasets/{attrs['name']}/{attrs['version']}"
    if node.kind == "run" and not attrs.get("missing"):
        return f"/ui/runs/{node.id}"
    if node.kind == "model_version" and "name" in attrs:
        return f"/ui/models/{attrs['name']}?version={attrs['version']}"
    if node.kind == "alias" and "model" in attrs:
        return f"/ui/models/{attrs['model']}"
    if node.kind == "deployment":
        return f"/ui/deployments/{node.id}"
    return None


@router.get("/ui/datasets")
def datasets(request: Request) -> HTMLResponse:
    """Every dataset with its latest version: rows, columns, when, its latest validation."""
    store = request.app.state.store.datasets
    listed = sorted(store.list_datasets(), key=lambda d: d.name)
    return page(request, "datasets.html", title="Datasets", nav="datasets", datasets=listed)


@router.get("/ui/datasets/{name}")
def dataset(request: Request, name: str) -> HTMLResponse:
    """A dataset's versions, newest first, each with its latest validation and a drift link to the one before."""
    store = request.app.state.store.datasets
    versions = list(reversed(store.list_versions(name)))  # NotFound for an unknown dataset
    validations = {v.id: next(iter(store.list_validations(v.id)), None) for v in versions}
    return page(request, "datasets_versions.html", title=f"Dataset {name}", nav="datasets", name=name, versions=versions,
                validations=validations)  # fmt: skip


@router.get("/ui/datasets/{name}/drift")
def drift(request: Request, name: str, a: int | None = None, b: int | None = None) -> HTMLResponse:
    """Drift of version ``b`` (current) against version ``a`` (reference), from their stored profiles, with the test
    and the headline of ``keel data drift``; by default the latest version against the one before."""
    store = request.app.state.store.datasets
    versions = store.list_versions(name)
    numbers = [v.version for v in versions]
    b = b if b is not None else numbers[-1]
    a = a if a is not None else (numbers[-2] if len(numbers) > 1 else numbers[-1])
    context: dict[str, Any] = {"name": name, "numbers": numbers, "a": a, "b": b, "result": None, "error": None}
    status = 200
    try:
        context.update(_drift(store, name, a, b))
    except KeelError as exc:  # no such version, no profile, a column of another kind: said on the page, pickers kept
        context["error"], status = exc.message, exc.http_status
    return page(request, "datasets_drift.html", title=f"Drift of {name}", nav="datasets", status=status, **context)


def _drift(store: Any, name: str, a: int, b: int) -> dict[str, Any]:
    from keel.data.drift_detection import drift as judge
    from keel.data.report import distribution_chart

    reference, current = store.get_version(name, a), store.get_version(name, b)
    profiles = []
    for version in (reference, current):
        profile = store.get_profile(version.id)
        if profile is None:
            raise InvalidArgument(f"dataset {version.ref} has no stored profile to compare")
        profiles.append(profile)
    result = judge(profiles[0], profiles[1])
    result.reference, result.current = reference.ref, current.ref
    columns = sorted(result.columns, key=lambda c: (not c.drifted, c.column))
    charts = {
        c.column: svg(distribution_chart(f"{c.column} ({'drifted' if c.drifted else 'stable'})",
                                         profiles[0]["columns"][c.column], profiles[1]["columns"][c.column]))
        for c in columns
    }  # fmt: skip
    return {"result": result, "columns": columns, "charts": charts}


@router.get("/ui/datasets/{name}/{version}")
def dataset_version(request: Request, name: str, version: int) -> HTMLResponse:
    """One version: its profile column by column, the validations recorded for it, and its lineage."""
    store = request.app.state.store.datasets
    ds = store.get_version(name, version)
    profile = store.get_profile(ds.id) or {"columns": {}}
    columns = [_column(col_name, col) for col_name, col in profile.get("columns", {}).items()]
    validations = [_validation(record) for record in store.list_validations(ds.id)]
    runs = [(run_id, direction) for run_id, direction in store.runs_of_version(ds.id) if readable_run(request, run_id)]
    return page(request, "datasets_version.html", title=f"Dataset {ds.ref}", nav="datasets", ds=ds, columns=columns,
                validations=validations, parents=ds.parents, children=store.children(ds.id), runs=runs,
                lineage=lineage_view(request, _lineage(request, ds)), previous=_previous(store, ds),
                privacy=_privacy(request, ds))  # fmt: skip


def _privacy(request: Request, ds: DatasetVersion) -> dict[str, Any] | None:
    """The version's privacy budget, what is spent and left, and each spend (None when no budget is set)."""
    privacy = request.app.state.store.privacy
    budget = privacy.get_budget(ds.ref)
    if budget is None:
        return None
    spends = [(s, readable_run(request, s.run_id) if s.run_id else False) for s in privacy.spends(ds.ref)]
    return {"budget": budget, "left": budget.left, "spends": spends}


def _previous(store: Any, ds: DatasetVersion) -> int | None:
    """The version before ``ds`` (what the drift link compares with), if any."""
    earlier = [v.version for v in store.list_versions(ds.name) if v.version < ds.version]
    return earlier[-1] if earlier else None


def _column(name: str, col: dict[str, Any]) -> dict[str, Any]:
    """One column of a profile as the page shows it: its numbers, and its histogram or top categories drawn."""
    from keel.core.html import bar_chart, fmt

    out = {"name": name, "type": col.get("type", ""), "kind": col.get("kind", ""), "missing": col.get("missing"),
           "missing_share": col.get("missing_share"), "distinct": col.get("distinct"),
           "sketched": col.get("distinct_method", "exact") != "exact", "stats": [], "top": [], "chart": None}  # fmt: skip
    if col.get("kind") == "numeric":
        out["stats"] = [(k, col.get(k)) for k in ("min", "mean", "max", "std") if col.get(k) is not None]
        hist = col.get("histogram")
        if isinstance(hist, dict) and hist.get("counts"):
            labels = [fmt(float(e)) for e in hist["edges"][:-1]]
            out["chart"] = svg(bar_chart(labels, [[float(c) for c in hist["counts"]]], *HIST_SIZE))
    elif col.get("kind") == "categorical":
        top = [(str(k), c) for k, c in col.get("top", [])[:TOP_SHOWN]]
        out["top"] = top
        if top:
            out["chart"] = svg(bar_chart([k for k, _ in top], [[float(c) for _, c in top]], *HIST_SIZE))
    else:
        out["stats"] = [(k, col.get(k)) for k in ("min", "max") if col.get(k) is not None]
    return out


def _validation(record: Any) -> dict[str, Any]:
    """A validation record with its checks, failed first (errors, then warnings), as the page lists them."""
    checks = [c for c in (record.result or {}).get("checks", []) if isinstance(c, dict)]
    checks.sort(key=lambda c: (bool(c.get("passed")), c.get("severity") != "error"))
    failed = [c for c in checks if not c.get("passed")]
    return {"record": record, "failed": failed, "passed": [c for c in checks if c.get("passed")]}


def _lineage(request: Request, ds: DatasetVersion) -> Any:
    """Where the version came from (its parents to their sources, the runs that wrote it) and what was built on it
    (``keel.govern.lineage.dataset_impact``: derived versions, runs that read them, models, aliases, deployments)."""
    from keel.govern.lineage import add_dataset, add_run, dataset_impact

    ctx = ui_context(request)
    graph = dataset_impact(ds.name, ds.version, ctx)
    root = f"dataset_version:{ds.ref}"
    for ref in ds.parents:
        parent_name, number = parse_ref(ref)
        graph.link(root, add_dataset(graph, ctx, ctx.store.datasets.get_version(parent_name, number)), "derived from")
    for run_id, direction in ctx.store.datasets.runs_of_version(ds.id):
        if direction == "output":
            graph.link(root, add_run(graph, ctx, run_id), "written by")
    return graph
