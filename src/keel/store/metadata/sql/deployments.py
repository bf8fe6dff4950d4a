"""``SqlDeploymentStore``: deployments on the ``SqlStore``'s database.

What routes may be is checked in ``keel.core.deployment_records`` (the same checks for every backend); here the
row is locked, compared (``expected_updated_at``), written, and the change appended, in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, or_, select

from keel.core.actor import current_actor
from keel.core.clock import now_ms
from keel.core.deployment_records import (
    Routes,
    alias_move_reason,
    alias_uri,
    change_kind,
    check_change_note,
    check_deployment_name,
    check_expected_updated_at,
    check_routes,
    merge_routes,
    version_uri,
)
from keel.core.deployments import Deployment, DeploymentChange
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.deployments import DeploymentStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database

_d = t.deployments.c
_dc = t.deployment_changes.c


def _deployment(r: Any) -> Deployment:
    return Deployment(
        name=r.name,
        primary=r.primary_model,
        shadows=tuple(json.loads(r.shadows)),
        canaries=tuple((uri, float(w)) for uri, w in json.loads(r.canaries)),
        sticky_key=r.sticky_key,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _record(
    conn: Connection, deployment_id: int, name: str, what: str, from_json: dict[str, Any] | None, to_json: dict[str, Any],
    note: tuple[str, str], at: int,
) -> DeploymentChange:  # fmt: skip
    conn.execute(
        t.deployment_changes.insert().values(
            deployment_id=deployment_id, what=what, from_routes=json.dumps(from_json) if from_json is not None else None,
            to_routes=json.dumps(to_json), actor=note[0], reason=note[1], at=at,
        )
    )  # fmt: skip
    # the last write of every change (the log's lock after the row locks, sql/audit.py)
    append_event(conn, f"deployments.{what}", "deployment", name, from_json, {**to_json, "reason": note[1]})
    return DeploymentChange(name, what, from_json, to_json, note[0], note[1], at)


def _next_at(row: Any) -> int:
    return max(now_ms(), int(row.updated_at) + 1)  # strictly increasing: a compare-and-swap never mistakes two changes


def follow_alias_move(conn: Connection, model: str, alias: str, moved: tuple[int | None, int | None], actor: str) -> None:
    """In the transaction that moves ``alias`` of ``model`` (``ModelStore.move_alias``): every deployment routing
    ``models:/MODEL@ALIAS`` records an ``alias`` change (routes as they are, plus ``resolved``: what the alias route
    names before and after) and gets a new ``updated_at``, which is what serving replicas poll to pick up the version."""
    before, after = moved
    if before == after:
        return
    uri = alias_uri(model, alias)
    # a prefilter on the JSON text ('_' of a name is a LIKE wildcard: it may match more, never less), checked below
    needle = f'%"{uri}"%'
    rows = conn.execute(
        select(t.deployments)
        .where(or_(_d.primary_model == uri, _d.shadows.like(needle), _d.canaries.like(needle)))
        .order_by(_d.id)  # rows locked in one order: two moves never wait on each other in a cycle
        .with_for_update()
    ).all()
    note = (actor or current_actor(), alias_move_reason(model, alias, before, after))
    for row in rows:
        routes = Routes.of(_deployment(row))
        if uri not in routes.uris():
            continue
        at = _next_at(row)
        conn.execute(t.deployments.update().where(_d.id == row.id).values(updated_at=at))
        from_json = {**routes.to_json(), "resolved": {uri: version_uri(model, before)}}
        to_json = {**routes.to_json(), "resolved": {uri: version_uri(model, after)}}
        _record(conn, row.id, row.name, "alias", from_json, to_json, note, at)


def _pinned_primary(what: str, was: dict[str, Any], became: dict[str, Any]) -> str | None:
    """The version to roll back to when a change moved what the primary runs: the primary before a change of primary,
    or, for an ``alias`` change of the primary's alias, the version the alias named before it moved (None: no such)."""
    primary: str = was["primary"]
    if what == "alias":
        resolved_before: dict[str, str | None] = was.get("resolved", {})
        resolved_after: dict[str, str | None] = became.get("resolved", {})
        if resolved_before.get(primary) != resolved_after.get(primary):
            return resolved_before.get(primary)  # None when the alias was new: nothing to pin
        return None
    return primary if primary != became["primary"] else None


class SqlDeploymentStore(DeploymentStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _row(conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(t.deployments).where(_d.name == name)
        # lock the row: concurrent changes queue here (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"deployment {name!r} does not exist")
        return row

    def create(
        self,
        name: str,
        primary: str,
        *,
        shadows: Sequence[str] = (),
        canaries: Sequence[tuple[str, float]] = (),
        sticky_key: str | None = None,
        actor: str = "",
        reason: str = "",
    ) -> Deployment:
        check_deployment_name(name)
        routes = check_routes(primary, shadows, canaries, sticky_key)
        note = check_change_note(actor, reason)
        with self.db.transaction() as conn:
            if conn.execute(select(_d.id).where(_d.name == name)).first() is not None:
                raise Conflict(f"deployment {name!r} already exists")
            at = now_ms()
            deployment_id = conn.execute(
                t.deployments.insert().values(
                    name=name, primary_model=routes.primary, shadows=json.dumps(list(routes.shadows)),
                    canaries=json.dumps([list(c) for c in routes.canaries]), sticky_key=routes.sticky_key,
                    created_at=at, updated_at=at,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            _record(conn, deployment_id, name, "create", None, routes.to_json(), note, at)
            return _deployment(self._row(conn, name))

    def get(self, name: str) -> Deployment:
        with self.db.transaction(write=False) as conn:
            return _deployment(self._row(conn, name))

    def list_deployments(self) -> list[Deployment]:
        with self.db.transaction(write=False) as conn:
            return [_deployment(r) for r in conn.execute(select(t.deployments).order_by(_d.name))]

    def set_routes(
        self,
        name: str,
        *,
        primary: str | None = None,
        shadows: Sequence[str] | None = None,
        canaries: Sequence[tuple[str, float]] | None = None,
        sticky_key: str | None = None,
        expected_updated_at: int | None = None,
        actor: str = "",
        reason: str = "",
    ) -> DeploymentChange:
        expected = check_expected_updated_at(expected_updated_at)
        note = check_change_note(actor, reason)
        with self.db.transaction() as conn:
            row = self._locked(conn, name, expected)
            before = Routes.of(_deployment(row))
            after = merge_routes(before, primary, shadows, canaries, sticky_key)
            if after == before:
                raise InvalidArgument(f"the change leaves deployment {name!r} as it is")
            return self._apply(conn, row, change_kind(before, after), before, after, note)

    def _locked(self, conn: Connection, name: str, expected: int | None) -> Any:
        row = self._row(conn, name, lock=True)
        if expected is not None and row.updated_at != expected:
            raise Conflict(f"deployment {name!r} changed since it was read (updated_at {row.updated_at}, expected {expected})")
        return row

    def _apply(
        self, conn: Connection, row: Any, what: str, before: Routes, after: Routes, note: tuple[str, str]
    ) -> DeploymentChange:
        at = _next_at(row)
        conn.execute(
            t.deployments.update().where(_d.id == row.id).values(
                primary_model=after.primary, shadows=json.dumps(list(after.shadows)),
                canaries=json.dumps([list(c) for c in after.canaries]), sticky_key=after.sticky_key, updated_at=at,
            )
        )  # fmt: skip
        return _record(conn, row.id, row.name, what, before.to_json(), after.to_json(), note, at)

    def history(self, name: str) -> list[DeploymentChange]:
        with self.db.transaction(write=False) as conn:
            row = self._row(conn, name)
            rows = conn.execute(select(t.deployment_changes).where(_dc.deployment_id == row.id).order_by(_dc.id)).all()
        return [
            DeploymentChange(
                name, r.what, json.loads(r.from_routes) if r.from_routes is not None else None, json.loads(r.to_routes),
                r.actor, r.reason, r.at,
            )
            for r in rows
        ]  # fmt: skip

    def rollback(
        self, name: str, *, expected_updated_at: int | None = None, actor: str = "", reason: str = ""
    ) -> DeploymentChange:
        expected = check_expected_updated_at(expected_updated_at)
        note = check_change_note(actor, reason)
        with self.db.transaction() as conn:
            row = self._locked(conn, name, expected)
            before = Routes.of(_deployment(row))
            previous = None
            changes = conn.execute(
                select(_dc.what, _dc.from_routes, _dc.to_routes)
                .where(_dc.deployment_id == row.id, _dc.from_routes.is_not(None))
                .order_by(_dc.id.desc())
            )
            for what, from_text, to_text in changes:  # the last change of what the primary runs: what came before it
                previous = _pinned_primary(what, json.loads(from_text), json.loads(to_text))
                if previous is not None:
                    break
            if previous is None or previous == before.primary:
                raise NotFound(f"deployment {name!r} has no previous primary to roll back to")
            after = check_routes(
                previous,
                tuple(s for s in before.shadows if s != previous),
                tuple(c for c in before.canaries if c[0] != previous),
                before.sticky_key,
            )
            return self._apply(conn, row, "rollback", before, after, note)
