"""Indexes that a search sorted by a param or a tag walks on SQLite: ``params (key, num, value)`` in place of
``params (key, num)`` (its prefix: numeric filters use it as before) and ``tags (key, value)``.

SQLite's planner, without statistics, sorts every run a broad filter matches unless a range on an index in the
sort's order leads it (``run_search.walk_parts``). PostgreSQL plans such searches itself, and a btree entry there
holds at most ~2,700 bytes where a param or tag value may be longer: nothing changes there.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    if _sqlite():
        op.create_index("ix_params_key_num_value", "params", ["key", "num", "value"])
        op.drop_index("ix_params_key_num", table_name="params")
        op.create_index("ix_tags_key_value", "tags", ["key", "value"])


def downgrade() -> None:
    if _sqlite():
        op.drop_index("ix_tags_key_value", table_name="tags")
        op.create_index("ix_params_key_num", "params", ["key", "num"])
        op.drop_index("ix_params_key_num_value", table_name="params")
