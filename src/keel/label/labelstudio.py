"""Label Studio's JSON task format, in and out: a team on Label Studio brings its annotations to keel for agreement,
consensus and audits, and takes keel's items (and consensus, as predictions) back.

The format is Label Studio's "JSON" export (``label_studio/data_export/serializers.py``: a task with ``id``, ``data``,
``annotations`` and ``predictions``; each annotation's ``completed_by`` is the user object ``{id, email, first_name,
last_name}``, or a bare user id in older exports and in task files written by hand), ``created_at`` in ISO 8601,
``lead_time`` in seconds, ``was_cancelled`` (skipped), ``ground_truth``, and ``result``: a list of regions
``{from_name, to_name, type, value}``. The value of each control tag:

==========  ==================================  ===================================================
keel kind   Label Studio type                   value
==========  ==================================  ===================================================
classes     ``choices`` (single)                ``{"choices": ["pos"]}``
multilabel  ``choices`` (``choice="multiple"``) ``{"choices": ["a", "b"]}``
number      ``number`` (or ``rating``)          ``{"number": 3}`` (``{"rating": 4}``)
spans       ``labels`` (one region per span)    ``{"start": 0, "end": 5, "text": "Alice", "labels": ["PER"]}``
==========  ==================================  ===================================================

Decisions, so that what keel computes means what it says:

- An item's key is ``data[key_field]`` (as text) when ``key_field`` is given, else the task's ``id``.
- ``was_cancelled`` annotations are counted, not imported (the annotator skipped the task); an annotation without a
  result for the control tag is counted as ``skipped`` (a span task's empty result is an answer: "no spans").
- A ``ground_truth`` annotation makes its task a **gold** item whose answer is that annotation's value; it is not
  also imported as an annotator's answer (scored against itself, its author's gold accuracy would be 1 for free).
  Two ground truths that disagree on one task are an error.
- Span offsets: Label Studio counts in UTF-16 code units (the browser's string indices), Python in code points; they
  differ after an emoji or any character beyond U+FFFF. Offsets are converted both ways against the item's text, and
  a region's ``text``, when given, must be the text at its offsets (else the export and the data disagree).
- Predictions are not imported (a model is not an annotator). ``to_labelstudio`` writes keel's consensus as one
  prediction per task, ``score`` = the consensus confidence, so a reviewer in Label Studio sees it pre-filled.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.labeling import Annotation, LabelItem, LabelSchema, check_item, check_schema, check_value

__all__ = ["ImportedAnnotation", "LabelStudioImport", "from_labelstudio", "to_labelstudio"]

_TYPES: dict[str, tuple[str, ...]] = {
    "classes": ("choices",),
    "multilabel": ("choices",),
    "number": ("number", "rating"),
    "spans": ("labels",),
}


@dataclass(frozen=True, slots=True)
class ImportedAnnotation:
    """One Label Studio annotation as keel reads it: ``value`` checked against the schema (``check_value``)."""

    item: str
    annotator: str
    value: Any
    created_at: int = 0  # ms since the epoch
    lead_time_ms: int = 0
    source_id: str = ""  # the annotation's id in Label Studio

    def to_annotation(self, project: str) -> Annotation:
        """As a keel ``Annotation`` of ``project`` (handed out ``lead_time`` before it was submitted), the shape
        ``keel.label.frames.annotations_frame`` and the agreement functions take."""
        return Annotation(project, self.item, self.annotator, self.value, assigned_at=self.created_at - self.lead_time_ms,
                          created_at=self.created_at)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LabelStudioImport:
    """What ``from_labelstudio`` read: items (gold ones with their answer), annotations, and what was left out."""

    items: list[LabelItem]
    annotations: list[ImportedAnnotation]
    cancelled: int = 0  # annotations marked was_cancelled (skipped in Label Studio)
    skipped: int = 0  # annotations with no result for the control tag
    ground_truth: int = 0  # ground-truth annotations, which became gold answers
    from_name: str = ""  # the control tag read
    annotators: tuple[str, ...] = field(default=())

    def to_annotations(self, project: str) -> list[Annotation]:
        """Every annotation as a keel ``Annotation`` of ``project``."""
        return [a.to_annotation(project) for a in self.annotations]


# import -------------------------------------------------------------------------------------------------------------


def from_labelstudio(
    tasks: Any, schema: LabelSchema, *, key_field: str | None = None, from_name: str | None = None
) -> LabelStudioImport:
    """Items and annotations from Label Studio's JSON export (the parsed list of tasks).

    ``from_name`` picks the control tag when the labeling config has several of the schema's type (otherwise the
    one there is). ``InvalidArgument`` naming the task and the field for anything malformed; nothing is half read.

    >>> imported = from_labelstudio(json.load(open("export.json")), LabelSchema("classes", ("pos", "neg")))  # doctest: +SKIP
    >>> frame = annotations_frame(imported.to_annotations("reviews"))  # doctest: +SKIP
    """
    check_schema(schema)
    if isinstance(tasks, Mapping) or not isinstance(tasks, Sequence) or isinstance(tasks, str):
        raise InvalidArgument.for_field("tasks", tasks, "a list of Label Studio tasks (the JSON export)")
    tag = from_name if from_name is not None else _guess_from_name(tasks, schema)
    reader = _Reader(schema, tag)
    items: list[LabelItem] = []
    seen: dict[str, str] = {}
    for i, task in enumerate(tasks):
        item = reader.task(i, task, key_field)
        where = _where(i, task)
        if item.key in seen:
            raise InvalidArgument.for_field(f"{where}: the item key", item.key, f"unique (also the key of {seen[item.key]})")
        seen[item.key] = where
        items.append(item)
    annotators = tuple(sorted({a.annotator for a in reader.annotations}))
    return LabelStudioImport(items, reader.annotations, reader.cancelled, reader.skipped, reader.ground_truth, tag or "",
                             annotators)  # fmt: skip


class _Reader:
    def __init__(self, schema: LabelSchema, from_name: str | None) -> None:
        self.schema, self.from_name = schema, from_name
        self.annotations: list[ImportedAnnotation] = []
        self.cancelled = self.skipped = self.ground_truth = 0

    def task(self, i: int, task: Any, key_field: str | None) -> LabelItem:
        where = _where(i, task)
        if not isinstance(task, Mapping):
            raise InvalidArgument.for_field(f"tasks[{i}]", task, "a task object with id, data and annotations")
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise InvalidArgument.for_field(f"{where}.data", data, "an object of the task's fields")
        key = _key(task, data, key_field, where)
        annotations = task.get("annotations", task.get("completions", []))  # "completions": Label Studio before 1.0
        if annotations is None:
            annotations = []
        if isinstance(annotations, Mapping | str) or not isinstance(annotations, Sequence):
            raise InvalidArgument.for_field(f"{where}.annotations", annotations, "a list of annotations")
        answers: list[Any] = []
        for j, ann in enumerate(annotations):
            answers.extend(self.annotation(f"{where}.annotations[{j}]", key, data, ann))
        if not answers:
            return check_item(self.schema, LabelItem(key, dict(data)))
        if any(a != answers[0] for a in answers[1:]):
            raise InvalidArgument.for_field(f"{where}: the ground-truth annotations", answers, "one answer (they disagree)")
        return check_item(self.schema, LabelItem(key, dict(data), "gold", answers[0]))

    def annotation(self, where: str, key: str, data: Mapping[str, Any], ann: Any) -> list[Any]:
        """Records an annotator's answer; returns ``[value]`` for a ground truth (the item's gold answer)."""
        if not isinstance(ann, Mapping):
            raise InvalidArgument.for_field(where, ann, "an annotation object")
        if ann.get("was_cancelled") is True:
            self.cancelled += 1
            return []
        regions = _regions(ann.get("result"), self.from_name, self.schema, f"{where}.result")
        if not regions and self.schema.kind != "spans":
            self.skipped += 1
            return []
        value = check_value(self.schema, _value(self.schema, regions, data, f"{where}.result"), data, field=f"{where}.result")
        if ann.get("ground_truth") is True:
            self.ground_truth += 1
            return [value]
        annotator = _annotator(ann.get("completed_by"), f"{where}.completed_by")
        created = _time_ms(ann.get("created_at"), f"{where}.created_at")
        lead = _lead_ms(ann.get("lead_time"), f"{where}.lead_time")
        source = ann.get("id")
        self.annotations.append(ImportedAnnotation(key, annotator, value, created, lead, "" if source is None else str(source)))
        return []


def _where(i: int, task: Any) -> str:
    task_id = task.get("id") if isinstance(task, Mapping) else None
    return f"tasks[{i}] (id {task_id!r})" if task_id is not None else f"tasks[{i}]"


def _key(task: Mapping[str, Any], data: Mapping[str, Any], key_field: str | None, where: str) -> str:
    if key_field is not None:
        if key_field not in data or data[key_field] is None:
            raise InvalidArgument.for_field(f"{where}.data.{key_field}", None, "the item key (key_field)")
        raw = data[key_field]
    else:
        raw = task.get("id")
        if raw is None:
            raise InvalidArgument.for_field(f"{where}.id", None, "the task id (or pass key_field naming a data field)")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidArgument.for_field(f"{where}: the item key", raw, "text or an integer")
    return str(raw)


def _guess_from_name(tasks: Sequence[Any], schema: LabelSchema) -> str | None:
    """The one control tag of the schema's type the annotations use; None when none does (nothing to read)."""
    names: set[str] = set()
    for task in tasks:
        anns = task.get("annotations", task.get("completions")) if isinstance(task, Mapping) else None
        for ann in anns if isinstance(anns, list) else []:
            result = ann.get("result") if isinstance(ann, Mapping) else None
            for region in result if isinstance(result, list) else []:
                if isinstance(region, Mapping) and region.get("type") in _TYPES[schema.kind]:
                    names.add(str(region.get("from_name", "")))
    if len(names) > 1:
        raise InvalidArgument.for_field("from_name", None, f"one of {sorted(names)} (the annotations use several)")
    return next(iter(names), None)


def _regions(result: Any, from_name: str | None, schema: LabelSchema, where: str) -> list[Mapping[str, Any]]:
    if result is None:
        return []
    if isinstance(result, Mapping | str) or not isinstance(result, Sequence):
        raise InvalidArgument.for_field(where, result, "a list of result regions")
    out = []
    for k, region in enumerate(result):
        if not isinstance(region, Mapping):
            raise InvalidArgument.for_field(f"{where}[{k}]", region, "a region {from_name, to_name, type, value}")
        if from_name is not None and region.get("from_name", from_name) != from_name:
            continue  # another control tag (a comment box, a second question)
        kind = region.get("type")
        if kind not in _TYPES[schema.kind]:
            if from_name is None or region.get("type") in ("relation",):
                continue
            expected = f"type {' or '.join(_TYPES[schema.kind])} for a {schema.kind} label"
            raise InvalidArgument.for_field(f"{where}[{k}].type", kind, expected)
        if not isinstance(region.get("value"), Mapping):
            raise InvalidArgument.for_field(f"{where}[{k}].value", region.get("value"), "an object")
        out.append(region)
    return out


def _value(schema: LabelSchema, regions: Sequence[Mapping[str, Any]], data: Mapping[str, Any], where: str) -> Any:
    if schema.kind in ("classes", "multilabel"):
        chosen: list[Any] = []
        for region in regions:
            choices = region["value"].get("choices")
            if isinstance(choices, str) or not isinstance(choices, Sequence):
                raise InvalidArgument.for_field(f"{where}.value.choices", choices, "a list of chosen classes")
            chosen.extend(choices)
        if schema.kind == "multilabel":
            return chosen
        if len(chosen) != 1:
            raise InvalidArgument.for_field(f"{where}.value.choices", chosen, "exactly one class (the schema is single-class)")
        return chosen[0]
    if schema.kind == "number":
        if len(regions) != 1:
            raise InvalidArgument.for_field(where, [dict(r) for r in regions], "one number region")
        value = regions[0]["value"]
        return value.get("number", value.get("rating"))
    text = data.get(schema.text_field or "")
    if not isinstance(text, str):
        raise InvalidArgument.for_field(f"data.{schema.text_field}", text, "the text the spans are over")
    to_py = _utf16_to_index(text)
    spans: list[dict[str, Any]] = []
    for k, region in enumerate(regions):
        value = region["value"]
        start, end, labels = value.get("start"), value.get("end"), value.get("labels")
        if any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < len(to_py) for x in (start, end)):
            raise InvalidArgument.for_field(f"{where}[{k}].value.start/end", [start, end], "character offsets into the text")
        start, end = to_py[start], to_py[end]
        if start < 0 or end < 0:
            raise InvalidArgument.for_field(f"{where}[{k}].value.start/end", [value["start"], value["end"]],
                                            "offsets on character boundaries")  # fmt: skip
        shown = value.get("text")
        if shown is not None and shown != text[start:end]:
            raise InvalidArgument.for_field(f"{where}[{k}].value.text", shown, f"the text at its offsets ({text[start:end]!r})")
        if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
            raise InvalidArgument.for_field(f"{where}[{k}].value.labels", labels, "a list of one or more labels")
        spans.extend({"start": start, "end": end, "label": label} for label in labels)
    return spans


def _utf16_to_index(text: str) -> list[int]:
    """Python index of each UTF-16 offset into ``text`` (-1 inside a surrogate pair), plus one for the end."""
    out: list[int] = []
    for i, ch in enumerate(text):
        out.append(i)
        if ord(ch) > 0xFFFF:
            out.append(-1)
    out.append(len(text))
    return out


def _utf16_offset(text: str, index: int) -> int:
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


def _annotator(completed_by: Any, where: str) -> str:
    if isinstance(completed_by, Mapping):
        email = completed_by.get("email")
        if isinstance(email, str) and email.strip():
            return email
        completed_by = completed_by.get("id")
    if isinstance(completed_by, bool) or not isinstance(completed_by, int | str) or not str(completed_by).strip():
        raise InvalidArgument.for_field(where, completed_by, "a user id or a user object with an email")
    return str(completed_by)


def _time_ms(value: Any, where: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise InvalidArgument.for_field(where, value, "an ISO 8601 time")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument.for_field(where, value, "an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # Label Studio writes UTC
    return round(when.timestamp() * 1000)


def _lead_ms(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidArgument.for_field(where, value, "seconds spent (a number at least 0)")
    return round(value * 1000)


# export -------------------------------------------------------------------------------------------------------------


def to_labelstudio(
    items: Sequence[LabelItem],
    annotations: Sequence[Annotation | ImportedAnnotation],
    schema: LabelSchema,
    *,
    consensus: Any = None,
    from_name: str = "label",
    to_name: str = "text",
    key_field: str | None = None,
    model_version: str = "keel-consensus",
) -> list[dict[str, Any]]:
    """Label Studio tasks (its JSON export format, which it also imports) for ``items`` with their annotations.

    A gold item's answer is a ``ground_truth`` annotation. ``consensus``: a frame (or records) with ``item``,
    ``label`` and ``confidence`` (``keel.label.consensus.consensus``), written as each task's prediction with
    ``score`` = the confidence. Task ids are the item keys when every key is an integer, else 1, 2, ...; with
    ``key_field`` the key is also written into ``data`` (pass the same ``key_field`` to ``from_labelstudio`` to
    bring the tasks back after Label Studio gave them ids of its own).
    """
    check_schema(schema)
    numeric = all(item.key.isdigit() for item in items)
    by_item: dict[str, list[Annotation | ImportedAnnotation]] = {}
    for a in annotations:
        by_item.setdefault(a.item, []).append(a)
    users = {name: n for n, name in enumerate(sorted({a.annotator for a in annotations}), start=1)}
    predicted = _consensus_rows(consensus)
    tasks = []
    for n, item in enumerate(items, start=1):
        task_id = int(item.key) if numeric else n
        data = dict(item.data)
        if key_field is not None:
            data[key_field] = item.key
        anns = [_export_annotation(a, schema, data, users, task_id, from_name, to_name) for a in by_item.get(item.key, [])]
        if item.role in ("gold", "qualification") and item.answer is not None:
            result = _result(schema, item.answer, data, from_name, to_name)
            # no completed_by: Label Studio credits the user who imports the file
            anns.append({"result": result, "was_cancelled": False, "ground_truth": True, "lead_time": 0, "task": task_id})
        task: dict[str, Any] = {"id": task_id, "data": data, "annotations": anns, "predictions": []}
        if item.key in predicted:
            label, confidence = predicted[item.key]
            task["predictions"].append({"model_version": model_version, "score": confidence,
                                        "result": _result(schema, label, data, from_name, to_name)})  # fmt: skip
        tasks.append(task)
    return tasks


def _export_annotation(
    a: Annotation | ImportedAnnotation, schema: LabelSchema, data: Mapping[str, Any], users: Mapping[str, int],
    task_id: int, from_name: str, to_name: str,
) -> dict[str, Any]:  # fmt: skip
    lead_ms = a.lead_time_ms if isinstance(a, ImportedAnnotation) else a.time_spent_ms
    source = a.source_id if isinstance(a, ImportedAnnotation) else a.id
    out = {
        "completed_by": {"id": users[a.annotator], "email": a.annotator, "first_name": "", "last_name": ""},
        "result": _result(schema, a.value, data, from_name, to_name),
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": _iso(a.created_at),
        "updated_at": _iso(a.created_at),
        "lead_time": lead_ms / 1000,
        "task": task_id,
    }
    if str(source).isdigit() and int(source) > 0:
        out["id"] = int(source)
    return out


def _result(schema: LabelSchema, value: Any, data: Mapping[str, Any], from_name: str, to_name: str) -> list[dict[str, Any]]:
    base = {"from_name": from_name, "to_name": to_name, "origin": "manual"}
    if schema.kind == "classes":
        return [{**base, "id": _region_id(0), "type": "choices", "value": {"choices": [value]}}]
    if schema.kind == "multilabel":
        return [{**base, "id": _region_id(0), "type": "choices", "value": {"choices": list(value)}}]
    if schema.kind == "number":
        return [{**base, "id": _region_id(0), "type": "number", "value": {"number": value}}]
    text = data.get(schema.text_field or "")
    text = text if isinstance(text, str) else ""
    out = []
    for k, span in enumerate(value):
        start, end = span["start"], span["end"]
        region = {"start": _utf16_offset(text, start), "end": _utf16_offset(text, end), "text": text[start:end],
                  "labels": [span["label"]]}  # fmt: skip
        out.append({**base, "id": _region_id(k), "type": "labels", "value": region})
    return out


def _region_id(k: int) -> str:
    return f"keel{k:06d}"  # Label Studio region ids: [A-Za-z0-9_-], unique within an annotation


def _consensus_rows(consensus: Any) -> dict[str, tuple[Any, float]]:
    if consensus is None:
        return {}
    records = consensus.to_dict("records") if hasattr(consensus, "to_dict") else list(consensus)
    out = {}
    for row in records:
        confidence = row.get("confidence")
        out[str(row["item"])] = (row["label"], float(confidence) if confidence is not None else 1.0)
    return out


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
