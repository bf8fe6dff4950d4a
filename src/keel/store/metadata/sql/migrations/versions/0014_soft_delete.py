"""Soft delete of runs and experiments: ``deleted_at`` (ms since the epoch), NULL while live.

A deleted run or experiment is hidden from searches and lists, refuses writes, and comes back with a restore;
``keel gc`` purges those deleted long enough.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("deleted_at")
