"""``RestStore``: the metadata store interface over HTTP, against a ``keel server``.

One HTTP request per store call; a metric flush is one ``POST /api/v1/metrics``.
Server errors come back as the same ``keel`` error classes (``keel.store.http_transport``).

The methods come from the endpoint table (``keel.store.metadata.rest.endpoints``): each class
inherits its group of entries, which implement the ABC's methods. Only the metric writes are
written here: ``log_metrics`` and ``end_run`` carry a batch id in the ``Idempotency-Key``
header, so they are safe to resend: the transport sends them again with the same id when no
answer came back, and the server applies them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keel.core.entities import RunStatus
from keel.core.errors import PermissionDenied
from keel.store.http_transport import IDEMPOTENCY_KEY, RESEND, HttpTransport
from keel.store.metadata.audit import AuditStore
from keel.store.metadata.base import MetadataStore, MetricRow, check_batch_id, new_batch_id
from keel.store.metadata.datasets import DatasetStore
from keel.store.metadata.deployments import DeploymentStore
from keel.store.metadata.identity import IdentityStore
from keel.store.metadata.labels import LabelStore
from keel.store.metadata.models import ModelStore
from keel.store.metadata.monitors import MonitorStore
from keel.store.metadata.pipelines import PipelineStore
from keel.store.metadata.predictions import PredictionStore
from keel.store.metadata.privacy import PrivacyStore
from keel.store.metadata.rest import wire
from keel.store.metadata.rest.endpoints import (
    AuditEndpoints,
    DatasetEndpoints,
    DeploymentEndpoints,
    IdentityEndpoints,
    LabelEndpoints,
    MetadataEndpoints,
    ModelEndpoints,
    MonitorEndpoints,
    PipelineEndpoints,
    PredictionEndpoints,
    PrivacyEndpoints,
    _run_id,
)

__all__ = [
    "IDEMPOTENCY_KEY",
    "RESEND",
    "RestAuditStore",
    "RestDatasetStore",
    "RestDeploymentStore",
    "RestIdentityStore",
    "RestLabelStore",
    "RestModelStore",
    "RestMonitorStore",
    "RestPipelineStore",
    "RestPredictionStore",
    "RestPrivacyStore",
    "RestStore",
]


class RestStore(MetadataEndpoints, MetadataStore):
    def __init__(
        self,
        uri: str,
        *,
        heartbeat_timeout: float | None = None,
        timeout: float | Any = 60.0,  # seconds, or an httpx.Timeout
        token: str | None = None,
    ) -> None:
        self.uri = uri.rstrip("/")
        self._heartbeat_timeout: float | None = None
        self.transport = HttpTransport(self.uri, timeout=timeout, token=token)

    def __repr__(self) -> str:
        return f"RestStore({self.uri!r})"

    @property
    def audit(self) -> RestAuditStore:
        return RestAuditStore(self)

    @property
    def models(self) -> RestModelStore:
        return RestModelStore(self)

    @property
    def deployments(self) -> RestDeploymentStore:
        return RestDeploymentStore(self)

    @property
    def identity(self) -> RestIdentityStore:
        return RestIdentityStore(self)

    @property
    def predictions(self) -> RestPredictionStore:
        return RestPredictionStore(self)

    @property
    def monitors(self) -> RestMonitorStore:
        return RestMonitorStore(self)

    @property
    def labels(self) -> RestLabelStore:
        return RestLabelStore(self)

    @property
    def privacy(self) -> RestPrivacyStore:
        return RestPrivacyStore(self)

    @property
    def pipelines(self) -> RestPipelineStore:
        return RestPipelineStore(self)

    @property
    def datasets(self) -> RestDatasetStore:
        return RestDatasetStore(self)

    @property
    def heartbeat_timeout(self) -> float:  # type: ignore[override]
        """The server's: it decides when a silent run reads as killed."""
        if self._heartbeat_timeout is None:
            self._heartbeat_timeout = float(self._call("GET", "/health")["heartbeat_timeout"])
        return self._heartbeat_timeout

    def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None, batch_id: str | None = None
    ) -> Any:
        return self.transport.call(method, path, body, params=params, idempotency_key=batch_id)

    # written by hand: the batch id travels in a header (see keel.store.metadata.rest.endpoints) -------------------
    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        body = {
            "status": RunStatus(status).value if isinstance(status, RunStatus) else status,
            "end_time": end_time,
            "metrics": wire.metric_rows_to_json(metrics),
        }
        batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
        self._call("POST", f"/runs/{_run_id(run_id)}/end", body, batch_id=batch_id)

    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        if rows:
            batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
            self._call("POST", "/metrics", {"rows": wire.metric_rows_to_json(rows)}, batch_id=batch_id)

    def close(self) -> None:
        self.transport.close()


class _SubStore:
    """A store of the same server, sharing the ``RestStore``'s transport."""

    def __init__(self, store: RestStore) -> None:
        self.transport = store.transport


class RestAuditStore(AuditEndpoints, _SubStore, AuditStore):
    """The audit log over HTTP, read-only; ``verify`` pages through the events on the client."""


class RestDatasetStore(DatasetEndpoints, _SubStore, DatasetStore):
    """The dataset store over HTTP."""


class RestModelStore(ModelEndpoints, _SubStore, ModelStore):
    """The model registry over HTTP. Alias moves are checked by the server's store (gates, holder) in its transaction."""


class RestPipelineStore(PipelineEndpoints, _SubStore, PipelineStore):
    """The step cache over HTTP."""


class RestDeploymentStore(DeploymentEndpoints, _SubStore, DeploymentStore):
    """Deployments over HTTP. Routes, the compare-and-swap and the history are the server's store's, in its transaction."""


class RestPredictionStore(PredictionEndpoints, _SubStore, PredictionStore):
    """The prediction log's index and labels over HTTP; idempotent, so a request whose answer was lost may be sent again."""


class RestMonitorStore(MonitorEndpoints, _SubStore, MonitorStore):
    """Monitors, windows, alerts, actions and leases over HTTP. The dedup keys (a window's start, a rule's firing
    alert, an alert's action) and the lease's compare-and-set are the server's store's, in its transaction."""


class RestLabelStore(LabelEndpoints, _SubStore, LabelStore):
    """Label projects over HTTP. Assignment, leases and the once-only submit of a request id are the server's store's,
    in its transaction; the annotator is the token's principal, never a field of a request."""


class RestPrivacyStore(PrivacyEndpoints, _SubStore, PrivacyStore):
    """Privacy budgets and spends over HTTP. The budget's lock, the check and the once-only spend of a request id are the
    server's store's, in its transaction; the spender is the token's principal."""


class RestIdentityStore(IdentityEndpoints, _SubStore, IdentityStore):
    """Principals, role bindings and tokens over HTTP. Tokens are verified (and their secrets hashed) by the server's
    store; the secret of a new token is in the answer of ``create_token`` only."""

    def record_blob_writer(self, sha256: str) -> None:
        raise PermissionDenied("a keel server records who wrote a blob itself, when the blob is uploaded")
