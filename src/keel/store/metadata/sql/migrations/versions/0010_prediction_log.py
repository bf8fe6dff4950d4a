"""The prediction log's index and labels: the Parquet files serving replicas wrote (one row per file, found by
deployment and time) and the ground truth that arrives later, by request id and row.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("deployment_id", "sha256", name="uq_prediction_files_deployment_sha256"),
    )
    op.create_index("ix_prediction_files_deployment_end", "prediction_files", ["deployment_id", "end_ms"])
    op.create_table(
        "prediction_labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.BigInteger, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("deployment_id", "request_id", "row", name="uq_prediction_labels_deployment_request_row"),
    )
    op.create_index("ix_prediction_labels_deployment_at", "prediction_labels", ["deployment_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_labels_deployment_at", table_name="prediction_labels")
    op.drop_table("prediction_labels")
    op.drop_index("ix_prediction_files_deployment_end", table_name="prediction_files")
    op.drop_table("prediction_files")
