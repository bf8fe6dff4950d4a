"""A team on Label Studio brings its work to keel, and takes keel's labels back.

``import_labelstudio`` reads a Label Studio JSON export (``keel.label.labelstudio`` parses it): a new project is made
from its tasks (their ``data`` logged as a dataset version, ground-truth annotations as gold items) or an existing
project's items are matched by key; every annotation is stored as it was made (annotator, time, lead time), once:
importing the same file again writes nothing. Imported annotators are named ``labelstudio:<email or id>`` so that
they never pass for a keel principal. Agreement, consensus, reviews and audits then work as on keel's own tasks.

``export_labelstudio`` writes a project back in Label Studio's format, with keel's consensus as each task's
prediction (score: its confidence).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument, NotFound
from keel.core.labeling import Annotation, LabelProject, LabelSchema

__all__ = ["IMPORTED_PREFIX", "LabelStudioResult", "export_labelstudio", "import_labelstudio"]

IMPORTED_PREFIX = "labelstudio:"
GUIDELINE = "Imported from Label Studio: the guideline the annotators followed there is not part of the export."


@dataclass(frozen=True, slots=True)
class LabelStudioResult:
    """What an import did: the project, annotations written (0 for a repeat), skipped and cancelled ones."""

    project: LabelProject
    written: int
    annotations: int
    cancelled: int
    skipped: int
    annotators: tuple[str, ...]


def import_labelstudio(
    project: str,
    source: str | Path | Sequence[Any],
    *,
    schema: LabelSchema | None = None,
    classes: Sequence[str] = (),
    kind: str = "classes",
    key_field: str | None = None,
    from_name: str | None = None,
    overlap: int | None = None,
    dataset: str | None = None,
    ctx: Context | None = None,
) -> LabelStudioResult:
    """Bring a Label Studio export (a path to its JSON, or the parsed list of tasks) into ``project``.

    A project that does not exist is created from the tasks (its data logged as dataset ``dataset``, default
    ``<project>.labelstudio``; ``overlap``: default the most annotations any task has); for an existing one the
    tasks must be its items (by ``key_field``, else Label Studio's task id) and its schema is used.
    """
    import pandas as pd

    import keel.data
    from keel.core.labeling import check_schema
    from keel.label.labelstudio import from_labelstudio
    from keel.label.projects import create_project

    ctx = _ctx(ctx)
    tasks = _tasks(source)
    store = ctx.store.labels
    try:
        existing: LabelProject | None = store.get_project(project)
    except NotFound:
        existing = None
    label_schema = existing.schema if existing else check_schema(schema or LabelSchema(kind=kind, classes=tuple(classes)))
    parsed = from_labelstudio(tasks, label_schema, key_field=key_field, from_name=from_name)
    annotations = [_renamed(a) for a in parsed.to_annotations(project)]
    if existing is None:
        rows = [{"item": item.key, **item.data} for item in parsed.items]
        gold = {item.key: item.answer for item in parsed.items if item.role == "gold"}
        version = keel.data.log(pd.DataFrame(rows), dataset or f"{project}.labelstudio", source="labelstudio", run=False, ctx=ctx)
        per_item: dict[str, int] = {}
        for a in annotations:
            per_item[a.item] = per_item.get(a.item, 0) + 1
        k = overlap or max([2, *per_item.values()])
        existing = create_project(project, version.ref, guideline=GUIDELINE, schema=label_schema, overlap=k, key="item",
                                  gold=gold or None, gold_rate=0.0, ctx=ctx)  # fmt: skip
    else:
        known = {item.key for item in store.get_items(project)}
        missing = sorted({a.item for a in annotations} - known)
        if missing:
            raise InvalidArgument.for_field("task", missing[0], f"an item of label project {project!r} (key_field: {key_field})")
    written = store.import_annotations(project, annotations)
    return LabelStudioResult(existing, written, len(annotations), parsed.cancelled, parsed.skipped,
                             tuple(sorted({a.annotator for a in annotations})))  # fmt: skip


def export_labelstudio(
    project: str, *, consensus: bool = True, method: str | None = None, ctx: Context | None = None
) -> list[dict[str, Any]]:
    """The project as Label Studio tasks (items, every annotation, gold answers as ground truth), with keel's
    consensus as predictions unless ``consensus=False``."""
    from keel.label.labels import consensus_labels
    from keel.label.labelstudio import to_labelstudio

    ctx = _ctx(ctx)
    store = ctx.store.labels
    info = store.get_project(project)
    labels = consensus_labels(project, method=method, ctx=ctx) if consensus else None
    return to_labelstudio(store.get_items(project), store.annotations(project), info.schema, consensus=labels)


def _tasks(source: str | Path | Sequence[Any]) -> list[Any]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument.for_field(
                "source", str(path), f"a readable Label Studio JSON export ({exc.__class__.__name__})"
            ) from None
        except json.JSONDecodeError as exc:
            raise InvalidArgument.for_field("source", str(path), f"JSON (line {exc.lineno}: {exc.msg})") from None
        source = loaded
    if isinstance(source, dict) or not isinstance(source, Sequence):
        raise InvalidArgument.for_field("source", type(source).__name__, "a list of Label Studio tasks")
    return list(source)


def _renamed(a: Annotation) -> Annotation:
    name = a.annotator if a.annotator.startswith(IMPORTED_PREFIX) else f"{IMPORTED_PREFIX}{a.annotator}"
    return Annotation(a.project, a.item, name[:128], a.value, a.assigned_at, a.created_at, a.guideline_version,
                      a.request_id, a.id)  # fmt: skip
