"""The request bodies, kept under their former import path: they live in ``keel.store.metadata.rest.schemas``,
shared by the REST client and the server (``keel.store.metadata.rest.endpoints`` says which endpoint takes which)."""

from __future__ import annotations

from keel.store.metadata.rest.schemas import (
    AliasIn,
    ArtifactIn,
    ArtifactsIn,
    CodeIn,
    DatasetVersionIn,
    EndRunIn,
    EnvironmentIn,
    ExperimentIn,
    HeartbeatIn,
    ModelVersionIn,
    ParamsIn,
    RunIn,
    RunLinkIn,
    SearchIn,
    StepCacheIn,
    StepIn,
    TagsIn,
    TrialIn,
    TrialResultIn,
    ValidationIn,
)

__all__ = [
    "AliasIn", "ArtifactIn", "ArtifactsIn", "CodeIn", "DatasetVersionIn", "EndRunIn", "EnvironmentIn", "ExperimentIn",
    "HeartbeatIn", "ModelVersionIn", "ParamsIn", "RunIn", "RunLinkIn", "SearchIn", "StepCacheIn", "StepIn", "TagsIn",
    "TrialIn", "TrialResultIn", "ValidationIn",
]  # fmt: skip
