"""Monitoring: monitors of deployments, their per-window results (a time series), the alerts their rules raise, the
actions taken for them, and the leases that make one scheduler replica run a job.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FIRING = sa.text("state = 'firing'")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("window_ms", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.Text),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_monitors_deployment", "monitors", ["deployment_id"])
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitors.id"), nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("numbers", sa.Text, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("labelled_rows", sa.BigInteger, nullable=False),
        sa.Column("profile_sha256", sa.String(64)),
        sa.Column("computed_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("monitor_id", "start_ms", name="uq_monitor_windows_monitor_start"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitors.id"), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("first_window_ms", sa.BigInteger, nullable=False),
        sa.Column("last_window_ms", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("windows", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger),
    )
    op.create_index("ix_monitor_alerts_monitor_created", "monitor_alerts", ["monitor_id", "created_at"])
    op.create_index("ix_monitor_alerts_created", "monitor_alerts", ["created_at"])
    op.create_index(
        "uq_monitor_alerts_firing", "monitor_alerts", ["monitor_id", "rule"], unique=True,
        sqlite_where=FIRING, postgresql_where=FIRING,
    )  # fmt: skip
    op.create_table(
        "monitor_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("monitor_alerts.id"), nullable=False),
        sa.Column("action", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("alert_id", "action", name="uq_monitor_actions_alert_action"),
    )
    op.create_table(
        "scheduler_leases",
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("until_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_leases")
    op.drop_table("monitor_actions")
    op.drop_index("uq_monitor_alerts_firing", table_name="monitor_alerts")
    op.drop_index("ix_monitor_alerts_created", table_name="monitor_alerts")
    op.drop_index("ix_monitor_alerts_monitor_created", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_windows")
    op.drop_index("ix_monitors_deployment", table_name="monitors")
    op.drop_table("monitors")
