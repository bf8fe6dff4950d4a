"""``SqlModelStore``: the model registry on the ``SqlStore``'s database.

What a version may record and what an alias may be named are checked in ``keel.core`` (``model_records``,
``validation``): the same checks for every backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from keel.core import validation as v
from keel.core.assessments import check_assessment
from keel.core.clock import now_ms
from keel.core.datasets import parse_ref
from keel.core.errors import NotFound
from keel.core.model_records import CheckedModelVersion, check_model_version
from keel.core.models import AliasChange, Assessment, ModelVersion
from keel.core.promotion import ANY_HOLDER, AliasMove, ExpectedFrom, check_move, judge, require_gates_or_force, require_holder
from keel.store.metadata.models import ModelStore
from keel.store.metadata.sql import assessments as assessed
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect, next_number
from keel.store.metadata.sql.deployments import follow_alias_move
from keel.store.metadata.sql.runs import require_run

_mv = t.model_versions.c
_versions = select(t.model_versions, t.models.c.name).join(t.models, t.models.c.id == _mv.model_id)
_model_id = select(t.models.c.id).where(t.models.c.name == bindparam("name"))


def _upsert_alias(insert: Any) -> Any:
    stmt = insert(t.model_aliases)
    return stmt.on_conflict_do_update(
        index_elements=["model_id", "alias"], set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at}
    )


_upsert_alias_by_dialect = by_dialect(_upsert_alias)


class SqlModelStore(ModelStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._upsert_alias = db.pick(_upsert_alias_by_dialect)

    def _load(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        aliases: dict[tuple[int, int], list[str]] = {}
        trained_on: dict[int, list[int]] = {}
        mvd = t.model_version_datasets.c
        for mv_id, dv_id in conn.execute(
            select(mvd.model_version_id, mvd.dataset_version_id)
            .where(mvd.model_version_id.in_([r.id for r in rows]))
            .order_by(mvd.model_version_id, mvd.dataset_version_id)
        ):
            trained_on.setdefault(mv_id, []).append(dv_id)
        model_ids = {r.model_id for r in rows}
        if model_ids:
            ma = t.model_aliases.c
            for model_id, alias, version in conn.execute(
                select(ma.model_id, ma.alias, ma.version).where(ma.model_id.in_(model_ids)).order_by(ma.alias)
            ):
                aliases.setdefault((model_id, version), []).append(alias)
        return [
            ModelVersion(
                id=r.id,
                name=r.name,
                version=r.version,
                flavor=r.flavor,
                artifact_sha256=r.artifact_sha256,
                size=r.size,
                signature=json.loads(r.signature),
                source_run=r.source_run,
                metrics=json.loads(r.metrics),
                datasets=tuple(json.loads(r.datasets)),
                requirements=tuple(json.loads(r.requirements)),
                description=r.description,
                created_at=r.created_at,
                aliases=tuple(aliases.get((r.model_id, r.version), ())),
                dataset_version_ids=tuple(trained_on.get(r.id, ())),
            )
            for r in rows
        ]

    @staticmethod
    def _link_datasets(conn: Connection, version_id: int, refs: Sequence[str]) -> None:
        """Link the version to the dataset versions its refs name (``name`` alone: the latest now), by key.
        A ref to no stored version stays a ref only, as before links existed."""
        dv, ds = t.dataset_versions.c, t.datasets.c
        ids: set[int] = set()
        for ref in refs:
            name, number = parse_ref(ref)
            query = select(dv.id).join(t.datasets, ds.id == dv.dataset_id).where(ds.name == name)
            query = query.where(dv.version == number) if number is not None else query.order_by(dv.version.desc()).limit(1)
            found = conn.execute(query).scalar()
            if found is not None:
                ids.add(int(found))
        if ids:
            rows = [{"model_version_id": version_id, "dataset_version_id": i} for i in sorted(ids)]
            conn.execute(t.model_version_datasets.insert(), rows)

    @staticmethod
    def _model_id(conn: Connection, name: str) -> int:
        model_id = conn.execute(_model_id, {"name": name}).scalar()
        if model_id is None:
            raise NotFound(f"model {name!r} does not exist")
        return int(model_id)

    def create_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact_sha256: str,
        size: int,
        signature: Mapping[str, Any],
        source_run: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[str] = (),
        requirements: Sequence[str] = (),
        description: str = "",
    ) -> ModelVersion:
        checked = check_model_version(
            name,
            flavor=flavor,
            artifact_sha256=artifact_sha256,
            size=size,
            signature=signature,
            source_run=source_run,
            metrics=metrics,
            datasets=datasets,
            requirements=requirements,
            description=description,
        )
        return self.db.numbered_write(
            lambda conn: self._create_version(conn, name, checked),
            exhausted=f"could not register a version of {name!r}: too many concurrent registrations",
        )

    def _create_version(self, conn: Connection, name: str, checked: CheckedModelVersion) -> ModelVersion:
        if checked.source_run is not None:
            require_run(conn, checked.source_run)
        model_id = conn.execute(_model_id, {"name": name}).scalar()
        if model_id is None:
            model_id = conn.execute(
                t.models.insert().values(name=name, description="", created_at=now_ms())
            ).inserted_primary_key[0]  # type: ignore[index]
        version_id = conn.execute(
            t.model_versions.insert().values(
                model_id=model_id,
                version=next_number(conn, _mv.version, _mv.model_id == model_id),
                created_at=now_ms(),
                flavor=checked.flavor,
                artifact_sha256=checked.artifact_sha256,
                size=checked.size,
                signature=checked.signature,
                source_run=checked.source_run,
                metrics=checked.metrics,
                datasets=checked.datasets,
                requirements=checked.requirements,
                description=checked.description,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        self._link_datasets(conn, version_id, json.loads(checked.datasets))
        row = conn.execute(_versions.where(_mv.id == version_id)).one()
        created = self._load(conn, [row])[0]
        append_event(conn, "models.create_version", "model_version", f"{name}/{created.version}", None, {
            "flavor": created.flavor, "artifact_sha256": created.artifact_sha256, "source_run": created.source_run,
            "metrics": created.metrics, "datasets": list(created.datasets),
        })  # fmt: skip
        return created

    def get_version(self, name: str, version: int) -> ModelVersion:
        v.check_version_number(version)
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_versions.where(t.models.c.name == name, _mv.version == version)).first()
            if row is None:
                self._model_id(conn, name)
                raise NotFound(f"model {name!r} has no version {version}")
            return self._load(conn, [row])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.transaction(write=False) as conn:
            self._model_id(conn, name)
            return self._load(conn, conn.execute(_versions.where(t.models.c.name == name).order_by(_mv.version)).all())

    def list_models(self) -> list[ModelVersion]:
        latest = select(_mv.model_id, func.max(_mv.version).label("version")).group_by(_mv.model_id).subquery()
        query = _versions.join(latest, (latest.c.model_id == _mv.model_id) & (latest.c.version == _mv.version))
        with self.db.transaction(write=False) as conn:
            return self._load(conn, conn.execute(query.order_by(t.models.c.name)).all())

    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        v.check_alias(alias)
        ma = t.model_aliases.c
        with self.db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            version = conn.execute(select(ma.version).where(ma.model_id == model_id, ma.alias == alias)).scalar()
            if version is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            row = conn.execute(_versions.where(_mv.model_id == model_id, _mv.version == version)).one()
            return self._load(conn, [row])[0]

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        rules: Sequence[str] = (),
        require_valid_data: bool = False,
        expected_from: ExpectedFrom = ANY_HOLDER,
        force: bool = False,
        actor: str,
        reason: str = "",
    ) -> AliasChange:
        move = check_move(
            alias, version, rules=rules, require_valid_data=require_valid_data, expected_from=expected_from, force=force,
            actor=actor, reason=reason,
        )  # fmt: skip
        with self.db.transaction() as conn:
            return self._move_alias(conn, name, move)

    def _move_alias(self, conn: Connection, name: str, move: AliasMove) -> AliasChange:
        ma = t.model_aliases.c
        # lock the model's row: concurrent moves of its aliases queue here (PostgreSQL; SQLite's BEGIN IMMEDIATE
        # already serialises writers), so the holder read below is still the holder when the alias is written
        model_id = conn.execute(_model_id.with_for_update(), {"name": name}).scalar()
        if model_id is None:
            raise NotFound(f"model {name!r} does not exist")
        candidate = None
        if move.version is not None:
            row = conn.execute(_versions.where(_mv.model_id == model_id, _mv.version == move.version)).first()
            if row is None:
                raise NotFound(f"model {name!r} has no version {move.version}")
            candidate = self._load(conn, [row])[0]
        current = conn.execute(select(ma.version).where(ma.model_id == model_id, ma.alias == move.alias)).scalar()
        if move.version is None and current is None:
            raise NotFound(f"model {name!r} has no alias {move.alias!r}")
        require_holder(name, move, current)
        require_gates_or_force(name, move)
        checks = None
        if move.gated:
            assert candidate is not None  # check_move refuses gates on a removal
            holder = None
            if current is not None:
                held = conn.execute(_versions.where(_mv.model_id == model_id, _mv.version == current)).one()
                holder = self._load(conn, [held])[0]
            validations = _latest_validations(conn, candidate) if move.require_valid_data else {}
            # the gates read each version's latest assessment of each kind too (fairness.demographic_parity_difference)
            candidate = assessed.gated_metrics(conn, candidate)
            holder = None if holder is None else assessed.gated_metrics(conn, holder)
            checks = judge(name, move, candidate, holder, validations)
        at = now_ms()
        if move.version is None:
            conn.execute(t.model_aliases.delete().where(ma.model_id == model_id, ma.alias == move.alias))
        else:
            values = {"model_id": model_id, "alias": move.alias, "version": move.version, "updated_at": at}
            conn.execute(self._upsert_alias, values)
        conn.execute(
            t.alias_history.insert().values(
                model_id=model_id, alias=move.alias, from_version=current, to_version=move.version, actor=move.actor,
                reason=move.reason, at=at, gated=move.gated, forced=move.force,
                checks=json.dumps(checks) if checks is not None else None,
            )
        )  # fmt: skip
        follow_alias_move(conn, name, move.alias, (current, move.version), move.actor)  # deployments routing the alias
        # appended after the deployments' events: the log's lock is taken last, after every row lock (sql/audit.py)
        append_event(conn, "models.move_alias", "alias", f"{name}@{move.alias}", {"version": current}, {
            "version": move.version, "declared_actor": move.actor, "reason": move.reason, "gated": move.gated,
            "forced": move.force, "checks": checks,
        })  # fmt: skip
        return AliasChange(name, move.alias, current, move.version, move.actor, move.reason, at, move.gated, move.force, checks)

    def _version_id(self, conn: Connection, name: str, version: int) -> int:
        v.check_version_number(version)
        found = conn.execute(select(_mv.id).where(_mv.model_id == self._model_id(conn, name), _mv.version == version)).scalar()
        if found is None:
            raise NotFound(f"model {name!r} has no version {version}")
        return int(found)

    def add_assessment(self, assessment: Assessment) -> Assessment:
        checked = check_assessment(assessment)
        with self.db.transaction() as conn:
            return assessed.add_assessment(conn, self._version_id(conn, checked.model, checked.version), checked)

    def assessments(self, name: str, version: int, kind: str | None = None) -> list[Assessment]:
        with self.db.transaction(write=False) as conn:
            return assessed.assessments(conn, name, version, self._version_id(conn, name, version), kind)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        ah = t.alias_history.c
        with self.db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            query = select(t.alias_history).where(ah.model_id == model_id)
            if alias is not None:
                query = query.where(ah.alias == v.check_alias(alias))
            rows = conn.execute(query.order_by(ah.at, ah.id)).all()
        return [
            AliasChange(
                name, r.alias, r.from_version, r.to_version, r.actor, r.reason, r.at, bool(r.gated), bool(r.forced),
                json.loads(r.checks) if r.checks is not None else None,
            )
            for r in rows
        ]  # fmt: skip


def _latest_validations(conn: Connection, candidate: ModelVersion) -> dict[str, bool | None]:
    """Whether the latest validation of each training dataset passed, read through the version's links by key
    (``None``: never validated, or a ref that names no version in this store)."""
    dv, vr = t.dataset_versions.c, t.validation_results.c
    linked: dict[tuple[str, int], bool | None] = {}
    for version_id in candidate.dataset_version_ids:
        row = conn.execute(
            select(t.datasets.c.name, dv.version).join(t.datasets, t.datasets.c.id == dv.dataset_id).where(dv.id == version_id)
        ).one()
        passed = conn.execute(select(vr.passed).where(vr.version_id == version_id).order_by(vr.id.desc()).limit(1)).scalar()
        linked[(row.name, row.version)] = None if passed is None else bool(passed)
    found: dict[str, bool | None] = {}
    for ref in candidate.datasets:
        name, number = parse_ref(ref)
        # a bare name was linked to the version that was latest when the model was registered
        matches = [
            passed for (linked_name, version), passed in linked.items() if linked_name == name and number in (None, version)
        ]
        found[ref] = matches[-1] if matches else None
    return found
