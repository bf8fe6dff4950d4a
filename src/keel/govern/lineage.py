"""Lineage queries both ways, over the store interfaces only (SQLite, PostgreSQL and a keel server alike).

>>> prediction_lineage("req-42", "churn")   # request -> deployment (and the change in force) -> model version -> run
...                                         # -> training dataset versions -> their parents -> raw sources   # doctest: +SKIP
>>> dataset_impact("orders", 1)             # a dataset version -> derived versions -> runs -> model versions
...                                         # -> aliases and deployments that route them now or did        # doctest: +SKIP
>>> model_lineage("models:/churn/3")        # version -> run -> datasets -> sources, and who routes it     # doctest: +SKIP

Each returns a ``LineageGraph`` (``keel.govern.graph``); ``keel.govern.render`` draws one as offline HTML.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from keel.context import Context, resolve
from keel.core.datasets import DatasetVersion, parse_ref
from keel.core.deployments import DeploymentChange
from keel.core.errors import InvalidArgument, NotFound
from keel.core.models import ModelVersion
from keel.core.predictions import check_request_id
from keel.core.validation import check_name
from keel.govern.graph import LineageGraph
from keel.govern.history import AliasHistories, change_at, parse_model_uri, route_uris, routed_versions
from keel.serve.predictions import read_log_file, values_of, window_ms, with_status

__all__ = ["dataset_impact", "logged_rows", "model_lineage", "prediction_lineage"]

_ROW_FIELDS = ("request_id", "row", "time", "deployment", "route", "model", "served", "latency_ms", "replica", "status")
_MAX_ROWS_SHOWN = 100  # of one prediction node's rows kept in its attrs (a batch request may have thousands)


def iso(ms: int | None) -> str:
    """A moment as UTC ISO 8601 text (what the graph's labels show)."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# the upstream side: model version -> run -> datasets -> parents -> sources ------------------------------------------


def add_dataset(graph: LineageGraph, ctx: Context, ds: DatasetVersion, parents: bool = True) -> str:
    """The dataset version's node, and with ``parents`` its ancestors down to their raw sources."""
    key = f"dataset_version:{ds.ref}"
    if key in graph.nodes:
        return key
    graph.add("dataset_version", ds.ref, ds.ref, dataset_id=ds.id, name=ds.name, version=ds.version, rows=ds.row_count,
              columns=len(ds.schema), content_hash=ds.content_hash, artifact_sha256=ds.artifact_sha256, source=ds.source,
              role=ds.role, transform=ds.transform, created_at=ds.created_at)  # fmt: skip
    labelled = ds.transform if isinstance(ds.transform, dict) and ds.transform.get("name") == "label-consensus" else None
    if labelled is not None:  # labels exported by a label project (keel.label.export): the project is the source
        t = labelled
        project = graph.add("label_project", str(t.get("project")), f"label project {t.get('project')}", method=t.get("method"),
                            guideline_versions=t.get("guideline_versions"), annotations=t.get("annotations"),
                            last_annotation_id=t.get("last_annotation_id"), excluded=t.get("excluded"))  # fmt: skip
        graph.link(key, project, "labelled by")
    elif ds.source:
        source = graph.add("source", ds.source, ds.source)
        graph.link(key, source, "loaded from")
    if parents:
        for ref in ds.parents:
            name, version = parse_ref(ref)
            parent = add_dataset(graph, ctx, ctx.store.datasets.get_version(name, version))
            graph.link(key, parent, "derived from")
    return key


def add_run(graph: LineageGraph, ctx: Context, run_id: str) -> str:
    """The run's node: params, metrics, code version (``missing`` when the store no longer has it)."""
    key = f"run:{run_id}"
    if key in graph.nodes:
        return key
    try:
        run = ctx.store.get_run(run_id)
    except NotFound:
        return graph.add("run", run_id, run_id[:12], missing=True)
    code = run.code
    return graph.add(
        "run", run.id, run.name or run.id[:12], name=run.name, status=run.status.value, kind=run.kind.value,
        experiment_id=run.experiment_id, start_time=run.start_time, end_time=run.end_time, params=dict(run.params),
        metrics={k: m.value for k, m in run.metrics.items()}, git_commit=code.git_commit,
        git_dirty_hash=code.git_dirty_hash, entry_point=code.entry_point, entry_point_hash=code.entry_point_hash,
        python_version=run.environment.python_version,
    )  # fmt: skip


def add_version(graph: LineageGraph, ctx: Context, v: ModelVersion) -> str:
    """The model version's node, its source run, its training datasets and their ancestry."""
    key = f"model_version:{v.uri}"
    if key in graph.nodes:
        return key
    graph.add("model_version", v.uri, f"{v.name} v{v.version}", name=v.name, version=v.version, flavor=v.flavor,
              artifact_sha256=v.artifact_sha256, metrics=dict(v.metrics), datasets=list(v.datasets),
              aliases=list(v.aliases), created_at=v.created_at)  # fmt: skip
    if v.source_run:
        run = add_run(graph, ctx, v.source_run)
        graph.link(key, run, "trained in")
        if not graph.nodes[run].attrs.get("missing"):
            for link in ctx.store.datasets.versions_of_run(v.source_run):
                ds = add_dataset(graph, ctx, link.version)
                graph.link(run, ds, "read" if link.direction == "input" else "wrote")
    for version_id in v.dataset_version_ids:  # linked by key when registered: what the version was trained on
        found = ctx.store.datasets.get_version_by_id(version_id)
        ds = add_dataset(graph, ctx, found)
        graph.link(key, ds, "trained on")
        if v.source_run:
            add_privacy_spends(graph, ctx, found.ref, ds, v.source_run)
    for a in ctx.store.models.assessments(v.name, v.version):  # fairness and others, recorded after registration
        node = graph.add("assessment", f"{v.uri}#{a.id}", f"{a.kind} assessment", kind=a.kind, metrics=dict(a.metrics),
                         created_at=a.created_at, created_by=a.created_by, run_id=a.run_id)  # fmt: skip
        graph.link(key, node, "assessed")
    return key


def add_privacy_spends(graph: LineageGraph, ctx: Context, ref: str, dataset_key: str, run_id: str) -> None:
    """The privacy budget ``run_id`` spent on dataset version ``ref`` (differentially private training), if any."""
    for spend in ctx.store.privacy.spends(ref):
        if spend.run_id != run_id:
            continue
        node = graph.add("privacy_spend", str(spend.id), f"epsilon {spend.epsilon:g}, delta {spend.delta:g}",
                         epsilon=spend.epsilon, delta=spend.delta, mechanism=spend.mechanism, created_at=spend.created_at,
                         created_by=spend.created_by)  # fmt: skip
        graph.link(dataset_key, node, "privacy spent")


def _version(ctx: Context, uri: str) -> ModelVersion:
    name, version, alias = parse_model_uri(uri)
    if alias is not None:
        return ctx.store.models.resolve_alias(name, alias)
    if version is None:
        return ctx.store.models.list_versions(name)[-1]
    return ctx.store.models.get_version(name, version)


def add_routing(graph: LineageGraph, ctx: Context, versions: dict[str, str], aliases: AliasHistories) -> None:
    """For each model version node (``versions``: version URI -> node key): the aliases that hold it now or did,
    and the deployments that route it now or did (deployment history, aliases followed through their history)."""
    if not versions:
        return
    for uri, key in versions.items():
        name, number, _ = parse_model_uri(uri)
        held: dict[str, bool] = {}
        for move in ctx.store.models.alias_history(name):
            if move.to_version == number:
                held.setdefault(move.alias, False)
        for alias in held:
            now = aliases.version_uri_at(f"models:/{name}@{alias}", 2**63 - 1) == uri
            node = graph.add("alias", f"{name}@{alias}", f"{name}@{alias}", model=name, alias=alias)
            graph.link(key, node, "held by" if now else "was held by")
    for deployment in ctx.store.deployments.list_deployments():
        history = ctx.store.deployments.history(deployment.name)
        for uri, routed in routed_versions(history, aliases, lambda u: u in versions).items():
            node = graph.add("deployment", deployment.name, deployment.name, primary=deployment.primary,
                             shadows=list(deployment.shadows), canaries=[[u, w] for u, w in deployment.canaries],
                             updated_at=deployment.updated_at, routes={})  # fmt: skip
            graph.nodes[node].attrs["routes"][uri] = routed.to_json()
            graph.link(versions[uri], node, "routed by" if routed.now else "was routed by")


def model_lineage(model_uri: str, ctx: Context | None = None, *, routing: bool = True) -> LineageGraph:
    """A model version's lineage, independent of any prediction: version -> source run -> training dataset
    versions -> their parents -> raw sources; with ``routing``, the aliases and deployments that route it now or did."""
    ctx = resolve(ctx)
    v = _version(ctx, model_uri)
    graph = LineageGraph()
    key = add_version(graph, ctx, v)
    if routing:
        add_routing(graph, ctx, {v.uri: key}, AliasHistories(ctx))
    return graph


# a prediction: request id -> logged rows -> deployment and its change in force -> version -> ... ------------------------


def logged_rows(
    deployment: str, request_id: str, ctx: Context | None = None, *, since: Any = None, until: Any = None
) -> list[dict[str, Any]]:
    """The prediction-log rows of ``request_id`` (every row, route and shadow), oldest first. Reads the deployment's
    log files (those overlapping ``[since, until]`` when given), keeping only that request's rows."""
    import pyarrow.compute as pc

    ctx = resolve(ctx)
    since_ms, until_ms = window_ms(since, "since"), window_ms(until, "until")
    rows: list[dict[str, Any]] = []
    for file in ctx.store.predictions.log_files(deployment, since_ms=since_ms, until_ms=until_ms):
        table = read_log_file(ctx, deployment, file.sha256)
        if table is None:
            continue
        table = table.filter(pc.equal(table["request_id"], request_id))
        if "deployment" in table.column_names:
            table = table.filter(pc.equal(table["deployment"], deployment))
        if table.num_rows == 0:
            continue
        outputs = values_of(table)["output"]
        table = with_status(table)
        columns = {name: table[name].to_pylist() for name in _ROW_FIELDS if name in table.column_names}
        for i in range(table.num_rows):
            rows.append({**{name: values[i] for name, values in columns.items()}, "output": outputs[i]})
    rows.sort(key=lambda r: (int(r["time"]), int(r.get("row") or 0)))
    return rows


def _group(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row.get("route")), str(row.get("model"))), []).append(row)
    return groups


def _add_change(graph: LineageGraph, deployment: str, change: DeploymentChange) -> str:
    return graph.add(
        "deployment_change", f"{deployment}@{change.at}", f"{change.what} at {iso(change.at)}", deployment=deployment,
        what=change.what, at=change.at, actor=change.actor, reason=change.reason, routes=change.to_routes,
    )  # fmt: skip


def prediction_lineage(
    request_id: str, deployment: str, ctx: Context | None = None, *, since: Any = None, until: Any = None
) -> LineageGraph:
    """What served this prediction: the logged row(s) of ``request_id`` (time, route, model URI, replica, status) ->
    the deployment and the change of its routes in force then -> the model version that answered (and any shadow's)
    -> its source run (params, metrics, code version) -> its training dataset versions -> their parents, to the
    raw sources. ``since``/``until`` narrow the log files read. ``NotFound`` when the deployment or the request is
    unknown."""
    ctx = resolve(ctx)
    check_request_id(request_id)
    check_name(deployment, "deployment")
    current = ctx.store.deployments.get(deployment)  # NotFound for an unknown deployment
    rows = logged_rows(deployment, request_id, ctx, since=since, until=until)
    if not rows:
        raise NotFound(f"no prediction with request id {request_id!r} in the log of deployment {deployment!r}")
    graph = LineageGraph()
    root = graph.add("request", request_id, request_id, deployment=deployment, rows=len(rows), time=rows[0]["time"])
    dep = graph.add("deployment", deployment, deployment, primary=current.primary, shadows=list(current.shadows),
                    canaries=[[u, w] for u, w in current.canaries], updated_at=current.updated_at)  # fmt: skip
    graph.link(root, dep, "sent to")
    history = ctx.store.deployments.history(deployment)
    aliases = AliasHistories(ctx)
    for (route, model), group in _group(rows).items():
        first = group[0]
        shown = [{k: r.get(k) for k in ("row", "time", "status", "served", "latency_ms", "replica", "output")}
                 for r in group[:_MAX_ROWS_SHOWN]]  # fmt: skip
        statuses = sorted({int(r["status"]) for r in group if r.get("status") is not None})
        pred = graph.add(
            "prediction", f"{request_id}/{route}/{model}", f"{route}: {model}", route=route, model=model,
            time=first["time"], served=bool(first.get("served")), rows=len(group), statuses=statuses,
            replicas=sorted({str(r.get("replica")) for r in group}), latency_ms=first.get("latency_ms"), row_values=shown,
        )  # fmt: skip
        graph.link(root, pred, "logged as")
        change = change_at(history, int(first["time"]))
        answered = model if parse_model_uri(model)[2] is None else aliases.version_uri_at(model, int(first["time"]))
        if answered is None:
            raise NotFound(f"the log names {model!r}, which named no model version at {iso(first['time'])}")
        version = add_version(graph, ctx, _version(ctx, answered))
        graph.link(pred, version, "answered by" if first.get("served") else "computed by")
        if change is not None:
            ck = _add_change(graph, deployment, change)
            graph.link(dep, ck, "in force")
            routed = {aliases.version_uri_at(uri, int(first["time"])): role for role, uri in route_uris(change.to_routes)}
            graph.nodes[pred].attrs["routed_then"] = answered in routed  # the change in force routed that version
            if answered in routed:
                graph.link(ck, version, f"routes ({routed[answered]})")
    return graph


# the downstream side: a dataset version -> everything built on it ----------------------------------------------------


def dataset_impact(name: str, version: int, ctx: Context | None = None) -> LineageGraph:
    """Everything built on a dataset version: the versions derived from it (recursively) -> the runs that read any of
    them -> the model versions trained on them (by training dataset or source run) -> the aliases and deployments
    that route those versions now or did. ``NotFound`` for an unknown dataset version."""
    ctx = resolve(ctx)
    check_name(name, "dataset")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgument.for_field("version", version, "a positive integer")
    root = ctx.store.datasets.get_version(name, version)
    graph = LineageGraph()
    keys = {root.id: add_dataset(graph, ctx, root, parents=False)}
    queue = [root]
    while queue:  # derived versions, breadth first
        ds = queue.pop(0)
        for child in ctx.store.datasets.children(ds.id):
            if child.id not in keys:
                keys[child.id] = add_dataset(graph, ctx, child, parents=False)
                queue.append(child)
            graph.link(keys[ds.id], keys[child.id], "derived into")
    runs: dict[str, str] = {}
    for ds_id, key in list(keys.items()):
        for run_id, direction in ctx.store.datasets.runs_of_version(ds_id):
            if direction == "input":  # a run that wrote it is upstream, not built on it
                runs[run_id] = add_run(graph, ctx, run_id)
                graph.link(key, runs[run_id], "read by")
    versions: dict[str, str] = {}
    for latest in ctx.store.models.list_models():  # no reverse index in the store: every version is looked at once
        for v in ctx.store.models.list_versions(latest.name):
            trained = [keys[i] for i in v.dataset_version_ids if i in keys]
            from_run = v.source_run in runs
            if not trained and not from_run:
                continue
            versions[v.uri] = graph.add("model_version", v.uri, f"{v.name} v{v.version}", name=v.name, version=v.version,
                                        flavor=v.flavor, metrics=dict(v.metrics), datasets=list(v.datasets),
                                        aliases=list(v.aliases), created_at=v.created_at)  # fmt: skip
            for key in trained:
                graph.link(key, versions[v.uri], "trained")
            if from_run and v.source_run is not None:
                graph.link(runs[v.source_run], versions[v.uri], "produced")
    add_routing(graph, ctx, versions, AliasHistories(ctx))
    return graph
