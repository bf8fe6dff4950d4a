"""Moving an MLflow tracking store into keel: ``import_mlflow("mlruns")`` or ``keel import mlflow mlruns``.

Each MLflow experiment becomes the keel experiment of the same name (an existing one is reused), each run a keel
run with its name, status, start and end times, params, every metric point (step and timestamp kept), tags,
parent run and artifacts (folders kept). MLflow's system tags become keel's fields where keel has one: the git
commit and entry point (``Run.code``), the parent (``Run.parent_run_id``), the note (the ``keel.note`` tag);
others stay tags as they were. Runs and experiments deleted in MLflow are skipped and counted.

Idempotent: every imported run carries ``keel.imported_from = mlflow:<MLflow run id>``, and a run imported
already is skipped. A run is written in three store calls: created (with its params and tags), its artifacts
recorded, then ended together with all its metric points in one transaction (a history longer than
``METRIC_CHUNK`` points goes first in batches of that size, each with its own batch id). Until that last call
the run has no end time: an import that stops half way leaves such a run, and the next import completes it (the
same batch ids make the metric writes that did get through no-ops) rather than making another. Every value is
checked before the first write, so a run keel cannot hold writes nothing (it is reported, the others imported).

keel never imports MLflow: the stores are read directly (``keel.tracking.mlflow_source``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keel.context import media_type_of
from keel.core import validation as v
from keel.core.entities import ArtifactRef, CodeVersion, Run, RunStatus
from keel.core.errors import InvalidArgument, KeelError
from keel.store.metadata.base import MetadataStore, MetricRow
from keel.tracking.client import Client
from keel.tracking.mlflow_source import MetricPoint, MlflowExperiment, MlflowRun, MlflowSource, open_source

__all__ = ["IMPORTED_FROM", "NOTE_TAG", "ImportSummary", "import_mlflow"]

IMPORTED_FROM = "keel.imported_from"
"""The tag naming where an imported run came from: ``mlflow:<run id>``."""
NOTE_TAG = "keel.note"
"""The run's note (MLflow's ``mlflow.note.content``): the tag ``Run.description`` reads."""
PARENT_TAG = "mlflow.parentRunId"
METRIC_CHUNK = 100_000  # metric points per store call: a long history stays under a server's request size limit
_STATUS = {"FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}
_GIT_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_\-. ]+")

Progress = Callable[[int, int, str], None]
"""Called after each run: (runs done, runs in all, the run's name)."""


@dataclass(slots=True)
class ImportSummary:
    """What an import wrote (or, with ``dry_run``, would write)."""

    source: str
    store: str
    dry_run: bool = False
    experiments: list[str] = field(default_factory=list)  # keel experiments written to
    runs: int = 0
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    skipped_existing: int = 0  # imported by an earlier import
    skipped_deleted_runs: int = 0  # deleted in MLflow, those of deleted experiments included
    skipped_deleted_experiments: int = 0
    renamed: dict[str, str] = field(default_factory=dict)  # MLflow name -> keel name, where keel's rules differ
    failed: dict[str, str] = field(default_factory=dict)  # MLflow run id -> why it was not imported
    run_ids: dict[str, str] = field(default_factory=dict)  # MLflow run id -> keel run id (this import's)


@dataclass(frozen=True, slots=True)
class _Planned:
    run: MlflowRun
    experiment: MlflowExperiment
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A run checked and converted, nothing written yet."""

    name: str | None
    params: dict[str, str]
    tags: dict[str, str]
    code: CodeVersion
    status: RunStatus
    start: int
    end: int
    metrics: list[tuple[str, float, int, int]]
    files: list[tuple[str, Path]]
    parent: str | None  # the MLflow id of the parent run, linked in keel (its tag dropped)


def import_mlflow(
    source: str | os.PathLike[str] | MlflowSource,
    *,
    client: Client | None = None,
    experiments: Sequence[str] | None = None,
    project: str = "default",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an MLflow tracking store (an ``mlruns/`` folder, or ``sqlite:///path/mlflow.db``) into keel's store.

    ``experiments`` limits the import to those MLflow experiments (by name). With ``dry_run`` nothing is written:
    the summary says what would be. Runs imported earlier are skipped (see the module docstring).

    >>> summary = import_mlflow("mlruns")                      # doctest: +SKIP
    >>> summary.runs, summary.metric_points                     # doctest: +SKIP
    (42, 120500)
    """
    src = source if isinstance(source, MlflowSource) else open_source(source)
    own = client is None and (not dry_run or _store_exists())  # a dry run never creates a store
    if own:
        client = Client()
    try:
        label = str(getattr(client.store, "uri", "")) if client is not None else _configured_store()
        summary = ImportSummary(source=src.label, store=label, dry_run=dry_run)
        plan = _plan(src, experiments, summary)
        done = _imported(client.store) if client is not None else {}
        ordered = _parents_first(plan)
        linkable = set(done) | {p.run.id for p in plan}
        experiment_ids: dict[str, int] = {}
        for count, item in enumerate(ordered, 1):
            _import_one(src, client, item, done, linkable, (project, experiment_ids), summary)
            if progress is not None:
                progress(count, len(ordered), item.run.name or item.run.id)
        return summary
    finally:
        src.close()
        if own and client is not None:
            client.close()


def _configured_store() -> str:
    from keel.core.config import load_settings

    return load_settings().store


def _store_exists() -> bool:
    """Whether the configured store exists (a local SQLite file that is not there yet does not)."""
    uri = _configured_store()
    return not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///") :].partition("?")[0]).expanduser().is_file()


def _plan(src: MlflowSource, names: Sequence[str] | None, summary: ImportSummary) -> list[_Planned]:
    """The live runs of the chosen experiments, with their tags; deleted ones counted. Artifact folders are
    resolved here, so an unsupported location stops the import before anything is written."""
    found = src.experiments()
    chosen = found
    if names:
        known = {e.name for e in found}
        unknown = [n for n in names if n not in known]
        if unknown:
            shown = ", ".join(sorted(known)) or "none"
            raise InvalidArgument.for_field("experiment", unknown[0], f"an experiment of the MLflow store (it has: {shown})")
        chosen = [e for e in found if e.name in set(names)]
    plan = []
    for experiment in chosen:
        runs = src.runs(experiment)
        if experiment.deleted:
            summary.skipped_deleted_experiments += 1
        for run in runs:
            if run.deleted:
                summary.skipped_deleted_runs += 1
                continue
            src.artifact_folder(run)  # raises for artifacts keel cannot read
            plan.append(_Planned(run, experiment, src.tags(run)))
    return plan


def _parents_first(plan: list[_Planned]) -> list[_Planned]:
    """Runs ordered so that a parent is imported before its children (by start time otherwise)."""
    by_id = {p.run.id: p for p in plan}

    def depth(item: _Planned) -> int:
        seen: set[str] = set()
        parent = item.tags.get(PARENT_TAG)
        while parent in by_id and parent not in seen:
            seen.add(parent)
            parent = by_id[parent].tags.get(PARENT_TAG)
        return len(seen)

    return sorted(plan, key=lambda p: (depth(p), p.run.start_time or 0, p.run.id))


def _imported(store: MetadataStore) -> dict[str, Run]:
    """Runs of earlier imports, by MLflow run id."""
    found: dict[str, Run] = {}
    token = None
    while True:
        page = store.search_runs(None, f"tags.{IMPORTED_FROM} like 'mlflow:%'", [], 1000, token)
        for run in page.runs:
            found[run.tags[IMPORTED_FROM].removeprefix("mlflow:")] = run
        token = page.next_page_token
        if token is None:
            return found


def keel_name(name: str) -> str:
    """``name`` as keel's rules allow it (``keel.core.validation.NAME_PATTERN``): other characters become '-'."""
    if re.fullmatch(v.NAME_PATTERN, name):
        return name
    cleaned = _NOT_IN_NAME.sub("-", name).lstrip("-_. ")[:128].rstrip()
    return cleaned or "mlflow"


def _import_one(
    src: MlflowSource,
    client: Client | None,
    item: _Planned,
    done: dict[str, Run],
    linkable: set[str],
    experiments: tuple[str, dict[str, int]],
    summary: ImportSummary,
) -> None:
    """Import one run (or count it, in a dry run); ``experiments`` is the project and the ids of its experiments met
    so far."""
    run = item.run
    existing = done.get(run.id)
    if existing is not None and existing.end_time is not None:
        summary.skipped_existing += 1
        return
    # what cannot be read is a broken source and stops the import (runs imported so far are whole); what keel
    # cannot hold fails this run alone
    params, metrics, files = src.params(run), src.metrics(run), _artifact_files(src, run)
    try:
        prepared = _prepare(item, params, metrics, files, linkable, summary)
    except KeelError as exc:
        summary.failed[run.id] = exc.message
        return
    exp_name = keel_name(item.experiment.name)
    if exp_name != item.experiment.name:
        summary.renamed[item.experiment.name] = exp_name
    if not summary.dry_run and client is not None:
        try:
            parent = prepared.parent
            parent_id = None if parent is None else summary.run_ids.get(parent) or (done[parent].id if parent in done else None)
            project, ids = experiments
            if exp_name not in ids:
                ids[exp_name] = client.store.get_or_create_experiment(exp_name, project).id
            keel_id = _write(client, ids[exp_name], prepared, existing, parent_id)
        except KeelError as exc:
            summary.failed[run.id] = exc.message
            return
        summary.run_ids[run.id] = keel_id
    if exp_name not in summary.experiments:
        summary.experiments.append(exp_name)
    summary.runs += 1
    summary.params += len(prepared.params)
    summary.tags += len(prepared.tags)
    summary.metric_points += len(prepared.metrics)
    summary.artifacts += len(prepared.files)
    summary.artifact_bytes += sum(path.stat().st_size for _, path in prepared.files)


def _prepare(
    item: _Planned,
    params: dict[str, str],
    points: list[MetricPoint],
    files: list[tuple[str, Path]],
    linkable: set[str],
    summary: ImportSummary,
) -> _Prepared:
    """The run in keel's terms, every value checked as the store will check it: a run that cannot be imported
    whole fails here, before anything of it is written."""
    run, tags = item.run, dict(item.tags)
    name = run.name or tags.get("mlflow.runName")
    kept_name = keel_name(name) if name else None
    if kept_name is not None and kept_name != name:
        summary.renamed[str(name)] = kept_name
    elif kept_name is not None:
        tags.pop("mlflow.runName", None)  # the run's name says it
    note = tags.pop("mlflow.note.content", None)
    if note is not None:
        tags[NOTE_TAG] = note
    commit = tags.get("mlflow.source.git.commit")
    commit = tags.pop("mlflow.source.git.commit") if commit is not None and _GIT_COMMIT.fullmatch(commit) else None
    entry = tags.pop("mlflow.source.name", None)
    parent = tags.get(PARENT_TAG)
    if parent is not None and parent in linkable:
        del tags[PARENT_TAG]  # a keel parent link
    else:
        parent = None  # deleted in MLflow or not imported: the tag keeps the id
    tags[IMPORTED_FROM] = f"mlflow:{run.id}"
    params = {v.check_key(k, "param key"): v.param_to_str(k, value) for k, value in params.items()}
    tags = {v.check_key(k, "tag key"): v.tag_to_str(k, value) for k, value in tags.items()}
    metrics = []
    for key, value, step, ts in points:
        v.check_key(key, "metric key")
        metrics.append((key, v.check_metric_value(value, key), v.check_step(step), v.check_timestamp(ts)))
    times = [m[3] for m in metrics]
    start = run.start_time if run.start_time is not None else min(times, default=run.end_time or 0)
    end = run.end_time if run.end_time is not None else max([start, *times])
    files = [(v.check_artifact_path(rel), path) for rel, path in files]
    return _Prepared(
        kept_name, params, tags, CodeVersion(git_commit=commit, entry_point=entry),
        _STATUS.get(run.status, RunStatus.KILLED),  # RUNNING or SCHEDULED in a store being moved: it stopped
        v.check_timestamp(start), v.check_timestamp(end), metrics, files, parent,
    )  # fmt: skip


def _artifact_files(src: MlflowSource, run: MlflowRun) -> list[tuple[str, Path]]:
    folder = src.artifact_folder(run)
    if folder is None:
        return []
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):  # links are not followed: the run's own files only
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            files.append((path.relative_to(folder).as_posix(), path))
    return files


def _write(client: Client, experiment_id: int, prepared: _Prepared, existing: Run | None, parent_id: str | None) -> str:
    store = client.store
    refs = []
    for rel, path in prepared.files:  # blobs first: content-addressed, so one left behind by a failure is harmless
        info = client.artifacts.put_file(path)
        refs.append(ArtifactRef(rel, info.sha256, info.size, media_type_of(rel)))
    if existing is None:
        tags = dict(prepared.tags)
        if prepared.parent is not None and parent_id is None:  # the parent failed to import: keep its id
            tags[PARENT_TAG] = prepared.parent
        keel_run = store.create_run(
            experiment_id,
            prepared.name,
            parent_run_id=parent_id,
            tags=tags,
            params=prepared.params,
            code=prepared.code,
            start_time=prepared.start,
        )
    else:  # an import stopped half way: complete that run
        keel_run = existing
    if refs:
        store.log_artifacts(keel_run.id, refs)
    rows: list[MetricRow] = [(keel_run.id, k, value, step, ts) for k, value, step, ts in prepared.metrics]
    chunks = [rows[i : i + METRIC_CHUNK] for i in range(0, len(rows), METRIC_CHUNK)] or [[]]
    # batch ids of the keel run: stable when an import completes it, new for a run imported again after a delete
    for number, chunk in enumerate(chunks[:-1]):
        store.log_metrics(chunk, batch_id=f"import:{keel_run.id}:{number}")
    store.end_run(keel_run.id, prepared.status, prepared.end, metrics=chunks[-1], batch_id=f"import:{keel_run.id}:end")
    return keel_run.id
