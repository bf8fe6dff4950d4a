"""Annotations as a pandas frame, and that frame as *units* every agreement and consensus function codes alike.

``annotations_frame`` gives one row per answer: ``item``, ``annotator``, ``value``, ``assigned_at``, ``created_at``
(ms) and ``guideline_version``. ``units`` turns it into rows of ``item``, ``unit``, ``annotator``, ``code`` (plus
``created_at``) with one hashable code per unit, by the schema's kind:

- ``classes``: one unit per item, the class as the code;
- ``multilabel``: one unit per (item, class), the code ``1`` when the answer has the class, ``0`` otherwise (each
  class a binary decision);
- ``number``: one unit per item, the number as a float code (interval level);
- ``spans``: one unit per (item, character) for the characters *any* annotator of the item put in a span, the code
  the span's label or ``"O"`` (outside every span; where one annotator's spans overlap, the first in start order
  wins). Characters nobody marked are left out: counting them would make agreement on mostly unmarked text look
  high whatever the annotators did on the spans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument, MissingExtra
from keel.core.labeling import LabelSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FRAME_COLUMNS", "OUTSIDE", "annotations_frame", "infer_schema", "require_pandas", "units"]

FRAME_COLUMNS = ("item", "annotator", "value", "assigned_at", "created_at", "guideline_version")
OUTSIDE = "O"  # the code of a character outside every span
_SEP = "\x1f"  # joins an item key and a class or character index into a unit key (keys are printable: no clash)


def require_pandas() -> Any:
    """The pandas module, or ``MissingExtra`` naming the ``label`` extra."""
    try:
        import pandas
    except ImportError:
        raise MissingExtra("pandas", "label") from None
    return pandas


def annotations_frame(annotations: Sequence[Any]) -> pd.DataFrame:
    """One row per annotation (any objects with the ``Annotation`` fields), in the order given.

    >>> annotations_frame([Annotation("p", "row-1", "alice", "cat", 10, 25, 1)]).loc[0, "value"]
    'cat'
    """
    pd = require_pandas()
    rows = {name: [getattr(a, name, 0 if name != "value" else None) for a in annotations] for name in FRAME_COLUMNS}
    frame = pd.DataFrame({"item": pd.Series(rows["item"], dtype=object), "annotator": pd.Series(rows["annotator"], dtype=object),
                          "value": pd.Series(rows["value"], dtype=object)})  # fmt: skip
    for name in ("assigned_at", "created_at", "guideline_version"):
        frame[name] = pd.Series(rows[name], dtype="int64")
    return frame


def infer_schema(frame: pd.DataFrame) -> LabelSchema:
    """The schema the frame's values fit, for callers with no schema at hand (classes sorted as text)."""
    values = [v for v in frame["value"] if v is not None]
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return LabelSchema("number")
    if values and all(isinstance(v, list | tuple) for v in values):
        flat = [x for v in values for x in v]
        if flat and all(isinstance(x, Mapping) for x in flat):
            return LabelSchema("spans", tuple(sorted({str(x["label"]) for x in flat})), text_field="text")
        return LabelSchema("multilabel", tuple(sorted({str(x) for x in flat})) or ("",))
    return LabelSchema("classes", tuple(sorted({str(v) for v in values})))


def units(frame: pd.DataFrame, schema: LabelSchema | None = None) -> pd.DataFrame:
    """``frame`` as ``item, unit, annotator, code, created_at`` rows (see the module's docstring for each kind)."""
    pd = require_pandas()
    schema = schema or infer_schema(frame)
    created = frame["created_at"] if "created_at" in frame else pd.Series(0, index=frame.index, dtype="int64")
    base = pd.DataFrame({"item": frame["item"].astype(str), "annotator": frame["annotator"].astype(str),
                         "created_at": created.astype("int64")})  # fmt: skip
    if schema.kind == "classes":
        return base.assign(unit=base["item"], code=frame["value"].astype(object))[_UNIT_COLUMNS]
    if schema.kind == "number":
        return base.assign(unit=base["item"], code=pd.to_numeric(frame["value"], errors="raise").astype(float))[_UNIT_COLUMNS]
    if schema.kind == "multilabel":
        return _multilabel_units(pd, base, frame["value"], schema.classes)
    if schema.kind == "spans":
        return _span_units(pd, base, frame["value"])
    raise InvalidArgument.for_field("schema.kind", schema.kind, "classes, multilabel, number or spans")


_UNIT_COLUMNS = ["item", "unit", "annotator", "code", "created_at"]


def _multilabel_units(pd: Any, base: pd.DataFrame, values: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    chosen = [set(v or ()) for v in values]
    parts = []
    for c in classes:
        parts.append(base.assign(unit=base["item"] + _SEP + c, code=[int(c in s) for s in chosen], cls=c))
    if not parts:
        return pd.DataFrame(columns=[*_UNIT_COLUMNS, "cls"])
    out = pd.concat(parts, ignore_index=True)
    return out[[*_UNIT_COLUMNS, "cls"]]


def _span_units(pd: Any, base: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    items, annotators, chars, labels = [], [], [], []
    for item, annotator, spans in zip(base["item"], base["annotator"], values, strict=True):
        taken: set[int] = set()
        for span in sorted(spans or (), key=lambda s: (s["start"], s["end"], s["label"])):
            for ch in range(int(span["start"]), int(span["end"])):
                if ch not in taken:
                    taken.add(ch)
                    items.append(item)
                    annotators.append(annotator)
                    chars.append(ch)
                    labels.append(span["label"])
    marked = pd.DataFrame({"item": items, "annotator": annotators, "char": chars, "code": labels})
    covered = marked[["item", "char"]].drop_duplicates()
    who = base.drop_duplicates(["item", "annotator"])
    full = covered.merge(who, on="item").merge(marked, on=["item", "annotator", "char"], how="left")
    full["code"] = full["code"].fillna(OUTSIDE).astype(object)
    full["unit"] = full["item"] + _SEP + full["char"].astype(str)
    return full[[*_UNIT_COLUMNS, "char"]].reset_index(drop=True)
