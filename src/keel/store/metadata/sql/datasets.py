"""``SqlDatasetStore``: dataset versions on the same database (and transactions) as ``SqlStore``.

What a version may record is checked by ``keel.core.dataset_records`` (the same checks for every backend).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.dataset_records import CheckedDatasetVersion, check_dataset_version, check_suite
from keel.core.datasets import ColumnSchema, DatasetVersion, RunDatasetLink, ValidationRecord
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.datasets import DIRECTIONS, DatasetStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect, next_number
from keel.store.metadata.sql.runs import require_run

_dv = t.dataset_versions.c
_versions = select(t.dataset_versions, t.datasets.c.name).join(t.datasets, t.datasets.c.id == _dv.dataset_id)
_dataset_id = select(t.datasets.c.id).where(t.datasets.c.name == bindparam("name"))
_version_exists = select(_dv.id).where(_dv.id == bindparam("version_id"))
_link_run_by_dialect = by_dialect(lambda insert: insert(t.run_datasets).on_conflict_do_nothing())


def schema_to_json(schema: Sequence[ColumnSchema]) -> str:
    return json.dumps([[c.name, c.type, c.nullable] for c in schema])


def schema_from_json(text: str) -> tuple[ColumnSchema, ...]:
    return tuple(ColumnSchema(n, ty, bool(nl)) for n, ty, nl in json.loads(text))


class SqlDatasetStore(DatasetStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._link_run = db.pick(_link_run_by_dialect)

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
        checked = check_dataset_version(
            name,
            content_hash=content_hash,
            artifact_sha256=artifact_sha256,
            size=size,
            row_count=row_count,
            schema=schema,
            source=source,
            role=role,
            transform=transform,
            profile=profile,
        )
        parents = list(parent_ids)
        return self.db.numbered_write(
            lambda conn: self._log_version(conn, name, checked, parents),
            exhausted=f"could not record a version of {name!r}: too many concurrent writers",
        )

    def _log_version(
        self, conn: Connection, name: str, checked: CheckedDatasetVersion, parent_ids: list[int]
    ) -> tuple[DatasetVersion, bool]:
        dataset_id = conn.execute(_dataset_id, {"name": name}).scalar()
        if dataset_id is None:
            dataset_id = conn.execute(t.datasets.insert().values(name=name, created_at=now_ms())).inserted_primary_key[0]  # type: ignore[index]
        existing = conn.execute(_versions.where(_dv.dataset_id == dataset_id, _dv.content_hash == checked.content_hash)).first()
        if existing is not None:
            return self._load(conn, [existing])[0], False
        if parent_ids:
            found = set(conn.execute(select(_dv.id).where(_dv.id.in_(parent_ids))).scalars())
            missing = set(parent_ids) - found
            if missing:
                raise NotFound(f"parent dataset version {sorted(missing)[0]} does not exist")
        version_id = conn.execute(
            t.dataset_versions.insert().values(
                dataset_id=dataset_id,
                version=next_number(conn, _dv.version, _dv.dataset_id == dataset_id),
                created_at=now_ms(),
                content_hash=checked.content_hash,
                artifact_sha256=checked.artifact_sha256,
                size=checked.size,
                row_count=checked.row_count,
                schema=schema_to_json(checked.schema),
                source=checked.source,
                role=checked.role,
                transform=json.dumps(checked.transform, sort_keys=True) if checked.transform else None,
                profile=json.dumps(checked.profile) if checked.profile is not None else None,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        if parent_ids:
            conn.execute(t.dataset_parents.insert(), [{"version_id": version_id, "parent_id": p} for p in set(parent_ids)])
        stored = self._load(conn, [conn.execute(_versions.where(_dv.id == version_id)).one()])[0]
        append_event(conn, "datasets.log_version", "dataset_version", version_id, None, {
            "ref": stored.ref, "content_hash": stored.content_hash, "artifact_sha256": stored.artifact_sha256,
            "rows": stored.row_count, "source": stored.source, "role": stored.role, "parents": sorted(set(parent_ids)),
        })  # fmt: skip
        return stored, True

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        query = _versions.where(t.datasets.c.name == name)
        if version is None:
            query = query.order_by(_dv.version.desc()).limit(1)
        else:
            v.check_version_number(version)
            query = query.where(_dv.version == version)
        with self.db.transaction(write=False) as conn:
            row = conn.execute(query).first()
            if row is None:
                what = f"{name}@{version}" if version is not None else repr(name)
                raise NotFound(f"dataset {what} does not exist")
            return self._load(conn, [row])[0]

    def get_version_by_id(self, version_id: int) -> DatasetVersion:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_versions.where(_dv.id == version_id)).first()
            if row is None:
                raise NotFound(f"dataset version {version_id} does not exist")
            return self._load(conn, [row])[0]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(_versions.where(t.datasets.c.name == name).order_by(_dv.version)).all()
            if not rows:
                raise NotFound(f"dataset {name!r} does not exist")
            return self._load(conn, rows)

    def list_datasets(self) -> list[DatasetVersion]:
        latest = select(_dv.dataset_id, func.max(_dv.version).label("version")).group_by(_dv.dataset_id).subquery()
        query = _versions.join(latest, (latest.c.dataset_id == _dv.dataset_id) & (latest.c.version == _dv.version)).order_by(
            t.datasets.c.name
        )
        with self.db.transaction(write=False) as conn:
            return self._load(conn, conn.execute(query).all())

    def get_profile(self, version_id: int) -> dict[str, Any] | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(select(_dv.profile).where(_dv.id == version_id)).first()
        if row is None:
            raise NotFound(f"dataset version {version_id} does not exist")
        return json.loads(row[0]) if row[0] else None

    def children(self, version_id: int) -> list[DatasetVersion]:
        with self.db.transaction(write=False) as conn:
            child_ids = select(t.dataset_parents.c.version_id).where(t.dataset_parents.c.parent_id == version_id)
            rows = conn.execute(_versions.where(_dv.id.in_(child_ids)).order_by(_dv.id)).all()
            return self._load(conn, rows)

    @staticmethod
    def _require_version(conn: Connection, version_id: int) -> None:
        if conn.execute(_version_exists, {"version_id": version_id}).first() is None:
            raise NotFound(f"dataset version {version_id} does not exist")

    def link_run(self, run_id: str, version_id: int, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise InvalidArgument.for_field("direction", direction, "'input' or 'output'")
        with self.db.transaction() as conn:
            require_run(conn, run_id)
            self._require_version(conn, version_id)
            linked = conn.execute(
                self._link_run,
                {"run_id": run_id, "version_id": version_id, "direction": direction},
            ).rowcount
            if linked:  # a link made again changes nothing
                after = {"run_id": run_id, "direction": direction}
                append_event(conn, "datasets.link_run", "dataset_version", version_id, None, after)

    def runs_of_version(self, version_id: int) -> list[tuple[str, str]]:
        rd = t.run_datasets.c
        with self.db.transaction(write=False) as conn:
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
        with self.db.transaction(write=False) as conn:
            require_run(conn, run_id)
            links = conn.execute(select(rd.version_id, rd.direction).where(rd.run_id == run_id)).all()
            rows = conn.execute(_versions.where(_dv.id.in_([vid for vid, _ in links]))).all()
            versions = {dv.id: dv for dv in self._load(conn, rows)}
        return sorted((RunDatasetLink(run_id, versions[vid], d) for vid, d in links), key=lambda x: (x.direction, x.version.ref))

    def save_validation(
        self, version_id: int, suite: str, passed: bool, errors: int, warnings: int, result: Mapping[str, Any]
    ) -> ValidationRecord:
        check_suite(suite)
        created = now_ms()
        with self.db.transaction() as conn:
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
            after = {"record_id": record_id, "suite": suite, "passed": bool(passed), "errors": int(errors),
                     "warnings": int(warnings)}  # fmt: skip
            append_event(conn, "datasets.save_validation", "dataset_version", version_id, None, after)
        return ValidationRecord(record_id, version_id, suite, bool(passed), int(errors), int(warnings), dict(result), created)

    def list_validations(self, version_id: int) -> list[ValidationRecord]:
        vr = t.validation_results.c
        with self.db.transaction(write=False) as conn:
            self._require_version(conn, version_id)
            rows = conn.execute(select(t.validation_results).where(vr.version_id == version_id).order_by(vr.id.desc())).all()
        return [
            ValidationRecord(
                r.id, r.version_id, r.suite, bool(r.passed), r.errors, r.warnings, json.loads(r.result), r.created_at
            )
            for r in rows
        ]
