"""``SqlDatasetStore``: dataset versions on the same database (and transactions) as ``SqlStore``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.dataset_records import check_profile, plain_json
from keel.core.datasets import ColumnSchema, DatasetVersion, RunDatasetLink, ValidationRecord
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.datasets import DIRECTIONS, DatasetStore
from keel.store.metadata.sql import schema as t

if TYPE_CHECKING:
    from keel.store.metadata.sql.store import SqlStore

ROLES = ("data", "quarantine")
_dv = t.dataset_versions.c


def schema_to_json(schema: Sequence[ColumnSchema]) -> str:
    return json.dumps([[c.name, c.type, c.nullable] for c in schema])


def schema_from_json(text: str) -> tuple[ColumnSchema, ...]:
    return tuple(ColumnSchema(n, ty, bool(nl)) for n, ty, nl in json.loads(text))


def check_schema(schema: Any) -> list[ColumnSchema]:
    if not isinstance(schema, (list, tuple)) or not schema:
        raise InvalidArgument.for_field("schema", schema, "a non-empty list of columns")
    out = []
    for col in schema:
        if not isinstance(col, ColumnSchema) or not isinstance(col.name, str) or not isinstance(col.type, str):
            raise InvalidArgument.for_field("schema column", col, "a ColumnSchema(name, type, nullable)")
        out.append(col)
    return out


class SqlDatasetStore(DatasetStore):
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _version_query(self) -> Any:
        return select(t.dataset_versions, t.datasets.c.name).join(t.datasets, t.datasets.c.id == t.dataset_versions.c.dataset_id)

    def _load(self, conn: Connection, rows: Sequence[Any]) -> list[DatasetVersion]:
        ids = [r.id for r in rows]
        parents: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            parent = t.dataset_versions.alias()
            query = (
                select(t.dataset_parents.c.version_id, t.datasets.c.name, parent.c.version)
                .join(parent, parent.c.id == t.dataset_parents.c.parent_id)
                .join(t.datasets, t.datasets.c.id == parent.c.dataset_id)
                .where(t.dataset_parents.c.version_id.in_(ids))
                .order_by(t.datasets.c.name, parent.c.version)
            )
            for version_id, name, number in conn.execute(query):
                parents[version_id].append(f"{name}@{number}")
        return [
            DatasetVersion(
                id=r.id,
                name=r.name,
                version=r.version,
                content_hash=r.content_hash,
                artifact_sha256=r.artifact_sha256,
                size=r.size,
                row_count=r.row_count,
                schema=schema_from_json(r.schema),
                source=r.source,
                role=r.role,
                transform=json.loads(r.transform) if r.transform else None,
                parents=tuple(parents[r.id]),
                created_at=r.created_at,
            )
            for r in rows
        ]

    def log_version(
        self,
        name: str,
        *,
        content_hash: str,
        artifact_sha256: str,
        size: int,
        row_count: int,
        schema: Sequence[ColumnSchema],
        source: str = "",
        role: str = "data",
        parent_ids: Sequence[int] = (),
        transform: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        v.check_name(name, "dataset name")
        v.check_sha256(content_hash)
        v.check_sha256(artifact_sha256)
        cols = check_schema(schema)
        if role not in ROLES:
            raise InvalidArgument.for_field("role", role, f"one of {', '.join(ROLES)}")
        for field, number in (("size", size), ("row_count", row_count)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise InvalidArgument.for_field(field, number, "a non-negative integer")
        if transform is not None and not isinstance(transform, Mapping):
            raise InvalidArgument.for_field("transform", transform, "a mapping (name, code hash, params)")
        record = plain_json(dict(transform), "transform") if transform else None
        if profile is not None:
            # reports and drift read stored profiles: refuse any shape keel.data does not compute
            check_profile(profile, [c.name for c in cols], row_count)
        row = {
            "content_hash": content_hash,
            "artifact_sha256": artifact_sha256,
            "size": size,
            "row_count": row_count,
            "schema": schema_to_json(cols),
            "source": source or "",
            "role": role,
            "transform": json.dumps(record, sort_keys=True) if record else None,
            "profile": json.dumps(dict(profile)) if profile is not None else None,
        }
        for _ in range(3):
            try:
                return self._log_version_once(name, row, list(parent_ids))
            except Conflict:
                continue  # another writer took this version number: take the next one
        raise Conflict(f"could not record a version of {name!r}: too many concurrent writers")

    def _log_version_once(self, name: str, row: dict[str, Any], parent_ids: list[int]) -> tuple[DatasetVersion, bool]:
        content_hash = row["content_hash"]
        with self._store._tx() as conn:
            dataset_id = conn.execute(select(t.datasets.c.id).where(t.datasets.c.name == name)).scalar()
            if dataset_id is None:
                dataset_id = conn.execute(t.datasets.insert().values(name=name, created_at=now_ms())).inserted_primary_key[0]  # type: ignore[index]
            existing = conn.execute(
                self._version_query().where(_dv.dataset_id == dataset_id, _dv.content_hash == content_hash)
            ).first()
            if existing is not None:
                return self._load(conn, [existing])[0], False
            if parent_ids:
                found = set(conn.execute(select(_dv.id).where(_dv.id.in_(parent_ids))).scalars())
                missing = set(parent_ids) - found
                if missing:
                    raise NotFound(f"parent dataset version {sorted(missing)[0]} does not exist")
            number = (conn.execute(select(func.max(_dv.version)).where(_dv.dataset_id == dataset_id)).scalar() or 0) + 1
            version_id = conn.execute(
                t.dataset_versions.insert().values(dataset_id=dataset_id, version=number, created_at=now_ms(), **row)
            ).inserted_primary_key[0]  # type: ignore[index]
            if parent_ids:
                conn.execute(t.dataset_parents.insert(), [{"version_id": version_id, "parent_id": p} for p in set(parent_ids)])
            stored = conn.execute(self._version_query().where(_dv.id == version_id)).one()
            return self._load(conn, [stored])[0], True

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        query = self._version_query().where(t.datasets.c.name == name)
        if version is None:
            query = query.order_by(_dv.version.desc()).limit(1)
        else:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidArgument.for_field("version", version, "a positive integer")
            query = query.where(_dv.version == version)
        with self._store._tx(write=False) as conn:
            row = conn.execute(query).first()
            if row is None:
                what = f"{name}@{version}" if version is not None else repr(name)
                raise NotFound(f"dataset {what} does not exist")
            return self._load(conn, [row])[0]

    def get_version_by_id(self, version_id: int) -> DatasetVersion:
        with self._store._tx(write=False) as conn:
            row = conn.execute(self._version_query().where(_dv.id == version_id)).first()
            if row is None:
                raise NotFound(f"dataset version {version_id} does not exist")
            return self._load(conn, [row])[0]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self._store._tx(write=False) as conn:
            rows = conn.execute(self._version_query().where(t.datasets.c.name == name).order_by(_dv.version)).all()
            if not rows:
                raise NotFound(f"dataset {name!r} does not exist")
            return self._load(conn, rows)

    def list_datasets(self) -> list[DatasetVersion]:
        latest = select(_dv.dataset_id, func.max(_dv.version).label("version")).group_by(_dv.dataset_id).subquery()
        query = (
            self._version_query()
            .join(latest, (latest.c.dataset_id == _dv.dataset_id) & (latest.c.version == _dv.version))
            .order_by(t.datasets.c.name)
        )
        with self._store._tx(write=False) as conn:
            return self._load(conn, conn.execute(query).all())

    def get_profile(self, version_id: int) -> dict[str, Any] | None:
        with self._store._tx(write=False) as conn:
            row = conn.execute(select(_dv.profile).where(_dv.id == version_id)).first()
        if row is None:
            raise NotFound(f"dataset version {version_id} does not exist")
        return json.loads(row[0]) if row[0] else None

    def children(self, version_id: int) -> list[DatasetVersion]:
        with self._store._tx(write=False) as conn:
            child_ids = select(t.dataset_parents.c.version_id).where(t.dataset_parents.c.parent_id == version_id)
            rows = conn.execute(self._version_query().where(_dv.id.in_(child_ids)).order_by(_dv.id)).all()
            return self._load(conn, rows)

    def _require_version(self, conn: Connection, version_id: int) -> None:
        if conn.execute(select(_dv.id).where(_dv.id == version_id)).first() is None:
            raise NotFound(f"dataset version {version_id} does not exist")

    def link_run(self, run_id: str, version_id: int, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise InvalidArgument.for_field("direction", direction, "'input' or 'output'")
        with self._store._tx() as conn:
            self._store._require_run(conn, run_id)
            self._require_version(conn, version_id)
            conn.execute(
                self._store._insert(t.run_datasets).on_conflict_do_nothing(),
                {"run_id": run_id, "version_id": version_id, "direction": direction},
            )

    def runs_of_version(self, version_id: int) -> list[tuple[str, str]]:
        rd = t.run_datasets.c
        with self._store._tx(write=False) as conn:
            self._require_version(conn, version_id)
            rows = conn.execute(
                select(rd.run_id, rd.direction)
                .join(t.runs, t.runs.c.id == rd.run_id)
                .where(rd.version_id == version_id)
                .order_by(t.runs.c.start_time, rd.direction)
            ).all()
        return [(r, d) for r, d in rows]

    def versions_of_run(self, run_id: str) -> list[RunDatasetLink]:
        rd = t.run_datasets.c
        with self._store._tx(write=False) as conn:
            self._store._require_run(conn, run_id)
            links = conn.execute(select(rd.version_id, rd.direction).where(rd.run_id == run_id)).all()
            rows = conn.execute(self._version_query().where(_dv.id.in_([vid for vid, _ in links]))).all()
            versions = {dv.id: dv for dv in self._load(conn, rows)}
        return sorted((RunDatasetLink(run_id, versions[vid], d) for vid, d in links), key=lambda x: (x.direction, x.version.ref))

    def save_validation(
        self, version_id: int, suite: str, passed: bool, errors: int, warnings: int, result: Mapping[str, Any]
    ) -> ValidationRecord:
        if not isinstance(suite, str) or not suite or len(suite) > 256:
            raise InvalidArgument.for_field("suite", suite, "a name of 1-256 characters")
        created = now_ms()
        with self._store._tx() as conn:
            self._require_version(conn, version_id)
            record_id = conn.execute(
                t.validation_results.insert().values(
                    version_id=version_id,
                    suite=suite,
                    passed=bool(passed),
                    errors=int(errors),
                    warnings=int(warnings),
                    result=json.dumps(dict(result)),
                    created_at=created,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return ValidationRecord(record_id, version_id, suite, bool(passed), int(errors), int(warnings), dict(result), created)

    def list_validations(self, version_id: int) -> list[ValidationRecord]:
        vr = t.validation_results.c
        with self._store._tx(write=False) as conn:
            self._require_version(conn, version_id)
            rows = conn.execute(select(t.validation_results).where(vr.version_id == version_id).order_by(vr.id.desc())).all()
        return [
            ValidationRecord(
                r.id, r.version_id, r.suite, bool(r.passed), r.errors, r.warnings, json.loads(r.result), r.created_at
            )
            for r in rows
        ]
