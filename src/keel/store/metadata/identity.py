"""The identity store interface: principals, their role bindings and their API tokens (``keel.core.identity``).

Contract (checked by ``keel.testing.identity_contract`` on SQLite, PostgreSQL and REST): one transaction per call;
bad input (``InvalidArgument`` naming the field) writes nothing; a secret is stored only as its hash and returned
once, by ``create_token``; ``authenticate`` never says which part of a token was wrong and never echoes it;
raises only ``keel.core.errors`` types. Every change is recorded in the audit log by the store, with the actor of
the call (``keel.core.actor``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from keel.core.identity import ApiToken, BlobTrust, NewToken, Principal, RoleBinding

__all__ = ["IdentityStore"]


class IdentityStore(abc.ABC):
    # principals -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_principal(self, name: str, kind: str = "user") -> Principal:
        """A new user or service account (``Conflict`` when the name is taken)."""

    @abc.abstractmethod
    def get_principal(self, name: str) -> Principal:
        """Raises ``NotFound``."""

    @abc.abstractmethod
    def list_principals(self) -> list[Principal]:
        """Every principal, by name."""

    @abc.abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> Principal:
        """Disable (or enable again) a principal: a disabled one cannot authenticate, whatever its tokens."""

    @abc.abstractmethod
    def count_principals(self) -> int:
        """How many principals exist (0: the store has no users yet; ``keel server`` then runs open only on loopback)."""

    # roles -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def grant(self, principal: str, role: str, *, project: str = "*", model: str | None = None) -> RoleBinding:
        """Give ``principal`` ``role`` in ``project`` (``"*"``: all), on ``model`` only when given. Granting what is
        already granted returns the existing binding (no second row)."""

    @abc.abstractmethod
    def revoke_role(self, principal: str, role: str, *, project: str = "*", model: str | None = None) -> None:
        """Remove that binding (``NotFound`` when there is none)."""

    @abc.abstractmethod
    def bindings(self, principal: str | None = None, *, model: str | None = None) -> list[RoleBinding]:
        """The bindings of ``principal`` (None: everyone's), only those on ``model`` when it is given."""

    # tokens ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_token(
        self, principal: str, *, name: str = "", scopes: Sequence[str] = (), expires_at: int | None = None
    ) -> NewToken:
        """A new token for ``principal`` (``NotFound`` when unknown): its record, and the token, shown this once.
        ``expires_at`` (ms since the epoch) must be in the future; ``scopes`` are permissions."""

    @abc.abstractmethod
    def list_tokens(self, principal: str | None = None) -> list[ApiToken]:
        """Token records (never secrets), newest first."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token from now on (``NotFound`` when unknown); revoking twice keeps the first time."""

    @abc.abstractmethod
    def authenticate(self, token: str) -> tuple[Principal, ApiToken]:
        """The principal and token record a presented token names; ``Unauthenticated`` when it is malformed,
        unknown, wrong, expired, revoked, or its principal is disabled (one message for all: nothing to learn from
        it). Notes the token's ``last_used_at`` (at most once a minute)."""

    # trust in what gets deserialized ---------------------------------------------------------------------
    @abc.abstractmethod
    def record_blob_writer(self, sha256: str) -> None:
        """Record the acting principal (``keel.core.actor``) as a writer of those bytes: the server calls it when a
        caller uploads them. Only uploads count: naming bytes (in a model version, a run artifact, a cache entry)
        makes nobody their writer, so nobody becomes the writer of bytes someone else uploaded. Over REST this is
        refused: the server records it, from the upload."""

    @abc.abstractmethod
    def blob_trust(self, sha256: str, principal: str = "") -> BlobTrust:
        """Whether ``principal`` (over REST: always the caller, whatever is sent) may unpickle the blob: it uploaded
        those bytes itself, or one of their uploaders holds a role the project trusts (``trusted_roles``; a
        disabled principal is trusted with nothing)."""

    @abc.abstractmethod
    def trusted_roles(self, project: str = "default") -> tuple[str, ...]:
        """The roles whose members' pickles the project's principals load (``DEFAULT_TRUSTED`` until it names its
        own; the ``*`` entry applies to every project)."""

    @abc.abstractmethod
    def set_trusted_roles(self, project: str, roles: Sequence[str]) -> tuple[str, ...]:
        """Name the roles ``project`` trusts (empty: back to ``DEFAULT_TRUSTED``)."""
