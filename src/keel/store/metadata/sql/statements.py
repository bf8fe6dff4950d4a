"""Statements built once: constructing SQLAlchemy expressions costs more than running them on SQLite.

The run lifecycle (create, params, end, load) uses these, so a small run stays well under
a millisecond of keel overhead.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from keel.store.metadata.sql import schema as t

experiment_exists = select(t.experiments.c.id).where(t.experiments.c.id == bindparam("experiment_id"))
run_status = select(t.runs.c.status).where(t.runs.c.id == bindparam("run_id"))
run_pk = select(t.runs.c.pk).where(t.runs.c.id == bindparam("run_id"))
run_row = select(t.runs).where(t.runs.c.id == bindparam("run_id"))
insert_run = t.runs.insert()
insert_tags = t.tags.insert()
insert_params = t.params.insert()
existing_params = select(t.params.c.key, t.params.c.value).where(
    t.params.c.run_id == bindparam("run_id"), t.params.c.key.in_(bindparam("keys", expanding=True))
)
end_run = (
    t.runs.update()
    .where(t.runs.c.id == bindparam("run_id"), t.runs.c.status == "running")
    .values(status=bindparam("status"), end_time=bindparam("end_time"), heartbeat=bindparam("end_time"))
)
params_of = select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
    t.params.c.run_id.in_(bindparam("ids", expanding=True))
)
tags_of = select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(t.tags.c.run_id.in_(bindparam("ids", expanding=True)))
_lm = t.latest_metrics.c
latest_of = select(_lm.run_id, _lm.key, _lm.value, _lm.step, _lm.timestamp).where(
    _lm.run_id.in_(bindparam("ids", expanding=True))
)
