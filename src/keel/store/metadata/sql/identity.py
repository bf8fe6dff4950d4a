"""``SqlIdentityStore``: principals, role bindings and API tokens on the ``SqlStore``'s database.

A token's secret is stored only as ``hash_secret`` (scrypt, ~30 ms). ``authenticate`` verifies a token once per
process and then remembers it (token id -> the stored hash and the sha256 of the secret), but it still reads the
token's row and its principal on every call: a revocation, an expiry or a disabled principal counts at once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from keel.core.actor import current_actor
from keel.core.clock import now_ms
from keel.core.errors import Conflict, InvalidArgument, NotFound, Unauthenticated
from keel.core.identity import (
    ALL_PROJECTS,
    DEFAULT_PROJECT,
    DEFAULT_TRUSTED,
    ROLES,
    ApiToken,
    BlobTrust,
    NewToken,
    Principal,
    RoleBinding,
    check_principal_name,
    check_role,
    hash_secret,
    new_secret,
    parse_token,
    verify_secret,
)
from keel.core.identity_records import (
    BAD_TOKEN,
    LAST_USED_EVERY_MS,
    check_expires_at,
    check_kind,
    check_model,
    check_project,
    check_scope_list,
    check_token_id,
    check_token_name,
)
from keel.core.validation import check_sha256
from keel.store.metadata.identity import IdentityStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database

__all__ = ["SqlIdentityStore"]

_p = t.principals.c
_b = t.role_bindings.c
_k = t.api_tokens.c
_w = t.blob_writers.c


# rows -> entities --------------------------------------------------------------------------------------------------


def _principal(r: Any) -> Principal:
    return Principal(name=r.name, kind=r.kind, created_at=r.created_at, created_by=r.created_by, disabled=bool(r.disabled))


def _binding(r: Any) -> RoleBinding:
    return RoleBinding(principal=r.principal, role=r.role, project=r.project, model=r.model or None, created_at=r.created_at)


def _token(r: Any) -> ApiToken:
    return ApiToken(
        id=r.id, principal=r.principal, name=r.name, scopes=tuple(r.scopes.split()), created_at=r.created_at,
        expires_at=r.expires_at, revoked_at=r.revoked_at, last_used_at=r.last_used_at,
    )  # fmt: skip


_BINDINGS = select(
    _b.id, _p.name.label("principal"), _b.role, _b.project, _b.model, _b.created_at
).join_from(t.role_bindings, t.principals, _b.principal_id == _p.id)  # fmt: skip
_TOKENS = select(
    _k.id, _p.name.label("principal"), _k.name, _k.scopes, _k.created_at, _k.expires_at, _k.revoked_at, _k.last_used_at
).join_from(t.api_tokens, t.principals, _k.principal_id == _p.id)  # fmt: skip
_AUTH = select(
    _k.id, _k.hash, _k.name, _k.scopes, _k.created_at, _k.expires_at, _k.revoked_at, _k.last_used_at,
    _p.name.label("principal"), _p.kind, _p.created_at.label("principal_created_at"), _p.created_by, _p.disabled,
).join_from(t.api_tokens, t.principals, _k.principal_id == _p.id)  # fmt: skip


class SqlIdentityStore(IdentityStore):
    """See ``IdentityStore`` for the contract. Thread safe (the verified-token memo has its own lock)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[str, tuple[str, bytes]] = {}  # token id -> (stored hash, sha256 of the secret)
        self._lock = threading.Lock()

    @staticmethod
    def _principal_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(t.principals).where(_p.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"principal {name!r} does not exist")
        return row

    # principals ------------------------------------------------------------------------------------------------
    def create_principal(self, name: str, kind: str = "user") -> Principal:
        check_principal_name(name)
        check_kind(kind)
        with self.db.transaction() as conn:
            if conn.execute(select(_p.id).where(_p.name == name)).first() is not None:
                raise Conflict(f"principal {name!r} already exists")
            conn.execute(
                t.principals.insert().values(name=name, kind=kind, created_at=now_ms(), created_by=current_actor()[:128])
            )
            created = _principal(self._principal_row(conn, name))
            append_event(conn, "identity.create_principal", "principal", name, None, {"kind": kind})
            return created

    def get_principal(self, name: str) -> Principal:
        check_principal_name(name)
        with self.db.transaction(write=False) as conn:
            return _principal(self._principal_row(conn, name))

    def list_principals(self) -> list[Principal]:
        with self.db.transaction(write=False) as conn:
            return [_principal(r) for r in conn.execute(select(t.principals).order_by(_p.name))]

    def set_disabled(self, name: str, disabled: bool) -> Principal:
        check_principal_name(name)
        if not isinstance(disabled, bool):
            raise InvalidArgument.for_field("disabled", disabled, "true or false")
        with self.db.transaction() as conn:
            row = self._principal_row(conn, name, lock=True)
            conn.execute(t.principals.update().where(_p.id == row.id).values(disabled=disabled))
            changed = _principal(self._principal_row(conn, name))
            before, after = {"disabled": bool(row.disabled)}, {"disabled": disabled}
            append_event(conn, "identity.set_disabled", "principal", name, before, after)
            return changed

    def count_principals(self) -> int:
        with self.db.transaction(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(t.principals)).scalar_one())

    # roles -----------------------------------------------------------------------------------------------------
    def grant(self, principal: str, role: str, *, project: str = "*", model: str | None = None) -> RoleBinding:
        check_principal_name(principal)
        check_role(role)
        project, model = check_project(project), check_model(model)
        with self.db.transaction() as conn:
            row = self._principal_row(conn, principal)
            # a concurrent grant of the same binding is not an error: the unique key keeps one row, both return it
            inserted = conn.execute(
                self.db.insert(t.role_bindings)
                .values(principal_id=row.id, role=role, project=project, model=model or "", created_at=now_ms())
                .on_conflict_do_nothing()
            )
            binding = _binding(conn.execute(self._binding_query(row.id, role, project, model)).one())
            if inserted.rowcount:  # granting what is granted changes nothing: no event
                after = {"role": role, "project": project, "model": model}
                append_event(conn, "identity.grant", "principal", principal, None, after)
            return binding

    @staticmethod
    def _binding_query(principal_id: int, role: str, project: str, model: str | None) -> Any:
        return _BINDINGS.where(_b.principal_id == principal_id, _b.role == role, _b.project == project, _b.model == (model or ""))

    def revoke_role(self, principal: str, role: str, *, project: str = "*", model: str | None = None) -> None:
        check_principal_name(principal)
        check_role(role)
        project, model = check_project(project), check_model(model)
        with self.db.transaction() as conn:
            row = self._principal_row(conn, principal)
            found = conn.execute(self._binding_query(row.id, role, project, model)).first()
            if found is None:
                on = f" on model {model!r}" if model else ""
                raise NotFound(f"principal {principal!r} has no role {role!r} in project {project!r}{on}")
            conn.execute(t.role_bindings.delete().where(_b.id == found.id))
            before = {"role": role, "project": project, "model": model}
            append_event(conn, "identity.revoke_role", "principal", principal, before, None)

    def bindings(self, principal: str | None = None, *, model: str | None = None) -> list[RoleBinding]:
        model = check_model(model)
        query = _BINDINGS.order_by(_p.name, _b.project, _b.model, _b.role)
        if model is not None:
            query = query.where(_b.model == model)
        with self.db.transaction(write=False) as conn:
            if principal is not None:
                query = query.where(_b.principal_id == self._principal_row(conn, check_principal_name(principal)).id)
            return [_binding(r) for r in conn.execute(query)]

    # tokens ----------------------------------------------------------------------------------------------------
    def create_token(
        self, principal: str, *, name: str = "", scopes: Sequence[str] = (), expires_at: int | None = None
    ) -> NewToken:
        check_principal_name(principal)
        check_token_name(name)
        scope_list = check_scope_list(scopes)
        expires_at = check_expires_at(expires_at)
        token_id, secret, whole = new_secret()
        stored = hash_secret(token_id, secret)  # ~30 ms: outside the transaction, which holds a write lock
        with self.db.transaction() as conn:
            row = self._principal_row(conn, principal)
            conn.execute(
                t.api_tokens.insert().values(
                    id=token_id, principal_id=row.id, name=name, hash=stored, scopes=" ".join(scope_list),
                    created_at=now_ms(), expires_at=expires_at,
                )
            )  # fmt: skip
            record = _token(conn.execute(_TOKENS.where(_k.id == token_id)).one())
            after = {"principal": principal, "name": name, "scopes": list(scope_list), "expires_at": expires_at}
            append_event(conn, "identity.create_token", "token", token_id, None, after)  # never the secret or its hash
            return NewToken(record, whole)

    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        query = _TOKENS.order_by(_k.created_at.desc(), _k.id)
        with self.db.transaction(write=False) as conn:
            if principal is not None:
                query = query.where(_k.principal_id == self._principal_row(conn, check_principal_name(principal)).id)
            return [_token(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: str) -> ApiToken:
        check_token_id(token_id)
        with self.db.transaction() as conn:
            row = conn.execute(select(_k.id, _k.revoked_at).where(_k.id == token_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"token {token_id!r} does not exist")
            if row.revoked_at is None:
                conn.execute(t.api_tokens.update().where(_k.id == token_id).values(revoked_at=now_ms()))
                append_event(conn, "identity.revoke_token", "token", token_id, {"revoked": False}, {"revoked": True})
            return _token(conn.execute(_TOKENS.where(_k.id == token_id)).one())

    def authenticate(self, token: str) -> tuple[Principal, ApiToken]:
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthenticated(BAD_TOKEN)
        token_id, secret = parsed
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_AUTH.where(_k.id == token_id)).first()
        at = now_ms()
        if row is None or not self._verify(token_id, secret, row.hash):
            raise Unauthenticated(BAD_TOKEN)
        if row.revoked_at is not None or (row.expires_at is not None and at >= row.expires_at) or row.disabled:
            raise Unauthenticated(BAD_TOKEN)
        last_used = row.last_used_at
        if last_used is None or at - last_used >= LAST_USED_EVERY_MS:
            last_used = self._note_use(token_id, at)
        principal = Principal(row.principal, row.kind, row.principal_created_at, row.created_by, bool(row.disabled))
        token_record = ApiToken(
            row.id, row.principal, row.name, tuple(row.scopes.split()), row.created_at, row.expires_at, row.revoked_at,
            last_used,
        )  # fmt: skip
        return principal, token_record

    def _verify(self, token_id: str, secret: str, stored: str) -> bool:
        digest = hashlib.sha256(secret.encode()).digest()
        with self._lock:
            known = self._verified.get(token_id)
        if known is not None and known[0] == stored:
            return hmac.compare_digest(known[1], digest)
        if not verify_secret(token_id, secret, stored):
            return False
        with self._lock:
            self._verified[token_id] = (stored, digest)
        return True

    def _note_use(self, token_id: str, at: int) -> int:
        """Set ``last_used_at`` unless another request did within the minute; the time the row ends up with."""
        with self.db.transaction() as conn:
            recent = (_k.last_used_at.is_(None)) | (_k.last_used_at <= at - LAST_USED_EVERY_MS)
            conn.execute(t.api_tokens.update().where(_k.id == token_id, recent).values(last_used_at=at))
            value = conn.execute(select(_k.last_used_at).where(_k.id == token_id)).scalar_one_or_none()
        return int(value) if value is not None else at

    # trust in what gets deserialized ---------------------------------------------------------------------------
    def record_blob_writer(self, sha256: str) -> None:
        check_sha256(sha256)
        writer = current_actor()[:128]
        with self.db.transaction() as conn:
            exists = select(_w.sha256).where(_w.sha256 == sha256, _w.principal == writer)
            if conn.execute(exists).first() is None:
                conn.execute(t.blob_writers.insert().values(sha256=sha256, principal=writer, first_at=now_ms()))

    def blob_trust(self, sha256: str, principal: str = "") -> BlobTrust:
        check_sha256(sha256)
        principal = principal or current_actor()
        with self.db.transaction(write=False) as conn:
            writers = tuple(conn.execute(select(_w.principal).where(_w.sha256 == sha256).order_by(_w.first_at)).scalars())
            if not writers:
                return BlobTrust(sha256, principal, (), False, "no principal is recorded as its writer")
            if principal in writers:
                return BlobTrust(sha256, principal, writers, True, f"written by {principal} (you)")
            trusted = self._trusted_roles(conn, DEFAULT_PROJECT)
            held = conn.execute(
                select(_p.name, _b.role)
                .join(t.role_bindings, _b.principal_id == _p.id)
                .where(_p.name.in_(writers), _b.role.in_(trusted), _b.model == "", _p.disabled.is_(False))
                .where(_b.project.in_((ALL_PROJECTS, DEFAULT_PROJECT)))
                .order_by(_p.name)
            ).first()  # fmt: skip
        if held is not None:
            return BlobTrust(sha256, principal, writers, True, f"written by {held.name} ({held.role}, a trusted role)")
        why = f"written by {', '.join(writers)}: not you, and none holds a trusted role ({', '.join(trusted)})"
        return BlobTrust(sha256, principal, writers, False, why)

    def trusted_roles(self, project: str = DEFAULT_PROJECT) -> tuple[str, ...]:
        project = check_project(project)
        with self.db.transaction(write=False) as conn:
            return self._trusted_roles(conn, project)

    @staticmethod
    def _trusted_roles(conn: Connection, project: str) -> tuple[str, ...]:
        query = select(t.trusted_roles.c.role).where(t.trusted_roles.c.project.in_((ALL_PROJECTS, project)))
        named = tuple(sorted(set(conn.execute(query).scalars())))
        return named or DEFAULT_TRUSTED

    def set_trusted_roles(self, project: str, roles: Sequence[str]) -> tuple[str, ...]:
        project = check_project(project)
        if isinstance(roles, str) or not all(isinstance(r, str) for r in roles):
            raise InvalidArgument.for_field("roles", roles, "a list of roles: " + " | ".join(ROLES))
        chosen = tuple(sorted({check_role(r) for r in roles}))
        with self.db.transaction() as conn:
            before = sorted(conn.execute(select(t.trusted_roles.c.role).where(t.trusted_roles.c.project == project)).scalars())
            conn.execute(t.trusted_roles.delete().where(t.trusted_roles.c.project == project))
            for role in chosen:
                conn.execute(t.trusted_roles.insert().values(project=project, role=role))
            append_event(conn, "identity.set_trusted_roles", "project", project, {"roles": before}, {"roles": list(chosen)})
            return self._trusted_roles(conn, project)
