"""The roles a project trusts to write what others deserialize (pickles): a loader trusts a blob written by itself
or by a principal with one of these roles (none listed: admin).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_roles",
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("trusted_roles")
