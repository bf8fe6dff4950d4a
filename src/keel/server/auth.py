"""The one auth dependency every mutating route goes through.

For now everyone is allowed (``anonymous``); roles and tokens plug in here later, so no
route has to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: tuple[str, ...] = ()


ANONYMOUS = Principal("anonymous", ("admin",))


def require_writer(request: Request) -> Principal:
    """Who is writing. A no-op today: returns the anonymous principal."""
    request.state.principal = ANONYMOUS
    return ANONYMOUS
