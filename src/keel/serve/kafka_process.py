"""The Kafka sink's producer in a child process: the serving process only turns a batch into Arrow columns (in C)
and hands the bytes over a pipe; encoding each row as JSON or Avro and producing it happen in the child, where
they do not take the serving process's GIL. Measured on 2 cores at saturation: the Kafka log cost 21% of
throughput with the producer in the serving process, 10% with it here (the same as the Parquet log).

The child is spawned at the first batch and runs a ``KafkaSink(..., process=False)``. It encodes a batch column by
column (``encoded``): the messages are, byte for byte, those ``KafkaSink.encode`` makes of the rows read back from
Arrow (the values ``read_predictions`` gives: numeric inputs as floats, as the Parquet log), for less than half
the CPU: in the benchmark's server (30 inputs, ONNX probabilities), 7 µs a row instead of 17.5, producing included.
That CPU is taken from the server wherever the child shares its core (``bench/serving.py --pin``).
A batch waits for the child's answer (what was delivered, what failed); a child that died or stopped answering
costs its batch (``SinkFailure``) and is started again for the next one.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from keel.serve.predlog import Entry, Row, SinkFailure

if TYPE_CHECKING:  # imported where used: kafka_sink imports this module
    from keel.serve.kafka_sink import KafkaSink

__all__ = ["ChildProducer"]

log = logging.getLogger("keel.serve.predlog")
ANSWER_GRACE_S = 30.0  # past the sink's own delivery timeout, how long a batch waits for the child's answer


class ChildProducer:
    """One child process producing for one sink (``settings``: the ``KafkaSink`` keyword arguments)."""

    def __init__(self, settings: dict[str, Any], deployment: str, replica: str, delivery_timeout: float) -> None:
        self.settings, self.deployment, self.replica = settings, deployment, replica
        # the first batch may wait for the topic to be created (up to the delivery timeout) and then for delivery
        self.wait_s = 2 * delivery_timeout + 5 + ANSWER_GRACE_S
        self._conn: Connection | None = None
        self._process: Any = None

    def _start(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        self._stop_child()
        spawn = multiprocessing.get_context("spawn")  # not fork: the serving process has threads and an event loop
        ours, theirs = spawn.Pipe()
        self._process = spawn.Process(target=serve, args=(theirs, self.settings), name="keel-kafka-producer", daemon=True)
        self._process.start()
        theirs.close()
        self._conn = ours
        return ours

    def write(self, rows: Sequence[Entry]) -> None:
        from keel.serve.parquet_sink import rows_to_table

        table = rows_to_table(rows, self.deployment, self.replica)
        conn = self._start()
        try:
            conn.send_bytes(_ipc(table))
            if not conn.poll(self.wait_s):
                raise TimeoutError(f"no answer in {self.wait_s:.0f} s")
            _, failed, message = conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            self._stop_child()
            why = f"kafka: the producer process failed ({type(exc).__name__}: {exc}); restarted"
            raise SinkFailure(why, table.num_rows) from None
        if failed:
            raise SinkFailure(message, failed)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send_bytes(b"")  # flush and stop
                self._conn.poll(self.wait_s)
            except (EOFError, OSError):
                pass
        self._stop_child()

    def _stop_child(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._process = None


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def serve(conn: Connection, settings: dict[str, Any]) -> None:
    """The child: batches in, ``(written, failed, message)`` out, until an empty message (flush and stop)."""
    from keel.serve.kafka_sink import KafkaSink

    sink = KafkaSink(**settings, process=False)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the serving process went away
            break
        if not data:
            break
        rows = 0
        try:
            table = _table(data)
            rows = table.num_rows
            keys, values = encoded(table, sink)
            sink.write_encoded(keys, values)
            conn.send((rows, 0, ""))
        except SinkFailure as exc:
            conn.send((rows - exc.failed_rows, exc.failed_rows, str(exc)))
        except Exception as exc:  # noqa: BLE001 - whatever failed costs this batch; the child goes on
            conn.send((0, rows, f"kafka: {type(exc).__name__}: {exc}"))
    try:
        sink.close()
        conn.send((0, 0, "closed"))
    except (EOFError, OSError):
        pass


def _table(data: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


def _rows(data: bytes) -> list[Row]:
    """A batch's rows back from Arrow, with the values the serving process logged (``read_predictions``'s
    decoding: typed inputs as objects, JSON text decoded)."""
    return _rows_of(_table(data))


def _rows_of(table: Any) -> list[Row]:
    from keel.core.predictions import LOG_COLUMNS
    from keel.serve.predictions import values_of

    values = values_of(table)
    plain = {name: table[name].to_pylist() for name in LOG_COLUMNS if name not in values}
    columns = {**plain, **values}
    return [dict(zip(LOG_COLUMNS, row, strict=True)) for row in zip(*(columns[n] for n in LOG_COLUMNS), strict=True)]


# encoding a batch in bulk -------------------------------------------------------------------------------------
# The messages are those ``KafkaSink.encode`` makes of ``_rows(table)``, byte for byte, made column by column: each
# column's JSON text (or Avro bytes) for all rows at once, mostly in C (orjson over whole columns and matrices, split at
# the commas a column of numbers has between its values), then one ``%`` or ``join`` per message. Row by row, the
# child spent about 15 µs a row decoding the table into dicts and encoding each; on a core shared with the server
# (``bench/serving.py --pin``) that was most of the Kafka log's cost. A batch the bulk path does not know how to
# encode exactly (a null where a column has none, a value JSON has no type for) is encoded row by row, as before.


class _Unusual(Exception):
    """The batch holds something only the row-by-row encoding handles."""


def encoded(table: Any, sink: KafkaSink) -> tuple[list[str], list[bytes | None]]:
    """The message keys and values of a batch (``None``: a row that cannot be encoded)."""
    keys = [key or "" for key in table["request_id"].to_pylist()]
    try:
        values: list[bytes | None] = list(_json_messages(table, sink) if sink.fmt == "json" else _avro_messages(table, sink))
    except _Unusual:
        return sink.encode_rows(_rows_of(table))
    return keys, values


_STRINGS = ("request_id", "deployment", "route", "model", "replica")
_NUMBERS = ("row", "time", "served", "latency_ms", "status")  # numbers, bools or null: no commas in their JSON

Piece = tuple[bytes, int, list[bytes]]
"""A column's JSON: a template with ``k`` ``%s`` and ``k`` tokens a row (``template % row's tokens``: its text)."""


def _json_messages(table: Any, sink: KafkaSink) -> list[bytes]:
    """One ``%`` a message: a template of every column's piece, filled with the row's tokens of every column."""
    from keel.core.predictions import LOG_COLUMNS

    pieces: dict[str, Piece] = {name: _json_strings(_strings(table, name, sink)) for name in _STRINGS}
    for name in _NUMBERS:
        pieces[name] = b"%s", 1, _json_numbers(table[name].to_pylist())
    pieces.update(_json_values(table))
    template = b"{" + b",".join(_key(name) + b":" + pieces[name][0] for name in LOG_COLUMNS) + b"}"
    # zip takes a column's k tokens from one iterator given k times: each row's tokens in order, in C
    tokens = [it for name in LOG_COLUMNS for it in [iter(pieces[name][2])] * pieces[name][1]]
    return list(map(template.__mod__, zip(*tokens, strict=True)))


def _texts(piece: Piece) -> list[bytes]:
    """Each row's text of a column."""
    template, k, tokens = piece
    if template == b"%s":
        return tokens
    return list(map(template.__mod__, zip(*[iter(tokens)] * k, strict=True)))


def _avro_messages(table: Any, sink: KafkaSink) -> list[bytes]:
    import numpy as np

    from keel.core.predictions import LOG_COLUMNS

    parts: dict[str, list[bytes]] = {name: _avro_strings(_strings(table, name, sink)) for name in _STRINGS}
    for name in ("row", "time"):
        parts[name] = _avro_longs(_not_null(table[name].to_pylist()))
    parts["served"] = list(map({True: b"\x01", False: b"\x00"}.__getitem__, _not_null(table["served"].to_pylist())))
    latency = table["latency_ms"]
    if latency.null_count:
        raise _Unusual
    packed = np.ascontiguousarray(latency.to_numpy(), dtype="<f8").tobytes()
    parts["latency_ms"] = [packed[i : i + 8] for i in range(0, len(packed), 8)]
    status = _avro_longs(table["status"].to_pylist(), nullable=True)
    parts["status"] = [b"\x00" if s is None else b"\x02" + s for s in status]  # the union's null or long branch
    texts = {name: _texts(piece) for name, piece in _json_values(table).items()}
    parts["inputs"], parts["output"] = _avro_strings(texts["inputs"]), _avro_strings(texts["output"])
    parts["proba"] = [b"\x00" if text == b"null" else b"\x02" + text for text in _avro_strings(texts["proba"], null=True)]
    return list(map(b"".join, zip(*(parts[name] for name in LOG_COLUMNS), strict=True)))


def _key(name: str) -> bytes:
    import orjson

    return orjson.dumps(name).replace(b"%", b"%%")


def _strings(table: Any, name: str, sink: KafkaSink) -> list[str]:
    """A string column; an empty ``deployment`` or ``replica`` is the sink's (as ``KafkaSink._full`` has it)."""
    values: list[Any] = table[name].to_pylist()
    default = {"deployment": sink.deployment, "replica": sink.replica}.get(name)
    if default is not None and (None in values or "" in values):
        values = [value or default for value in values]
    return _not_null(values)


def _not_null(values: list[Any]) -> list[Any]:
    if None in values:
        raise _Unusual
    return values


def _json_strings(values: list[str]) -> Piece:
    """Strings as JSON. A column of few values is encoded once per value; others in one call, split at the
    ``","`` between values (only when no value needed escaping, so that no quote is inside one)."""
    import orjson

    distinct = set(values)
    if len(distinct) * 4 <= len(values):
        known = {value: orjson.dumps(value) for value in distinct}
        return b"%s", 1, list(map(known.__getitem__, values))
    text = orjson.dumps(values)
    if b"\\" in text or not values:
        return b"%s", 1, list(map(orjson.dumps, values))
    return b'"%s"', 1, text[2:-2].split(b'","')


def _json_numbers(values: list[Any]) -> list[bytes]:
    """Numbers, bools and nulls as JSON, one text per value (their JSON has no commas: one call, then a split)."""
    import orjson

    if not values:
        return []
    if not set(map(type, values)) <= {int, float, bool, type(None)}:
        raise _Unusual
    tokens: list[bytes] = orjson.dumps(values)[1:-1].split(b",")
    return tokens


def _json_values(table: Any) -> dict[str, Piece]:
    """The JSON of each row's ``inputs``, ``output`` and ``proba`` (``null`` for none), as ``encode_json`` makes it
    of the values ``values_of`` reads."""
    inputs, output, proba = _numeric_inputs(table), _typed_output(table), _float_proba(table)
    if inputs is None or output is None or proba is None:
        from keel.serve.predictions import values_of
        from keel.serve.predlog import encode_json

        decoded = values_of(table)
        try:
            inputs = inputs or (b"%s", 1, list(map(encode_json, decoded["inputs"])))
            output = output or (b"%s", 1, list(map(encode_json, decoded["output"])))
            proba = proba or (b"%s", 1, list(map(encode_json, decoded["proba"])))
        except Exception:  # noqa: BLE001 - a value JSON cannot hold: the row by row encoding counts its row
            raise _Unusual from None
    return {"inputs": inputs, "output": output, "proba": proba}


def _numeric_inputs(table: Any) -> Piece | None:
    """Inputs stored as one float64 column each: the numbers of the whole matrix in one call (row by row, split at
    the commas), each row's object a template of the input names. None when the inputs are stored otherwise, or
    a value is missing."""
    import numpy as np
    import orjson

    from keel.serve.parquet_sink import INPUT_PREFIX

    numeric = [name for name in table.column_names if name.startswith(INPUT_PREFIX)]
    n = table.num_rows
    if not numeric or not n or table["inputs"].null_count != n or any(table[name].null_count for name in numeric):
        return None
    matrix = np.column_stack([table[name].to_numpy() for name in numeric]).astype(np.float64, copy=False)
    # float64 numpy values print as the Python floats ``to_pylist`` gives (NaN and infinities as null)
    numbers = orjson.dumps(matrix.ravel(), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    template = b"{" + b",".join(_key(name[len(INPUT_PREFIX) :]) + b":%s" for name in numeric) + b"}"
    return template, len(numeric), numbers


def _typed_output(table: Any) -> Piece | None:
    """An int64, float64 or bool output column; None for a column of strings or of JSON text."""
    import pyarrow as pa

    kind = table.schema.field("output").type
    if not (pa.types.is_int64(kind) or pa.types.is_float64(kind) or pa.types.is_boolean(kind)):
        return None
    return b"%s", 1, _json_numbers(table["output"].to_pylist())


FLOAT32_SAME = (1e-4, 1e13)  # where orjson prints a float32 as it prints the float64 of its shortest decimal


def _float_proba(table: Any) -> Piece | None:
    """A list<float> proba column whose rows all have one length; None otherwise. float32 values are printed as
    ``values_of`` reads them (the float64 of their shortest decimal): orjson prints a float32 the same way inside
    ``FLOAT32_SAME``; the others are converted one by one."""
    import numpy as np
    import orjson
    import pyarrow as pa

    field = table.schema.field("proba")
    n = table.num_rows
    if not (pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type)) or not n:
        return None
    array = table["proba"].combine_chunks()
    if array.null_count:
        return None
    offsets = array.offsets.to_numpy()
    width = int(offsets[1] - offsets[0])
    if width == 0 or not np.array_equal(np.diff(offsets), np.full(n, width)):
        return None
    flat = array.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    if flat.dtype not in (np.float32, np.float64):
        return None
    numbers = orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    if flat.dtype == np.float32:
        size = np.abs(flat)
        odd = np.flatnonzero(((size < FLOAT32_SAME[0]) & (size != 0)) | ~(size < FLOAT32_SAME[1]))
        if len(odd):
            exact = orjson.dumps(flat[odd].astype(str).astype(np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
            for i, token in zip(odd.tolist(), exact[1:-1].split(b","), strict=True):
                numbers[i] = token
    return b"[" + b",".join([b"%s"] * width) + b"]", width, numbers


def _avro_strings(texts: list[Any], null: bool = False) -> list[bytes]:
    """Avro strings: the length (a zigzag varint) and the UTF-8 bytes. ``null``: ``b"null"`` stays as it is (the
    caller makes it the union's null branch)."""
    data = [t if type(t) is bytes else t.encode() for t in texts]
    lengths = list(map(len, data))
    prefixes = {length: _zigzag(length) for length in set(lengths)}
    joined = list(map(bytes.__add__, map(prefixes.__getitem__, lengths), data))
    if null:
        return [b"null" if t == b"null" else j for t, j in zip(data, joined, strict=True)]
    return joined


def _avro_longs(values: list[Any], nullable: bool = False) -> list[Any]:
    known = {value: _zigzag(value) for value in set(values) if value is not None}
    if not nullable and len(known) != len(set(values)):
        raise _Unusual
    if set(map(type, known)) - {int}:
        raise _Unusual
    return [None if v is None else known[v] for v in values] if nullable else list(map(known.__getitem__, values))


def _zigzag(value: int) -> bytes:
    """An Avro long: zigzag, then 7 bits a byte, low bits first."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
