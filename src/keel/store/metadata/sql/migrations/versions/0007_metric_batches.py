"""Ids of applied metric batches, so that a resent batch (a retry after a timeout) is stored once.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_batches",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_metric_batches_created_at", "metric_batches", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_metric_batches_created_at", table_name="metric_batches")
    op.drop_table("metric_batches")
