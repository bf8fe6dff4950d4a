"""Prediction-log entities: the files a serving replica wrote and the labels that arrive later.

The log itself is Parquet blobs in the artifact store (content-addressed, so S3 works as well as a folder); the
metadata store keeps an index of them (``PredictionLogFile``: which deployment, which time span, how many rows)
so a window is found with one query, and the ground truth (``PredictionLabel``) joined by request id and row.

One logged row (``LOG_COLUMNS``): the request it came from (``request_id``, ``row`` within the request), when
(``time``: ms since the epoch), where (``deployment``, ``route``: ``primary``/``canary``/``shadow``, ``model``:
the version URI that computed it, ``served``: whether the client got this output), what (``inputs``: the row as
an object of JSON values, ``output``: the prediction, a JSON value, ``proba``: class probabilities as a list, or
None) and how long the model call took (``latency_ms``), which replica wrote it (``replica``) and the HTTP status
of the answer (``status``: 200, or 500 when the model raised on it, its ``output`` and ``proba`` then None; None in
files written before the column existed). How a sink
stores them (typed Parquet columns, JSON text, Avro) is the sink's business; reading back gives these values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.validation import check_name

LOG_COLUMNS: tuple[str, ...] = (
    "request_id", "row", "time", "deployment", "route", "model", "served",
    "inputs", "output", "proba", "latency_ms", "replica", "status",
)  # fmt: skip
ROUTE_KINDS: tuple[str, ...] = ("primary", "canary", "shadow")


@dataclass(frozen=True, slots=True)
class PredictionLogFile:
    """One Parquet blob of logged predictions: rows with ``start_ms <= time <= end_ms``, written by ``replica``."""

    deployment: str
    sha256: str
    rows: int
    start_ms: int
    end_ms: int
    replica: str
    size: int = 0
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class PredictionLabel:
    """The ground truth of one predicted row, known later (hours or days): ``label`` is any JSON value.
    A label sent again for the same ``(deployment, request_id, row)`` replaces the earlier one (``at`` says when)."""

    deployment: str
    request_id: str
    row: int
    label: Any
    at: int = 0


# checks: the same for every backend (a server never trusts its clients) ------------------------------------------------

MAX_LABELS_PER_CALL = 100_000
MAX_LABEL_BYTES = 64 * 1024  # of JSON per label: ground truth is a class or a number, not a document
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REPLICA = re.compile(r"[^\x00-\x1f\x7f]{1,128}")  # a host name, a pid, a pod name: printable, no newline
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INT64 = 2**63 - 1


def check_count(value: Any, field: str, *, low: int = 0) -> int:
    """``value`` as a count the stores hold: an integer (not a bool) from ``low`` to 2**63-1."""
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= _INT64):
        raise InvalidArgument.for_field(field, value, f"an integer from {low} to 2**63-1")
    return value


def check_request_id(request_id: Any) -> str:
    if not isinstance(request_id, str) or _REQUEST_ID.fullmatch(request_id) is None:
        raise InvalidArgument.for_field("request_id", request_id, "1 to 128 letters, digits, '.', '_', ':' or '-'")
    return request_id


def check_log_file(file: Any) -> PredictionLogFile:
    """A log file entry as a store keeps it (``created_at`` is the store's to set)."""
    if not isinstance(file, PredictionLogFile):
        raise InvalidArgument.for_field("file", file, "a PredictionLogFile")
    check_name(file.deployment, "deployment")
    if not isinstance(file.sha256, str) or _SHA256.fullmatch(file.sha256) is None:
        raise InvalidArgument.for_field("sha256", file.sha256, "64 lowercase hex characters")
    if not isinstance(file.replica, str) or _REPLICA.fullmatch(file.replica) is None:
        raise InvalidArgument.for_field("replica", file.replica, "1 to 128 printable characters")
    check_count(file.rows, "rows")
    check_count(file.size, "size")
    start, end = check_count(file.start_ms, "start_ms"), check_count(file.end_ms, "end_ms")
    if start > end:
        raise InvalidArgument.for_field("end_ms", end, f"at least start_ms ({start})")
    return file


def label_json(label: Any) -> str:
    """``label`` as the JSON text a store keeps (numpy scalars as their Python value; no NaN or infinity)."""

    def plain(value: Any) -> Any:
        item = getattr(value, "item", None)  # numpy and pandas scalars, as labels often come from a frame
        if callable(item):
            return item()
        raise TypeError(f"{type(value).__name__} is not JSON")

    try:
        text = json.dumps(label, allow_nan=False, default=plain, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgument.for_field("label", label, f"a JSON value without NaN or infinity ({exc})") from None
    if len(text) > MAX_LABEL_BYTES:
        raise InvalidArgument.for_field("label", f"{len(text):,} bytes of JSON", f"at most {MAX_LABEL_BYTES:,} bytes")
    return text


def check_labels(labels: Any) -> dict[tuple[str, int], str]:
    """``(request_id, row, label)`` triples as ``{(request_id, row): label JSON}``; the last of a repeated key wins."""
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, Sequence):
        raise InvalidArgument.for_field("labels", type(labels).__name__, "a list of (request_id, row, label) triples")
    if len(labels) > MAX_LABELS_PER_CALL:
        raise InvalidArgument.for_field("labels", f"{len(labels):,} labels", f"at most {MAX_LABELS_PER_CALL:,} per call")
    out: dict[tuple[str, int], str] = {}
    for triple in labels:
        if isinstance(triple, (str, bytes)) or not isinstance(triple, Sequence) or len(triple) != 3:
            raise InvalidArgument.for_field("label", triple, "a (request_id, row, label) triple")
        out[(check_request_id(triple[0]), check_count(triple[1], "row"))] = label_json(triple[2])
    return out


def check_request_ids(request_ids: Any) -> list[str] | None:
    """Distinct request ids, in the order given (None: every one)."""
    if request_ids is None:
        return None
    if isinstance(request_ids, (str, bytes)) or not isinstance(request_ids, Sequence):
        raise InvalidArgument.for_field("request_ids", type(request_ids).__name__, "a list of request ids, or None")
    return list(dict.fromkeys(check_request_id(r) for r in request_ids))


def check_time_bound(value: Any, field: str) -> int | None:
    return None if value is None else check_count(value, field)
