"""``SqlPredictionStore``: the prediction log's index and labels on the ``SqlStore``'s database.

Both writes are idempotent through a unique key and ``ON CONFLICT`` (one statement per dialect): a file already
indexed is left as it is, a label already recorded is replaced. Inputs are checked in ``keel.core.predictions``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, select

from keel.core.audit import canonical_json
from keel.core.clock import now_ms
from keel.core.errors import NotFound
from keel.core.predictions import (
    PredictionLabel,
    PredictionLogFile,
    check_labels,
    check_log_file,
    check_request_ids,
    check_time_bound,
)
from keel.core.validation import check_name
from keel.store.metadata.predictions import PredictionStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect, chunks

_f = t.prediction_files.c
_l = t.prediction_labels.c
_add_file_by_dialect = by_dialect(
    lambda insert: insert(t.prediction_files).on_conflict_do_nothing(index_elements=["deployment_id", "sha256"])
)


def _upsert_label(insert: Any) -> Any:
    stmt = insert(t.prediction_labels)
    return stmt.on_conflict_do_update(
        index_elements=["deployment_id", "request_id", "row"], set_={"label": stmt.excluded.label, "at": stmt.excluded.at}
    )


_upsert_label_by_dialect = by_dialect(_upsert_label)


def _file(deployment: str, r: Any) -> PredictionLogFile:
    return PredictionLogFile(deployment, r.sha256, r.rows, r.start_ms, r.end_ms, r.replica, r.size, r.created_at)


class SqlPredictionStore(PredictionStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._add_file = db.pick(_add_file_by_dialect)
        self._upsert_label = db.pick(_upsert_label_by_dialect)

    @staticmethod
    def _deployment_id(conn: Connection, name: str) -> int:
        found = conn.execute(select(t.deployments.c.id).where(t.deployments.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"deployment {name!r} does not exist")
        return int(found)

    def add_log_file(self, file: PredictionLogFile) -> PredictionLogFile:
        file = check_log_file(file)
        with self.db.transaction() as conn:
            deployment_id = self._deployment_id(conn, file.deployment)
            conn.execute(
                self._add_file.values(
                    deployment_id=deployment_id, sha256=file.sha256, rows=file.rows, start_ms=file.start_ms,
                    end_ms=file.end_ms, replica=file.replica, size=file.size, created_at=now_ms(),
                )
            )  # fmt: skip
            stored = conn.execute(
                select(t.prediction_files).where(_f.deployment_id == deployment_id, _f.sha256 == file.sha256)
            ).one()
        return _file(file.deployment, stored)

    def log_files(self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None) -> list[PredictionLogFile]:
        check_name(deployment, "deployment")
        since, until = check_time_bound(since_ms, "since_ms"), check_time_bound(until_ms, "until_ms")
        with self.db.transaction(write=False) as conn:
            query = select(t.prediction_files).where(_f.deployment_id == self._deployment_id(conn, deployment))
            if since is not None:  # a file overlaps the window when it ends at or after its start...
                query = query.where(_f.end_ms >= since)
            if until is not None:  # ...and starts at or before its end
                query = query.where(_f.start_ms <= until)
            rows = conn.execute(query.order_by(_f.start_ms, _f.id)).all()
        return [_file(deployment, r) for r in rows]

    def log_labels(self, deployment: str, labels: Sequence[tuple[str, int, object]]) -> int:
        check_name(deployment, "deployment")
        checked = check_labels(labels)
        with self.db.transaction() as conn:
            deployment_id = self._deployment_id(conn, deployment)
            at = now_ms()
            if checked:
                conn.execute(
                    self._upsert_label,
                    [
                        {"deployment_id": deployment_id, "request_id": r, "row": n, "label": text, "at": at}
                        for (r, n), text in sorted(checked.items())  # one order: concurrent upserts never deadlock
                    ],
                )
                # ground truth decides the quality a monitor reports: who wrote (or corrected) labels is recorded,
                # with a digest of them rather than the labels themselves
                digest = hashlib.sha256(canonical_json(sorted([r, n, text] for (r, n), text in checked.items())).encode())
                append_event(conn, "predictions.log_labels", "deployment", deployment, None,
                             {"labels": len(checked), "sha256": digest.hexdigest()})  # fmt: skip
        return len(labels)

    def labels(
        self, deployment: str, *, request_ids: Sequence[str] | None = None, since_ms: int | None = None
    ) -> list[PredictionLabel]:
        check_name(deployment, "deployment")
        ids, since = check_request_ids(request_ids), check_time_bound(since_ms, "since_ms")
        with self.db.transaction(write=False) as conn:
            deployment_id = self._deployment_id(conn, deployment)
            query = select(_l.request_id, _l.row, _l.label, _l.at).where(_l.deployment_id == deployment_id)
            if since is not None:
                query = query.where(_l.at >= since)
            if ids is None:
                rows = [tuple(r) for r in conn.execute(query)]
            else:
                rows = [tuple(r) for part in chunks(ids) for r in conn.execute(query.where(_l.request_id.in_(part)))]
        rows.sort(key=itemgetter(0, 1))  # in Python: the same order whatever the database's collation
        # a monitor joins a million labels to a window: plain tuples and orjson, ~2x faster than rows and json
        return [PredictionLabel(deployment, rid, row, _label(text), at) for rid, row, text, at in rows]


def _label(text: str) -> Any:
    """A stored label's value (orjson; json for the integers past 64 bits orjson refuses)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
