"""JSON shapes shared by the server and the REST client: one pair of converters per entity.

The server encodes what its store returns with ``<entity>_to_json`` and the REST client
decodes the answer with ``<entity>_from_json`` (and the other way round for bodies built
from entities), so an entity's wire shape is written once. Request bodies are described by
the pydantic models of ``keel.server.schemas`` (for validation and the OpenAPI schema).

JSON has no NaN or infinity, and keel stores them faithfully, so non-finite floats travel
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import math
from typing import Any

from keel.core.datasets import ColumnSchema, DatasetVersion, RunDatasetLink, ValidationRecord
from keel.core.deployments import Deployment, DeploymentChange
from keel.core.entities import (
    ArtifactRef,
    CodeVersion,
    Environment,
    Experiment,
    LatestMetric,
    Metric,
    Run,
    RunKind,
    RunStatus,
    StepInfo,
    TrialInfo,
    TrialState,
)
from keel.core.errors import InvalidArgument
from keel.core.identity import ApiToken, BlobTrust, NewToken, Principal, RoleBinding
from keel.core.models import AliasChange, ModelVersion
from keel.core.predictions import PredictionLabel, PredictionLogFile
from keel.store.metadata.pipelines import CachedStep

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def decode_float(x: Any, field: str = "value") -> float:
    if isinstance(x, str):
        if x in _NONFINITE:
            return _NONFINITE[x]
        raise InvalidArgument.for_field(field, x, "a number, 'NaN', 'Infinity' or '-Infinity'")
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise InvalidArgument.for_field(field, x, "a number, 'NaN', 'Infinity' or '-Infinity'")
    return float(x)


def experiment_to_json(e: Experiment) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "project": e.project, "created_at": e.created_at, "deleted_at": e.deleted_at}


def experiment_from_json(d: dict[str, Any]) -> Experiment:
    return Experiment(
        id=d["id"], name=d["name"], project=d["project"], created_at=d["created_at"], deleted_at=d.get("deleted_at")
    )


def run_to_json(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "experiment_id": r.experiment_id,
        "name": r.name,
        "status": r.status.value,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "parent_run_id": r.parent_run_id,
        "heartbeat": r.heartbeat,
        "params": r.params,
        "tags": r.tags,
        "metrics": {k: {"value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp} for k, m in r.metrics.items()},
        "code": code_to_json(r.code),
        "environment": environment_to_json(r.environment),
        "kind": r.kind.value,
        "step": step_to_json(r.step) if r.step is not None else None,
        "trial": trial_to_json(r.trial) if r.trial is not None else None,
        "deleted_at": r.deleted_at,
    }


def step_to_json(s: StepInfo) -> dict[str, Any]:
    return {"name": s.name, "cache_key": s.cache_key, "cached_from": s.cached_from}


def step_from_json(d: dict[str, Any]) -> StepInfo:
    return StepInfo(d["name"], d["cache_key"], d.get("cached_from"))


def trial_to_json(t: TrialInfo) -> dict[str, Any]:
    return {
        "number": t.number,
        "params": t.params,
        "state": t.state.value if t.state is not None else None,
        "value": encode_float(t.value) if t.value is not None else None,
    }


def trial_from_json(d: dict[str, Any]) -> TrialInfo:
    state, value = d.get("state"), d.get("value")
    return TrialInfo(
        d["number"],
        dict(d.get("params") or {}),
        TrialState(state) if state is not None else None,
        decode_float(value, "trial value") if value is not None else None,
    )


def code_to_json(c: CodeVersion) -> dict[str, Any]:
    return {
        "git_commit": c.git_commit,
        "git_dirty_hash": c.git_dirty_hash,
        "entry_point": c.entry_point,
        "entry_point_hash": c.entry_point_hash,
    }


def environment_to_json(e: Environment) -> dict[str, Any]:
    return {
        "python_version": e.python_version,
        "platform": e.platform,
        "packages_hash": e.packages_hash,
        "packages_blob": e.packages_blob,
    }


def run_from_json(d: dict[str, Any]) -> Run:
    return Run(
        id=d["id"],
        experiment_id=d["experiment_id"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_time=d["start_time"],
        end_time=d.get("end_time"),
        parent_run_id=d.get("parent_run_id"),
        heartbeat=d.get("heartbeat"),
        params=dict(d.get("params") or {}),
        tags=dict(d.get("tags") or {}),
        metrics={
            k: LatestMetric(k, decode_float(m["value"]), m["step"], m["timestamp"]) for k, m in (d.get("metrics") or {}).items()
        },
        code=CodeVersion(**(d.get("code") or {})),
        environment=Environment(**(d.get("environment") or {})),
        kind=RunKind(d.get("kind") or "run"),
        step=step_from_json(d["step"]) if d.get("step") else None,
        trial=trial_from_json(d["trial"]) if d.get("trial") else None,
        deleted_at=d.get("deleted_at"),
    )


def metric_to_json(m: Metric) -> list[Any]:
    return [encode_float(m.value), m.step, m.timestamp]


def artifact_to_json(a: ArtifactRef) -> dict[str, Any]:
    return {"path": a.path, "sha256": a.sha256, "size": a.size, "media_type": a.media_type}


def artifact_from_json(d: Any) -> ArtifactRef:
    if not isinstance(d, dict):
        raise InvalidArgument.for_field("artifact", d, "an object with path, sha256, size, media_type")
    try:
        return ArtifactRef(
            path=d["path"],
            sha256=d["sha256"],
            size=d["size"],
            media_type=d.get("media_type") or "application/octet-stream",
        )
    except KeyError as exc:
        raise InvalidArgument.for_field(f"artifact.{exc.args[0]}", None, "present") from None


def metric_rows_to_json(rows: Any) -> list[list[Any]]:
    # x - x == 0 holds exactly for finite floats: one cheap test per value on the hot path.
    # Anything else travels as is (or as text) so that the server, which trusts no client, rejects it.
    return [[r[0], r[1], r[2] if type(r[2]) is float and r[2] - r[2] == 0 else _loose(r[2]), r[3], r[4]] for r in rows]


def _loose(x: Any) -> Any:
    if isinstance(x, float):
        return encode_float(x)
    return x if isinstance(x, (int, str)) or x is None else repr(x)


def metric_rows_from_json(payload: Any) -> list[tuple[Any, ...]]:
    """Rows from a request body ``{"rows": [[run_id, key, value, step, ts], ...]}``; strict about shape."""
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise InvalidArgument.for_field("rows", rows, "a list of [run_id, key, value, step, timestamp]")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 5:
            raise InvalidArgument.for_field("metric row", row, "[run_id, key, value, step, timestamp]")
        value = row[2]
        if type(value) is not float:
            value = decode_float(value, f"metric {row[1]!r} value")
        out.append((row[0], row[1], value, row[3], row[4]))
    return out


def version_to_json(d: DatasetVersion) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "version": d.version,
        "content_hash": d.content_hash,
        "artifact_sha256": d.artifact_sha256,
        "size": d.size,
        "row_count": d.row_count,
        "schema": [[c.name, c.type, c.nullable] for c in d.schema],
        "source": d.source,
        "role": d.role,
        "transform": d.transform,
        "parents": list(d.parents),
        "created_at": d.created_at,
    }


def schema_from_json(items: Any) -> tuple[ColumnSchema, ...]:
    if not isinstance(items, list):
        raise InvalidArgument.for_field("schema", items, "a list of [name, type, nullable]")
    out = []
    for item in items:
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str) or not isinstance(item[1], str):
            raise InvalidArgument.for_field("schema column", item, "[name, type, nullable]")
        out.append(ColumnSchema(item[0], item[1], bool(item[2])))
    return tuple(out)


def version_from_json(d: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        id=d["id"],
        name=d["name"],
        version=d["version"],
        content_hash=d["content_hash"],
        artifact_sha256=d["artifact_sha256"],
        size=d["size"],
        row_count=d["row_count"],
        schema=schema_from_json(d["schema"]),
        source=d.get("source", ""),
        role=d.get("role", "data"),
        transform=d.get("transform"),
        parents=tuple(d.get("parents") or ()),
        created_at=d.get("created_at", 0),
    )


def validation_to_json(r: ValidationRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "version_id": r.version_id,
        "suite": r.suite,
        "passed": r.passed,
        "errors": r.errors,
        "warnings": r.warnings,
        "result": r.result,
        "created_at": r.created_at,
    }


def validation_from_json(d: dict[str, Any]) -> ValidationRecord:
    return ValidationRecord(**d)


def run_dataset_link_to_json(link: RunDatasetLink) -> dict[str, Any]:
    return {"version": version_to_json(link.version), "direction": link.direction}


def run_dataset_link_from_json(run_id: str, d: dict[str, Any]) -> RunDatasetLink:
    return RunDatasetLink(run_id, version_from_json(d["version"]), d["direction"])


def model_version_to_json(mv: ModelVersion) -> dict[str, Any]:
    return {
        "id": mv.id,
        "name": mv.name,
        "version": mv.version,
        "flavor": mv.flavor,
        "artifact_sha256": mv.artifact_sha256,
        "size": mv.size,
        "signature": mv.signature,
        "source_run": mv.source_run,
        "metrics": mv.metrics,
        "datasets": list(mv.datasets),
        "requirements": list(mv.requirements),
        "description": mv.description,
        "created_at": mv.created_at,
        "aliases": list(mv.aliases),
        "dataset_version_ids": list(mv.dataset_version_ids),
    }


def model_version_from_json(d: dict[str, Any]) -> ModelVersion:
    return ModelVersion(**{**d, "datasets": tuple(d["datasets"]), "requirements": tuple(d["requirements"]),
                           "aliases": tuple(d["aliases"]),
                           "dataset_version_ids": tuple(d.get("dataset_version_ids") or ())})  # fmt: skip


def alias_change_to_json(c: AliasChange) -> dict[str, Any]:
    return {
        "model": c.model,
        "alias": c.alias,
        "from_version": c.from_version,
        "to_version": c.to_version,
        "actor": c.actor,
        "reason": c.reason,
        "at": c.at,
        "gated": c.gated,
        "forced": c.forced,
        "checks": c.checks,
    }


def alias_change_from_json(d: dict[str, Any]) -> AliasChange:
    return AliasChange(**d)


def cached_step_to_json(c: CachedStep) -> dict[str, Any]:
    return {"cache_key": c.cache_key, "run_id": c.run_id, "step": c.step, "outputs": c.outputs, "created_at": c.created_at}


def cached_step_from_json(d: dict[str, Any]) -> CachedStep:
    return CachedStep(**d)


def deployment_to_json(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "primary": d.primary,
        "shadows": list(d.shadows),
        "canaries": [[uri, weight] for uri, weight in d.canaries],
        "sticky_key": d.sticky_key,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def deployment_from_json(d: dict[str, Any]) -> Deployment:
    return Deployment(**{**d, "shadows": tuple(d["shadows"]), "canaries": tuple((u, float(w)) for u, w in d["canaries"])})


def deployment_change_to_json(c: DeploymentChange) -> dict[str, Any]:
    return {
        "deployment": c.deployment,
        "what": c.what,
        "from_routes": c.from_routes,
        "to_routes": c.to_routes,
        "actor": c.actor,
        "reason": c.reason,
        "at": c.at,
    }


def deployment_change_from_json(d: dict[str, Any]) -> DeploymentChange:
    return DeploymentChange(**d)


def prediction_log_file_to_json(f: PredictionLogFile) -> dict[str, Any]:
    return {
        "deployment": f.deployment,
        "sha256": f.sha256,
        "rows": f.rows,
        "start_ms": f.start_ms,
        "end_ms": f.end_ms,
        "replica": f.replica,
        "size": f.size,
        "created_at": f.created_at,
    }


def prediction_log_file_from_json(d: dict[str, Any]) -> PredictionLogFile:
    return PredictionLogFile(**d)


def prediction_labels_to_json(labels: list[PredictionLabel]) -> list[list[Any]]:
    """Rows of ``[request_id, row, label, at]``: a window may hold 100,000 labels, all of one deployment."""
    return [[x.request_id, x.row, x.label, x.at] for x in labels]


def prediction_labels_from_json(deployment: str, rows: list[list[Any]]) -> list[PredictionLabel]:
    return [PredictionLabel(deployment, r, n, label, at) for r, n, label, at in rows]


def blob_trust_to_json(b: BlobTrust) -> dict[str, Any]:
    return {"sha256": b.sha256, "principal": b.principal, "writers": list(b.writers), "trusted": b.trusted, "reason": b.reason}


def blob_trust_from_json(d: dict[str, Any]) -> BlobTrust:
    return BlobTrust(d["sha256"], d["principal"], tuple(d["writers"]), bool(d["trusted"]), d["reason"])


def principal_to_json(p: Principal) -> dict[str, Any]:
    return {"name": p.name, "kind": p.kind, "created_at": p.created_at, "created_by": p.created_by, "disabled": p.disabled}


def principal_from_json(d: dict[str, Any]) -> Principal:
    return Principal(**d)


def role_binding_to_json(b: RoleBinding) -> dict[str, Any]:
    return {"principal": b.principal, "role": b.role, "project": b.project, "model": b.model, "created_at": b.created_at}


def role_binding_from_json(d: dict[str, Any]) -> RoleBinding:
    return RoleBinding(**d)


def api_token_to_json(k: ApiToken) -> dict[str, Any]:
    """A token's record: never its secret nor its hash."""
    return {
        "id": k.id,
        "principal": k.principal,
        "name": k.name,
        "scopes": list(k.scopes),
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "last_used_at": k.last_used_at,
    }


def api_token_from_json(d: dict[str, Any]) -> ApiToken:
    return ApiToken(**{**d, "scopes": tuple(d["scopes"])})


def new_token_to_json(n: NewToken) -> dict[str, Any]:
    return {"token": api_token_to_json(n.token), "secret": n.secret}


def new_token_from_json(d: dict[str, Any]) -> NewToken:
    return NewToken(api_token_from_json(d["token"]), d["secret"])


def authenticated_to_json(pair: tuple[Principal, ApiToken]) -> dict[str, Any]:
    return {"principal": principal_to_json(pair[0]), "token": api_token_to_json(pair[1])}


def authenticated_from_json(d: dict[str, Any]) -> tuple[Principal, ApiToken]:
    return principal_from_json(d["principal"]), api_token_from_json(d["token"])
