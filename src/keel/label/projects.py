"""Label projects from dataset versions, and the annotator's and the expert's calls.

>>> p = keel.label.create_project("reviews", "reviews@1", classes=["pos", "neg"],     # doctest: +SKIP
...                               guideline="# Sentiment\\n...", gold="known_label", qualification={"3": "pos"})
>>> task = keel.label.next_task("reviews")                                            # doctest: +SKIP
>>> keel.label.submit("reviews", task.item, "pos")                                    # doctest: +SKIP

Items are the rows of a dataset version: ``key`` names the column whose value identifies a row (default: its
position, ``"0"``, ``"1"``, ...). Gold items and the qualification set are rows with known answers, given as a
mapping ``{key: answer}`` or as the name of a column holding the answer (rows where it is set); that column is
never shown to annotators.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument
from keel.core.labeling import (
    Annotation,
    Exclusion,
    Guideline,
    LabelItem,
    LabelProject,
    LabelSchema,
    Review,
    Task,
    check_guideline,
    check_schema,
)

__all__ = [
    "add_guideline", "annotations_of", "create_project", "exclude", "exclusions", "get_project", "guidelines",
    "include", "items_of", "list_projects", "next_task", "plain_value", "reviews_of", "submit",
]  # fmt: skip

Answers = Mapping[str, Any] | str | None


def create_project(
    name: str,
    dataset: str,
    *,
    guideline: str,
    classes: Sequence[str] = (),
    kind: str = "classes",
    schema: LabelSchema | None = None,
    overlap: int = 3,
    key: str | None = None,
    fields: Sequence[str] = (),
    gold: Answers = None,
    gold_rate: float = 0.1,
    qualification: Answers = None,
    qualification_pass: float = 0.8,
    lease_minutes: float = 30.0,
    ctx: Context | None = None,
) -> LabelProject:
    """A label project over the rows of ``dataset`` (``"name@N"``; a bare name: its latest version, pinned).

    ``classes``/``kind`` (or a whole ``schema``: ``LabelSchema(kind="spans", classes=..., text_field="text")``) say
    what a label is; each item goes to ``overlap`` annotators; ``gold`` and ``qualification`` name rows with known
    answers (a ``{key: answer}`` mapping, or a column holding them); ``fields``: the columns shown (default: all
    but the answer columns). One transaction: the project, guideline version 1 and every item, or nothing.
    """
    import keel.data

    ctx = _ctx(ctx)
    label_schema = check_schema(schema if schema is not None else LabelSchema(kind=kind, classes=tuple(classes)))
    check_guideline(guideline)
    version = keel.data.resolve(dataset, ctx)
    frame = keel.data.get(version, ctx=ctx, run=False)
    answer_columns = {a for a in (gold, qualification) if isinstance(a, str)}
    for column in sorted(answer_columns | ({key} if key else set()) | set(fields)):
        if column not in frame.columns:
            raise InvalidArgument.for_field("column", column, f"a column of {version.name}@{version.version} ({_cols(frame)})")
    hidden = sorted(answer_columns & set(fields))
    if hidden:  # the known answers would be on every annotator's screen
        raise InvalidArgument.for_field("fields", hidden[0], "columns other than the gold and qualification answers")
    shown = list(fields) or [c for c in frame.columns if c not in answer_columns and c != key]
    if label_schema.kind == "spans" and label_schema.text_field not in shown:
        raise InvalidArgument.for_field("schema.text_field", label_schema.text_field, f"a shown column ({', '.join(shown)})")
    keys = [str(k) for k in (frame[key] if key else range(len(frame)))]
    gold_answers = _answers(gold, frame, keys, "gold")
    qual_answers = _answers(qualification, frame, keys, "qualification")
    both = sorted(set(gold_answers) & set(qual_answers))
    if both:
        raise InvalidArgument.for_field("qualification", both[:5], "rows that are not also gold items")
    items = []
    records = frame[shown].to_dict("records")
    for k, row in zip(keys, records, strict=True):
        data = {c: plain_value(v) for c, v in row.items()}
        if k in qual_answers:
            items.append(LabelItem(k, data, "qualification", qual_answers[k]))
        elif k in gold_answers:
            items.append(LabelItem(k, data, "gold", gold_answers[k]))
        else:
            items.append(LabelItem(k, data))
    project = LabelProject(
        name, f"{version.name}@{version.version}", label_schema, overlap=overlap, gold_rate=gold_rate,
        qualification_pass=qualification_pass, fields=tuple(shown), lease_ms=int(lease_minutes * 60_000),
    )  # fmt: skip
    return ctx.store.labels.create_project(project, guideline, items)


def _answers(given: Answers, frame: Any, keys: list[str], field: str) -> dict[str, Any]:
    """``{key: answer}`` from a mapping (keys checked) or a column (rows where it is set)."""
    if given is None:
        return {}
    if isinstance(given, str):
        column = frame[given]
        return {k: plain_value(v) for k, v in zip(keys, column, strict=True) if not _missing(v)}
    if not isinstance(given, Mapping):
        raise InvalidArgument.for_field(field, given, "a {key: answer} mapping or the name of a column")
    known = set(keys)
    unknown = [k for k in given if str(k) not in known]
    if unknown:
        raise InvalidArgument.for_field(field, unknown[0], "the key of a row of the dataset version")
    return {str(k): plain_value(v) for k, v in given.items()}


def plain_value(value: Any) -> Any:
    """A cell as plain JSON: numpy scalars as Python numbers, NaN/NaT as None, times as ISO text, arrays as lists."""
    if _missing(value):
        return None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not hasattr(value, "__len__") else False
    except (TypeError, ValueError):
        return False


def _cols(frame: Any) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")


# the annotator -------------------------------------------------------------------------------------------------------


def next_task(project: str, ctx: Context | None = None) -> Task | None:
    """The acting annotator's next task (a qualification item first, while any is left), or None."""
    return _ctx(ctx).store.labels.next_task(project)


def submit(project: str, item: str, value: Any, *, request_id: str | None = None, ctx: Context | None = None) -> Annotation:
    """The acting annotator's answer to ``item``; a ``request_id`` makes a retried call write once."""
    annotation, _ = _ctx(ctx).store.labels.submit(project, item, value, request_id)
    return annotation


def annotations_of(
    project: str, *, annotator: str | None = None, since_ms: int | None = None, ctx: Context | None = None
) -> list[Annotation]:
    """The project's annotations, oldest first (only ``annotator``'s, only since ``since_ms``)."""
    return _ctx(ctx).store.labels.annotations(project, annotator=annotator, since_ms=since_ms)


# the project's owner -------------------------------------------------------------------------------------------------


def get_project(name: str, ctx: Context | None = None) -> LabelProject:
    """The project ``name`` (``NotFound`` if none)."""
    return _ctx(ctx).store.labels.get_project(name)


def list_projects(ctx: Context | None = None) -> list[LabelProject]:
    """Every label project, by name."""
    return _ctx(ctx).store.labels.list_projects()


def add_guideline(project: str, text: str, ctx: Context | None = None) -> Guideline:
    """A new guideline version; tasks handed out from now on record it."""
    return _ctx(ctx).store.labels.add_guideline(project, text)


def guidelines(project: str, ctx: Context | None = None) -> list[Guideline]:
    """Every guideline version, oldest first."""
    return _ctx(ctx).store.labels.guidelines(project)


def items_of(project: str, *, role: str | None = None, ctx: Context | None = None) -> list[LabelItem]:
    """The project's items (with gold answers: for the project's owners)."""
    return _ctx(ctx).store.labels.get_items(project, role=role)


def exclude(project: str, annotator: str, reason: str, ctx: Context | None = None) -> Exclusion:
    """Hand ``annotator`` no more tasks of the project; consensus leaves their answers out by default."""
    return _ctx(ctx).store.labels.exclude_annotator(project, annotator, reason)


def reviews_of(project: str, *, kind: str | None = None, ctx: Context | None = None) -> list[Review]:
    """The project's expert reviews and audits (only ``kind``'s: ``review`` or ``audit``), oldest first."""
    return _ctx(ctx).store.labels.reviews(project, kind=kind)


def exclusions(project: str, ctx: Context | None = None) -> list[Exclusion]:
    """The annotators excluded from the project, with why."""
    return _ctx(ctx).store.labels.exclusions(project)


def include(project: str, annotator: str, ctx: Context | None = None) -> None:
    """Lift ``annotator``'s exclusion."""
    _ctx(ctx).store.labels.include_annotator(project, annotator)
