"""Windows that once stopped a monitor: failed answers among the rows (no probabilities), an input named like a
log field, and suite checks that cannot run on live rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel.data
from keel.context import Context
from keel.data.checks import Custom, Type
from keel.data.suite import Suite
from keel.monitor.windows import evaluate_table, evaluate_window, reference_suite
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog

T0 = 1_700_000_000_000


def _rows(tag: str, n: int, *, failed_every: int = 0, extra: dict[str, object] | None = None) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        failed = failed_every and i % failed_every == 0
        p = 0.2 + 0.6 * (i % 2)
        rows.append({
            "request_id": f"{tag}{i}", "row": 0, "time": T0 + i, "deployment": "d", "route": "primary", "model": "m",
            "served": True, "inputs": np.array([float(i), float(i % 7)]), "input_names": ("x", "status"),
            "output": None if failed else int(p > 0.5), "proba": None if failed else np.array([1 - p, p]),
            "latency_ms": 1.0, "replica": "t", "status": 500 if failed else 200, **(extra or {}),
        })  # fmt: skip
    return rows


@pytest.fixture
def ctx(tmp_path):
    context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    context.store.deployments.create("d", "models:/m/1")
    yield context
    context.close()


def _log(ctx: Context, rows: list[dict[str, object]]) -> None:
    log = PredictionLog(ParquetSink("d", ctx))
    log.offer(rows)
    log.close()
    assert log.written == len(rows)


def test_failed_answers_keep_the_others_probabilities_and_an_input_named_status_stays_an_input(ctx) -> None:
    _log(ctx, _rows("a", 40, failed_every=10))  # one file with failures: no proba on 4 rows
    _log(ctx, _rows("b", 40))  # one file without
    result = evaluate_window("d", since=T0, until=T0 + 1_000, ctx=ctx, labels=False)
    assert result.health["error_rate"] == pytest.approx(4 / 80) and result.profile.rows == 76
    assert result.performance["estimated"] is not None  # the answered rows' probabilities still count
    assert "inputs.status" in result.profile.columns and "proba1" in result.profile.columns
    assert result.health["requests"] == 80  # the log's own status column, not the input named status


def test_suite_checks_that_cannot_run_on_live_rows_are_skipped_not_fatal(ctx) -> None:
    frame = pd.DataFrame({"x": np.arange(50), "y": np.arange(50) * 2.0})
    suite = keel.data.infer_suite(frame, "train")
    # a custom check made from a function (nothing registered under its name) and a type check on integers
    extra = [Type(column="x", type="integer"), Custom(name="", column="y", fn=lambda df: df["y"] > -1)]
    keel.data.log(frame, "train", suite=Suite([*suite.checks, *extra], name="train"), ctx=ctx)
    loaded = reference_suite("train@1", ctx)
    assert loaded is not None and {c.kind for c in loaded.checks} >= {"custom", "type"}
    import pyarrow as pa

    table = pa.table({"x": np.arange(10, dtype=np.float64), "y": np.arange(10) * 2.0})
    result = evaluate_table(table, reference=None, suite=loaded)  # the custom check cannot run here: skipped
    assert result.quality["suite"]["failed_checks"] == 0  # integers logged as float64 are not a type failure
    assert not any(
        k.startswith(("suite_type", "suite_custom")) for k in result.quality.get("x", {}) | result.quality.get("y", {})
    )
    assert any(k.startswith("suite_") for k in result.quality["x"])  # the inferred checks did run
