"""Who is acting, for the records a change leaves (the audit log, alias and deployment history).

The platform server sets it per request from the authenticated principal (never from a request body); a local
process acts as the configured user (``KEEL_USER``) or, failing that, its operating-system user. A ``ContextVar``:
each request (and each thread the server runs it on) sees its own.

>>> with acting_as("alice"):
...     current_actor()
'alice'
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "current_actor", "local_actor"]

_actor: ContextVar[str | None] = ContextVar("keel_actor", default=None)


def local_actor() -> str:
    """The actor of a process with no principal set: ``KEEL_USER``, else ``local:<os user>``."""
    configured = os.environ.get("KEEL_USER", "").strip()
    if configured:
        return configured[:128]
    return _os_user()


@functools.cache
def _os_user() -> str:
    """``local:<name>`` of this process's user, looked up once (every change records its actor)."""
    try:
        return f"local:{getpass.getuser()}"[:128]
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"local:uid-{os.getuid()}" if hasattr(os, "getuid") else "local"


def current_actor() -> str:
    """The principal acting now (``acting_as``), else ``local_actor()``."""
    return _actor.get() or local_actor()


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Run the block as ``name``."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)
