"""Deployments: named routes to registered models (primary, shadows, weighted canaries) and their history.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("primary_model", sa.Text, nullable=False),
        sa.Column("shadows", sa.Text, nullable=False),
        sa.Column("canaries", sa.Text, nullable=False),
        sa.Column("sticky_key", sa.String(250)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "deployment_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("from_routes", sa.Text),
        sa.Column("to_routes", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_deployment_changes_deployment", "deployment_changes", ["deployment_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_deployment_changes_deployment", table_name="deployment_changes")
    op.drop_table("deployment_changes")
    op.drop_table("deployments")
