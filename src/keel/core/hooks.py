"""In-process events, so capabilities can react to each other without importing each other.

The registry emits ``model.version_created`` and ``model.alias_moved``; deployment, audit
or webhooks subscribe to them later, and the registry never imports them.

>>> unsubscribe = subscribe("model.alias_moved", lambda payload: print(payload["alias"]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("keel.hooks")
_subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = defaultdict(list)


def subscribe(event: str, fn: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Call ``fn(payload)`` on every ``event``; returns a function that unsubscribes."""
    _subscribers[event].append(fn)
    return lambda: _subscribers[event].remove(fn) if fn in _subscribers[event] else None


def emit(event: str, payload: dict[str, Any]) -> None:
    """Deliver ``payload`` to the subscribers of ``event``. A failing subscriber is logged, never raised:
    the action that emitted the event has already happened."""
    for fn in list(_subscribers.get(event, ())):
        try:
            fn(payload)
        except Exception:
            log.exception("subscriber of %s failed", event)
