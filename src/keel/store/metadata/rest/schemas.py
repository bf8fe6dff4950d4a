"""Request bodies of the REST API (pydantic), shared by the REST client and the server.

Each model is the body of one endpoint of ``keel.store.metadata.rest.endpoints``. Field names
are the store method's parameter names (a trailing ``_`` is dropped: ``schema_`` is ``schema``);
where the JSON name differs it is the field's alias (``time_ms`` travels as ``"time"``). The
server validates a body with its model and passes the fields to the store method by name; the
client builds the same JSON from the method's arguments. The models also make the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentIn(_Body):
    name: str
    project: str = "default"


class CodeIn(_Body):
    git_commit: str | None = None
    git_dirty_hash: str | None = None
    entry_point: str | None = None
    entry_point_hash: str | None = None


class EnvironmentIn(_Body):
    python_version: str | None = None
    platform: str | None = None
    packages_hash: str | None = None
    packages_blob: str | None = None


class StepIn(_Body):
    name: str
    cache_key: str
    cached_from: str | None = None


class TrialIn(_Body):
    number: int
    params: dict[str, Any] = Field(default_factory=dict)


class RunIn(_Body):
    experiment_id: int
    name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    code: CodeIn | None = None
    environment: EnvironmentIn | None = None
    start_time: int | None = None
    kind: str = "run"
    step: StepIn | None = None
    trial: TrialIn | None = None


class TrialResultIn(_Body):
    state: str
    value: Any = None  # a number, or "NaN", "Infinity", "-Infinity" (checked by wire.decode_float)


class EndRunIn(_Body):
    status: str
    end_time: int | None = None
    metrics: list[Any] = Field(default_factory=list)  # the client's last buffered rows, checked by wire


class HeartbeatIn(_Body):
    run_ids: list[str]
    time_ms: int | None = Field(default=None, alias="time")


class ParamsIn(_Body):
    params: dict[str, str]


class TagsIn(_Body):
    tags: dict[str, str]


class ArtifactIn(_Body):
    path: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


class ArtifactsIn(_Body):
    refs: list[ArtifactIn] = Field(alias="artifacts")


class SearchIn(_Body):
    experiment_ids: list[int] | None = None
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    max_results: int = 100
    page_token: str | None = None
    view: str = "active"


class EmptyIn(_Body):
    """A POST that carries nothing but its path (restores): a JSON body all the same, as every POST."""


class DatasetVersionIn(_Body):
    name: str
    content_hash: str
    artifact_sha256: str
    size: int
    row_count: int
    schema_: list[Any] = Field(alias="schema")
    source: str = ""
    role: str = "data"
    parent_ids: list[int] = Field(default_factory=list)
    transform: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None


class RunLinkIn(_Body):
    run_id: str
    direction: str


class ValidationIn(_Body):
    suite: str
    passed: bool
    errors: int
    warnings: int
    result: dict[str, Any]


class StepCacheIn(_Body):
    run_id: str
    step: str
    outputs: dict[str, Any]


class ModelVersionIn(_Body):
    name: str
    flavor: str
    artifact_sha256: str
    size: int
    signature: dict[str, Any]
    source_run: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    datasets: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    description: str = ""


class AliasIn(_Body):
    """A gated alias move (``keel.core.promotion``): rules or require_valid_data, or an explicit force."""

    version: int | None
    rules: list[str] = Field(default_factory=list)
    require_valid_data: bool = False
    expected_from: int | Literal["any"] | None = "any"
    force: bool = False
    actor: str = Field(default="", max_length=100)  # ignored by the server: the caller is the actor (server/routes/models.py)
    reason: str = ""


Canary = tuple[str, StrictFloat | StrictInt]  # a weight is a number, not text that reads as one


class DeploymentIn(_Body):
    name: str
    primary: str
    shadows: list[str] = Field(default_factory=list)
    canaries: list[Canary] = Field(default_factory=list)
    sticky_key: str | None = None
    actor: str = Field(default="", max_length=100)  # ignored by the server: the caller is the actor (server/routes/models.py)
    reason: str = ""


class RoutesIn(_Body):
    """A change of routes: a field left out (None) stays as it is."""

    primary: str | None = None
    shadows: list[str] | None = None
    canaries: list[Canary] | None = None
    sticky_key: str | None = None
    expected_updated_at: int | None = None
    actor: str = Field(default="", max_length=100)
    reason: str = ""


class RollbackIn(_Body):
    expected_updated_at: int | None = None
    actor: str = Field(default="", max_length=100)
    reason: str = ""


class LogFileIn(_Body):
    deployment: str
    sha256: str
    rows: StrictInt
    start_ms: StrictInt
    end_ms: StrictInt
    replica: str
    size: StrictInt = 0
    created_at: StrictInt = 0  # the server's store sets it


class PredictionFileIn(_Body):
    file: LogFileIn


class LabelsIn(_Body):
    """``[request_id, row, label]`` triples, the label any JSON value (the server's store checks them all)."""

    labels: list[tuple[str, StrictInt, Any]]


class LabelSearchIn(_Body):
    """A POST body because 100,000 request ids do not fit a query string."""

    request_ids: list[str] | None = None
    since_ms: StrictInt | None = None


class PrincipalIn(_Body):
    name: str
    kind: str = "user"


class DisabledIn(_Body):
    disabled: StrictBool


class BindingIn(_Body):
    principal: str
    role: str
    project: str = "*"
    model: str | None = None


class TokenIn(_Body):
    principal: str
    name: str = ""
    scopes: list[str] = Field(default_factory=list)
    expires_at: StrictInt | None = None


class TrustedRolesIn(_Body):
    project: str
    roles: list[str]


class AuthenticateIn(_Body):
    """The token travels in the body, never in a path or query string (which access logs keep)."""

    token: str
