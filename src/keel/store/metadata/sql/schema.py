"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations in ``migrations/`` build them.

Times are integer milliseconds since the epoch. A NaN metric value is stored as NULL
(SQLite has no NaN) and read back as NaN; infinities are stored as they are.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_experiments_project_name"),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),  # compact key for the metrics table
    Column("id", String(32), nullable=False, unique=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("heartbeat", BigInteger),
    Column("parent_run_id", String(32), ForeignKey("runs.id")),
    Column("git_commit", String(64)),
    Column("git_dirty_hash", String(64)),
    Column("entry_point", Text),
    Column("entry_point_hash", String(64)),
    Column("python_version", String(32)),
    Column("platform", String(128)),
    Column("packages_hash", String(64)),
    Column("packages_blob", String(64)),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("num", Float),  # the value as a number when it is one, for numeric filters
    Index("ix_params_key_num", "key", "num"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    # runs.pk, not runs.id: an integer makes the index half the size and inserts twice as fast
    Column("run_pk", Integer, ForeignKey("runs.pk"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float),  # NULL means NaN
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_pk", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
)
