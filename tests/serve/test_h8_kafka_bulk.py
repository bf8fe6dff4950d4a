"""The Kafka producer process encodes a batch column by column (``kafka_process.encoded``): its messages are, byte
for byte, those the row-by-row encoding (``KafkaSink.encode`` of each row read back) makes of the same batch, in
JSON and in Avro, whatever the batch holds; and they reach a real broker (Tansu) from the child process."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import numpy as np
import orjson
import pytest
from tests.serve.test_logged_batch import CASES, batch, matrix, proba
from tests.serve.test_predlog import consume, make_rows

from keel.serve.kafka_process import FLOAT32_SAME, _ipc, _rows_of, _table, encoded
from keel.serve.kafka_sink import AVRO_SCHEMA, KafkaSink
from keel.serve.parquet_sink import rows_to_table
from keel.serve.predlog import LoggedBatch, PredictionLog
from keel.testing.store_contract import unique

FORMATS = ("json", "avro")


def row_by_row(table: Any, sink: KafkaSink) -> tuple[list[str], list[bytes | None]]:
    """What the child sent before: each row read back as a dict, encoded alone (None: it could not be)."""
    keys: list[str] = []
    values: list[bytes | None] = []
    for row in _rows_of(table):
        keys.append(str(row.get("request_id") or ""))
        try:
            values.append(sink.encode(row))
        except Exception:  # noqa: BLE001 - the row path's own rule: the row is counted, not sent
            values.append(None)
    return keys, values


def through_pipe(entries: list[Any], deployment: str = "churn", replica: str = "host-1") -> Any:
    """The table as the child receives it (Arrow IPC bytes from the serving process)."""
    return _table(_ipc(rows_to_table(entries, deployment, replica)))


def sink_for(fmt: str) -> KafkaSink:
    return KafkaSink("churn", "127.0.0.1:1", fmt=fmt, process=False)


def breast_cancer_like(n: int, *, dtype: Any = np.float32, seed: int = 0) -> list[LoggedBatch]:
    """Batches like the benchmark's: 30 numeric inputs, one row per request, ONNX's float32 probabilities (some
    tiny, as a logistic model gives far from the boundary), unique request ids."""
    rng = np.random.default_rng(seed)
    names = tuple(f"mean feature {i}" for i in range(30))
    batches = []
    for start in range(0, n, 16):
        k = min(16, n - start)
        p = rng.uniform(size=k) ** rng.integers(1, 40, size=k)
        requests = [
            {"data": rng.normal(size=(1, 30)) * 10.0 ** rng.integers(-3, 4, size=(1, 30)), "names": names,
             "outputs": {"predict": np.array([int(p[i] > 0.5)]), "predict_proba": np.array([[1 - p[i], p[i]]], dtype=dtype)}}
            for i in range(k)
        ]  # fmt: skip
        b = batch(requests, time_ms=1_700_000_000_000 + start)
        b.request_ids = tuple(f"{start + i:032x}" for i in range(k))
        batches.append(b)
    return batches


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(CASES))
def test_bulk_messages_are_the_row_by_row_messages_for_every_kind_of_batch(name: str, fmt: str) -> None:
    table = through_pipe(CASES[name])
    sink = sink_for(fmt)
    keys, values = encoded(table, sink)
    assert (keys, values) == row_by_row(table, sink)
    assert len(values) == sum(b.size for b in CASES[name]) and None not in values


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bulk_messages_match_on_a_benchmark_like_batch_with_tiny_and_huge_numbers(fmt: str, dtype: Any) -> None:
    batches = breast_cancer_like(600, dtype=dtype)
    table = through_pipe(batches)
    sink = sink_for(fmt)
    keys, values = encoded(table, sink)
    assert (keys, values) == row_by_row(table, sink)
    probas = np.concatenate([r[0]["predict_proba"] for b in batches for r in b.results if r is not None]).ravel()
    # the float32 numbers orjson prints otherwise than their float64 reading were there, and were fixed one by one
    assert dtype is np.float64 or ((probas != 0) & (np.abs(probas) < FLOAT32_SAME[0])).any()
    if fmt == "json":
        first = orjson.loads(values[0])  # type: ignore[arg-type]
        assert list(first) == ["request_id", "row", "time", "deployment", "route", "model", "served", "inputs",
                               "output", "proba", "latency_ms", "replica", "status"]  # fmt: skip
        assert first["inputs"]["mean feature 0"] == batches[0].data[0][0, 0]


def test_float32_probabilities_at_the_edges_print_as_their_float64_reading() -> None:
    edges = [0.0, -0.0, 1e-4, 9.9999e-5, 1e-45, 3.4e38, 1e13, 9.99999e12, 0.1, 1.0, 100.0, np.nan, np.inf, -np.inf]
    requests = [
        {"data": matrix([1.0, 2.0]), "outputs": {"predict": np.array([1]), "predict_proba": proba([v, 1.0], dtype=np.float32)}}
        for v in edges
    ]
    table = through_pipe([batch(requests)])
    for fmt in FORMATS:
        sink = sink_for(fmt)
        assert encoded(table, sink) == row_by_row(table, sink)


def test_strings_that_need_escaping_commas_and_percent_signs_are_encoded_as_before() -> None:
    names = ('a "quoted" name', "b,%s%%")
    requests = [
        {"data": matrix([1.0, np.nan]), "names": names, "model": 'models:/"odd",one/1',
         "outputs": {"predict": np.array(['l,"a"\\b'], dtype=object)}},
        {"data": matrix([np.inf, -0.0]), "names": names, "kind": "shadow", "outputs": {"predict": np.array(["é 🙂"])}},
    ]  # fmt: skip
    logged = batch(requests)
    logged.request_ids = ('id",', 'id-2","')
    many = batch([{"data": matrix([float(i), 1.0]), "outputs": {"predict": np.array([i])}} for i in range(40)])
    many.request_ids = tuple(f'r{i}",' if i == 7 else f"r{i}" for i in range(40))  # distinct ids, one that escapes
    for entries in ([logged], [many]):
        table = through_pipe(entries, replica="")  # an empty replica: the sink's, as before
        for fmt in FORMATS:
            sink = sink_for(fmt)
            assert encoded(table, sink) == row_by_row(table, sink)


def test_rows_offered_one_by_one_with_json_inputs_and_missing_probabilities_match() -> None:
    rows = make_rows("req-1", 5, 1_000) + make_rows("req-2", 3, 2_000, route="shadow", model="models:/churn/2")
    rows[2]["status"] = None  # a row from before the status column
    table = through_pipe(rows, deployment="churn")
    for fmt in FORMATS:
        sink = sink_for(fmt)
        keys, values = encoded(table, sink)
        assert (keys, values) == row_by_row(table, sink)
    record: Any = fastavro.schemaless_reader(io.BytesIO(values[2]), fastavro.parse_schema(AVRO_SCHEMA))  # type: ignore[arg-type]
    assert record["status"] is None and record["proba"] is None and orjson.loads(record["inputs"]) == {"x": 2.0, "city": "Lyon"}


def test_a_row_avro_cannot_hold_costs_that_row_only() -> None:
    rows = make_rows("req-1", 3, 1_000)
    rows[1]["route"] = None  # Avro's route is a string: this row cannot be encoded
    table = through_pipe(rows)
    keys, values = encoded(table, sink_for("avro"))
    assert values[1] is None and None not in (values[0], values[2])
    assert (keys, values) == row_by_row(table, sink_for("avro"))
    _, as_json = encoded(table, sink_for("json"))
    assert orjson.loads(as_json[1])["route"] is None  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_child_process_sends_the_bulk_messages_to_the_broker(kafka_bootstrap: str, fmt: str) -> None:
    topic = unique(f"preds.bulk.{fmt}")
    sink = KafkaSink("churn", kafka_bootstrap, topic=topic, fmt=fmt)  # the producer in a child process
    batches = breast_cancer_like(64) + CASES["a failed request beside answered ones"]
    log = PredictionLog(sink)
    for b in batches:
        assert log.offer_batch(b)
    log.close()
    total = sum(b.size for b in batches)
    assert (log.written, log.failed, log.dropped) == (total, 0, 0)
    messages = consume(kafka_bootstrap, topic, total)
    assert len(messages) == total
    # what the broker holds is what the row-by-row encoding makes of the batch the child received
    table = through_pipe(batches, replica=sink.replica)
    by_key: dict[str, list[bytes]] = {}
    for key, value in zip(*row_by_row(table, sink_for(fmt)), strict=True):
        by_key.setdefault(key, []).append(value)  # type: ignore[arg-type]
    received: dict[str, list[bytes]] = {}
    for m in messages:
        received.setdefault(m.key().decode(), []).append(m.value())
    assert received == by_key  # the rows of a request share a partition, in order
