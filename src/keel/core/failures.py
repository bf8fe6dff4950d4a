"""Counting failed attempts (of a token, say) per client, to refuse a client that keeps failing for a while."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["MAX_CLIENTS", "FailureLimiter"]

MAX_CLIENTS = 10_000


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
            failures = self._failures.pop(client, None) or deque()
            failures.append(now)
            self._failures[client] = failures  # last in order: the dict runs from the least to the most recent
            while len(self._failures) > MAX_CLIENTS:  # bounded memory: forget the client that failed longest ago
                del self._failures[next(iter(self._failures))]

    def _prune(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        return failures
