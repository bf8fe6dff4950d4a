"""Projects and experiments on the SQL backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import Experiment
from keel.core.errors import Conflict, NotFound
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database

_e = t.experiments.c
_project_id = select(t.projects.c.id).where(t.projects.c.name == bindparam("project"))
_experiment_in_project = select(t.experiments).where(_e.project_id == bindparam("project_id"), _e.name == bindparam("name"))
_with_project = select(t.experiments, t.projects.c.name.label("project")).join(t.projects, t.projects.c.id == _e.project_id)
_by_id = _with_project.where(_e.id == bindparam("experiment_id"))
_by_name = _with_project.where(_e.name == bindparam("name"), t.projects.c.name == bindparam("project"))
EXISTS = select(_e.id).where(_e.id == bindparam("experiment_id"))
"""One row when the experiment ``experiment_id`` exists (runs check it at creation)."""


def _experiment(row: Any) -> Experiment:
    return Experiment(id=row.id, name=row.name, project=row.project, created_at=row.created_at)


class SqlExperimentStore:
    """Experiments (and the projects they belong to, created on demand)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_or_create(self, name: str, project: str = "default") -> Experiment:
        v.check_name(name, "experiment")
        v.check_name(project, "project")
        try:
            return self.db.numbered_write(lambda conn: self._get_or_create(conn, name, project))
        except Conflict:
            return self.get_by_name(name, project)  # created concurrently by another writer, every time: read it

    @staticmethod
    def _get_or_create(conn: Connection, name: str, project: str) -> Experiment:
        project_id = conn.execute(_project_id, {"project": project}).scalar()
        if project_id is None:
            project_id = conn.execute(
                t.projects.insert().values(name=project, description="", created_at=now_ms())
            ).inserted_primary_key[0]  # type: ignore[index]
        row = conn.execute(_experiment_in_project, {"project_id": project_id, "name": name}).first()
        if row is not None:
            return Experiment(id=row.id, name=row.name, project=project, created_at=row.created_at)
        created = now_ms()
        exp_id = conn.execute(
            t.experiments.insert().values(project_id=project_id, name=name, created_at=created)
        ).inserted_primary_key[0]  # type: ignore[index]
        append_event(conn, "experiments.create", "experiment", exp_id, None, {"name": name, "project": project})
        return Experiment(id=exp_id, name=name, project=project, created_at=created)

    def get(self, experiment_id: int) -> Experiment:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_by_id, {"experiment_id": experiment_id}).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        return _experiment(row)

    def get_by_name(self, name: str, project: str = "default") -> Experiment:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_by_name, {"name": name, "project": project}).first()
        if row is None:
            raise NotFound(f"experiment {name!r} does not exist in project {project!r}")
        return _experiment(row)

    def list_all(self, project: str | None = None) -> list[Experiment]:
        query = _with_project.order_by(_e.id)
        if project is not None:
            query = query.where(t.projects.c.name == project)
        with self.db.transaction(write=False) as conn:
            return [_experiment(r) for r in conn.execute(query)]
