"""``SqlPipelineStore``: the step cache on the ``SqlStore``'s database."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import RunKind, RunStatus
from keel.core.errors import Conflict, InvalidArgument
from keel.store.metadata.pipelines import CachedStep, PipelineStore, StepOutputRecord, check_outputs
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect
from keel.store.metadata.sql.runs import require_run

_insert_new_by_dialect = by_dialect(lambda insert: insert(t.step_cache).on_conflict_do_nothing(index_elements=["cache_key"]))
_find = select(t.step_cache).where(t.step_cache.c.cache_key == bindparam("key"))
_run_step = select(t.runs.c.kind, t.runs.c.cache_key, t.runs.c.step_name).where(t.runs.c.id == bindparam("run_id"))
_tags = select(t.tags.c.key, t.tags.c.value).where(
    and_(t.tags.c.run_id == bindparam("run_id"), t.tags.c.key.in_(bindparam("keys", expanding=True)))
)
_output_artifact = (
    select(t.artifacts.c.sha256, t.artifacts.c.size)
    .select_from(t.run_artifacts.join(t.artifacts, t.run_artifacts.c.sha256 == t.artifacts.c.sha256))
    .where(and_(t.run_artifacts.c.run_id == bindparam("run_id"), t.run_artifacts.c.path == "output.pkl"))
)
_dataset_version = (
    select(t.dataset_versions.c.artifact_sha256)
    .select_from(t.dataset_versions.join(t.datasets, t.dataset_versions.c.dataset_id == t.datasets.c.id))
    .where(and_(t.datasets.c.name == bindparam("name"), t.dataset_versions.c.version == bindparam("version")))
)


class SqlPipelineStore(PipelineStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert_new = db.pick(_insert_new_by_dialect)

    def save_step(self, cache_key: str, run_id: str, step: str, outputs: dict[str, Any]) -> None:
        v.check_sha256(cache_key)
        if not isinstance(run_id, str):
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        if not isinstance(step, str) or not step or len(step) > 128:
            raise InvalidArgument.for_field("step", step, "a step name of 1-128 characters")
        output = check_outputs(outputs)
        text = json.dumps(outputs, sort_keys=True)
        row = {"cache_key": cache_key, "run_id": run_id, "step": step, "outputs": text, "created_at": now_ms()}
        with self.db.transaction() as conn:
            self._check_producer(conn, cache_key, run_id, step, output)
            inserted = conn.execute(self._insert_new, row)
            if inserted.rowcount == 1:
                after = {"run_id": run_id, "step": step, "output": output.sha256, "kind": output.kind}
                append_event(conn, "pipelines.save_step", "step_cache", cache_key, None, after)
                return
            existing = conn.execute(_find, {"key": cache_key}).first()
            if existing is None or (existing.run_id, existing.step, json.loads(existing.outputs)) != (run_id, step, outputs):
                raise Conflict(
                    f"the step cache already has an entry for key {cache_key} "
                    f"(run {existing.run_id if existing else '?'}); entries are never replaced"
                )

    def _check_producer(self, conn: Connection, key: str, run_id: str, step: str, output: StepOutputRecord) -> None:
        """The entry must be written by the step run that produced the output (the contract in the interface)."""
        status = require_run(conn, run_id)
        run = conn.execute(_run_step, {"run_id": run_id}).one()
        tags = dict(conn.execute(_tags, {"run_id": run_id, "keys": ["keel.output"]}).all())
        refusal = None
        if run.kind != RunKind.STEP.value:
            refusal = "it is not a step run (kind step)"
        elif status != RunStatus.RUNNING.value:
            refusal = f"it is {status}; an entry is written by the step run while it runs"
        elif run.cache_key != key:
            refusal = f"its cache key is {run.cache_key!r}, not this key"
        elif run.step_name != step:
            refusal = f"its step is {run.step_name!r}, not {step!r}"
        elif tags.get("keel.output") != output.sha256:
            refusal = "its keel.output tag does not name this output"
        elif output.kind == "pickle":
            artifact = conn.execute(_output_artifact, {"run_id": run_id}).first()
            if artifact is None or (artifact.sha256, artifact.size) != (output.sha256, output.size):
                refusal = "the output is not its output.pkl artifact"
        else:
            name, version = output.dataset_ref()
            stored = conn.execute(_dataset_version, {"name": name, "version": version}).scalar()
            if stored != output.sha256:
                refusal = f"dataset version {output.dataset} does not hold this output"
        if refusal is not None:
            raise Conflict(f"run {run_id} cannot create the step cache entry of key {key}: {refusal}")

    def find_step(self, cache_key: str) -> CachedStep | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_find, {"key": cache_key}).first()
        if row is None:
            return None
        return CachedStep(row.cache_key, row.run_id, row.step, json.loads(row.outputs), row.created_at)
