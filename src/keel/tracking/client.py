"""``Client``: explicit tracking API for code that manages several runs.

>>> client = Client()                                            # doctest: +SKIP
>>> run = client.create_run("fraud", name="baseline")            # doctest: +SKIP
>>> client.log_metric(run.id, "auc", 0.91, step=3)               # doctest: +SKIP
>>> client.end_run(run.id)                                       # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from time import time_ns as _time_ns
from typing import Any

from keel.context import Context, media_type_of
from keel.core import validation as v
from keel.core.config import Settings
from keel.core.entities import (
    NOTE_TAG,
    ArtifactRef,
    Experiment,
    Metric,
    Run,
    RunKind,
    RunPage,
    RunStatus,
    StepInfo,
    TrialInfo,
    ViewType,
)
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.artifacts import ArtifactStore
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.search import check_view
from keel.tracking import capture, media
from keel.tracking.writer import MetricWriter


class Client:
    """Tracking over a ``keel.context.Context``: the one given, else one on the store named by ``store``
    (a URI or a store), else by configuration. ``client.context`` is what data, registry and evaluation take."""

    def __init__(
        self,
        store: str | MetadataStore | Context | None = None,
        artifacts: str | ArtifactStore | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.context: Context = store if isinstance(store, Context) else Context(store, artifacts, settings=settings)
        self.settings: Settings = self.context.settings
        self.store: MetadataStore = self.context.store
        self.writer = MetricWriter(self.store, self.settings.flush_interval, self.settings.heartbeat_interval)
        self.context.add_flusher(self.flush)  # a registry snapshot of a run reads its buffered metrics too
        self._steps: dict[tuple[str, str], int] = {}
        self._valid_keys: set[str] = set()
        self._packages_blob: str | None = None
        self._experiments: dict[tuple[str, str], Experiment] = {}
        self._run_experiments: dict[str, int] = {}

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store: configured URL, else the server's (http stores), else ``<home>/artifacts``."""
        return self.context.artifacts

    # runs ---------------------------------------------------------------------------
    def create_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        project: str = "default",
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        capture_code: bool = True,
        inherit_from: Run | None = None,
        kind: RunKind = RunKind.RUN,
        step: StepInfo | None = None,
        trial: TrialInfo | None = None,
    ) -> Run:
        """Start a run (status ``running``), recording code version and environment.

        Without ``experiment``, a child run goes to its parent's experiment, others to the configured one.
        Param values are stored as ``keel.core.validation.param_to_str`` writes them (non-strings as JSON).
        ``inherit_from`` (a pipeline or sweep run, for its step and trial runs) gives the run that run's
        code version and environment instead of capturing them again: the same code runs, and a capture
        per child would cost a git call each.
        """
        if experiment is None and parent_run_id is not None:
            experiment_id = self._run_experiments.get(parent_run_id)  # a child lives with its parent
            if experiment_id is None:
                experiment_id = self._run_experiments[parent_run_id] = self.store.get_run(parent_run_id).experiment_id
        else:
            exp_name = experiment or self.settings.experiment
            exp = self._experiments.get((project, exp_name))
            if exp is None:  # experiments are never deleted: one lookup per process
                exp = self._experiments[(project, exp_name)] = self.store.get_or_create_experiment(exp_name, project)
            experiment_id = exp.id
        code = env = None
        if inherit_from is not None:
            code, env = inherit_from.code, inherit_from.environment
        elif capture_code:
            code = capture.code_version()
            if self._packages_blob is None:
                self._packages_blob = self.artifacts.put_bytes(capture.package_list().encode()).sha256
            env = capture.environment(self._packages_blob)
        run = self.store.create_run(
            experiment_id,
            name,
            parent_run_id=parent_run_id,
            tags=dict(tags or {}),
            params=params or {},
            code=code,
            environment=env,
            kind=kind,
            step=step,
            trial=trial,
        )
        self.remember_run(run)
        self.writer.track(run.id)
        return run

    def remember_run(self, run: Run) -> None:
        """Note a run's experiment, so its children need no lookup to find where they belong."""
        self._run_experiments[run.id] = run.experiment_id

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush this client's metrics, then mark the run ended."""
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidArgument.for_field("status", status, "one of finished, failed, killed") from None
        try:
            # This run's last buffered values and its status go in one transaction (one request remotely).
            # The batch id makes a retried request (a timeout after the server committed) a no-op.
            self.writer.flush_into(
                lambda batch, batch_id: self.store.end_run(run_id, status, metrics=batch, batch_id=batch_id), run_id
            )
        except Conflict:
            self.writer.untrack(run_id)  # ended already: stop its heartbeats
            raise
        self.writer.untrack(run_id)

    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags and latest metrics (deleted or not: see ``Run.deleted``). Raises
        ``NotFound``. Values this client still buffers are not in it yet: ``flush()`` first to see them."""
        run = self.store.get_run(run_id)
        self.remember_run(run)
        return run

    # deleting and restoring ------------------------------------------------------------
    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run and its child runs: hidden from searches, read-only, restorable with ``restore_run``
        until ``keel gc`` purges it. Values this client still buffers for it are stored first."""
        self.writer.flush()
        self.store.delete_run(run_id)
        self.writer.untrack(run_id)  # no more heartbeats for it

    def restore_run(self, run_id: str) -> None:
        """Bring back a deleted run (and the child runs its deletion hid)."""
        self.store.restore_run(run_id)

    def delete_experiment(self, experiment: str | int, project: str = "default") -> None:
        """Soft-delete an experiment (by name, or by id), which hides its runs too; ``restore_experiment`` undoes it."""
        self.writer.flush()
        self.store.delete_experiment(self._experiment_id(experiment, project))

    def restore_experiment(self, experiment: str | int, project: str = "default") -> None:
        """Bring back a deleted experiment (by name, or by id) and its runs."""
        self.store.restore_experiment(self._experiment_id(experiment, project))

    def list_experiments(self, project: str | None = None, view: ViewType | str = ViewType.ACTIVE) -> list[Experiment]:
        """The experiments (of ``project``): live ones, or ``view="deleted"`` / ``"all"``."""
        return self.store.list_experiments(project, check_view(view))

    def _experiment_id(self, experiment: str | int, project: str) -> int:
        if isinstance(experiment, bool) or not isinstance(experiment, (str, int)):
            raise InvalidArgument.for_field("experiment", experiment, "an experiment name or id")
        if isinstance(experiment, int):
            return experiment
        return self.store.get_experiment_by_name(experiment, project).id

    def set_description(self, run_id: str, text: str) -> None:
        """Set the run's description (notes; ``Run.description``), replacing the one it had. Kept in the tag
        ``keel.note``, as MLflow keeps ``mlflow.note.content``."""
        if not isinstance(text, str):
            raise InvalidArgument.for_field("description", text, "a string")
        self.store.set_tags(run_id, {NOTE_TAG: text})

    # params and tags -----------------------------------------------------------------
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log one param (immutable). Strings are stored as they are, numbers as ``str()`` writes them, anything
        else as JSON: ``None`` -> ``null``, ``True`` -> ``true``, a dict or list -> its JSON text."""
        self.store.log_params(run_id, {key: value})  # the store converts (core.validation.param_to_str)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params in one call (all or none), values as in ``log_param``."""
        self.store.log_params(run_id, params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set one tag of the run (tags can change, unlike params; non-strings are stored as ``str(value)``)."""
        self.store.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set several tags of the run in one call, overwriting the values they had."""
        self.store.set_tags(run_id, tags)

    # metrics (buffered) ---------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        """Buffer one value; it reaches the store within ``flush_interval``. Validated here, at the call.

        Without ``step``, steps count up per (run, key) from 0 across step-less calls.
        This is the hot path: about a microsecond, no I/O.
        """
        if run_id.__class__ is not str:
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        # the checks of _checked_metric, inlined: a method call costs this hot path about 8%
        if key.__class__ is not str or key not in self._valid_keys:
            v.check_key(key, "metric key")
            self._valid_keys.add(key)
        if type(value) is not float:
            value = v.check_metric_value(value, key)
        if step is None:
            slot = (run_id, key)
            step = self._steps.get(slot, 0)
            self._steps[slot] = step + 1
        elif type(step) is not int:
            step = v.check_step(step)
        ts = _time_ns() // 1_000_000 if timestamp is None else v.check_timestamp(timestamp)
        self.writer.add((run_id, key, value, step, ts))

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Buffer several values at one step and time. All are validated first: a bad one buffers none."""
        if run_id.__class__ is not str:
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        if not isinstance(metrics, Mapping):
            raise InvalidArgument.for_field("metrics", metrics, "a mapping of key to number")
        checked = [(key, self._checked_metric(key, value)) for key, value in metrics.items()]
        if step is not None and type(step) is not int:
            step = v.check_step(step)
        ts = _time_ns() // 1_000_000 if timestamp is None else v.check_timestamp(timestamp)
        rows = []
        for key, value in checked:
            if step is None:
                slot = (run_id, key)
                key_step = self._steps.get(slot, 0)
                self._steps[slot] = key_step + 1
            else:
                key_step = step
            rows.append((run_id, key, value, key_step, ts))
        self.writer.extend(rows)

    def _checked_metric(self, key: Any, value: Any) -> float:
        if key.__class__ is not str or key not in self._valid_keys:
            v.check_key(key, "metric key")
            self._valid_keys.add(key)
        return value if type(value) is float else v.check_metric_value(value, key)

    def flush(self) -> None:
        """Store every buffered metric value now."""
        self.writer.flush()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of the metric ``key`` in the run, ordered by step then timestamp (buffered ones included)."""
        self.writer.flush()
        return self.store.get_metric_history(run_id, key)

    # artifacts -----------------------------------------------------------------------
    def log_artifact(self, run_id: str, path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactRef]:
        """Store a file, or every file below a directory, under ``name`` (default: the base name)."""
        source = Path(path)
        if not source.exists():
            raise InvalidArgument.for_field("path", str(path), "an existing file or directory")
        if name is None and source.name in ("", ".."):  # ".", "..", "/": no base name to store it under
            raise InvalidArgument.for_field("name", name, f"given when path {str(path)!r} has no base name (e.g. name='outputs')")
        base = v.check_artifact_path(name if name is not None else source.name)
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        refs = []
        for file in files:
            rel = base if file == source else f"{base}/{file.relative_to(source).as_posix()}"
            v.check_artifact_path(rel)
            refs.append((file, rel))
        stored = []
        for file, rel in refs:
            info = self.artifacts.put_file(file)
            stored.append(ArtifactRef(rel, info.sha256, info.size, media_type_of(rel)))
        self.store.log_artifacts(run_id, stored)
        return stored

    def log_bytes(self, run_id: str, data: bytes, name: str, media_type: str | None = None) -> ArtifactRef:
        """Store ``data`` as the artifact ``name`` of the run; ``media_type`` defaults to a guess from the name."""
        return self.context.log_bytes(run_id, data, name, media_type)

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactRef:
        """Store ``text`` (UTF-8) as the artifact ``name``."""
        return self.log_bytes(run_id, media.encode_text(text, name), name)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], name: str) -> ArtifactRef:
        """Store a dict as JSON (``name`` ending in ``.json``) or YAML (``.yaml``/``.yml``)."""
        data, media_type = media.encode_dict(dictionary, name)
        return self.log_bytes(run_id, data, name, media_type)

    def log_table(self, run_id: str, frame: Any, name: str) -> ArtifactRef:
        """Store a pandas DataFrame (or pyarrow Table) as Parquet (``name`` ending in ``.parquet``; ``keel[data]``)."""
        data, media_type = media.encode_table(frame, name)
        return self.log_bytes(run_id, data, name, media_type)

    def log_figure(self, run_id: str, figure: Any, name: str) -> ArtifactRef:
        """Store a matplotlib Figure as ``.png``/``.svg``, or a plotly Figure as ``.html`` that renders offline."""
        data, media_type = media.encode_figure(figure, name)
        return self.log_bytes(run_id, data, name, media_type)

    def log_image(self, run_id: str, image: Any, name: str) -> ArtifactRef:
        """Store a numpy array (uint8, or floats in [0, 1]; gray, RGB or RGBA) or a PIL image as ``.png``."""
        return self.log_bytes(run_id, media.encode_image(image, name), name, "image/png")

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The run's artifacts: path, sha256, size and media type of each (the blobs stay in the artifact store)."""
        return self.store.list_artifacts(run_id)

    def _artifact(self, run_id: str, name: str) -> ArtifactRef:
        for ref in self.store.list_artifacts(run_id):
            if ref.path == name:
                return ref
        raise NotFound(f"run {run_id} has no artifact {name!r}")

    def read_artifact(self, run_id: str, name: str) -> bytes:
        """The artifact's bytes, verified against its hash."""
        return self.artifacts.get_bytes(self._artifact(run_id, name).sha256)

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        """Write the artifact ``name`` to the file ``dest``, verified against its hash; returns the path.
        ``NotFound`` when the run has no such artifact."""
        return self.artifacts.download(self._artifact(run_id, name).sha256, dest)

    # search --------------------------------------------------------------------------
    def search_runs(
        self,
        experiments: Sequence[str] | str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        project: str = "default",
        view: ViewType | str = ViewType.ACTIVE,
    ) -> RunPage:
        """One page of runs; see ``keel.store.metadata.search`` for the filter grammar. Deleted runs (and the runs of
        deleted experiments) are left out unless ``view`` is ``"deleted"`` or ``"all"``."""
        ids = None
        if experiments is not None:
            names = [experiments] if isinstance(experiments, str) else list(experiments)
            ids = [self.store.get_experiment_by_name(n, project).id for n in names]
        return self.store.search_runs(ids, filter, list(order_by), max_results, page_token, check_view(view))

    def iter_runs(
        self,
        experiments: Sequence[str] | str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        project: str = "default",
        page_size: int = 1000,
        view: ViewType | str = ViewType.ACTIVE,
    ) -> Iterator[Run]:
        """Every run ``search_runs`` finds, page after page."""
        token = None
        while True:
            page = self.search_runs(experiments, filter, order_by, page_size, token, project, view)
            yield from page.runs
            token = page.next_page_token
            if token is None:
                return

    def compare(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Runs side by side: {'runs': [...], 'params': {key: [v per run]}, 'metrics': {key: [v per run]}}."""
        if len(run_ids) < 1:
            raise InvalidArgument.for_field("run_ids", list(run_ids), "at least one run id")
        runs = [self.store.get_run(r) for r in run_ids]
        param_keys = sorted({k for r in runs for k in r.params})
        metric_keys = sorted({k for r in runs for k in r.metrics})
        return {
            "runs": runs,
            "params": {k: [r.params.get(k) for r in runs] for k in param_keys},
            "metrics": {k: [r.metric(k) for r in runs] for k in metric_keys},
        }

    def close(self) -> None:
        """Store the buffered metrics, stop the background writer and close the store (the client is done)."""
        self.writer.close()
        self.store.close()
