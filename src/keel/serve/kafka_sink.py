"""The Kafka prediction-log sink: one message per logged row on a topic per deployment.

``KEEL_PREDICTION_LOG=kafka://HOST:PORT[,HOST:PORT...][/TOPIC][?format=json|avro]`` chooses it; the topic
defaults to ``keel.predictions.<deployment>``, the message key is the request id (so the rows of a request, and
its shadows' outputs, land on one partition, in order). Values:

- ``json`` (the default): the row as a JSON object, ``inputs``/``output``/``proba`` nested as JSON values.
- ``avro``: the row encoded schemaless with ``AVRO_SCHEMA`` (``inputs``/``output``/``proba`` as JSON text,
  since their shape varies by model); read it back with ``fastavro.schemaless_reader(buf, AVRO_SCHEMA)``.

Every message carries a ``content-type`` header (``application/json`` or ``avro/binary``). A batch waits for
the broker's acknowledgements, so what the writer counts as written was delivered; rows the broker refused or
that timed out raise ``SinkFailure`` with their number. By default the producer runs in a child process
(``keel.serve.kafka_process``): encoding and producing a million rows is Python work that would otherwise share
the serving process's GIL with the event loop.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from typing import Any

from numpy import ndarray

from keel.core.errors import InvalidArgument, MissingExtra
from keel.serve.parquet_sink import default_replica
from keel.serve.predlog import Entry, Row, SinkFailure, encode_json, expand, inputs_of

__all__ = ["AVRO_SCHEMA", "KafkaSink", "parse_kafka_url"]

log = logging.getLogger("keel.serve.predlog")
FORMATS = ("json", "avro")
_URL = re.compile(r"kafka://(?P<bootstrap>[^/?]+)(?:/(?P<topic>[^?]+))?(?:\?format=(?P<fmt>json|avro))?")

AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Prediction",
    "namespace": "keel",
    "fields": [
        {"name": "request_id", "type": "string"},
        {"name": "row", "type": "long"},
        {"name": "time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "deployment", "type": "string"},
        {"name": "route", "type": "string"},
        {"name": "model", "type": "string"},
        {"name": "served", "type": "boolean"},
        {"name": "inputs", "type": "string", "doc": "JSON"},
        {"name": "output", "type": "string", "doc": "JSON"},
        {"name": "proba", "type": ["null", "string"], "default": None, "doc": "JSON"},
        {"name": "latency_ms", "type": "double"},
        {"name": "replica", "type": "string"},
        {"name": "status", "type": ["null", "long"], "default": None, "doc": "HTTP status of the answer"},
    ],
}


def parse_kafka_url(url: str) -> tuple[str, str | None, str]:
    """``kafka://h1:9092,h2:9092/topic?format=avro`` -> ``("h1:9092,h2:9092", "topic", "avro")``."""
    match = _URL.fullmatch(url.strip())
    if match is None:
        raise InvalidArgument.for_field("KEEL_PREDICTION_LOG", url, "kafka://HOST:PORT[,HOST:PORT...][/TOPIC][?format=json|avro]")
    return match["bootstrap"], match["topic"], match["fmt"] or "json"


class KafkaSink:
    """Produces each row to ``topic`` with confluent-kafka; ``config`` adds or overrides producer settings
    (``security.protocol``, ``sasl.*``, ``compression.type``, ...)."""

    def __init__(
        self,
        deployment: str,
        bootstrap: str,
        *,
        topic: str | None = None,
        fmt: str = "json",
        config: dict[str, Any] | None = None,
        delivery_timeout: float = 30.0,
        create_topic: bool = True,
        process: bool = True,
    ) -> None:
        if fmt not in FORMATS:
            raise InvalidArgument.for_field("fmt", fmt, "json or avro")
        self.deployment = deployment
        self.bootstrap = bootstrap
        self.topic = topic or f"keel.predictions.{deployment}"
        self.fmt = fmt
        self.config = dict(config or {})
        self.delivery_timeout = delivery_timeout
        self.create_topic = create_topic
        self.replica = default_replica()
        self.process = process  # produce from a child process (keel.serve.kafka_process): off the serving GIL
        self._producer: Any = None
        self._avro: Any = None
        self._child: Any = None

    def __repr__(self) -> str:
        return f"KafkaSink({self.deployment!r}, {self.bootstrap!r}, topic={self.topic!r}, fmt={self.fmt!r})"

    # encoding ---------------------------------------------------------------------------------
    def encode(self, row: Row) -> bytes:
        """One row as the message value."""
        full = self._full(row)
        if self.fmt == "json":
            return encode_json(full)
        return self._encode_avro(full)

    def _full(self, row: Row) -> Row:
        """The row with ``LOG_COLUMNS`` only, ``inputs`` as an object, the sink's deployment and replica where the row
        has none: one dict built in one pass (the writer shares the serving process's GIL, so every step counts)."""
        get = row.get
        names, inputs = get("input_names"), get("inputs")
        if names is not None and type(inputs) is ndarray:  # a numeric matrix row: the common case, made cheap
            inputs = dict(zip(names, inputs.tolist(), strict=True))
        elif names is not None:
            inputs = inputs_of(row)
        return {
            "request_id": get("request_id"), "row": get("row"), "time": get("time"),
            "deployment": get("deployment") or self.deployment, "route": get("route"), "model": get("model"),
            "served": get("served"), "inputs": inputs, "output": get("output"), "proba": get("proba"),
            "latency_ms": get("latency_ms"), "replica": get("replica") or self.replica, "status": get("status"),
        }  # fmt: skip

    def _encode_avro(self, row: Row) -> bytes:
        if self._avro is None:
            try:
                import fastavro
            except ImportError:
                raise MissingExtra("fastavro", "kafka") from None
            self._avro = (fastavro.schemaless_writer, fastavro.parse_schema(AVRO_SCHEMA))
        write, schema = self._avro
        record = dict(row)
        for name in ("inputs", "output", "proba"):
            value = record.get(name)
            record[name] = None if value is None and name == "proba" else encode_json(value).decode()
        # numpy scalars and other number types: Avro wants Python int/float/bool
        record["row"], record["time"] = int(record["row"]), int(record["time"])
        record["latency_ms"], record["served"] = float(record["latency_ms"]), bool(record["served"])
        record["status"] = None if record.get("status") is None else int(record["status"])
        buffer = io.BytesIO()
        write(buffer, schema, record)
        return buffer.getvalue()

    # producing ---------------------------------------------------------------------------------
    def _producer_once(self) -> Any:
        if self._producer is None:
            try:
                from confluent_kafka import Producer
            except ImportError:
                raise MissingExtra("confluent-kafka", "kafka") from None
            # messages time out before flush gives up waiting, so every row ends delivered or failed, never unknown
            timeout_ms = max(1, int(self.delivery_timeout * 1000))
            # delivery reports only for failures: a Python callback per delivered message cost the serving process
            # more than encoding the message
            settings = {"bootstrap.servers": self.bootstrap, "linger.ms": 20, "message.timeout.ms": timeout_ms,
                        "delivery.report.only.error": True, "client.id": f"keel-{self.deployment}", **self.config}  # fmt: skip
            if self.create_topic:
                self._ensure_topic(settings)
            self._producer = Producer(settings)
        return self._producer

    def _ensure_topic(self, settings: dict[str, Any]) -> None:
        """Create the topic with the broker's defaults; where that is not allowed, producing says so."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic  # where it is defined: confluent_kafka.admin does not export it

        admin = AdminClient({k: v for k, v in settings.items() if k not in ("linger.ms", "message.timeout.ms")})
        (future,) = admin.create_topics([NewTopic(self.topic, num_partitions=-1, replication_factor=-1)]).values()
        try:
            future.result(timeout=self.delivery_timeout)
        except TimeoutError as exc:  # no broker answered: producing will time out too, and count the rows
            log.info("keel: could not create the Kafka topic %s (%s); producing to it anyway", self.topic, exc)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                log.info("keel: could not create the Kafka topic %s (%s); producing to it anyway", self.topic, exc)

    def write(self, entries: Sequence[Entry]) -> None:
        if self.process:
            self._child_once().write(entries)
            return
        self.write_encoded(*self.encode_rows(expand(entries)))

    def encode_rows(self, rows: Sequence[Row]) -> tuple[list[str], list[bytes | None]]:
        """Each row's message key (its request id) and value (None: a value JSON or Avro cannot hold)."""
        values: list[bytes | None] = []
        for row in rows:
            try:
                values.append(self.encode(row))
            except Exception:  # noqa: BLE001 - one bad row costs that row only
                values.append(None)
        return [str(row.get("request_id") or "") for row in rows], values

    def write_encoded(self, keys: Sequence[str], values: Sequence[bytes | None]) -> None:
        """Produce one message per value (keyed by ``keys``) and wait for the broker; a None value is a row that
        could not be encoded: counted failed."""
        producer = self._producer_once()
        errors: list[Any] = []
        content_type = [("content-type", b"application/json" if self.fmt == "json" else b"avro/binary")]

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        unencodable = 0
        for key, value in zip(keys, values, strict=True):
            if value is None:
                unencodable += 1
                continue
            self._produce(producer, value, key, content_type, delivered)
        undelivered = producer.flush(self.delivery_timeout + 5)
        failed = unencodable + len(errors) + undelivered
        if failed:
            reason = errors[0] if errors else "a value could not be encoded" if unencodable else "timed out"
            raise SinkFailure(f"kafka: {failed} of {len(values)} rows not delivered to {self.topic}: {reason}", failed)

    def _produce(self, producer: Any, value: bytes, key: str, headers: list[tuple[str, bytes]], delivered: Any) -> None:
        while True:
            try:
                producer.produce(self.topic, value=value, key=key, headers=headers, on_delivery=delivered)
                return
            except BufferError:  # the producer's local queue is full: wait for deliveries to make room
                producer.poll(0.1)

    def _child_once(self) -> Any:
        if self._child is None:
            from keel.serve.kafka_process import ChildProducer

            settings = {"deployment": self.deployment, "bootstrap": self.bootstrap, "topic": self.topic, "fmt": self.fmt,
                        "config": self.config, "delivery_timeout": self.delivery_timeout,
                        "create_topic": self.create_topic}  # fmt: skip
            self._child = ChildProducer(settings, self.deployment, self.replica, self.delivery_timeout)
        return self._child

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout)
