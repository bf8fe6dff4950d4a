"""Spare capacity: whether a shadow may take a request without taking time from the requests that wait for answers.

The server is *busy* while at least one primary or canary request waits for its model. A request is mirrored to
the shadows when nothing waits right now, or when the server was busy less than ``busy_limit`` of the last
window: traffic that comes in bursts with idle time between them is mirrored whole, a saturated server mirrors only
the requests that find it idle (a sample, counted by the app as skipped). The shadows' model calls are timed too
(``spent``): in a window after one where they took more than the idle share of the time (at least
``min_shadow_share``), nothing is mirrored, so that at saturation a slow shadow gets a small, bounded share of the
CPU rather than one call per idle moment.
"""

from __future__ import annotations

import time

__all__ = ["SpareCapacity"]


class SpareCapacity:
    """``enter``/``leave`` around a request's wait for its model; ``spare()`` when a shadow may have the request."""

    def __init__(self, busy_limit: float = 0.5, window: float = 0.25, min_shadow_share: float = 0.02) -> None:
        self.busy_limit = busy_limit
        self.window = window
        self.min_shadow_share = min_shadow_share
        self.in_flight = 0
        self.utilization = 0.0  # the busy share of the last whole window
        self.shadow_share = 0.0  # the share of the last whole window the shadows' model calls took
        self._spent = 0.0
        self._busy = 0.0  # busy seconds in the current window, up to _busy_since
        self._busy_since = 0.0
        self._window_start = time.perf_counter()

    def enter(self) -> None:
        if not self.in_flight:
            self._busy_since = time.perf_counter()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._busy += time.perf_counter() - self._busy_since

    def spent(self, seconds: float) -> None:
        """A shadow's model call took ``seconds``."""
        self._spent += seconds

    def spare(self) -> bool:
        now = time.perf_counter()
        elapsed = now - self._window_start
        if elapsed >= self.window:
            busy = self._busy + (now - self._busy_since if self.in_flight else 0.0)
            self.utilization, self.shadow_share = min(1.0, busy / elapsed), self._spent / elapsed
            self._busy, self._spent, self._busy_since, self._window_start = 0.0, 0.0, now, now
        if self.shadow_share > max(self.min_shadow_share, 1.0 - self.utilization):
            return False
        return not self.in_flight or self.utilization < self.busy_limit
