"""Labeling: label projects over dataset versions, their guideline versions, items (tasks, gold and qualification
items with their answers), the tasks handed out (leases), annotations, expert reviews and audits, excluded
annotators, and the dataset versions a project's consensus became.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

REQUEST_ID = sa.text("request_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "label_projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
        sa.Column("dataset", sa.String(300), nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("overlap", sa.Integer, nullable=False),
        sa.Column("gold_rate", sa.Float, nullable=False),
        sa.Column("qualification_pass", sa.Float, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("lease_ms", sa.BigInteger, nullable=False),
        sa.Column("guideline_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "label_guidelines",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "label_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("answers", sa.Integer, nullable=False),
        sa.UniqueConstraint("project_id", "key", name="uq_label_items_project_key"),
    )
    op.create_index("ix_label_items_project_role_answers", "label_items", ["project_id", "role", "answers", "position"])
    op.create_table(
        "label_assignments",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("label_items.id"), primary_key=True),
        sa.Column("annotator", sa.String(128), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), nullable=False),
        sa.Column("assigned_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("guideline_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_label_assignments_project_annotator", "label_assignments", ["project_id", "annotator"])
    op.create_index("ix_label_assignments_project_expires", "label_assignments", ["project_id", "expires_at"])
    op.create_table(
        "label_annotations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("label_items.id"), nullable=False),
        sa.Column("annotator", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("assigned_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("guideline_version", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(100)),
        sa.UniqueConstraint("item_id", "annotator", name="uq_label_annotations_item_annotator"),
    )
    op.create_index("ix_label_annotations_project_annotator", "label_annotations", ["project_id", "annotator"])
    op.create_index("ix_label_annotations_project_created", "label_annotations", ["project_id", "created_at"])
    op.create_index(
        "uq_label_annotations_request", "label_annotations", ["project_id", "annotator", "request_id"], unique=True,
        sqlite_where=REQUEST_ID, postgresql_where=REQUEST_ID,
    )  # fmt: skip
    op.create_table(
        "label_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("label_items.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_label_reviews_project", "label_reviews", ["project_id", "id"])
    op.create_table(
        "label_exclusions",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), primary_key=True),
        sa.Column("annotator", sa.String(128), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "label_consensus",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("label_projects.id"), primary_key=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("label_consensus")
    op.drop_table("label_exclusions")
    op.drop_index("ix_label_reviews_project", table_name="label_reviews")
    op.drop_table("label_reviews")
    op.drop_index("uq_label_annotations_request", table_name="label_annotations")
    op.drop_index("ix_label_annotations_project_created", table_name="label_annotations")
    op.drop_index("ix_label_annotations_project_annotator", table_name="label_annotations")
    op.drop_table("label_annotations")
    op.drop_index("ix_label_assignments_project_expires", table_name="label_assignments")
    op.drop_index("ix_label_assignments_project_annotator", table_name="label_assignments")
    op.drop_table("label_assignments")
    op.drop_index("ix_label_items_project_role_answers", table_name="label_items")
    op.drop_table("label_items")
    op.drop_table("label_guidelines")
    op.drop_table("label_projects")
