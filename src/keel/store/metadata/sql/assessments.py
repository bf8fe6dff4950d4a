"""Assessments of model versions on the ``SqlStore``'s database: recorded by ``SqlModelStore.add_assessment``, listed
by ``assessments``, and read by its ``move_alias`` so that promotion gates see ``<kind>.<name>`` of the latest
assessment of each kind beside the version's registered metrics (``gated_metrics``).

A version's own metrics never change: an assessment is a row of its own, appended, never updated.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select

from keel.core.actor import current_actor
from keel.core.assessments import check_kind
from keel.core.clock import now_ms
from keel.core.model_records import assessed_metrics
from keel.core.models import Assessment, ModelVersion
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.runs import require_run

__all__ = ["add_assessment", "assessments", "gated_metrics"]

_a = t.model_assessments.c
_mv = t.model_versions.c


def _assessment(name: str, version: int, row: Any) -> Assessment:
    return Assessment(
        name, version, row.kind, json.loads(row.metrics), json.loads(row.details), row.artifact_sha256, row.run_id,
        row.created_at, row.created_by, row.id,
    )  # fmt: skip


def add_assessment(conn: Connection, version_id: int, checked: Assessment) -> Assessment:
    """Insert ``checked`` (``check_assessment``'s) of the version whose key is ``version_id`` (found by the caller) and
    audit it."""
    if checked.run_id is not None:
        require_run(conn, checked.run_id)
    at, actor = now_ms(), current_actor()[:128]
    assessment_id = conn.execute(
        t.model_assessments.insert().values(
            model_version_id=version_id, kind=checked.kind, metrics=json.dumps(checked.metrics),
            details=json.dumps(checked.details, separators=(",", ":")), artifact_sha256=checked.artifact_sha256,
            run_id=checked.run_id, created_at=at, created_by=actor,
        )
    ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
    append_event(conn, "models.add_assessment", "model_version", f"{checked.model}/{checked.version}", None, {
        "assessment": assessment_id, "kind": checked.kind, "metrics": checked.metrics,
        "artifact_sha256": checked.artifact_sha256, "run_id": checked.run_id,
    })  # fmt: skip
    return replace(checked, id=int(assessment_id), created_at=at, created_by=actor)


def assessments(conn: Connection, name: str, version: int, version_id: int, kind: str | None) -> list[Assessment]:
    query = select(t.model_assessments).where(_a.model_version_id == version_id)
    if kind is not None:
        query = query.where(_a.kind == check_kind(kind))
    return [_assessment(name, version, r) for r in conn.execute(query.order_by(_a.id))]


def _latest(conn: Connection, mv: ModelVersion) -> list[Assessment]:
    """The latest assessment of each kind of the version (by insertion order: ids grow with time)."""
    newest = select(func.max(_a.id)).where(_a.model_version_id == mv.id).group_by(_a.kind)
    rows = conn.execute(select(t.model_assessments).where(_a.id.in_(newest)).order_by(_a.kind)).all()
    return [_assessment(mv.name, mv.version, r) for r in rows]


def gated_metrics(conn: Connection, mv: ModelVersion) -> ModelVersion:
    """``mv`` as promotion gates see it: its registered metrics plus ``<kind>.<name>`` of its latest assessment of
    each kind (``keel.core.model_records.assessed_metrics``: a registered metric under an assessment's kind never
    stands in for one)."""
    return replace(mv, metrics=assessed_metrics(mv.metrics, _latest(conn, mv)))
