"""The prediction log: the bounded writer, the Parquet sink on every store, the Kafka sink on a real broker,
reading a window back with labels joined, and the KEEL_PREDICTION_LOG setting."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import orjson
import pytest

from keel.context import Context
from keel.core.config import load_settings
from keel.core.errors import InvalidArgument, NotFound
from keel.core.predictions import LOG_COLUMNS
from keel.serve import PredictionLog, log_labels, read_predictions
from keel.serve.kafka_sink import AVRO_SCHEMA, KafkaSink, parse_kafka_url
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predictions import window_ms
from keel.serve.predlog import Entry, SinkFailure, expand, sink_for
from keel.testing.store_contract import unique


def make_rows(
    request_id: str, n: int, time_ms: int, *, route: str = "primary", model: str = "models:/churn/1"
) -> list[dict[str, Any]]:
    """``n`` logged rows of one request, as the serving app offers them (Python values, numpy included)."""
    return [
        {"request_id": request_id, "row": i, "time": time_ms, "deployment": "", "route": route, "model": model,
         "served": route != "shadow", "inputs": {"x": float(i), "city": "Lyon"}, "output": np.int64(i % 2),
         "proba": np.array([0.25, 0.75]) if i % 2 else None, "latency_ms": 1.5, "replica": None}
        for i in range(n)
    ]  # fmt: skip


class ListSink:
    """A sink that keeps what it is given; ``gate`` (when set) holds every write until it opens."""

    def __init__(self, gate: threading.Event | None = None, fail_first: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.gate = gate
        self.fail_first = fail_first
        self.closed = False

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for batch in self.batches for row in batch]

    def write(self, rows: Sequence[Entry]) -> None:
        if self.gate is not None:
            assert self.gate.wait(30)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionError("the sink is down")
        self.batches.append(expand(rows))

    def close(self) -> None:
        self.closed = True


# the writer -------------------------------------------------------------------------------------------------
def test_close_writes_every_row_offered_in_order_in_batches_of_at_most_max_batch() -> None:
    sink = ListSink()
    log = PredictionLog(sink, capacity=10_000, max_batch=100, flush_interval=30)
    for n in range(25):
        assert log.offer(make_rows(f"r{n}", 40, 1_000 + n)) is True
    log.close()
    assert log.written == 1_000 and log.dropped == 0 and log.failed == 0 and log.queued == 0
    assert [(r["request_id"], r["row"]) for r in sink.rows] == [(f"r{n}", i) for n in range(25) for i in range(40)]
    assert max(len(b) for b in sink.batches) == 100 and sum(map(len, sink.batches)) == 1_000
    assert sink.closed
    # after close nothing is accepted, and what is refused is counted
    assert log.offer(make_rows("late", 3, 9_999)) is False
    assert log.dropped == 3 and log.written == 1_000


def test_flush_waits_for_the_rows_offered_so_far_and_the_interval_writes_without_flush() -> None:
    sink = ListSink()
    log = PredictionLog(sink, max_batch=1_000, flush_interval=60)
    log.offer(make_rows("a", 3, 1))
    log.flush(timeout=10)  # the interval is a minute: flush must not wait for it
    assert log.written == 3 and [r["request_id"] for r in sink.rows] == ["a"] * 3
    log.close()

    quick = ListSink()
    log = PredictionLog(quick, max_batch=1_000, flush_interval=0.05)
    log.offer(make_rows("b", 2, 1))
    deadline = time.monotonic() + 10
    while log.written < 2:
        assert time.monotonic() < deadline, "the interval never wrote the rows"
        time.sleep(0.01)
    assert len(quick.rows) == 2 and log.queued == 0
    log.close()


def test_a_slow_sink_bounds_the_queue_drops_and_counts_the_rest_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    sink = ListSink(gate=gate)
    log = PredictionLog(sink, capacity=50, max_batch=20, flush_interval=0.01)
    accepted, longest = 0, 0.0
    with caplog.at_level(logging.WARNING, logger="keel.serve.predlog"):
        for n in range(40):
            started = time.perf_counter()
            ok = log.offer(make_rows(f"r{n}", 10, n))
            longest = max(longest, time.perf_counter() - started)
            accepted += 10 * ok
            assert log.queued <= 50  # rows in the queue and in the batch being written, together
    assert accepted == 50 and log.dropped == 400 - 50
    assert longest < 0.5, "offer waited for the blocked sink"
    warnings = [r for r in caplog.records if "prediction log is full" in r.getMessage()]
    assert len(warnings) == 1 and "dropped 10 rows, 10 in all" in warnings[0].getMessage()  # the first drop warns; the rest wait
    gate.set()
    log.close()
    assert log.written == 50 and log.written + log.dropped == 400 and log.failed == 0
    assert [r["request_id"] for r in sink.rows] == [f"r{n}" for n in range(5) for _ in range(10)]


def test_a_sink_that_raises_costs_its_batch_only_and_the_writer_goes_on() -> None:
    sink = ListSink(fail_first=1)
    log = PredictionLog(sink, max_batch=1_000, flush_interval=60)
    log.offer(make_rows("lost", 4, 1))
    log.flush()
    assert log.failed == 4 and log.written == 0
    log.offer(make_rows("kept", 6, 2))
    log.close()
    assert log.failed == 4 and log.written == 6 and [r["request_id"] for r in sink.rows] == ["kept"] * 6

    class HalfSink(ListSink):
        def write(self, rows: Sequence[Entry]) -> None:
            raise SinkFailure("2 rows refused", failed_rows=2)

    log = PredictionLog(HalfSink())
    log.offer(make_rows("half", 5, 1))
    log.close()
    assert log.failed == 2 and log.written == 3


def test_the_log_refuses_bad_limits_naming_them() -> None:
    for kwargs in ({"capacity": 0}, {"max_batch": True}, {"flush_interval": 0}):
        with pytest.raises(InvalidArgument, match=next(iter(kwargs))):
            PredictionLog(ListSink(), **kwargs)


# the setting and the sink it chooses -------------------------------------------------------------------------
def test_keel_prediction_log_chooses_the_sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEEL_PREDICTION_LOG", raising=False)
    assert load_settings(tmp_path).prediction_log == "parquet"
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"), settings=load_settings(tmp_path))
    parquet = sink_for("churn", ctx)
    assert isinstance(parquet, ParquetSink) and parquet.deployment == "churn"
    for value, expected in (
        ("kafka://10.0.0.1:9092", ("10.0.0.1:9092", "keel.predictions.churn", "json")),
        ("kafka://k1:9092,k2:9093/preds.churn?format=avro", ("k1:9092,k2:9093", "preds.churn", "avro")),
    ):
        monkeypatch.setenv("KEEL_PREDICTION_LOG", value)
        kafka = sink_for("churn", Context(ctx.store, str(tmp_path / "artifacts"), settings=load_settings(tmp_path)))
        assert isinstance(kafka, KafkaSink) and (kafka.bootstrap, kafka.topic, kafka.fmt) == expected
    monkeypatch.setenv("KEEL_PREDICTION_LOG", "OFF")
    assert sink_for("churn", Context(ctx.store, settings=load_settings(tmp_path))) is None
    for bad in ("kafka://nohost", "files", "kafka://h:1/t?format=xml", "kafka://h:1/bad topic"):
        monkeypatch.setenv("KEEL_PREDICTION_LOG", bad)
        with pytest.raises(InvalidArgument, match="KEEL_PREDICTION_LOG"):
            load_settings(tmp_path)
    (tmp_path / "keel.toml").write_text('[keel]\nprediction_log = "kafka://broker:9092/t"\n')
    monkeypatch.delenv("KEEL_PREDICTION_LOG")
    assert load_settings(tmp_path).prediction_log == "kafka://broker:9092/t"
    assert parse_kafka_url("kafka://broker:9092/t") == ("broker:9092", "t", "json")
    ctx.close()


def test_window_moments_parse_datetimes_ms_iso_and_durations_ago() -> None:
    now = 1_800_000_000_000
    assert window_ms("1h", "since", now) == now - 3_600_000
    assert window_ms("30m", "since", now) == now - 1_800_000
    assert window_ms("2d", "since", now) == now - 2 * 86_400_000
    assert window_ms("1.5s", "since", now) == now - 1_500
    assert window_ms(12_345, "since", now) == 12_345
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert window_ms(moment, "since") == int(moment.timestamp() * 1000)
    assert window_ms(moment.replace(tzinfo=None), "since") == int(moment.timestamp() * 1000)  # naive: UTC
    assert window_ms("2026-01-02T03:04:05+00:00", "until") == int(moment.timestamp() * 1000)
    assert window_ms(None, "since") is None
    for bad in ("yesterday", "1 fortnight", -5, True, 1.5):
        with pytest.raises(InvalidArgument, match="since"):
            window_ms(bad, "since")


# the Parquet sink and reading back, on every store -----------------------------------------------------------
def store_context(store_uri: str, tmp_path: Path) -> Context:
    """A context over ``store_uri``: a keel server keeps the blobs too, a database store a local folder."""
    artifacts = store_uri if store_uri.startswith("http") else str(tmp_path / "artifacts")
    return Context(store_uri, artifacts)


def test_parquet_log_reads_back_a_window_with_labels_joined(store_uri: str, tmp_path: Path) -> None:
    ctx = store_context(store_uri, tmp_path)
    name = unique("predlog")
    ctx.store.deployments.create(name, "models:/churn/1", shadows=["models:/churn/2"])
    log = PredictionLog(ParquetSink(name, ctx, replica="replica-a"), max_batch=10_000, flush_interval=60)
    for start in (1_000, 2_000, 3_000):  # one file per flush, with spans that do not overlap
        for k in range(3):
            rid = f"req-{start + k}"
            log.offer(make_rows(rid, 2, start + k) + make_rows(rid, 2, start + k, route="shadow", model="models:/churn/2"))
        log.flush()
    log.close()
    assert log.written == 36 and log.failed == 0
    files = ctx.store.predictions.log_files(name)
    assert [(f.start_ms, f.end_ms, f.rows, f.replica) for f in files] == [
        (s, s + 2, 12, "replica-a") for s in (1_000, 2_000, 3_000)
    ]

    assert log_labels(["req-2000", "req-2001"], [1, 0], deployment=name, ctx=ctx) == 2
    assert log_labels(["req-2001"], [1], deployment=name, rows=[1], ctx=ctx) == 1
    frame = read_predictions(name, since=1_500, until=2_001, ctx=ctx)
    assert list(frame.columns) == [*LOG_COLUMNS, "label"]
    assert len(frame) == 8 and set(frame["request_id"]) == {"req-2000", "req-2001"}
    assert frame["time"].tolist() == [2_000] * 4 + [2_001] * 4
    first = frame.iloc[0].to_dict()
    assert first["inputs"] == {"x": 0.0, "city": "Lyon"} and first["output"] == 0 and first["proba"] is None
    assert first["deployment"] == name and first["replica"] == "replica-a" and first["latency_ms"] == 1.5
    second = frame.iloc[1].to_dict()
    assert second["row"] == 1 and second["proba"] == [0.25, 0.75] and bool(second["served"]) is True
    shadow = frame[frame["route"] == "shadow"]
    assert set(shadow["model"]) == {"models:/churn/2"} and not shadow["served"].any()
    by_key = {
        (r, int(i), m): lab
        for r, i, m, lab in zip(frame["request_id"], frame["row"], frame["model"], frame["label"], strict=True)
    }
    # a label belongs to the (request, row): the primary and its shadow share it
    assert by_key[("req-2000", 0, "models:/churn/1")] == 1 == by_key[("req-2000", 0, "models:/churn/2")]
    assert by_key[("req-2001", 0, "models:/churn/1")] == 0 and by_key[("req-2001", 1, "models:/churn/2")] == 1
    assert by_key[("req-2000", 1, "models:/churn/1")] is None  # not NaN: integer labels stay integers
    assert log_labels(["req-1000"], [{"churned": "yes"}], deployment=name, ctx=ctx) == 1
    assert read_predictions(name, until=1_000, ctx=ctx)["label"].tolist() == [{"churned": "yes"}, None] * 2

    everything = read_predictions(name, ctx=ctx, labels=False)
    assert len(everything) == 36 and "label" not in everything.columns
    assert everything["time"].is_monotonic_increasing
    assert read_predictions(name, since=5_000, ctx=ctx).empty
    ctx.close()


def test_a_window_opens_only_the_files_it_overlaps_and_durations_mean_ago(tmp_path: Path, caplog) -> None:
    ctx = store_context(f"sqlite:///{tmp_path / 'keel.db'}", tmp_path)
    ctx.store.deployments.create("churn", "models:/churn/1")
    now = int(time.time() * 1000)
    sink = ParquetSink("churn", ctx)
    for age_ms, rid in ((3 * 3_600_000, "old"), (20 * 60_000, "recent"), (0, "now")):
        sink.write(make_rows(rid, 1, now - age_ms))
    frame = read_predictions("churn", since="1h", ctx=ctx)
    assert frame["request_id"].tolist() == ["recent", "now"]
    assert read_predictions("churn", since="2h", until="10m", ctx=ctx)["request_id"].tolist() == ["recent"]
    since = datetime.now(UTC) - timedelta(hours=4)
    assert read_predictions("churn", since=since, until="2h", ctx=ctx)["request_id"].tolist() == ["old"]
    # the old file's blob is gone: a window that does not overlap it never opens it
    (old,) = ctx.store.predictions.log_files("churn", until_ms=now - 3_600_000)
    blobs = [p for p in (tmp_path / "artifacts").rglob(f"*{old.sha256}*") if p.is_file()]
    assert blobs, "the blob of the old file was not found on disk"
    for blob in blobs:
        blob.unlink()
    with caplog.at_level(logging.WARNING, logger="keel.serve.predictions"):
        assert read_predictions("churn", since="1h", ctx=ctx)["request_id"].tolist() == ["recent", "now"]
        assert "skipping file" not in caplog.text  # never opened
        # reading everything opens it: a missing blob is skipped with a warning, the rest of the log still reads
        assert read_predictions("churn", ctx=ctx)["request_id"].tolist() == ["recent", "now"]
    assert f"skipping file {old.sha256[:12]}" in caplog.text
    with pytest.raises(InvalidArgument, match="until"):
        read_predictions("churn", since="10m", until="1h", ctx=ctx)
    ctx.close()


def test_log_labels_checks_its_arguments_and_writes_nothing_when_bad(tmp_path: Path) -> None:
    ctx = store_context(f"sqlite:///{tmp_path / 'keel.db'}", tmp_path)
    ctx.store.deployments.create("churn", "models:/churn/1")
    with pytest.raises(InvalidArgument, match="labels"):
        log_labels(["a", "b"], [1], deployment="churn", ctx=ctx)
    with pytest.raises(InvalidArgument, match="rows"):
        log_labels(["a", "a"], [1, 0], deployment="churn", ctx=ctx)  # which row is which?
    with pytest.raises(InvalidArgument, match="rows"):
        log_labels(["a"], [1], deployment="churn", rows=[-1], ctx=ctx)
    with pytest.raises(NotFound):
        log_labels(["a"], [1], deployment="nobody", ctx=ctx)
    assert ctx.store.predictions.labels("churn") == []
    # numpy labels (a column of a frame) are stored as JSON values
    assert (
        log_labels(list(np.array(["a", "b"])), list(np.array([1, 0])), deployment="churn", rows=list(np.array([0, 2])), ctx=ctx)
        == 2
    )
    assert [(x.request_id, x.row, x.label) for x in ctx.store.predictions.labels("churn")] == [("a", 0, 1), ("b", 2, 0)]
    ctx.close()


def test_a_store_that_refuses_the_file_counts_failed_rows(tmp_path: Path) -> None:
    ctx = store_context(f"sqlite:///{tmp_path / 'keel.db'}", tmp_path)
    log = PredictionLog(ParquetSink("no-such-deployment", ctx))
    log.offer(make_rows("r", 3, 1))
    log.close()
    assert log.failed == 3 and log.written == 0
    ctx.close()


# the Kafka sink on a real broker ------------------------------------------------------------------------------
def consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """``count`` messages of every partition of ``topic``, read from the beginning (partitions assigned by hand)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("test"), "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(message)
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("process", [True, False], ids=["child-process", "in-process"])
def test_kafka_sink_produces_one_json_message_per_row_keyed_by_request_id(kafka_bootstrap: str, process: bool) -> None:
    deployment = unique("churn")
    sink = KafkaSink(deployment, kafka_bootstrap, process=process)
    assert sink.topic == f"keel.predictions.{deployment}"
    log = PredictionLog(sink, max_batch=500)
    for n in range(50):
        log.offer(make_rows(f"req-{n}", 4, 1_000 + n))
    log.close()
    assert log.written == 200 and log.failed == 0 and log.dropped == 0
    messages = consume(kafka_bootstrap, sink.topic, 200)
    assert len(messages) == 200
    records = [orjson.loads(m.value()) for m in messages]
    assert all(m.key().decode() == r["request_id"] for m, r in zip(messages, records, strict=True))
    assert all(dict(m.headers())["content-type"] == b"application/json" for m in messages)
    assert sorted((r["request_id"], r["row"]) for r in records) == sorted((f"req-{n}", i) for n in range(50) for i in range(4))
    one = next(r for r in records if r["request_id"] == "req-7" and r["row"] == 1)
    assert set(one) == set(LOG_COLUMNS)
    assert one["inputs"] == {"x": 1.0, "city": "Lyon"} and one["output"] == 1 and one["proba"] == [0.25, 0.75]
    assert one["time"] == 1_007 and one["deployment"] == deployment and one["replica"] == sink.replica
    # the rows of one request share a partition, in order
    partitions = {m.partition() for m, r in zip(messages, records, strict=True) if r["request_id"] == "req-7"}
    assert len(partitions) == 1
    assert [r["row"] for r in records if r["request_id"] == "req-7"] == [0, 1, 2, 3]


def test_kafka_sink_avro_values_decode_with_the_published_schema(kafka_bootstrap: str) -> None:
    topic = unique("preds.avro")
    log = PredictionLog(KafkaSink("churn", kafka_bootstrap, topic=topic, fmt="avro"))
    log.offer(make_rows("req-a", 2, 1_234) + make_rows("req-a", 2, 1_234, route="shadow", model="models:/churn/2"))
    log.close()
    assert log.written == 4 and log.failed == 0
    messages = consume(kafka_bootstrap, topic, 4)
    assert len(messages) == 4 and {dict(m.headers())["content-type"] for m in messages} == {b"avro/binary"}
    schema = fastavro.parse_schema(AVRO_SCHEMA)
    decoded: list[dict[str, Any]] = [fastavro.schemaless_reader(io.BytesIO(m.value()), schema) for m in messages]  # type: ignore[misc]
    records = sorted(decoded, key=lambda r: (r["route"], r["row"]))
    assert [(r["route"], r["row"], r["model"], r["served"]) for r in records] == [
        ("primary", 0, "models:/churn/1", True), ("primary", 1, "models:/churn/1", True),
        ("shadow", 0, "models:/churn/2", False), ("shadow", 1, "models:/churn/2", False),
    ]  # fmt: skip
    assert records[1]["time"] == datetime.fromtimestamp(1.234, UTC)  # timestamp-millis
    assert orjson.loads(records[1]["inputs"]) == {"x": 1.0, "city": "Lyon"}
    assert orjson.loads(records[1]["proba"]) == [0.25, 0.75] and records[0]["proba"] is None
    assert orjson.loads(records[1]["output"]) == 1 and records[1]["deployment"] == "churn"


def test_a_producer_process_that_died_is_started_again_before_the_next_batch(kafka_bootstrap: str) -> None:
    topic = unique("preds.restart")
    sink = KafkaSink("churn", kafka_bootstrap, topic=topic)
    log = PredictionLog(sink)
    log.offer(make_rows("first", 2, 1))
    log.flush()
    assert log.written == 2
    child = sink._child._process
    child.kill()  # the producer process dies between batches (killed by the OOM killer, say)
    child.join()
    log.offer(make_rows("second", 3, 2))
    log.flush()
    assert log.written == 5 and log.failed == 0
    assert sink._child._process.pid != child.pid  # a new producer process took the batch
    log.close()
    assert sink._child._process is None  # stopped with the log
    got = sorted(orjson.loads(m.value())["request_id"] for m in consume(kafka_bootstrap, topic, 5))
    assert got == ["first"] * 2 + ["second"] * 3


def test_kafka_rows_the_broker_never_acknowledges_are_counted_failed() -> None:
    from keel.testing.services import free_port

    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    log = PredictionLog(KafkaSink("churn", nobody, delivery_timeout=1.0, config={"log_level": 0}))
    log.offer(make_rows("lost", 5, 1))
    log.close(timeout=30)
    assert log.failed == 5 and log.written == 0
    with pytest.raises(InvalidArgument, match="fmt"):
        KafkaSink("churn", nobody, fmt="protobuf")


def test_input_values_json_has_no_type_for_are_logged_not_lost(tmp_path: Path) -> None:
    import decimal

    import pandas as pd

    ctx = store_context(f"sqlite:///{tmp_path / 'keel.db'}", tmp_path)
    ctx.store.deployments.create("churn", "models:/churn/1")
    rows = make_rows("odd", 1, 5)
    rows[0]["inputs"] = {"half": np.float16(0.5), "missing": pd.NA, "when": pd.NaT, "price": decimal.Decimal("1.10")}
    log = PredictionLog(ParquetSink("churn", ctx))
    log.offer(rows)
    log.close()
    assert log.written == 1 and log.failed == 0
    (inputs,) = read_predictions("churn", ctx=ctx)["inputs"]
    assert inputs == {"half": 0.5, "missing": None, "when": None, "price": "1.10"}
    ctx.close()


# typed columns: the format the writer uses when a batch allows it, read back like the JSON text of older files ----
def numeric_rows(
    request_id: str, time_ms: int, proba: Any, output: Any, names: tuple[str, ...] = ("a", "b")
) -> list[dict[str, Any]]:
    """Rows as the serving app offers them for a numeric model: matrix rows under ``input_names``."""
    matrix = np.array([[1.5, -2.0], [0.25, 3.0]])[:, : len(names)]
    return [
        {"request_id": request_id, "row": i, "time": time_ms, "deployment": "", "route": "primary", "model": "models:/m/1",
         "served": True, "inputs": list(matrix)[i], "input_names": names, "output": output[i], "proba": proba[i],
         "latency_ms": 0.5, "replica": None}
        for i in range(2)
    ]  # fmt: skip


def old_format_file(ctx: Context, deployment: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` as a file of the format before typed columns (inputs, output and proba as JSON text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keel.core.predictions import PredictionLogFile
    from keel.serve.parquet_sink import arrow_schema
    from keel.serve.predlog import encode_json, inputs_of

    def text(value: Any) -> str | None:
        return None if value is None else encode_json(value).decode()

    columns = {name: [row.get(name) for row in rows] for name in LOG_COLUMNS}
    columns.update(deployment=[deployment] * len(rows), replica=["old"] * len(rows), inputs=[text(inputs_of(r)) for r in rows])
    columns.update(output=[encode_json(r["output"]).decode() for r in rows], proba=[text(r["proba"]) for r in rows])
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(columns, schema=arrow_schema()), buffer, compression="zstd")
    blob = ctx.artifacts.put_bytes(buffer.getvalue())
    times = [r["time"] for r in rows]
    ctx.store.predictions.add_log_file(
        PredictionLogFile(deployment, blob.sha256, len(rows), min(times), max(times), "old", blob.size)
    )


TYPED_CASES = [  # (proba of the 2 rows, outputs, the Arrow types of output and proba in the new file)
    ([np.array([0.9, 0.1], dtype=np.float32), np.array([0.3, 0.7], dtype=np.float32)], [0, 1], ("int64", "list<element: float>")),
    ([np.array([0.25, 0.75]), None], [np.int64(1), np.int64(0)], ("int64", "list<element: double>")),
    ([None, None], [1.5, float("nan")], ("double", "string")),
    ([np.array([np.nan, 1.0]), np.array([0.5, 0.5])], ["yes", "no"], ("string", "list<element: double>")),
    ([{"odd": 1}, None], [True, False], ("bool", "string")),  # a proba JSON must keep as text
    ([np.array([0.5, 0.5]), np.array([0.5, 0.5], dtype=np.float32)], [[1, 2], None], ("string", "string")),
]


@pytest.mark.parametrize(("proba", "output", "types"), TYPED_CASES)
def test_typed_columns_read_back_as_the_json_text_of_older_files(
    proba: list[Any], output: list[Any], types: tuple[str, str], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    ctx = store_context(f"sqlite:///{tmp_path / 'keel.db'}", tmp_path)
    for name in ("new", "old", "both"):
        ctx.store.deployments.create(name, "models:/m/1")
    ParquetSink("new", ctx, replica="old").write(numeric_rows("r", 10, proba, output))
    old_format_file(ctx, "old", numeric_rows("r", 10, proba, output))
    (file,) = ctx.store.predictions.log_files("new")
    schema = pq.read_schema(io.BytesIO(ctx.artifacts.get_bytes(file.sha256)))
    assert (str(schema.field("output").type), str(schema.field("proba").type)) == types
    assert str(schema.field("inputs.a").type) == "double" and schema.field("inputs").type == "string"

    new, old = read_predictions("new", ctx=ctx), read_predictions("old", ctx=ctx)
    for column in LOG_COLUMNS:
        if column != "deployment":
            assert new[column].tolist() == old[column].tolist(), column
    assert new["inputs"].tolist() == [{"a": 1.5, "b": -2.0}, {"a": 0.25, "b": 3.0}]
    # a window over files of both formats: one frame, in time order
    old_format_file(ctx, "both", numeric_rows("early", 5, proba, output))
    ParquetSink("both", ctx, replica="old").write(numeric_rows("late", 20, proba, output))
    both = read_predictions("both", ctx=ctx, labels=False)
    assert both["request_id"].tolist() == ["early", "early", "late", "late"]
    assert both["output"].tolist()[2:] == both["output"].tolist()[:2]
    assert both["proba"].tolist()[2:] == both["proba"].tolist()[:2] == old["proba"].tolist()
    ctx.close()


def test_typed_values_are_those_the_json_text_held() -> None:
    """The values the typed columns decode to, spelled out (not only equal to the older format's)."""
    import pyarrow as pa

    from keel.serve.parquet_sink import rows_to_table
    from keel.serve.predictions import _decoded

    rows = numeric_rows("r", 1, [np.array([0.9, np.inf], dtype=np.float32), None], [0.1, float("inf")])
    table = rows_to_table(rows, "d", "h")
    assert table["deployment"].to_pylist() == ["d", "d"] and table["replica"].to_pylist() == ["h", "h"]
    assert _decoded(table.schema.field("proba"), table["proba"]) == [[0.9, None], None]
    assert _decoded(table.schema.field("output"), table["output"]) == [0.1, None]
    names = numeric_rows("r", 1, [None, None], ["a", "b"], names=("x", "y"))
    names[1]["input_names"] = ("x", "z")  # two models' rows in one batch: inputs go back to JSON objects
    mixed = rows_to_table(names, "d", "h")
    assert mixed["inputs"].to_pylist() == ['{"x":1.5,"y":-2.0}', '{"x":0.25,"z":3.0}']
    assert not [c for c in mixed.column_names if c.startswith("inputs.")]
    assert (
        mixed.schema.field("output").metadata == {b"keel.encoding": b"text"} and mixed.schema.field("output").type == pa.string()
    )
