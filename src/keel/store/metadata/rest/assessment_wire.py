"""Model version assessments on the wire: the request body (pydantic) and the JSON shape of an ``Assessment``, shared
by the REST client and the server (the entries are in ``endpoints.ModelEndpoints``).

The client checks an assessment (``keel.core.assessments``) before it sends; the server builds it from the validated
body and its store checks it again. Who made it and when are the server store's (the caller, its clock): the fields
travel in answers and are ignored in a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from keel.core.assessments import check_assessment
from keel.core.models import Assessment

__all__ = ["AssessmentIn", "assessment_from_json", "assessment_to_json", "checked_assessment_to_json"]

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssessmentFields(_Body):
    model: str
    version: StrictInt
    kind: str
    metrics: dict[str, Number] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    artifact_sha256: str | None = None
    run_id: str | None = None
    # set by the server's store (ignored in a request)
    created_at: StrictInt = 0
    created_by: str = ""
    id: StrictInt = 0

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class AssessmentIn(_Body):
    assessment: AssessmentFields


def assessment_to_json(a: Assessment) -> dict[str, Any]:
    return {"id": a.id, "model": a.model, "version": a.version, "kind": a.kind, "metrics": a.metrics, "details": a.details,
            "artifact_sha256": a.artifact_sha256, "run_id": a.run_id, "created_at": a.created_at,
            "created_by": a.created_by}  # fmt: skip


def assessment_from_json(d: Mapping[str, Any]) -> Assessment:
    return Assessment(**{**d, "metrics": {k: float(v) for k, v in d["metrics"].items()}})


def checked_assessment_to_json(a: Assessment) -> dict[str, Any]:
    return assessment_to_json(check_assessment(a))
