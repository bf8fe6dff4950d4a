"""Governance: principals (users and service accounts), their role bindings and API tokens (hashed), the
hash-chained audit log, and who wrote each blob keel may deserialize.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "role_bindings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("principal_id", sa.Integer, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False, server_default=""),  # "": every model of the project
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("principal_id", "role", "project", "model", name="uq_role_bindings"),
    )
    op.create_index("ix_role_bindings_model", "role_bindings", ["model"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(12), primary_key=True),
        sa.Column("principal_id", sa.Integer, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("scopes", sa.String(256), nullable=False),  # space-separated permissions; "": the principal's
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
    )
    op.create_index("ix_api_tokens_principal", "api_tokens", ["principal_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(256), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_events_entity", "audit_events", ["entity", "entity_id"])
    op.create_table(
        "blob_writers",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(128), primary_key=True),
        sa.Column("first_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_writers")
    op.drop_index("ix_audit_events_entity", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_api_tokens_principal", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_role_bindings_model", table_name="role_bindings")
    op.drop_table("role_bindings")
    op.drop_table("principals")
