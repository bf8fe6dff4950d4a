"""A store with a governed history for the lineage and compliance tests: a raw dataset and a cleaned one derived
from it (validated), two tracked training runs, two registered versions, ``production`` moved through gates from v1
to v2, a deployment following it and later pinned to v1 with v2 as its shadow, and one logged request after each
change. Every moment the tests ask about is recorded in ``GovernedHistory``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from keel.context import Context

MODEL = "churn"
DEPLOYMENT = "live"


@dataclass(frozen=True)
class GovernedHistory:
    raw: Any  # DatasetVersion raw@1 (source s3://bucket/raw.csv)
    clean: Any  # DatasetVersion clean@N derived from raw
    run1: str
    run2: str
    v1: Any  # ModelVersion
    v2: Any
    before: int  # before the deployment and the alias existed
    promoted_v1: int  # production -> v1 (gated), deployment created on the alias just after
    created: int
    promoted_v2: int  # production -> v2 (gated)
    followed: int  # the deployment's ``alias`` change recording that move
    pinned: int  # the deployment pinned to v1 with production (v2) as its shadow
    requests: dict[str, int]  # request id -> the time it was logged: req-a (v1), req-b (v2), req-c (v1 + shadow v2)


def _tick() -> int:
    """A moment strictly after everything recorded so far (the stores stamp changes in ms)."""
    time.sleep(0.005)
    moment = int(time.time() * 1000)
    time.sleep(0.005)
    return moment


def _log(ctx: Context, deployment: str, rows: list[dict[str, Any]]) -> None:
    from keel.serve.parquet_sink import ParquetSink
    from keel.serve.predlog import PredictionLog

    log = PredictionLog(ParquetSink(deployment, ctx))
    log.offer(rows)
    log.close()


def _row(deployment: str, request_id: str, at: int, route: str, model: str, served: bool, output: int) -> dict[str, Any]:
    return {"request_id": request_id, "row": 0, "time": at, "deployment": deployment, "route": route, "model": model,
            "served": served, "inputs": {"a": 1.0, "b": 2.0}, "output": output, "proba": None, "latency_ms": 0.4,
            "replica": "replica-1", "status": 200}  # fmt: skip


def governed_history(ctx: Context, *, suffix: str = "") -> GovernedHistory:
    """Build the history in ``ctx``'s stores (``suffix`` keeps names apart on a shared server store: datasets
    ``raw<suffix>``/``clean<suffix>``, model ``churn<suffix>``, deployment ``live<suffix>``)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import keel.data
    import keel.registry as registry
    from keel.core.actor import acting_as
    from keel.data.suite import infer_suite
    from keel.tracking.client import Client

    model, deployment = MODEL + suffix, DEPLOYMENT + suffix
    rng = np.random.default_rng(7)
    raw_frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    raw_frame.loc[::10, "a"] = np.nan
    raw_frame["y"] = (raw_frame["b"] > 0).astype(int)
    clean_frame = raw_frame.dropna().reset_index(drop=True)
    with acting_as("etl"):
        raw = keel.data.log(raw_frame, "raw" + suffix, source="s3://bucket/raw.csv", run=False, ctx=ctx)
        clean = keel.data.log(clean_frame, "clean" + suffix, parents=[raw], suite=infer_suite(clean_frame, "clean-suite"),
                              transform={"name": "dropna"}, run=False, ctx=ctx)  # fmt: skip
    client = Client(ctx)
    versions, runs = [], []
    X, y = clean_frame[["a", "b"]], clean_frame["y"]
    for c, auc in ((1.0, 0.81), (0.1, 0.86)):
        with acting_as("trainer"):
            run = client.create_run("training", f"fit-C{c}", params={"C": c}, capture_code=False)
            keel.data.get(clean, run=run.id, ctx=ctx)
            client.log_metric(run.id, "auc", auc)
            fitted = LogisticRegression(C=c).fit(X, y)
            versions.append(registry.register(fitted, model, run=run.id, input_example=X.head(3), ctx=ctx))
            client.end_run(run.id)
        runs.append(run.id)
    client.writer.close()  # its metrics written; the store is the caller's and stays open
    v1, v2 = versions
    before = _tick()
    with acting_as("alice"):
        registry.promote(model, 1, "production", rules=["auc >= 0.8"], require_valid_data=True, actor="alice",
                         reason="first release", ctx=ctx)  # fmt: skip
    promoted_v1 = ctx.store.models.alias_history(model, "production")[-1].at
    with acting_as("alice"):
        ctx.store.deployments.create(deployment, f"models:/{model}@production", actor="alice", reason="go live")
    created = ctx.store.deployments.history(deployment)[-1].at
    requests = {"req-a": _tick()}
    _log(ctx, deployment, [_row(deployment, "req-a", requests["req-a"], "primary", v1.uri, True, 1)])
    _tick()
    with acting_as("bob"):
        registry.promote(model, 2, "production", rules=["auc >= baseline + 0.01"], actor="bob", reason="better auc", ctx=ctx)
    promoted_v2 = ctx.store.models.alias_history(model, "production")[-1].at
    followed = ctx.store.deployments.history(deployment)[-1].at
    requests["req-b"] = _tick()
    _log(ctx, deployment, [_row(deployment, "req-b", requests["req-b"], "primary", v2.uri, True, 0)])
    _tick()
    with acting_as("carol"):
        ctx.store.deployments.set_routes(deployment, primary=v1.uri, shadows=[f"models:/{model}@production"],
                                         actor="carol", reason="pin v1, shadow production")  # fmt: skip
    pinned = ctx.store.deployments.history(deployment)[-1].at
    requests["req-c"] = _tick()
    _log(ctx, deployment, [_row(deployment, "req-c", requests["req-c"], "primary", v1.uri, True, 1),
               _row(deployment, "req-c", requests["req-c"], "shadow", v2.uri, False, 0)])  # fmt: skip
    return GovernedHistory(raw, clean, runs[0], runs[1], v1, v2, before, promoted_v1, created, promoted_v2, followed, pinned,
                           requests)  # fmt: skip
