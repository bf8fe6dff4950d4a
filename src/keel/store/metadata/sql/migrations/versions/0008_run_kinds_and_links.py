"""Pipeline, step, study, sweep and trial runs as columns of ``runs``; model versions linked to dataset versions
by key; the gate record of alias moves.

- ``runs``: ``kind``, ``step_name``, ``cache_key``, ``cached_from``, ``trial_number``, ``trial_params``,
  ``trial_state``, ``trial_value``, filled from the tags keel wrote until now (``keel.kind``, ``keel.step``,
  ``keel.cache_key``, ``keel.cached_from``, ``keel.trial``, ``keel.trial_params``, ``keel.trial_state``,
  ``keel.trial_value``), so an old store's pipelines resume, its studies resume and its cached steps are found.
  A tag that does not read as what keel wrote (a user's own ``keel.kind``) is left a tag.
- ``model_version_datasets``: one row per (model version, dataset version) its ``datasets`` refs name, for the
  refs whose version exists; a bare ``name`` (which the earlier keel resolved at promotion) is the highest version of
  that dataset created no later than the model version, the rule keel follows from now on (latest at registration).
- ``alias_history``: ``gated``, ``forced`` (false for every earlier move) and ``checks``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KINDS = ("pipeline", "step", "study", "sweep", "trial")
TRIAL_STATES = ("complete", "pruned", "failed")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_REF = re.compile(r"^(?P<name>.+?)(?:@(?P<version>[0-9]+|latest))?$")  # no version, or latest: a bare name
_TAGS = {
    "keel.kind": "kind",
    "keel.step": "step_name",
    "keel.cache_key": "cache_key",
    "keel.cached_from": "cached_from",
    "keel.trial": "trial_number",
    "keel.trial_params": "trial_params",
    "keel.trial_state": "trial_state",
    "keel.trial_value": "trial_value",
}


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="run"))
        batch.add_column(sa.Column("step_name", sa.String(128)))
        batch.add_column(sa.Column("cache_key", sa.String(64)))
        batch.add_column(sa.Column("cached_from", sa.String(32)))
        batch.add_column(sa.Column("trial_number", sa.Integer))
        batch.add_column(sa.Column("trial_params", sa.Text))
        batch.add_column(sa.Column("trial_state", sa.String(16)))
        batch.add_column(sa.Column("trial_value", sa.Float))
    op.create_index("ix_runs_experiment_kind_name", "runs", ["experiment_id", "kind", "name"])
    with op.batch_alter_table("alias_history") as batch:
        batch.add_column(sa.Column("gated", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("checks", sa.Text))
    op.create_table(
        "model_version_datasets",
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    )
    op.create_index("ix_model_version_datasets_dataset", "model_version_datasets", ["dataset_version_id"])
    conn = op.get_bind()
    _fill_run_columns(conn)
    _link_model_datasets(conn)


def _fill_run_columns(conn: Any) -> None:
    tags = sa.table("tags", sa.column("run_id"), sa.column("key"), sa.column("value"))
    rows = conn.execute(sa.select(tags.c.run_id, tags.c.key, tags.c.value).where(tags.c.key.in_(list(_TAGS))))
    found: dict[str, dict[str, str]] = {}
    for run_id, key, value in rows:
        found.setdefault(run_id, {})[_TAGS[key]] = value
    updates = [dict(_columns(values), rid=run_id) for run_id, values in found.items()]
    updates = [u for u in updates if len(u) > 1]
    if not updates:
        return
    names = ["kind", *(c for c in _TAGS.values() if c != "kind")]
    statement = sa.text("UPDATE runs SET " + ", ".join(f"{c} = COALESCE(:{c}, {c})" for c in names) + " WHERE id = :rid")
    conn.execute(statement, [{c: u.get(c) for c in names} | {"rid": u["rid"]} for u in updates])


def _columns(tags: dict[str, str]) -> dict[str, Any]:
    """The column values the tags of one run give; a value that is not what keel wrote is skipped."""
    out: dict[str, Any] = {}
    if tags.get("kind") in KINDS:
        out["kind"] = tags["kind"]
    step = tags.get("step_name")
    if step and len(step) <= 128:
        out["step_name"] = step
    if _HEX64.match(tags.get("cache_key") or ""):
        out["cache_key"] = tags["cache_key"]
    if _HEX32.match(tags.get("cached_from") or ""):
        out["cached_from"] = tags["cached_from"]
    if (tags.get("trial_number") or "").isdigit():
        out["trial_number"] = int(tags["trial_number"])
    params = _json_object(tags.get("trial_params"))
    if params is not None:
        out["trial_params"] = params
    if tags.get("trial_state") in TRIAL_STATES:
        out["trial_state"] = tags["trial_state"]
    value = _number(tags.get("trial_value"))
    if value is not None:
        out["trial_value"] = value
    return out


def _json_object(text: str | None) -> str | None:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return text if isinstance(value, dict) else None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value  # NaN reads back from NULL


def _link_model_datasets(conn: Any) -> None:
    versions: dict[str, list[tuple[int, int, int]]] = {}  # name -> (version, id, created_at), lowest version first
    query = "SELECT d.name, v.version, v.id, v.created_at FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
    for name, number, vid, created in conn.execute(sa.text(query + " ORDER BY d.name, v.version")):
        versions.setdefault(name, []).append((number, vid, created))
    links: set[tuple[int, int]] = set()
    for mv_id, text, registered in conn.execute(sa.text("SELECT id, datasets, created_at FROM model_versions")):
        try:
            refs = json.loads(text)
        except ValueError:
            continue
        for ref in refs if isinstance(refs, list) else ():
            m = _REF.match(ref) if isinstance(ref, str) else None
            vid = _resolve(versions.get(m.group("name"), []), m.group("version"), registered) if m else None
            if vid is not None:
                links.add((mv_id, vid))
    if links:
        conn.execute(
            sa.text("INSERT INTO model_version_datasets (model_version_id, dataset_version_id) VALUES (:m, :d)"),
            [{"m": m, "d": d} for m, d in sorted(links)],
        )


def _resolve(versions: list[tuple[int, int, int]], number: str | None, registered: int) -> int | None:
    """The id of the version a ref names: ``@N`` that version; bare (or ``@latest``) the highest one that existed when
    the model version was registered, not one logged after (the earlier keel took the latest at promotion)."""
    if number is not None and number != "latest":
        return next((vid for n, vid, _ in versions if n == int(number)), None)
    earlier = [vid for _, vid, created in versions if created <= registered]
    return earlier[-1] if earlier else None


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite" and conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("on SQLite the downgrade needs foreign keys off: run it with keel.store.metadata.sql.engine.downgrade")
    _write_back_tags(conn)
    op.drop_index("ix_model_version_datasets_dataset", table_name="model_version_datasets")
    op.drop_table("model_version_datasets")
    with op.batch_alter_table("alias_history") as batch:
        for name in ("checks", "forced", "gated"):
            batch.drop_column(name)
    op.drop_index("ix_runs_experiment_kind_name", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name in reversed(["kind", *(c for c in _TAGS.values() if c != "kind")]):
            batch.drop_column(name)
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()  # the rebuild ran with the keys off
        if broken:
            raise RuntimeError(f"downgrade 0008 would leave rows without their parent: {broken[:10]}")


def _write_back_tags(conn: Any) -> None:
    """The columns of ``runs`` as the tags the earlier keel wrote and reads, for the runs that lack them."""
    names = ", ".join(_TAGS.values())
    rows = conn.execute(sa.text(f"SELECT id, {names} FROM runs WHERE kind <> 'run' OR trial_number IS NOT NULL"))
    have = {(r, k) for r, k in conn.execute(sa.text("SELECT run_id, key FROM tags WHERE key IN :keys").bindparams(
        sa.bindparam("keys", list(_TAGS), expanding=True)))}  # fmt: skip
    new = [
        {"r": row.id, "k": key, "v": value}
        for row in rows
        for key, value in _tags(row._mapping).items()
        if (row.id, key) not in have
    ]
    if new:
        conn.execute(sa.text("INSERT INTO tags (run_id, key, value) VALUES (:r, :k, :v)"), new)


def _tags(row: Any) -> dict[str, str]:
    """The tags of one run as the earlier keel wrote them: ``keel.trial`` a number, ``keel.trial_value`` its repr."""
    out: dict[str, str] = {}
    if row["kind"] != "run":
        out["keel.kind"] = row["kind"]
    for key, column in _TAGS.items():
        if column not in ("kind", "trial_number", "trial_value") and row[column] is not None:
            out[key] = row[column]
    if row["trial_number"] is not None:
        out["keel.trial"] = str(int(row["trial_number"]))
    if row["trial_value"] is not None:
        out["keel.trial_value"] = repr(float(row["trial_value"]))
    elif row["trial_state"] == "complete":
        out["keel.trial_value"] = "nan"  # NULL is NaN for a complete trial; the earlier keel reads the tag then
    return out
