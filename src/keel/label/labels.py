"""A project's labels: the consensus of its annotators, overridden by what experts decided, and exported as a
dataset version with lineage.

Each item's label comes from, in order of precedence: the latest expert review or audit of it (``review``/
``audit``, confidence 1), its known answer (``gold``/``qualification`` items, confidence 1), or the annotators'
consensus (``consensus``: Dawid-Skene by default, with its posterior as the confidence). Annotators excluded from
the project are left out of the consensus unless ``exclude`` says otherwise.

>>> keel.label.consensus_labels("reviews")                        # doctest: +SKIP
>>> v = keel.label.export("reviews")                              # reviews.labels@1  # doctest: +SKIP
>>> keel.data.get(v).head()                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.datasets import DatasetVersion
from keel.core.errors import InvalidArgument, NotFound
from keel.core.labeling import LabelProject, Review

__all__ = ["LABEL_SOURCES", "consensus_labels", "export"]

LABEL_SOURCES: tuple[str, ...] = ("review", "audit", "gold", "qualification", "consensus")
METHODS: tuple[str, ...] = ("dawid_skene", "glad", "majority", "median")


def consensus_labels(
    project: str,
    *,
    method: str | None = None,
    exclude: Sequence[str] | None = None,
    ctx: Context | None = None,
) -> Any:
    """Every answered or known item's label as a DataFrame: ``item``, ``label``, ``confidence``, ``annotations``
    (answers counted), ``finished`` (answered by ``overlap`` annotators, or known), ``source`` (one of
    ``LABEL_SOURCES``). ``method``: ``dawid_skene`` (default; ``median`` for number labels), ``glad``,
    ``majority``; ``exclude``: annotators left out (default: those excluded from the project)."""
    import pandas as pd

    ctx = _ctx(ctx)
    store = ctx.store.labels
    info = store.get_project(project)
    method = _method(info, method)
    excluded = [e.annotator for e in store.exclusions(project)] if exclude is None else list(exclude)
    items = {i.key: i for i in store.get_items(project)}
    computed = _consensus(info, store.annotations(project), method, excluded)
    rows: dict[str, dict[str, Any]] = {}
    for r in computed.itertuples(index=False):
        item = items.get(str(r.item))
        if item is None:
            continue
        rows[item.key] = {"item": item.key, "label": r.label, "confidence": float(r.confidence),
                          "annotations": int(r.annotations), "finished": int(r.annotations) >= info.overlap,
                          "source": "consensus"}  # fmt: skip
    for item in items.values():
        if item.role != "task":
            row = rows.get(item.key) or {"item": item.key, "annotations": 0}
            rows[item.key] = {**row, "label": item.answer, "confidence": 1.0, "finished": True, "source": item.role}
    for review in _latest_reviews(store.reviews(project)).values():
        row = rows.get(review.item) or {"item": review.item, "annotations": 0}
        rows[review.item] = {**row, "label": review.value, "confidence": 1.0, "finished": True, "source": review.kind}
    order = [k for k in items if k in rows]
    frame = pd.DataFrame([rows[k] for k in order], columns=["item", "label", "confidence", "annotations", "finished", "source"])
    return frame


def export(
    project: str,
    name: str | None = None,
    *,
    method: str | None = None,
    exclude: Sequence[str] | None = None,
    min_confidence: float | None = None,
    include_unfinished: bool = False,
    ctx: Context | None = None,
) -> DatasetVersion:
    """The project's labels as a new version of dataset ``name`` (default ``<project>.labels``): the item key
    (``item``), the fields annotators saw, ``label``, ``label_confidence``, ``label_source``, ``label_annotations``.

    Only finished items (``include_unfinished`` for all answered ones), and only those at or above
    ``min_confidence`` when given. The version's parent is the project's dataset version and its transform records
    the project, method, guideline versions, annotation count and last annotation id; the project lists it among its
    consensus versions (``keel label status``). Identical labels give the existing version back.
    """
    import pandas as pd

    import keel.data

    ctx = _ctx(ctx)
    store = ctx.store.labels
    info = store.get_project(project)
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InvalidArgument.for_field("min_confidence", min_confidence, "a fraction from 0 to 1")
    method = _method(info, method)
    labels = consensus_labels(project, method=method, exclude=exclude, ctx=ctx)
    if not include_unfinished:
        labels = labels[labels["finished"]]
    if min_confidence is not None:
        labels = labels[labels["confidence"] >= min_confidence]
    if labels.empty:
        raise NotFound(f"label project {project!r} has no finished item to export yet (see `keel label status {project}`)")
    items = {i.key: i for i in store.get_items(project)}
    annotations = store.annotations(project)
    rows = []
    for r in labels.itertuples(index=False):
        data = dict(items[r.item].data)
        rows.append({"item": r.item, **{f: data.get(f) for f in info.fields}, "label": r.label,
                     "label_confidence": r.confidence, "label_source": r.source, "label_annotations": r.annotations})  # fmt: skip
    frame = pd.DataFrame(rows)
    details = {
        "name": "label-consensus", "project": info.name, "method": method,
        "guideline_versions": sorted({a.guideline_version for a in annotations}),
        "annotations": len(annotations), "last_annotation_id": max((a.id for a in annotations), default=0),
        "excluded": sorted(exclude if exclude is not None else [e.annotator for e in store.exclusions(project)]),
        "min_confidence": min_confidence, "items": len(frame),
    }  # fmt: skip
    version = keel.data.log(frame, name or f"{info.name}.labels", source=f"label:{info.name}", parents=[info.dataset],
                            transform=details, ctx=ctx)  # fmt: skip
    store.record_consensus(info.name, version.id, details)
    return version


def _method(info: LabelProject, method: str | None) -> str:
    if method is None:
        return "median" if info.schema.kind == "number" else "dawid_skene"
    if method not in METHODS:
        raise InvalidArgument.for_field("method", method, f"one of {', '.join(METHODS)}")
    if (method == "median") != (info.schema.kind == "number"):
        expected = "median for number labels" if info.schema.kind == "number" else "dawid_skene, glad or majority"
        raise InvalidArgument.for_field("method", method, expected)
    return method


def _consensus(info: LabelProject, annotations: Sequence[Any], method: str, excluded: Sequence[str]) -> Any:
    import pandas as pd

    from keel.label.consensus import consensus
    from keel.label.frames import annotations_frame

    kept = [a for a in annotations if a.annotator not in set(excluded)]
    if not kept:
        return pd.DataFrame(columns=["item", "label", "confidence", "annotations", "method"])
    return consensus(annotations_frame(kept), info.schema, method=method)


def _latest_reviews(reviews: Sequence[Review]) -> dict[str, Review]:
    latest: dict[str, Review] = {}
    for r in reviews:  # oldest first: a later review of an item replaces the earlier
        latest[r.item] = r
    return latest
