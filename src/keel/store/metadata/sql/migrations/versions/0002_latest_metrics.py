"""Latest value per (run, metric key), so metric filters and ordering over many runs are one indexed join.

Backfills from the metrics already stored: the value with the highest step, then timestamp.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.execute(
        """
        INSERT INTO latest_metrics (run_id, key, value, step, timestamp)
        SELECT run_id, key, value, step, timestamp FROM (
            SELECT runs.id AS run_id, metrics.key, metrics.value, metrics.step, metrics.timestamp,
                   ROW_NUMBER() OVER (
                       PARTITION BY metrics.run_pk, metrics.key ORDER BY metrics.step DESC, metrics.timestamp DESC
                   ) AS rn
            FROM metrics JOIN runs ON runs.pk = metrics.run_pk
        ) ranked
        WHERE rn = 1
        """
    )


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.drop_table("latest_metrics")
