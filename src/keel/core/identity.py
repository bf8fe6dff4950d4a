"""Who acts on keel: principals (users and service accounts), their API tokens and their roles.

A role is granted per project (``"*"``: every project) and, optionally, per model: a binding with ``model`` set
grants its role on that model only, and a model with any such binding is *protected*: moving its aliases then
needs a binding on that model (or ``admin`` of the project), not only ``editor`` of the project. Experiments and
their runs belong to a project; models, datasets, deployments and monitors have none yet: their routes are checked in
the default project.

Roles grant permissions; a token's scopes narrow them (a token never grants more than its principal's roles):

| role | permissions |
|---|---|
| viewer | read |
| editor | read, write, promote, deploy, serve, log, annotate |
| admin | read, write, promote, deploy, serve, log, annotate, admin |
| service | read, deploy, serve, log |
| annotator | annotate |

- ``read``: any GET of the platform API.
- ``write``: create and change runs, datasets, model versions, deployments, monitors.
- ``promote``: move a model's aliases (the gates still apply).
- ``deploy``: change a deployment's routes or roll it back (what a monitor's rollback and retrain actions do, so
  schedulers have it); routing a protected model to answer traffic still needs a binding on it.
- ``serve``: call a serving endpoint that requires a token.
- ``log``: what serving replicas and schedulers write (prediction-log files, labels, monitor windows, alerts,
  leases), and checking a token presented to a serving replica.
- ``annotate``: label data in label projects: read a project and its guidelines, be handed tasks, submit answers and
  read one's own; not the items' known answers (gold, qualification), nor others' answers, nor reviews (``read``).
- ``admin``: principals, tokens, roles, trusted roles; forced alias moves of a protected model.

A token is shown once, as ``keel_<id>_<secret>``: ``id`` (12 hex characters) finds its row, the secret (43
URL-safe characters, 256 bits) is stored only as a scrypt hash (``hash_secret``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from keel.core.errors import InvalidArgument

__all__ = [
    "PERMISSIONS", "PRINCIPAL_KINDS", "ROLES", "ROLE_PERMISSIONS", "ApiToken", "BlobTrust", "NewToken", "Principal",
    "RoleBinding",
    "check_principal_name", "check_role", "check_scopes", "effective_permissions", "hash_secret", "new_secret",
    "parse_token", "permissions_of", "roles_union", "verify_secret",
]  # fmt: skip

ROLES: tuple[str, ...] = ("viewer", "editor", "admin", "service", "annotator")
PRINCIPAL_KINDS: tuple[str, ...] = ("user", "service")
PERMISSIONS: tuple[str, ...] = ("read", "write", "promote", "deploy", "serve", "log", "annotate", "admin")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "editor": frozenset({"read", "write", "promote", "deploy", "serve", "log", "annotate"}),
    "admin": frozenset(PERMISSIONS),
    "service": frozenset({"read", "deploy", "serve", "log"}),
    "annotator": frozenset({"annotate"}),  # labels, and sees no answers but their own (keel.server.policy)
}
ALL_PROJECTS = "*"
DEFAULT_PROJECT = "default"  # models, datasets and deployments have no project of their own yet
DEFAULT_TRUSTED: tuple[str, ...] = ("admin",)  # the roles a project trusts to write pickles, until it names its own
TOKEN_PREFIX = "keel_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_TOKEN = re.compile(r"^keel_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# scrypt: memory-hard like argon2, in the standard library. The secret has 256 bits, so the hash is not what stops a
# guess; it keeps a stolen table from being a list of working tokens. Verified once per token per process (cached).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or a service account (``kind``); ``disabled`` principals cannot authenticate."""

    name: str
    kind: str = "user"
    created_at: int = 0
    created_by: str = ""
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class RoleBinding:
    """``principal`` has ``role`` in ``project`` (``"*"``: every project), on ``model`` only when it is set."""

    principal: str
    role: str
    project: str = ALL_PROJECTS
    model: str | None = None
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record (never its secret): ``scopes`` are permissions (empty: all of its principal's)."""

    id: str
    principal: str
    name: str
    scopes: tuple[str, ...] = ()
    created_at: int = 0
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None

    def active(self, now_ms: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now_ms < self.expires_at)


@dataclass(frozen=True, slots=True)
class BlobTrust:
    """Whether ``principal`` may deserialize the blob ``sha256`` with pickle: ``trusted`` when it wrote those bytes
    itself, or one of its ``writers`` has a role the project trusts; ``reason`` says which, or why not."""

    sha256: str
    principal: str
    writers: tuple[str, ...]
    trusted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class NewToken:
    """What ``create_token`` returns: the record and the token itself, which is never stored nor shown again."""

    token: ApiToken
    secret: str = field(repr=False)  # the whole token: keel_<id>_<secret>, never in a repr or a log line


def permissions_of(role: str) -> frozenset[str]:
    return ROLE_PERMISSIONS[check_role(role)]


def check_principal_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        expected = "1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        raise InvalidArgument.for_field("principal", name, expected)
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument.for_field("role", role, " | ".join(ROLES))
    return role


def check_scopes(scopes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    bad = [s for s in scopes if s not in PERMISSIONS]
    if bad:
        raise InvalidArgument.for_field("scopes", bad[0], "permissions among " + ", ".join(PERMISSIONS))
    return tuple(dict.fromkeys(scopes))


def new_secret() -> tuple[str, str, str]:
    """``(token id, secret, whole token)`` for a new token."""
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token id, secret)`` of a well-formed token, None otherwise (never echoes it)."""
    found = _TOKEN.match(token) if isinstance(token, str) else None
    return (found.group(1), found.group(2)) if found else None


def hash_secret(token_id: str, secret: str) -> str:
    """The stored form of a secret: ``scrypt$<hex>`` salted with the token id."""
    digest = hashlib.scrypt(secret.encode(), salt=f"keel-token-{token_id}".encode(), **_SCRYPT)
    return "scrypt$" + digest.hex()


def verify_secret(token_id: str, secret: str, stored: str) -> bool:
    return hmac.compare_digest(hash_secret(token_id, secret), stored)


def roles_union(roles: Iterable[str]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= permissions_of(role)
    return out


def effective_permissions(
    bindings: Iterable[RoleBinding], scopes: Iterable[str], project: str = DEFAULT_PROJECT
) -> frozenset[str]:
    """The permissions in ``project`` of the project-wide bindings (those of ``*`` and of ``project``; a binding on
    a model grants nothing here), narrowed by ``scopes`` (none: no narrowing). ``project="*"``: what holds in every
    project."""
    granted = roles_union(b.role for b in bindings if not b.model and b.project in (ALL_PROJECTS, project))
    wanted = frozenset(scopes)
    return granted & wanted if wanted else granted
