"""The server logs one ``LoggedBatch`` per model call: the sinks make the same table of it, column by column, as
they make of the rows it stands for (``LoggedBatch.rows``), whatever the batch holds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.serve.parquet_sink import rows_to_table
from keel.serve.predictions import _decoded
from keel.serve.predlog import LoggedBatch, PredictionLog, expand

NAMES = ("a", "b")


def batch(requests: list[dict[str, Any]], *, time_ms: int = 1_700_000_000_000, seconds: float = 0.002) -> LoggedBatch:
    """A batch of ``requests``: each a dict with ``data`` and optionally ``outputs`` (None: failed), ``kind``,
    ``model``, ``names``, ``body``."""

    def size(data: Any) -> int:
        return int(data.shape[0]) if hasattr(data, "shape") else len(data)

    return LoggedBatch(
        "churn", "host-1", time_ms, seconds,
        tuple(r.get("kind", "primary") for r in requests), tuple(r.get("model", "models:/churn/1") for r in requests),
        tuple(r.get("names", NAMES) for r in requests), tuple(f"req{i}" for i in range(len(requests))),
        tuple(r.get("body") for r in requests), tuple(r["data"] for r in requests),
        tuple(size(r["data"]) for r in requests),
        tuple(None if r.get("outputs", {}) is None else (r.get("outputs", {}), 0.001 * (i + 1)) for i, r in enumerate(requests)),
    )  # fmt: skip


def matrix(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def proba(*rows: list[float], dtype: Any = np.float64) -> np.ndarray:
    return np.array(rows, dtype=dtype)


CASES: dict[str, list[LoggedBatch]] = {
    "one-row requests, labels and float64 probabilities": [
        batch(
            [
                {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([1]), "predict_proba": proba([0.2, 0.8])}},
                {"data": matrix([3.0, 4.0]), "outputs": {"predict": np.array([0]), "predict_proba": proba([0.9, 0.1])}},
            ]
        ),
        batch(
            [{"data": matrix([5.0, -6.5]), "outputs": {"predict": np.array([1]), "predict_proba": proba([0.4, 0.6])}}],
            time_ms=1_700_000_000_100,
        ),
    ],
    "multi-row requests, float32 probabilities (ONNX), a shadow": [
        batch(
            [
                {
                    "data": matrix([1.0, 2.0], [3.0, 4.0], [5.0, 6.0]),
                    "outputs": {
                        "predict": np.array([1, 0, 1]),
                        "predict_proba": proba([0.1, 0.9], [0.7, 0.3], [0.2, 0.8], dtype=np.float32),
                    },
                },
                {
                    "data": matrix([7.0, 8.0]),
                    "kind": "shadow",
                    "model": "models:/churn/2",
                    "outputs": {"predict": np.array([0]), "predict_proba": proba([0.6, 0.4], dtype=np.float32)},
                },
            ]
        ),
    ],
    "a failed request beside answered ones": [
        batch(
            [
                {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([2.5])}},
                {"data": matrix([3.0, 4.0], [np.nan, 1.0]), "outputs": None},
                {"data": matrix([5.0, 6.0]), "outputs": {"predict": np.array([np.inf])}},
            ]
        ),
    ],
    "string labels and probabilities of two widths": [
        batch(
            [
                {
                    "data": matrix([1.0, 2.0]),
                    "outputs": {"predict": np.array(["yes"], dtype=object), "predict_proba": proba([0.3, 0.7])},
                },
                {
                    "data": matrix([1.0, 2.0]),
                    "model": "models:/other/1",
                    "outputs": {"predict": np.array(["no"]), "predict_proba": proba([0.3, 0.3, 0.4])},
                },
            ]
        ),
    ],
    "frames sent as records, a body with more fields than the model reads": [
        batch(
            [
                {
                    "data": pd.DataFrame({"a": [1.0], "city": ["Lyon"]}),
                    "names": ("a", "city"),
                    "body": {"records": [{"a": 1.0, "city": "Lyon", "ignored": True}]},
                    "outputs": {"predict": np.array([True])},
                },
                {
                    "data": pd.DataFrame({"a": [2.0, 3.0], "city": ["Nice", None]}),
                    "names": ("a", "city"),
                    "body": {"columns": {"a": [2.0, 3.0], "city": ["Nice", None]}},
                    "outputs": {"predict": np.array([False, True])},
                },
            ]
        ),
    ],
    "two models with other input names: inputs as JSON objects": [
        batch(
            [
                {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([1])}},
                {"data": matrix([3.0, 4.0]), "names": ("x", "y"), "outputs": {"predict": np.array([0])}},
            ]
        ),
    ],
    "float32 outputs (an ONNX regressor)": [
        batch([{"data": matrix([1.0, 2.0], [3.0, 4.0]), "outputs": {"predict": np.array([0.1, np.nan], dtype=np.float32)}}]),
    ],
    "unsigned outputs": [batch([{"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([200], dtype=np.uint8)}}])],
    "int32 outputs beside int64 ones": [
        batch(
            [
                {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([3], dtype=np.int32)}},
                {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([4], dtype=np.int64)}},
            ]
        ),
    ],
    "a model with no signature names: inputs as lists": [
        batch([{"data": matrix([1.0, 2.0]), "names": None, "outputs": {"predict": np.array([[1.0, 2.0]])}}]),
    ],
}


def comparable(table: Any) -> list[dict[str, Any]]:
    """The table's rows with NaN spelled out (NaN != NaN)."""
    return [{k: "NaN" if isinstance(v, float) and v != v else v for k, v in row.items()} for row in table.to_pylist()]


@pytest.mark.parametrize("name", list(CASES))
def test_a_run_of_batches_makes_the_table_its_rows_make(name: str) -> None:
    batches = CASES[name]
    from_batches = rows_to_table(batches, "fallback", "fallback")
    from_rows = rows_to_table(expand(batches), "fallback", "fallback")
    assert from_batches.schema == from_rows.schema
    assert comparable(from_batches) == comparable(from_rows)
    assert from_batches.num_rows == sum(b.size for b in batches)


def test_the_rows_of_a_batch_hold_what_each_request_had() -> None:
    (logged,) = CASES["a failed request beside answered ones"]
    rows = logged.rows()
    assert [(r["request_id"], r["row"], r["status"], r["output"]) for r in rows] == [
        ("req0", 0, 200, 2.5), ("req1", 0, 500, None), ("req1", 1, 500, None), ("req2", 0, 200, float("inf")),
    ]  # fmt: skip
    # an answer's latency is its call's; a failed request's is the batch's wall time
    assert [r["latency_ms"] for r in rows] == pytest.approx([1.0, 2.0, 2.0, 3.0])
    assert rows[0]["input_names"] == NAMES and rows[0]["inputs"].tolist() == [1.0, 2.0]
    table = rows_to_table([logged], "d", "h")
    output = _decoded(table.schema.field("output"), table["output"])  # JSON text: numbers and nulls
    assert table["status"].to_pylist() == [200, 500, 500, 200] and output == [2.5, None, None, None]
    assert table["inputs.a"].to_pylist()[:2] == [1.0, 3.0] and table["row"].to_pylist() == [0, 0, 1, 0]


def test_a_mix_of_rows_and_batches_makes_one_table() -> None:
    (logged,) = CASES["one-row requests, labels and float64 probabilities"][:1]
    rows = logged.rows()
    table = rows_to_table([rows[0], logged, rows[1]], "d", "h")
    assert table["request_id"].to_pylist() == ["req0", "req0", "req1", "req1"]
    assert table["inputs.b"].to_pylist() == [2.0, 2.0, 4.0, 4.0]


class Tables:
    def __init__(self) -> None:
        self.batches: list[Any] = []

    def write(self, entries: Any) -> None:
        self.batches.append(rows_to_table(entries, "d", "h"))

    def close(self) -> None:
        pass


def test_the_log_counts_a_batch_by_its_rows_and_writes_at_most_max_batch_rows_at_once() -> None:
    sink = Tables()
    log = PredictionLog(sink, capacity=7, max_batch=4)
    three = batch([{"data": matrix([1.0, 2.0], [3.0, 4.0], [5.0, 6.0]), "outputs": {"predict": np.array([1, 0, 1])}}])
    assert log.offer_batch(three) and log.offer_batch(three)
    assert not log.offer_batch(three)  # 9 rows do not fit in 7
    log.close()
    assert (log.written, log.dropped, log.failed) == (6, 3, 0)
    assert [t.num_rows for t in sink.batches] == [3, 3]  # 3 + 3 > max_batch: two writes
