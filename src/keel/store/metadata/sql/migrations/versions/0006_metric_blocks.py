"""Metric values in blocks (one row per run, key and flush, values packed as arrays) instead of a row each.

Existing values move into one block per (run, key), in step and timestamp order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from keel.store.metadata.sql.metric_blocks import pack

    op.create_table(
        "metric_blocks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("stamps", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_blocks_run_key", "metric_blocks", ["run_pk", "key"])
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT run_pk, key, value, step, timestamp FROM metrics ORDER BY run_pk, key, step, timestamp"))
    groups: dict[tuple[int, str], list[tuple[float, int, int]]] = {}
    for run_pk, key, value, step, ts in rows:
        groups.setdefault((run_pk, key), []).append((float("nan") if value is None else float(value), int(step), int(ts)))
    if groups:
        conn.execute(
            sa.text("INSERT INTO metric_blocks (run_pk, key, count, vals, steps, stamps) VALUES (:p, :k, :n, :v, :s, :t)"),
            [
                {"p": p, "k": k, "n": len(g), "v": pack([x[0] for x in g], "d"), "s": pack([x[1] for x in g], "q"),
                 "t": pack([x[2] for x in g], "q")}
                for (p, k), g in groups.items()
            ],
        )  # fmt: skip
    op.drop_index("ix_metrics_run_key_step", table_name="metrics")
    op.drop_table("metrics")


def downgrade() -> None:
    raise NotImplementedError("metric blocks are not unpacked back into rows; restore a backup instead")
