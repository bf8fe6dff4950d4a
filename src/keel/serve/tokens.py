"""Tokens at a serving replica (``keel serve --require-token``): a prediction needs a token whose principal has the
``serve`` permission (``keel.core.identity``: editors, admins, service accounts), narrowed by the token's scopes.

The replica asks the store (``store.identity.authenticate``: its own database, or a ``keel server`` over REST,
where the replica's service account needs ``log``) once per token every ``ttl`` seconds, and keeps the verdict,
accepted or refused, for that long: a hot path makes no store call per request, and a revoked token stops
working within ``ttl``. A client that keeps presenting bad tokens is refused (429) before its tokens are checked.
The cache is keyed by the token's SHA-256, never the token.
"""

from __future__ import annotations

import hashlib
import threading
import time

import anyio.to_thread

from keel.context import Context
from keel.context import resolve as resolve_ctx
from keel.core.errors import KeelError, PermissionDenied, TooManyFailures, Unauthenticated
from keel.core.failures import FailureLimiter
from keel.core.identity import effective_permissions

__all__ = ["ServingTokens"]

BAD_TOKEN = "invalid or expired token"


class ServingTokens:
    """``await check(authorization, client)`` -> the caller's name, or raises ``Unauthenticated`` (401),
    ``PermissionDenied`` (403) or ``TooManyFailures`` (429)."""

    def __init__(self, ctx: Context | None = None, *, ttl: float = 5.0, limiter: FailureLimiter | None = None) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self.limiter = limiter or FailureLimiter()
        self._verdicts: dict[str, tuple[float, str | KeelError]] = {}
        self._lock = threading.Lock()

    async def check(self, authorization: str | None, client: str) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("this endpoint requires a token: send Authorization: Bearer <token>")
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        verdict = self._cached(key)
        if verdict is None:
            wait = self.limiter.retry_after(client)
            if wait is not None:
                raise TooManyFailures(retry_after=wait)
            verdict = await anyio.to_thread.run_sync(self._verdict, token.strip())
            with self._lock:
                if len(self._verdicts) > 10_000:
                    self._verdicts.clear()
                self._verdicts[key] = (time.monotonic() + self.ttl, verdict)
            if isinstance(verdict, Unauthenticated):
                self.limiter.failed(client)
        if isinstance(verdict, KeelError):
            raise verdict
        return verdict

    def _cached(self, key: str) -> str | KeelError | None:
        with self._lock:
            found = self._verdicts.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def _verdict(self, token: str) -> str | KeelError:
        identity = resolve_ctx(self.ctx).store.identity
        try:
            principal, record = identity.authenticate(token)
        except Unauthenticated:
            return Unauthenticated(BAD_TOKEN)
        if "serve" not in effective_permissions(identity.bindings(principal.name), record.scopes):
            return PermissionDenied(f"{principal.name} may not call this model (a token with the 'serve' permission)")
        return principal.name
