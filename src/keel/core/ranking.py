"""Which value is best: the one rule for studies, sweeps, run comparisons and reports.

A value that is missing (``None``), undefined (NaN) or overflowed (an infinity) is never the best;
among the rest, the highest wins when maximizing and the lowest when minimizing. A metric's
direction, when nobody states it, is read from its name (``direction_for``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DIRECTIONS = ("maximize", "minimize")
_LOWER_IS_BETTER = ("loss", "error", "err", "std", "mae", "mse", "rmse", "latency", "time", "duration")


def direction_for(key: str) -> str:
    """``"minimize"`` for metrics whose smaller value is better (losses, errors, spreads, times), else ``"maximize"``."""
    words = key.lower().replace("-", "_").replace("/", "_").replace(".", "_").split("_")
    return "minimize" if any(w in _LOWER_IS_BETTER for w in words) else "maximize"


def is_better(value: float | None, best: float | None, direction: str) -> bool:
    """Whether ``value`` beats ``best`` (``None``: nothing yet) in ``direction``; a tie is not better."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value > best if direction == "maximize" else value < best)


def best_index(values: Iterable[float | None], direction: str) -> int | None:
    """The position of the best value (the first, on ties), or ``None`` when no value can be best."""
    found: int | None = None
    best: float | None = None
    for i, value in enumerate(values):
        if is_better(value, best, direction):
            found, best = i, value
    return found


def best_value(values: Iterable[float | None], direction: str) -> float | None:
    """The best of ``values``, or ``None`` when none can be."""
    items = list(values)
    i = best_index(items, direction)
    return items[i] if i is not None else None
