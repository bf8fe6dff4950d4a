"""Projects and experiments on the SQL backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import Experiment, ViewType
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata import search
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database

_e = t.experiments.c
_project_id = select(t.projects.c.id).where(t.projects.c.name == bindparam("project"))
_experiment_in_project = select(t.experiments).where(_e.project_id == bindparam("project_id"), _e.name == bindparam("name"))
_with_project = select(t.experiments, t.projects.c.name.label("project")).join(t.projects, t.projects.c.id == _e.project_id)
_by_id = _with_project.where(_e.id == bindparam("experiment_id"))
_by_name = _with_project.where(_e.name == bindparam("name"), t.projects.c.name == bindparam("project"))
DELETED_AT = select(_e.id, _e.deleted_at).where(_e.id == bindparam("experiment_id"))
"""One row (id, deleted_at) when the experiment ``experiment_id`` exists (runs check it at creation)."""
DELETED_IDS = select(_e.id).where(_e.deleted_at.is_not(None))
"""The ids of deleted experiments (a subquery: their runs read as deleted)."""
_set_deleted = t.experiments.update().where(_e.id == bindparam("experiment_id")).values(deleted_at=bindparam("moment"))


def _experiment(row: Any) -> Experiment:
    return Experiment(id=row.id, name=row.name, project=row.project, created_at=row.created_at, deleted_at=row.deleted_at)


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
            return Experiment(id=row.id, name=row.name, project=project, created_at=row.created_at, deleted_at=row.deleted_at)
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

    def list_all(self, project: str | None = None, view: ViewType = ViewType.ACTIVE) -> list[Experiment]:
        view = search.check_view(view)
        query = _with_project.order_by(_e.id)
        if project is not None:
            query = query.where(t.projects.c.name == project)
        if view is ViewType.ACTIVE:
            query = query.where(_e.deleted_at.is_(None))
        elif view is ViewType.DELETED:
            query = query.where(_e.deleted_at.is_not(None))
        with self.db.transaction(write=False) as conn:
            return [_experiment(r) for r in conn.execute(query)]

    def delete(self, experiment_id: int) -> None:
        """Soft delete: the experiment and its runs are hidden and read-only until ``restore``."""
        moment = now_ms()
        with self.db.transaction() as conn:
            if self._deleted_at(conn, experiment_id) is not None:
                raise Conflict(f"experiment {experiment_id} is deleted already")
            conn.execute(_set_deleted, {"experiment_id": experiment_id, "moment": moment})
            append_event(conn, "experiments.delete", "experiment", experiment_id, {"deleted_at": None}, {"deleted_at": moment})

    def restore(self, experiment_id: int) -> None:
        with self.db.transaction() as conn:
            deleted_at = self._deleted_at(conn, experiment_id)
            if deleted_at is None:
                raise Conflict(f"experiment {experiment_id} is not deleted: there is nothing to restore")
            conn.execute(_set_deleted, {"experiment_id": experiment_id, "moment": None})
            before, after = {"deleted_at": deleted_at}, {"deleted_at": None}
            append_event(conn, "experiments.restore", "experiment", experiment_id, before, after)

    @staticmethod
    def _deleted_at(conn: Connection, experiment_id: int) -> int | None:
        if isinstance(experiment_id, bool) or not isinstance(experiment_id, int):
            raise InvalidArgument.for_field("experiment_id", experiment_id, "an experiment id (an integer)")
        row = conn.execute(DELETED_AT, {"experiment_id": experiment_id}).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        return row.deleted_at  # type: ignore[no-any-return]
