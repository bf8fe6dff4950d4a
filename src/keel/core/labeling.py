"""Labeling entities: label projects, their guidelines, items, annotations, reviews, and the checks every backend runs.

- ``LabelSchema``: what a label is: one of ``classes``, several of ``classes`` (``multilabel``), a ``number``
  (optionally within ``minimum``/``maximum``) or ``spans`` of the text in the item's ``text_field``, each span
  labelled with one of ``classes``. ``check_value`` normalises an answer (a multilabel answer sorted, a number a
  float, spans sorted) or names what is wrong with it.
- ``LabelProject``: items from a dataset version (``dataset``, ``name@N``), each given to ``overlap`` annotators
  (never twice to one), gold items (known answers) mixed in at ``gold_rate``, and a qualification set a new
  annotator answers first and must score ``qualification_pass`` (accuracy) on before real items.
- ``Guideline``: the project's instructions (Markdown), versioned; every annotation records the version its
  annotator was shown.
- ``LabelItem``: one row to label: ``key`` (its row in the dataset version, as text), ``data`` (the fields shown),
  ``role`` (``task``, ``gold`` or ``qualification``) and, for gold and qualification items, the ``answer``.
- ``Task``: what an annotator is handed: the item without its role or answer (a gold item looks like any other).
- ``Annotation``: one annotator's answer to one item: when it was handed out and submitted (the server's clock,
  so ``time_spent_ms`` is measured, not declared) and the guideline version shown.
- ``Review``: an expert's verdict on an item: ``review`` (from the low-confidence queue) or ``audit`` (a random
  sample of finished items), with the expert's answer and whether it ``confirmed`` or ``corrected`` the consensus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.validation import check_name

__all__ = [
    "ITEM_ROLES", "LABEL_KINDS", "REVIEW_KINDS", "REVIEW_OUTCOMES",
    "Annotation", "Exclusion", "Guideline", "LabelItem", "LabelProject", "LabelSchema", "Review", "Task",
    "check_guideline", "check_item", "check_project", "check_review", "check_schema", "check_value", "label_text",
]  # fmt: skip

LABEL_KINDS: tuple[str, ...] = ("classes", "multilabel", "number", "spans")
ITEM_ROLES: tuple[str, ...] = ("task", "gold", "qualification")
REVIEW_KINDS: tuple[str, ...] = ("review", "audit")
REVIEW_OUTCOMES: tuple[str, ...] = ("confirmed", "corrected")
MAX_CLASSES = 1_000
MAX_ITEMS = 1_000_000
MAX_GUIDELINE = 200_000  # characters of Markdown
MAX_NOTE = 2_000
MAX_SPANS = 1_000
DEFAULT_LEASE_MS = 30 * 60 * 1000  # a task handed out and not answered goes back to the pool after 30 minutes
_CLASS = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_KEY = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


@dataclass(frozen=True, slots=True)
class LabelSchema:
    """What a label is: ``kind`` (classes, multilabel, number, spans), its ``classes``, a number's bounds, the text
    field spans mark."""

    kind: str = "classes"
    classes: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    text_field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON data (``from_dict`` reads it back)."""
        return {"kind": self.kind, "classes": list(self.classes), "minimum": self.minimum, "maximum": self.maximum,
                "text_field": self.text_field}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelSchema:
        """The schema of ``to_dict``'s data, checked."""
        if not isinstance(d, Mapping):
            raise InvalidArgument.for_field("schema", d, "an object with kind, classes, minimum, maximum, text_field")
        classes = d.get("classes") or ()
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise InvalidArgument.for_field("schema.classes", classes, "a list of class names")
        return check_schema(
            cls(d.get("kind", "classes"), tuple(classes), d.get("minimum"), d.get("maximum"), d.get("text_field"))
        )


@dataclass(frozen=True, slots=True)
class LabelProject:
    """A label project: items from ``dataset``, ``overlap`` annotators each, gold at ``gold_rate``, a qualification bar."""

    name: str
    dataset: str
    schema: LabelSchema
    overlap: int = 3
    gold_rate: float = 0.1
    qualification_pass: float = 0.8
    fields: tuple[str, ...] = ()  # the item columns annotators see (all when empty)
    lease_ms: int = DEFAULT_LEASE_MS
    id: int = 0
    created_at: int = 0
    created_by: str = ""
    guideline_version: int = 0  # the latest guideline's version (set by the store)
    items: int = 0  # counts by the store: every item, and
    gold_items: int = 0
    qualification_items: int = 0


@dataclass(frozen=True, slots=True)
class Guideline:
    """One version of a project's guideline (Markdown)."""

    project: str
    version: int
    text: str
    created_at: int = 0
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class LabelItem:
    """One row to label: its key, the fields shown, its role and (gold, qualification) its known answer."""

    key: str
    data: Mapping[str, Any]
    role: str = "task"
    answer: Any = None
    annotations: int = 0  # set by the store when read


@dataclass(frozen=True, slots=True)
class Task:
    """What an annotator is handed: the item's key and fields, never its role or answer."""

    project: str
    item: str
    data: Mapping[str, Any]
    guideline_version: int
    assigned_at: int
    qualification: bool = False  # a qualification item (the annotator is told: it is not a secret like gold)
    remaining_qualification: int = 0


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotator's answer to one item, with when it was handed out and submitted and the guideline version."""

    project: str
    item: str
    annotator: str
    value: Any
    assigned_at: int = 0
    created_at: int = 0
    guideline_version: int = 0
    request_id: str | None = None
    id: int = 0

    @property
    def time_spent_ms(self) -> int:
        """From the task being handed out to the answer arriving, both by the store's clock."""
        return max(0, self.created_at - self.assigned_at)


@dataclass(frozen=True, slots=True)
class Review:
    """An expert's review or audit of an item: the expert's answer and whether it confirmed or corrected the label."""

    project: str
    item: str
    kind: str
    value: Any
    outcome: str
    note: str = ""
    reviewer: str = ""
    created_at: int = 0
    id: int = 0


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An annotator given no more tasks of a project, and why."""

    project: str
    annotator: str
    reason: str
    created_at: int = 0
    created_by: str = ""


# checks ------------------------------------------------------------------------------------------------------------


def check_schema(schema: LabelSchema) -> LabelSchema:
    """``schema`` if it is consistent; ``InvalidArgument`` naming the field otherwise."""
    if schema.kind not in LABEL_KINDS:
        raise InvalidArgument.for_field("schema.kind", schema.kind, f"one of {', '.join(LABEL_KINDS)}")
    classes = schema.classes
    if schema.kind != "number":
        if not classes or len(classes) > MAX_CLASSES:
            raise InvalidArgument.for_field("schema.classes", list(classes), f"1 to {MAX_CLASSES} class names")
        for c in classes:
            if not isinstance(c, str) or not _CLASS.fullmatch(c):
                raise InvalidArgument.for_field("schema.classes", c, "a name of 1-200 printable characters")
        if len(set(classes)) != len(classes):
            raise InvalidArgument.for_field("schema.classes", list(classes), "distinct class names")
        if schema.kind == "classes" and len(classes) < 2:
            raise InvalidArgument.for_field("schema.classes", list(classes), "at least 2 classes to choose from")
    elif classes:
        raise InvalidArgument.for_field("schema.classes", list(classes), "empty for a number label")
    for name in ("minimum", "maximum"):
        bound = getattr(schema, name)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound)):
            raise InvalidArgument.for_field(f"schema.{name}", bound, "a finite number or null")
    if schema.minimum is not None and schema.maximum is not None and schema.minimum > schema.maximum:
        raise InvalidArgument.for_field("schema.maximum", schema.maximum, f"at least minimum ({schema.minimum})")
    if schema.kind == "spans":
        if not isinstance(schema.text_field, str) or not schema.text_field:
            raise InvalidArgument.for_field("schema.text_field", schema.text_field, "the item field holding the text")
    elif schema.text_field is not None:
        raise InvalidArgument.for_field("schema.text_field", schema.text_field, "null unless kind is spans")
    return schema


def check_project(project: LabelProject) -> LabelProject:
    """``project``'s own fields checked (its name, overlap, rates); ``InvalidArgument`` naming the field."""
    check_name(project.name, "project")
    if not isinstance(project.dataset, str) or "@" not in project.dataset:
        raise InvalidArgument.for_field("dataset", project.dataset, "a dataset version as name@N")
    check_schema(project.schema)
    if isinstance(project.overlap, bool) or not isinstance(project.overlap, int) or not 1 <= project.overlap <= 50:
        raise InvalidArgument.for_field("overlap", project.overlap, "an integer from 1 to 50 (annotators per item)")
    for name in ("gold_rate", "qualification_pass"):
        rate = getattr(project, name)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise InvalidArgument.for_field(name, rate, "a fraction from 0 to 1")
    if project.gold_rate >= 1.0:
        raise InvalidArgument.for_field("gold_rate", project.gold_rate, "below 1 (some items must be real tasks)")
    lease = project.lease_ms
    if isinstance(lease, bool) or not isinstance(lease, int) or not 1_000 <= lease <= 7 * 86_400_000:
        raise InvalidArgument.for_field("lease_ms", project.lease_ms, "milliseconds from 1000 to 7 days")
    for f in project.fields:
        if not isinstance(f, str) or not _KEY.fullmatch(f):
            raise InvalidArgument.for_field("fields", f, "a column name")
    return project


def check_item(schema: LabelSchema, item: LabelItem) -> LabelItem:
    """``item`` with its answer normalised; a gold or qualification item needs one, a task must have none."""
    if not isinstance(item.key, str) or not _KEY.fullmatch(item.key):
        raise InvalidArgument.for_field("item.key", item.key, "1-200 printable characters")
    if not isinstance(item.data, Mapping):
        raise InvalidArgument.for_field("item.data", item.data, "an object of field values")
    if item.role not in ITEM_ROLES:
        raise InvalidArgument.for_field("item.role", item.role, f"one of {', '.join(ITEM_ROLES)}")
    if item.role == "task":
        if item.answer is not None:
            expected = "null for a task (only gold and qualification items have answers)"
            raise InvalidArgument.for_field("item.answer", item.answer, expected)
        return item
    if item.answer is None:
        raise InvalidArgument.for_field("item.answer", None, f"the known answer of a {item.role} item")
    answer = check_value(schema, item.answer, item.data, field="item.answer")
    return LabelItem(item.key, item.data, item.role, answer, item.annotations)


def check_value(schema: LabelSchema, value: Any, data: Mapping[str, Any] | None = None, *, field: str = "value") -> Any:
    """``value`` as an answer of ``schema`` (normalised: a multilabel answer sorted by the schema's class order, a
    number as a float, spans sorted); ``InvalidArgument`` naming what is wrong."""
    if schema.kind == "classes":
        if not isinstance(value, str) or value not in schema.classes:
            raise InvalidArgument.for_field(field, value, f"one of {_listed(schema.classes)}")
        return value
    if schema.kind == "multilabel":
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise InvalidArgument.for_field(field, value, f"a list of classes from {_listed(schema.classes)}")
        unknown = [v for v in value if not isinstance(v, str) or v not in schema.classes]
        if unknown:
            raise InvalidArgument.for_field(field, unknown[0], f"one of {_listed(schema.classes)}")
        chosen = set(value)
        return [c for c in schema.classes if c in chosen]
    if schema.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument.for_field(field, value, "a finite number")
        if (schema.minimum is not None and value < schema.minimum) or (schema.maximum is not None and value > schema.maximum):
            raise InvalidArgument.for_field(field, value, f"a number from {schema.minimum} to {schema.maximum}")
        return float(value)
    return _check_spans(schema, value, data, field)


def _check_spans(schema: LabelSchema, value: Any, data: Mapping[str, Any] | None, field: str) -> list[dict[str, Any]]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence) or len(value) > MAX_SPANS:
        raise InvalidArgument.for_field(field, value, f"a list of up to {MAX_SPANS} spans {{start, end, label}}")
    text = (data or {}).get(schema.text_field or "")
    length = len(text) if isinstance(text, str) else None
    spans = []
    for span in value:
        if not isinstance(span, Mapping):
            raise InvalidArgument.for_field(field, span, "a span {start, end, label}")
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if any(isinstance(x, bool) or not isinstance(x, int) for x in (start, end)) or not 0 <= start < end:  # type: ignore[operator]
            raise InvalidArgument.for_field(f"{field}.start/end", [start, end], "integers with 0 <= start < end")
        if length is not None and end > length:  # type: ignore[operator]
            raise InvalidArgument.for_field(f"{field}.end", end, f"at most the text's length ({length})")
        if not isinstance(label, str) or label not in schema.classes:
            raise InvalidArgument.for_field(f"{field}.label", label, f"one of {_listed(schema.classes)}")
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return spans


def check_review(schema: LabelSchema, review: Review, data: Mapping[str, Any] | None = None) -> Review:
    """``review`` with its kind, outcome and note checked and its value normalised."""
    if review.kind not in REVIEW_KINDS:
        raise InvalidArgument.for_field("kind", review.kind, f"one of {', '.join(REVIEW_KINDS)}")
    if review.outcome not in REVIEW_OUTCOMES:
        raise InvalidArgument.for_field("outcome", review.outcome, f"one of {', '.join(REVIEW_OUTCOMES)}")
    if not isinstance(review.note, str) or len(review.note) > MAX_NOTE:
        raise InvalidArgument.for_field("note", review.note, f"text of at most {MAX_NOTE} characters")
    value = check_value(schema, review.value, data)
    return Review(review.project, review.item, review.kind, value, review.outcome, review.note, review.reviewer,
                  review.created_at, review.id)  # fmt: skip


def check_guideline(text: Any) -> str:
    """The guideline's Markdown, checked for type and size."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_GUIDELINE:
        shown = text[:40] if isinstance(text, str) else text
        raise InvalidArgument.for_field("guideline", shown, f"Markdown text of 1 to {MAX_GUIDELINE} characters")
    return text


def label_text(value: Any) -> str:
    """An answer as one line of text (tables, reports): a class, classes joined by ``|``, a number, or spans."""
    if isinstance(value, list):
        if value and isinstance(value[0], Mapping):
            return " ".join(f"[{s['start']}:{s['end']}]{s['label']}" for s in value)
        return "|".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _listed(classes: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in classes[:10])
    return shown + (f" (and {len(classes) - 10} more)" if len(classes) > 10 else "")
