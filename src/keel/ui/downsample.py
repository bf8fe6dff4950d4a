"""Metric curves cut down to what a chart can show: the lowest and the highest value of each pixel's bucket of steps.

Why min/max per bucket rather than LTTB: a chart ``width`` pixels wide draws at most two distinct heights per pixel
column, the lowest and the highest, so keeping exactly those two points per bucket of steps draws the same picture as
every point would (the M4 idea, less the first/last of each bucket). Every spike and the series' global minimum
and maximum are kept by construction, which LTTB, choosing one point per bucket by triangle area, does not promise
(a loss spike followed by a second spike in the same bucket loses one). It is also one pass without any state
between buckets, so numpy does it in a few vector operations.

Buckets split the range of steps (not the count of points) into equal widths, as pixels split the x axis: a run
that logged densely early and sparsely later is drawn as it happened. NaN and infinities are never a bucket's
minimum or maximum (nothing can be drawn for them); the first and the last point are always kept, whatever their
value, and the answer says how many values were not finite. JSON has no NaN: those values are sent as ``null``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Series", "downsample"]

MIN_POINTS = 4


@dataclass(frozen=True, slots=True)
class Series:
    """A curve ready for a chart: ``steps`` and ``values`` (``None`` for NaN or an infinity); ``count`` values
    were logged; ``downsampled`` when some were left out; ``nonfinite`` of them were NaN or infinite."""

    steps: list[int]
    values: list[float | None]
    count: int
    downsampled: bool
    nonfinite: int

    def as_json(self) -> dict[str, Any]:
        """The answer of ``/ui/data/metrics``."""
        return {"steps": self.steps, "values": self.values, "count": self.count, "downsampled": self.downsampled,
                "nonfinite": self.nonfinite}  # fmt: skip


def downsample(steps: Sequence[int], values: Sequence[float], points: int) -> Series:
    """At most ``points`` of the curve (``steps`` ascending): the first, the last, and the min and max of each of
    ``(points - 2) // 2`` equal-width buckets of steps. numpy when installed (``keel[data]``), else pure Python:
    both choose the same points."""
    points = max(points, MIN_POINTS)
    n = len(steps)
    np: Any = None
    try:
        import numpy

        np = numpy
    except ImportError:
        pass  # the pure-Python fallback: the same points, slower
    if np is not None and n:
        return _numpy(np, steps, values, points)
    return _python(steps, values, points)


def _series(steps: Sequence[int], values: Sequence[float], keep: Sequence[int], nonfinite: int) -> Series:
    out_values = [v if math.isfinite(v) else None for v in (float(values[i]) for i in keep)]
    return Series([int(steps[i]) for i in keep], out_values, len(steps), len(keep) < len(steps), nonfinite)


def _python(steps: Sequence[int], values: Sequence[float], points: int) -> Series:
    n = len(steps)
    finite = [math.isfinite(v) for v in values]
    nonfinite = n - sum(finite)
    if n <= points:
        return _series(steps, values, range(n), nonfinite)
    keep = {0, n - 1}
    first, last = int(steps[0]), int(steps[-1])
    buckets = (points - 2) // 2
    bounds = [bisect.bisect_left(steps, first + (last - first + 1) * b / buckets) for b in range(buckets)] + [n]
    for lo, hi in itertools.pairwise(bounds):
        inside = [i for i in range(lo, hi) if finite[i]]
        if inside:
            keep.add(min(inside, key=values.__getitem__))
            keep.add(max(inside, key=values.__getitem__))
    return _series(steps, values, sorted(keep), nonfinite)


def _numpy(np: Any, steps: Sequence[int], values: Sequence[float], points: int) -> Series:
    s = np.asarray(steps, dtype=np.int64)  # an array("q") or a list: no copy for the former
    v = np.asarray(values, dtype=np.float64)
    n = len(s)
    finite = np.isfinite(v)
    nonfinite = int(n - np.count_nonzero(finite))
    if n <= points:
        return _series(s.tolist(), v.tolist(), range(n), nonfinite)
    buckets = (points - 2) // 2
    first, last = int(s[0]), int(s[-1])
    edges = first + (last - first + 1) * np.arange(buckets) / buckets
    bounds = np.append(np.searchsorted(s, edges, side="left"), n)
    low = np.where(finite, v, np.inf)  # a NaN or infinity is never a bucket's minimum or maximum
    high = np.where(finite, v, -np.inf)
    keep = {0, n - 1}
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi > lo and finite[lo:hi].any():
            keep.add(lo + int(np.argmin(low[lo:hi])))
            keep.add(lo + int(np.argmax(high[lo:hi])))
    chosen = np.array(sorted(keep))
    out_values = [x if math.isfinite(x) else None for x in v[chosen].tolist()]
    return Series(s[chosen].tolist(), out_values, n, True, nonfinite)
