"""The label store on the wire: request bodies (pydantic) and JSON shapes of label projects, guidelines, items,
tasks, annotations, reviews and exclusions, shared by the REST client and the server (the table's entries are in
``endpoints.LabelEndpoints``).

The client checks what it can without a store (``keel.core.labeling``) and that every answer and item field is plain
JSON before it sends; the server builds the entities from the validated body and its store checks them again. No
body names an annotator who answers or a reviewer: the store records the caller (``keel.core.actor``), and a body
that names one is refused (``extra="forbid"``). A task's JSON has no role and no answer: a gold item looks like any
other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from keel.core.dataset_records import plain_json
from keel.core.errors import InvalidArgument
from keel.core.labeling import (
    DEFAULT_LEASE_MS,
    Annotation,
    Exclusion,
    Guideline,
    LabelItem,
    LabelProject,
    LabelSchema,
    Review,
    Task,
    check_guideline,
    check_item,
    check_project,
)

# a finite number (an integer too), not text or a boolean that reads as one
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


# request bodies -----------------------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSchemaFields(_Body):
    kind: str = "classes"
    classes: list[str] = Field(default_factory=list)
    minimum: Number | None = None
    maximum: Number | None = None
    text_field: str | None = None


class LabelProjectFields(_Body):
    name: str
    dataset: str
    schema_: LabelSchemaFields = Field(alias="schema")
    overlap: StrictInt = 3
    gold_rate: Number = 0.1
    qualification_pass: Number = 0.8
    fields: list[str] = Field(default_factory=list)
    lease_ms: StrictInt = DEFAULT_LEASE_MS
    # set by the server's store (ignored in a request)
    id: StrictInt = 0
    created_at: StrictInt = 0
    created_by: str = ""
    guideline_version: StrictInt = 0
    items: StrictInt = 0
    gold_items: StrictInt = 0
    qualification_items: StrictInt = 0

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LabelItemFields(_Body):
    key: str
    data: dict[str, Any]
    role: str = "task"
    answer: Any = None
    annotations: StrictInt = 0  # set by the server's store when read


class LabelProjectIn(_Body):
    project: LabelProjectFields
    guideline: str
    items: list[LabelItemFields]


class GuidelineIn(_Body):
    text: str


class SubmitIn(_Body):
    item: str
    value: Any
    request_id: str | None = None


class AnnotationFields(_Body):
    project: str
    item: str
    annotator: str
    value: Any
    assigned_at: StrictInt = 0
    created_at: StrictInt = 0
    guideline_version: StrictInt = 0
    request_id: str | None = None
    id: StrictInt = 0  # set by the server's store


class ImportIn(_Body):
    """Annotations made elsewhere, kept as they are (their annotators too): an import, so a ``write``."""

    annotations: list[AnnotationFields]


class ReviewFields(_Body):
    project: str
    item: str
    kind: str
    value: Any
    outcome: str
    note: str = ""
    # set by the server's store (ignored in a request): the reviewer is the caller
    reviewer: str = ""
    created_at: StrictInt = 0
    id: StrictInt = 0


class ReviewIn(_Body):
    review: ReviewFields


class ExclusionIn(_Body):
    annotator: str
    reason: str


class ConsensusIn(_Body):
    dataset_version_id: StrictInt
    details: dict[str, Any]


# JSON shapes --------------------------------------------------------------------------------------------------------


def project_to_json(p: LabelProject) -> dict[str, Any]:
    return {
        "name": p.name,
        "dataset": p.dataset,
        "schema": p.schema.to_dict(),
        "overlap": p.overlap,
        "gold_rate": p.gold_rate,
        "qualification_pass": p.qualification_pass,
        "fields": list(p.fields),
        "lease_ms": p.lease_ms,
        "id": p.id,
        "created_at": p.created_at,
        "created_by": p.created_by,
        "guideline_version": p.guideline_version,
        "items": p.items,
        "gold_items": p.gold_items,
        "qualification_items": p.qualification_items,
    }


def project_from_json(d: Mapping[str, Any]) -> LabelProject:
    """A project from JSON (a body the schema validated, or a server's answer); its schema checked on the way."""
    fields = dict(d)
    schema = fields.pop("schema_", None) or fields.pop("schema")  # a validated body names it by its field
    return LabelProject(**{**fields, "schema": LabelSchema.from_dict(schema), "fields": tuple(d.get("fields") or ())})


def checked_project_to_json(p: LabelProject) -> dict[str, Any]:
    if not isinstance(p, LabelProject):
        raise InvalidArgument.for_field("project", p, "a LabelProject")
    return project_to_json(check_project(p))


def guideline_to_json(g: Guideline) -> dict[str, Any]:
    return {"project": g.project, "version": g.version, "text": g.text, "created_at": g.created_at,
            "created_by": g.created_by}  # fmt: skip


def guideline_from_json(d: Mapping[str, Any]) -> Guideline:
    return Guideline(**d)


def item_to_json(i: LabelItem) -> dict[str, Any]:
    return {"key": i.key, "data": dict(i.data), "role": i.role, "answer": i.answer, "annotations": i.annotations}


def item_from_json(d: Mapping[str, Any]) -> LabelItem:
    return LabelItem(**d)


def items_to_wire(items: Any) -> list[dict[str, Any]]:
    """Items as JSON, each field value and answer checked to be plain JSON (the encoder would raise a bare TypeError,
    or write a NaN as null)."""
    if isinstance(items, str | Mapping) or not isinstance(items, Sequence):
        raise InvalidArgument.for_field("items", items, "a list of LabelItem")
    out = []
    for i in items:
        if not isinstance(i, LabelItem):
            raise InvalidArgument.for_field("items", i, "a LabelItem")
        data = plain_json(dict(i.data), "item.data") if isinstance(i.data, Mapping) else i.data
        out.append({"key": i.key, "data": data, "role": i.role, "answer": plain_json(i.answer, "item.answer"),
                    "annotations": i.annotations})  # fmt: skip
    return out


def check_new_project(args: dict[str, Any]) -> None:
    """Before ``create_project`` is sent: what needs no store (the project's fields, each item against the schema,
    the guideline), as the server's store will check it again."""
    project = args["project"]
    if isinstance(project, LabelProject):
        check_project(project)
        if isinstance(args["items"], Sequence) and not isinstance(args["items"], str):
            args["items"] = [check_item(project.schema, i) if isinstance(i, LabelItem) else i for i in args["items"]]
    args["guideline"] = check_guideline(args["guideline"])


def task_to_json(t: Task) -> dict[str, Any]:
    """What an annotator is handed: no role, no answer (a gold item looks like any other)."""
    return {
        "project": t.project,
        "item": t.item,
        "data": dict(t.data),
        "guideline_version": t.guideline_version,
        "assigned_at": t.assigned_at,
        "qualification": t.qualification,
        "remaining_qualification": t.remaining_qualification,
    }


def task_from_json(d: Mapping[str, Any]) -> Task:
    return Task(**d)


def annotation_to_json(a: Annotation) -> dict[str, Any]:
    return {
        "id": a.id,
        "project": a.project,
        "item": a.item,
        "annotator": a.annotator,
        "value": a.value,
        "assigned_at": a.assigned_at,
        "created_at": a.created_at,
        "guideline_version": a.guideline_version,
        "request_id": a.request_id,
    }


def annotation_from_json(d: Mapping[str, Any]) -> Annotation:
    return Annotation(**d)


def annotations_to_wire(annotations: Any) -> list[dict[str, Any]]:
    """Annotations to import as JSON, each value checked to be plain JSON."""
    if isinstance(annotations, str | Mapping) or not isinstance(annotations, Sequence):
        raise InvalidArgument.for_field("annotations", annotations, "a list of Annotation")
    out = []
    for a in annotations:
        if not isinstance(a, Annotation):
            raise InvalidArgument.for_field("annotations", a, "an Annotation")
        out.append({**annotation_to_json(a), "value": plain_json(a.value, "value")})
    return out


def submitted_to_json(submitted: tuple[Annotation, bool]) -> dict[str, Any]:
    return {"annotation": annotation_to_json(submitted[0]), "created": submitted[1]}


def submitted_from_json(d: Mapping[str, Any]) -> tuple[Annotation, bool]:
    return annotation_from_json(d["annotation"]), bool(d["created"])


def value_to_wire(value: Any) -> Any:
    """An answer as plain JSON (the server's store checks it against the schema)."""
    return plain_json(value, "value")


def review_to_json(r: Review) -> dict[str, Any]:
    return {"id": r.id, "project": r.project, "item": r.item, "kind": r.kind, "value": r.value, "outcome": r.outcome,
            "note": r.note, "reviewer": r.reviewer, "created_at": r.created_at}  # fmt: skip


def review_from_json(d: Mapping[str, Any]) -> Review:
    return Review(**d)


def checked_review_to_json(r: Review) -> dict[str, Any]:
    if not isinstance(r, Review):
        raise InvalidArgument.for_field("review", r, "a Review")
    return {**review_to_json(r), "value": plain_json(r.value, "value")}


def exclusion_to_json(e: Exclusion) -> dict[str, Any]:
    return {"project": e.project, "annotator": e.annotator, "reason": e.reason, "created_at": e.created_at,
            "created_by": e.created_by}  # fmt: skip


def exclusion_from_json(d: Mapping[str, Any]) -> Exclusion:
    return Exclusion(**d)


def consensus_to_json(versions: Sequence[tuple[int, Mapping[str, Any]]]) -> list[list[Any]]:
    return [[version_id, dict(details)] for version_id, details in versions]


def consensus_from_json(data: Sequence[Sequence[Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(int(version_id), dict(details)) for version_id, details in data]
