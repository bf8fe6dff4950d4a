"""Where a label project stands: progress, agreement, annotator scores, drift, confusion, the review queue and audits.

``project_status`` reads the project from the store and computes with ``keel.label.agreement``, ``quality`` and the
project's labels (``keel.label.labels.consensus_labels``: consensus, gold, reviews and audits). The result is plain
data (``LabelStatus``), what ``keel label status`` prints, ``--json`` writes and ``keel.label.report`` renders.

>>> s = keel.label.project_status("reviews")                            # doctest: +SKIP
>>> s.done, s.items, s.agreement["alpha"], len(s.review_queue)         # doctest: +SKIP

Progress counts task items (not gold or qualification ones): **done** when ``overlap`` annotators answered, **in
progress** when some did, **untouched** when none did. Annotator quality is scored on gold items only: the
qualification set is answered first, while annotators learn, so it would make every later period look like a fall.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument
from keel.core.labeling import Annotation, LabelItem, LabelProject

__all__ = ["DEFAULT_PERIOD_MS", "DEFAULT_THRESHOLD", "LabelStatus", "compute_status", "project_status"]

DEFAULT_THRESHOLD = 0.7  # consensus confidence below which a finished item waits for an expert
DEFAULT_PERIOD_MS = 86_400_000  # agreement and annotator drift per day
MAX_QUEUE = 500  # review-queue rows kept in the status (the count is always whole)


@dataclass(frozen=True, slots=True)
class LabelStatus:
    """A label project's state as plain data (``to_dict`` is its JSON)."""

    project: str
    dataset: str
    kind: str
    classes: tuple[str, ...]
    overlap: int
    guideline_version: int
    computed_at: int
    # progress (task items)
    items: int = 0
    done: int = 0
    in_progress: int = 0
    untouched: int = 0
    gold_items: int = 0
    qualification_items: int = 0
    annotations: int = 0
    gold_answers: int = 0  # annotations of gold items
    # agreement (``keel.label.agreement.summary``): alpha, fleiss_kappa, pairs, per_class, over_time, level, ...
    agreement: Mapping[str, Any] = field(default_factory=dict)
    # one row per annotator: annotator, answered, gold_answered, gold_accuracy, agreement, median_time_ms, flagged,
    # reason, excluded
    annotators: list[dict[str, Any]] = field(default_factory=list)
    # per annotator and period: annotator, start_ms, answered, gold_answered, gold_accuracy, agreement, flagged, reason
    drifting: list[dict[str, Any]] = field(default_factory=list)
    # {"labels", "columns", "counts"}: how often one annotator's label (row) met another's (column) on an item
    confusion: Mapping[str, Any] = field(default_factory=dict)
    # labels: finished items by source, mean confidence
    labels: Mapping[str, Any] = field(default_factory=dict)
    review_threshold: float = DEFAULT_THRESHOLD
    review_queue: list[dict[str, Any]] = field(default_factory=list)  # item, label, confidence, annotations
    review_queue_size: int = 0
    reviews: int = 0
    audits: Mapping[str, Any] = field(default_factory=dict)  # audited, confirmed, corrected, accuracy, low, high
    exclusions: list[dict[str, Any]] = field(default_factory=list)  # annotator, reason
    consensus_versions: list[dict[str, Any]] = field(default_factory=list)  # dataset_version_id, details
    period_ms: int = DEFAULT_PERIOD_MS

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON data (what --json prints)."""
        out = asdict(self)
        out["classes"] = list(self.classes)
        return out

    @property
    def flagged(self) -> list[str]:
        """The annotators flagged by their scores or by drift."""
        names = {r["annotator"] for r in self.annotators if r.get("flagged")}
        names |= {r["annotator"] for r in self.drifting if r.get("flagged")}
        return sorted(names)


def project_status(
    name: str,
    ctx: Context | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    period_ms: int = DEFAULT_PERIOD_MS,
    method: str | None = None,
) -> LabelStatus:
    """The status of label project ``name`` (``NotFound`` if there is none). ``threshold``: consensus confidence
    below which a finished item joins the review queue; ``period_ms``: the window of agreement over time and of
    annotator drift; ``method``: the consensus method (default: the project's, see ``consensus_labels``)."""
    from keel.label.labels import consensus_labels
    from keel.label.review import audit_summary

    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise InvalidArgument.for_field("threshold", threshold, "a fraction from 0 to 1")
    if isinstance(period_ms, bool) or not isinstance(period_ms, int) or period_ms < 60_000:
        raise InvalidArgument.for_field("period_ms", period_ms, "milliseconds, at least a minute")
    ctx = _ctx(ctx)
    store = ctx.store.labels
    project = store.get_project(name)
    items = store.get_items(name)
    annotations = store.annotations(name)
    labels = consensus_labels(name, method=method, ctx=ctx) if annotations or any(i.role != "task" for i in items) else None
    reviews = store.reviews(name)
    return compute_status(
        project, items, annotations, labels=labels, threshold=threshold, period_ms=period_ms,
        reviews=sum(1 for r in reviews if r.kind == "review"), audits=audit_summary(reviews).to_dict(),
        exclusions=[{"annotator": e.annotator, "reason": e.reason} for e in store.exclusions(name)],
        consensus_versions=[{"dataset_version_id": v, "details": d} for v, d in store.consensus_versions(name)],
    )  # fmt: skip


def compute_status(
    project: LabelProject,
    items: Sequence[LabelItem],
    annotations: Sequence[Annotation],
    *,
    labels: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    period_ms: int = DEFAULT_PERIOD_MS,
    reviews: int = 0,
    audits: Mapping[str, Any] | None = None,
    exclusions: Sequence[Mapping[str, Any]] = (),
    consensus_versions: Sequence[Mapping[str, Any]] = (),
) -> LabelStatus:
    """The status from what the store holds (``labels``: ``consensus_labels``' frame, or None before any answer)."""
    schema = project.schema
    excluded = {str(e["annotator"]) for e in exclusions}
    # progress and agreement count the annotators kept (an excluded one's items went back to the pool); scores and
    # drift show everyone, the excluded too, so the report says why they were left out
    kept = [a for a in annotations if a.annotator not in excluded]
    answered = Counter(a.item for a in kept)
    tasks = [i for i in items if i.role == "task"]
    done = sum(1 for i in tasks if answered[i.key] >= project.overlap)
    started = sum(1 for i in tasks if 0 < answered[i.key] < project.overlap)
    gold = {i.key: i.answer for i in items if i.role == "gold"}
    agreement: Mapping[str, Any] = {}
    scores: list[dict[str, Any]] = []
    drifting: list[dict[str, Any]] = []
    confusion: Mapping[str, Any] = {}
    if annotations:
        from keel.label import agreement as agreement_
        from keel.label import quality
        from keel.label.frames import annotations_frame

        frame = annotations_frame(annotations)
        kept_frame = annotations_frame(kept) if len(kept) < len(annotations) else frame
        if len(kept):
            agreement = dict(agreement_.summary(kept_frame, schema, period_ms=period_ms))
            if len(kept) < len(annotations):  # what the excluded annotators did to it, for the record
                agreement["excluded"] = sorted({a.annotator for a in annotations} & excluded)
                agreement["alpha_with_excluded"] = agreement_.summary(frame, schema, period_ms=period_ms).get("alpha")
            if schema.kind != "number":
                confusion = _matrix(quality.confusion(kept_frame, schema=schema))
        scores = _records(quality.annotator_scores(frame, gold, schema))
        drifting = _records(quality.drifting(frame, gold, schema, period_ms))
    per_annotator = Counter(a.annotator for a in annotations)
    known = {r["annotator"] for r in scores}
    scores += [{"annotator": a, "answered": n} for a, n in sorted(per_annotator.items()) if a not in known]
    for row in scores:
        row["excluded"] = row["annotator"] in excluded
    queue, label_summary = _queue(labels, threshold)
    return LabelStatus(
        project=project.name, dataset=project.dataset, kind=schema.kind, classes=tuple(schema.classes),
        overlap=project.overlap, guideline_version=project.guideline_version, computed_at=now_ms(),
        items=len(tasks), done=done, in_progress=started, untouched=len(tasks) - done - started,
        gold_items=len(gold), qualification_items=sum(1 for i in items if i.role == "qualification"),
        annotations=len(annotations), gold_answers=sum(n for k, n in answered.items() if k in gold),
        agreement=agreement, annotators=scores, drifting=drifting, confusion=confusion, labels=label_summary,
        review_threshold=float(threshold), review_queue=queue[:MAX_QUEUE], review_queue_size=len(queue),
        reviews=reviews, audits=dict(audits or {}), exclusions=[dict(e) for e in exclusions],
        consensus_versions=[dict(v) for v in consensus_versions], period_ms=period_ms,
    )  # fmt: skip


def _queue(labels: Any, threshold: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The review queue (as ``keel.label.review.review_queue`` selects it, from the frame at hand) and a summary."""
    if labels is None or len(labels) == 0:
        return [], {"labelled": 0, "finished": 0, "by_source": {}, "mean_confidence": None}
    low = labels[(labels["source"] == "consensus") & labels["finished"] & (labels["confidence"] < threshold)]
    low = low.sort_values(["confidence", "item"])[["item", "label", "confidence", "annotations"]]
    finished = labels[labels["finished"]]
    consensus = finished[finished["source"] == "consensus"]
    summary = {
        "labelled": len(labels),
        "finished": len(finished),
        "by_source": {str(k): int(v) for k, v in finished["source"].value_counts().sort_index().items()},
        "mean_confidence": float(consensus["confidence"].mean()) if len(consensus) else None,
    }
    return _records(low), summary


def _records(df: Any) -> list[dict[str, Any]]:
    """A frame's rows as plain Python values (numpy scalars unwrapped, NaN as None)."""
    import math

    rows = []
    for rec in df.to_dict("records"):
        row = {}
        for k, v in rec.items():
            if hasattr(v, "item") and not isinstance(v, list | dict | str):
                v = v.item()
            row[str(k)] = None if isinstance(v, float) and math.isnan(v) else v
        rows.append(row)
    return rows


def _matrix(df: Any) -> dict[str, Any]:
    """``quality.confusion``'s frame as ``{"labels", "columns", "counts"}``: rows the label one annotator gave, columns
    the label another gave to the same unit."""
    return {"labels": [str(x) for x in df.index], "columns": [str(x) for x in df.columns],
            "counts": [[int(v) for v in row] for row in df.to_numpy().tolist()]}  # fmt: skip
