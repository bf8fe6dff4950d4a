"""Assessments of model versions (fairness, ...) that promotion gates read, and privacy budgets of dataset versions
with the spends of differentially private runs.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_assessments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_model_assessments_version_kind", "model_assessments", ["model_version_id", "kind", "id"])
    op.create_table(
        "privacy_budgets",
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "privacy_spends",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("privacy_budgets.dataset_version_id"), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id")),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("mechanism", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(100)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("dataset_version_id", "request_id", name="uq_privacy_spends_request"),
    )
    op.create_index("ix_privacy_spends_dataset", "privacy_spends", ["dataset_version_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_privacy_spends_dataset", table_name="privacy_spends")
    op.drop_table("privacy_spends")
    op.drop_table("privacy_budgets")
    op.drop_index("ix_model_assessments_version_kind", table_name="model_assessments")
    op.drop_table("model_assessments")
