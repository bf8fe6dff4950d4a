"""``SqlModelStore``: the model registry on the ``SqlStore``'s database."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, func, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.core.models import AliasChange, ModelVersion
from keel.store.metadata.models import ModelStore, check_version_metrics
from keel.store.metadata.sql import schema as t

if TYPE_CHECKING:
    from keel.store.metadata.sql.store import SqlStore

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}\Z")  # \Z: "$" would accept a trailing newline
_mv = t.model_versions.c


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidArgument.for_field("alias", alias, "1-64 lowercase letters, digits, '_' or '-', starting with a letter")
    return alias


def _json(field: str, value: Any, kind: type, expected: str, item: type | None = None) -> str:
    """``value`` as JSON, or ``InvalidArgument`` naming the field (never a raw ``TypeError``/``ValueError``)."""
    if not isinstance(value, kind) or isinstance(value, (str, bytes)):
        raise InvalidArgument.for_field(field, value, expected)
    data: Any = dict(value) if isinstance(value, Mapping) else list(cast(Sequence[Any], value))
    if item is not None and not all(isinstance(x, item) for x in data):
        raise InvalidArgument.for_field(field, value, expected)
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field(field, value, f"{expected} of JSON values (strings, finite numbers, ...)") from None


class SqlModelStore(ModelStore):
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _query(self) -> Any:
        return select(t.model_versions, t.models.c.name).join(t.models, t.models.c.id == _mv.model_id)

    def _load(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        aliases: dict[tuple[int, int], list[str]] = {}
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
            )
            for r in rows
        ]

    def _model_id(self, conn: Connection, name: str) -> int:
        model_id = conn.execute(select(t.models.c.id).where(t.models.c.name == name)).scalar()
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
        v.check_name(name, "model name")
        v.check_sha256(artifact_sha256)
        if not isinstance(flavor, str) or not flavor:
            raise InvalidArgument.for_field("flavor", flavor, "a flavor name")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgument.for_field("size", size, "a non-negative integer")
        values = {
            "flavor": flavor, "artifact_sha256": artifact_sha256, "size": size,
            "signature": _json("signature", signature, Mapping, "a JSON object"), "source_run": source_run,
            "metrics": json.dumps(check_version_metrics(metrics)),
            "datasets": _json("datasets", datasets, Sequence, "a list of strings", str),
            "requirements": _json("requirements", requirements, Sequence, "a list of strings", str),
            "description": description or "",
        }  # fmt: skip
        for _ in range(3):
            try:
                with self._store._tx() as conn:
                    if source_run is not None:
                        self._store._require_run(conn, source_run)
                    model_id = conn.execute(select(t.models.c.id).where(t.models.c.name == name)).scalar()
                    if model_id is None:
                        model_id = conn.execute(
                            t.models.insert().values(name=name, description="", created_at=now_ms())
                        ).inserted_primary_key[0]  # type: ignore[index]
                    number = (conn.execute(select(func.max(_mv.version)).where(_mv.model_id == model_id)).scalar() or 0) + 1
                    version_id = conn.execute(
                        t.model_versions.insert().values(model_id=model_id, version=number, created_at=now_ms(), **values)
                    ).inserted_primary_key[0]  # type: ignore[index]
                    row = conn.execute(self._query().where(_mv.id == version_id)).one()
                    return self._load(conn, [row])[0]
            except Conflict:
                continue  # a concurrent registration took the number
        raise Conflict(f"could not register a version of {name!r}: too many concurrent registrations")

    def get_version(self, name: str, version: int) -> ModelVersion:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument.for_field("version", version, "a positive integer")
        with self._store._tx(write=False) as conn:
            row = conn.execute(self._query().where(t.models.c.name == name, _mv.version == version)).first()
            if row is None:
                self._model_id(conn, name)
                raise NotFound(f"model {name!r} has no version {version}")
            return self._load(conn, [row])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._store._tx(write=False) as conn:
            self._model_id(conn, name)
            return self._load(conn, conn.execute(self._query().where(t.models.c.name == name).order_by(_mv.version)).all())

    def list_models(self) -> list[ModelVersion]:
        latest = select(_mv.model_id, func.max(_mv.version).label("version")).group_by(_mv.model_id).subquery()
        query = self._query().join(latest, (latest.c.model_id == _mv.model_id) & (latest.c.version == _mv.version))
        with self._store._tx(write=False) as conn:
            return self._load(conn, conn.execute(query.order_by(t.models.c.name)).all())

    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        check_alias(alias)
        ma = t.model_aliases.c
        with self._store._tx(write=False) as conn:
            model_id = self._model_id(conn, name)
            version = conn.execute(select(ma.version).where(ma.model_id == model_id, ma.alias == alias)).scalar()
            if version is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            row = conn.execute(self._query().where(_mv.model_id == model_id, _mv.version == version)).one()
            return self._load(conn, [row])[0]

    def set_alias(self, name: str, alias: str, version: int | None, *, actor: str, reason: str) -> AliasChange:
        check_alias(alias)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidArgument.for_field("version", version, "a positive integer, or None to remove the alias")
        ma = t.model_aliases.c
        at = now_ms()
        with self._store._tx() as conn:
            model_id = self._model_id(conn, name)
            if (
                version is not None
                and conn.execute(select(_mv.id).where(_mv.model_id == model_id, _mv.version == version)).first() is None
            ):
                raise NotFound(f"model {name!r} has no version {version}")
            current = conn.execute(select(ma.version).where(ma.model_id == model_id, ma.alias == alias)).scalar()
            if version is None and current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            if version is None:
                conn.execute(t.model_aliases.delete().where(ma.model_id == model_id, ma.alias == alias))
            else:
                stmt = self._store._insert(t.model_aliases)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["model_id", "alias"],
                        set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
                    ),
                    {"model_id": model_id, "alias": alias, "version": version, "updated_at": at},
                )
            conn.execute(
                t.alias_history.insert().values(
                    model_id=model_id,
                    alias=alias,
                    from_version=current,
                    to_version=version,
                    actor=actor or "unknown",
                    reason=reason or "",
                    at=at,
                )
            )
        return AliasChange(name, alias, current, version, actor or "unknown", reason or "", at)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        ah = t.alias_history.c
        with self._store._tx(write=False) as conn:
            model_id = self._model_id(conn, name)
            query = select(t.alias_history).where(ah.model_id == model_id)
            if alias is not None:
                query = query.where(ah.alias == check_alias(alias))
            rows = conn.execute(query.order_by(ah.at, ah.id)).all()
        return [AliasChange(name, r.alias, r.from_version, r.to_version, r.actor, r.reason, r.at) for r in rows]
