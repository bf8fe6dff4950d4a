"""Experts over the crowd: the review queue of low-confidence items, and audits of a random sample of finished ones.

- ``review_queue``: finished items whose consensus confidence is below a threshold and that no expert has looked
  at, least confident first. ``review`` records the expert's label: ``confirmed`` when it is the consensus label,
  ``corrected`` otherwise; either way it becomes the item's label.
- ``audit_sample``: finished items drawn at random (seeded: the same seed, the same sample) among those not audited
  yet; ``audit`` records the auditor's label the same way. ``audit_summary`` tells how often the labels held up,
  with a 95% Wilson interval: the estimated accuracy of the project's labels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument, NotFound
from keel.core.labeling import Review, check_value

__all__ = ["AuditSummary", "audit", "audit_sample", "audit_summary", "review", "review_queue"]

DEFAULT_THRESHOLD = 0.7


def review_queue(
    project: str, *, threshold: float = DEFAULT_THRESHOLD, method: str | None = None, ctx: Context | None = None
) -> Any:
    """Finished items with consensus confidence below ``threshold`` and no review yet, least confident first: a
    DataFrame of ``item``, ``label``, ``confidence``, ``annotations``."""
    from keel.label.labels import consensus_labels

    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise InvalidArgument.for_field("threshold", threshold, "a fraction from 0 to 1")
    labels = consensus_labels(project, method=method, ctx=ctx)
    queue = labels[(labels["source"] == "consensus") & labels["finished"] & (labels["confidence"] < threshold)]
    return queue.sort_values(["confidence", "item"])[["item", "label", "confidence", "annotations"]].reset_index(drop=True)


def review(project: str, item: str, value: Any, *, note: str = "", ctx: Context | None = None) -> Review:
    """The acting expert's label for ``item`` (from the review queue or anywhere): it becomes the item's label."""
    return _record(project, item, value, "review", note, _ctx(ctx))


def audit(project: str, item: str, value: Any, *, note: str = "", ctx: Context | None = None) -> Review:
    """The acting auditor's label for a sampled item: ``confirmed`` or ``corrected`` against the item's label."""
    return _record(project, item, value, "audit", note, _ctx(ctx))


def _record(project: str, item: str, value: Any, kind: str, note: str, ctx: Context) -> Review:
    from keel.label.labels import consensus_labels

    store = ctx.store.labels
    info = store.get_project(project)
    items = {i.key: i for i in store.get_items(project)}
    if item not in items:
        raise NotFound(f"label project {project!r} has no item {item!r}")
    value = check_value(info.schema, value, items[item].data)
    labels = consensus_labels(project, ctx=ctx)
    current = labels[labels["item"] == item]
    before = current["label"].iloc[0] if len(current) else None
    outcome = "confirmed" if before is not None and before == value else "corrected"
    return store.add_review(Review(project, item, kind, value, outcome, note))


def audit_sample(project: str, n: int = 20, *, seed: int | None = None, ctx: Context | None = None) -> Any:
    """``n`` finished items (labelled by consensus) not audited yet, drawn at random: a DataFrame of ``item``,
    ``label``, ``confidence``, ``annotations`` (the label for reference; auditors should answer without looking)."""
    from keel.label.labels import consensus_labels

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgument.for_field("n", n, "a positive number of items")
    ctx = _ctx(ctx)
    audited = {r.item for r in ctx.store.labels.reviews(project, kind="audit")}
    labels = consensus_labels(project, ctx=ctx)
    pool = labels[labels["finished"] & (labels["source"] == "consensus") & ~labels["item"].isin(audited)]
    keys = sorted(pool["item"])
    chosen = set(random.Random(seed).sample(keys, min(n, len(keys))))
    picked = pool[pool["item"].isin(chosen)]
    return picked[["item", "label", "confidence", "annotations"]].reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """How the audited labels held up: counts, the confirmed share and its 95% Wilson interval."""

    audited: int
    confirmed: int
    corrected: int
    accuracy: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON data (what --json prints)."""
        return {"audited": self.audited, "confirmed": self.confirmed, "corrected": self.corrected,
                "accuracy": self.accuracy, "low": self.low, "high": self.high}  # fmt: skip


def audit_summary(reviews: Sequence[Review]) -> AuditSummary:
    """The outcome of ``reviews``' audits (the latest per item)."""
    latest: dict[str, Review] = {}
    for r in reviews:
        if r.kind == "audit":
            latest[r.item] = r
    n = len(latest)
    confirmed = sum(1 for r in latest.values() if r.outcome == "confirmed")
    if n == 0:
        return AuditSummary(0, 0, 0, None, None, None)
    low, high = wilson(confirmed, n)
    return AuditSummary(n, confirmed, n - confirmed, confirmed / n, low, high)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
