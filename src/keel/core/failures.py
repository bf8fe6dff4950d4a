"""Counting failed attempts (of a token, say) per client, to refuse a client that keeps failing for a while."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["FailureLimiter"]


class FailureLimiter:
    """At most ``limit`` failed authentications per client address in ``window`` seconds; past that the client
    is refused (429) until its oldest failure leaves the window."""

    def __init__(self, limit: int = 20, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, None when it may now."""
        with self._lock:
            failures = self._prune(client, time.monotonic())
            if failures is None or len(failures) < self.limit:
                return None
            return failures[0] + self.window - time.monotonic()

    def failed(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._prune(client, now)
            self._failures.setdefault(client, deque()).append(now)
            if len(self._failures) > 10_000:  # bounded memory: forget the quietest clients
                for stale in [c for c, f in self._failures.items() if not f or f[-1] < now - self.window]:
                    del self._failures[stale]

    def _prune(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        return failures
