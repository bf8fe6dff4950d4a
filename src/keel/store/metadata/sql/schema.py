"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations in ``migrations/`` build them.

Times are integer milliseconds since the epoch. Metric values live in packed blocks
(``metric_blocks``); in ``latest_metrics`` a NaN is stored as NULL (SQLite has no NaN)
and read back as NaN; infinities are stored as they are.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
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
    Column("deleted_at", BigInteger),  # soft-deleted (hidden, restorable) since; purged by ``keel gc``
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
    # what the run is to keel (``RunKind``): run, pipeline, step, study, sweep or trial
    Column("kind", String(16), nullable=False, server_default="run"),
    # step runs: the step's name, its cache key, and for a cached step the run whose output it reuses
    Column("step_name", String(128)),
    Column("cache_key", String(64)),
    Column("cached_from", String(32)),
    # trial runs: number in the study or sweep, the params asked (JSON object), the outcome
    Column("trial_number", Integer),
    Column("trial_params", Text),
    Column("trial_state", String(16)),  # complete, pruned, failed; NULL while running
    Column("trial_value", Float),  # NULL for NaN (SQLite has none) when trial_state is complete
    Column("deleted_at", BigInteger),  # soft-deleted (hidden, restorable, read-only) since; purged by ``keel gc``
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
    Index("ix_runs_experiment_kind_name", "experiment_id", "kind", "name"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("num", Float),  # the value as a number when it is one, for numeric filters
    # SQLite walks (key, num, value) to page a search sorted by a param (run_search.walk_parts); PostgreSQL plans such
    # a search itself, and a btree entry there holds at most ~2,700 bytes where a param value may be 6,000 characters
    Index("ix_params_key_num", "key", "num").ddl_if(dialect="postgresql"),
    Index("ix_params_key_num_value", "key", "num", "value").ddl_if(dialect="sqlite"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_value", "key", "value").ddl_if(dialect="sqlite"),  # the same for a sort by a tag
)

metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # runs.pk, not runs.id: a compact key for the one table that grows with every flush
    Column("run_pk", Integer, ForeignKey("runs.pk"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("count", Integer, nullable=False),
    Column("vals", LargeBinary, nullable=False),  # little-endian float64 array (NaN and inf as they are)
    Column("steps", LargeBinary, nullable=False),  # little-endian int64 array
    Column("stamps", LargeBinary, nullable=False),  # little-endian int64 array, ms since the epoch
    Index("ix_metric_blocks_run_key", "run_pk", "key"),
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

metric_batches = Table(
    "metric_batches",
    metadata,
    # ids of metric writes applied (log_metrics, end_run), so that a resend is stored once;
    # written in the same transaction as the values, pruned after a day
    Column("id", String(100), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_metric_batches_created_at", "created_at"),
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

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("schema", Text, nullable=False),  # JSON list of [name, type, nullable]
    Column("source", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("transform", Text),  # JSON: name, code hash, params
    Column("profile", Text),  # JSON, computed once at logging
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
    UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_versions_content"),
)

dataset_parents = Table(
    "dataset_parents",
    metadata,
    Column("version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("parent_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Index("ix_dataset_parents_parent", "parent_id"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("direction", String(8), primary_key=True),
    Index("ix_run_datasets_version", "version_id"),
)

validation_results = Table(
    "validation_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("dataset_versions.id"), nullable=False),
    Column("suite", String(256), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_validation_results_version", "version_id"),
)

step_cache = Table(
    "step_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("step", String(128), nullable=False),
    Column("outputs", Text, nullable=False),  # JSON: how to load the step's outputs
    Column("created_at", BigInteger, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),  # JSON
    Column("source_run", String(32), ForeignKey("runs.id")),
    Column("metrics", Text, nullable=False),  # JSON snapshot of the source run's metrics
    Column("datasets", Text, nullable=False),  # JSON list of training dataset refs
    Column("requirements", Text, nullable=False),  # JSON list of "package==version"
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
)

model_version_datasets = Table(
    "model_version_datasets",
    metadata,
    # the dataset versions a model version was trained on, by key (``model_versions.datasets`` keeps the refs as given)
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Index("ix_model_version_datasets_dataset", "dataset_version_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("gated", Boolean, nullable=False, server_default=false()),  # the move went through gates at the store
    Column("forced", Boolean, nullable=False, server_default=false()),  # the caller explicitly skipped the gates
    Column("checks", Text),  # JSON list of the rules evaluated, with their values
    Index("ix_alias_history_model_alias_at", "model_id", "alias", "at"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("primary_model", Text, nullable=False),  # a model URI ("primary" is a reserved word in SQL)
    Column("shadows", Text, nullable=False),  # JSON list of model URIs
    Column("canaries", Text, nullable=False),  # JSON list of [model URI, weight]
    Column("sticky_key", String(250)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

deployment_changes = Table(
    "deployment_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("what", String(16), nullable=False),
    Column("from_routes", Text),  # JSON routes before the change, NULL for the creation
    Column("to_routes", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_deployment_changes_deployment", "deployment_id", "id"),
)

prediction_files = Table(
    "prediction_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("sha256", String(64), nullable=False),  # the Parquet blob in the artifact store
    Column("rows", BigInteger, nullable=False),
    Column("start_ms", BigInteger, nullable=False),  # the span of the rows' times, both ends included
    Column("end_ms", BigInteger, nullable=False),
    Column("replica", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("deployment_id", "sha256", name="uq_prediction_files_deployment_sha256"),
    Index("ix_prediction_files_deployment_end", "deployment_id", "end_ms"),
)

prediction_labels = Table(
    "prediction_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("row", BigInteger, nullable=False),
    Column("label", Text, nullable=False),  # JSON
    Column("at", BigInteger, nullable=False),  # when it was (last) recorded
    UniqueConstraint("deployment_id", "request_id", "row", name="uq_prediction_labels_deployment_request_row"),
    Index("ix_prediction_labels_deployment_at", "deployment_id", "at"),
)

_FIRING = text("state = 'firing'")
_REQUEST_ID = text("request_id IS NOT NULL")

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("reference", Text),  # a dataset reference; NULL: the primary model's first training dataset
    Column("rules", Text, nullable=False),  # JSON list of AlertRule.to_dict()
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_monitors_deployment", "deployment_id"),
)

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    # the window's values, a JSON object of finite numbers ("values" is a reserved word in SQL)
    Column("numbers", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("labelled_rows", BigInteger, nullable=False),
    Column("profile_sha256", String(64)),  # the mergeable profile, a blob in the artifact store
    Column("computed_at", BigInteger, nullable=False),
    # also the index of the time-series reads (a monitor's windows by start)
    UniqueConstraint("monitor_id", "start_ms", name="uq_monitor_windows_monitor_start"),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # firing or resolved
    Column("first_window_ms", BigInteger, nullable=False),
    Column("last_window_ms", BigInteger, nullable=False),
    Column("value", Float),
    Column("message", Text, nullable=False),
    Column("windows", Integer, nullable=False),  # distinct breaching windows
    Column("created_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Index("ix_monitor_alerts_monitor_created", "monitor_id", "created_at"),
    Index("ix_monitor_alerts_created", "created_at"),
    # at most one firing alert per rule, whoever writes (the store also checks it in its transaction)
    # partial: one firing alert per (monitor, rule). On PostgreSQL the same index comes from migration 0011 (this file
    # creates tables on a new SQLite file only: engine.create_at_head); a postgresql_where here would load PostgreSQL's
    # dialect in every process, a tenth of a first run's start-up
    Index("uq_monitor_alerts_firing", "monitor_id", "rule", unique=True, sqlite_where=_FIRING),
)

monitor_actions = Table(
    "monitor_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("monitor_alerts.id"), nullable=False),
    Column("action", String(1024), nullable=False),
    Column("status", String(16), nullable=False),  # ok or failed
    Column("detail", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),  # the last attempt
    UniqueConstraint("alert_id", "action", name="uq_monitor_actions_alert_action"),
)

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("until_ms", BigInteger, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # user or service
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal_id", Integer, ForeignKey("principals.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("project", String(128), nullable=False),  # "*": every project
    Column("model", String(128), nullable=False, server_default=""),  # "": every model of the project
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("principal_id", "role", "project", "model", name="uq_role_bindings"),
    Index("ix_role_bindings_model", "model"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(12), primary_key=True),  # the public part of keel_<id>_<secret>
    Column("principal_id", Integer, ForeignKey("principals.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("hash", String(128), nullable=False),  # keel.core.identity.hash_secret: never the secret
    Column("scopes", String(256), nullable=False),  # space-separated permissions; "": all of the principal's
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Index("ix_api_tokens_principal", "principal_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. models.move_alias
    Column("entity", String(32), nullable=False),  # run, dataset, model, alias, deployment, monitor, principal, token...
    Column("entity_id", String(256), nullable=False),
    Column("before", Text),  # canonical JSON, or NULL
    Column("after", Text),
    Column("prev_hash", String(64), nullable=False),  # the previous event's hash; 64 zeros for the first
    Column("hash", String(64), nullable=False, unique=True),  # keel.core.audit.event_hash of this row and prev_hash
    Index("ix_audit_events_entity", "entity", "entity_id"),
)

blob_writers = Table(
    "blob_writers",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("principal", String(128), primary_key=True),  # every principal that wrote these bytes
    Column("first_at", BigInteger, nullable=False),
)

trusted_roles = Table(
    "trusted_roles",
    metadata,
    Column("project", String(128), primary_key=True),  # "*": every project
    Column("role", String(16), primary_key=True),  # none for a project: admin (keel.core.identity.DEFAULT_TRUSTED)
)

# labeling (keel.core.labeling; the store: sql/labels.py) ----------------------------------------------------------
label_projects = Table(
    "label_projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=False),
    Column("dataset", String(300), nullable=False),  # name@N as given
    Column("schema", Text, nullable=False),  # JSON: LabelSchema.to_dict()
    Column("overlap", Integer, nullable=False),
    Column("gold_rate", Float, nullable=False),
    Column("qualification_pass", Float, nullable=False),
    Column("fields", Text, nullable=False),  # JSON list of the columns shown
    Column("lease_ms", BigInteger, nullable=False),
    Column("guideline_version", Integer, nullable=False),  # the latest (the row every hand-out locks holds it)
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

label_guidelines = Table(
    "label_guidelines",
    metadata,
    Column("project_id", Integer, ForeignKey("label_projects.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

label_items = Table(
    "label_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("label_projects.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("position", Integer, nullable=False),  # the order given
    Column("data", Text, nullable=False),  # JSON object of the fields shown
    Column("role", String(16), nullable=False),  # task, gold or qualification
    Column("answer", Text),  # JSON, gold and qualification items only
    Column("answers", Integer, nullable=False),  # annotations received (kept with each submit)
    UniqueConstraint("project_id", "key", name="uq_label_items_project_key"),
    Index("ix_label_items_project_role_answers", "project_id", "role", "answers", "position"),  # next_task's lookups
)

label_assignments = Table(
    "label_assignments",
    metadata,
    Column("item_id", Integer, ForeignKey("label_items.id"), primary_key=True),
    Column("annotator", String(128), primary_key=True),
    Column("project_id", Integer, ForeignKey("label_projects.id"), nullable=False),
    Column("assigned_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("guideline_version", Integer, nullable=False),
    Index("ix_label_assignments_project_annotator", "project_id", "annotator"),
    Index("ix_label_assignments_project_expires", "project_id", "expires_at"),
)

label_annotations = Table(
    "label_annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("label_projects.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("label_items.id"), nullable=False),
    Column("annotator", String(128), nullable=False),
    Column("value", Text, nullable=False),  # JSON, normalised by check_value
    Column("assigned_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("guideline_version", Integer, nullable=False),
    Column("request_id", String(100)),
    UniqueConstraint("item_id", "annotator", name="uq_label_annotations_item_annotator"),
    Index("ix_label_annotations_project_annotator", "project_id", "annotator"),
    Index("ix_label_annotations_project_created", "project_id", "created_at"),
    # a retried submit finds its first answer; partial (on PostgreSQL from migration 0016, see uq_monitor_alerts_firing)
    Index("uq_label_annotations_request", "project_id", "annotator", "request_id", unique=True, sqlite_where=_REQUEST_ID),
)

label_reviews = Table(
    "label_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("label_projects.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("label_items.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # review or audit
    Column("value", Text, nullable=False),  # JSON
    Column("outcome", String(16), nullable=False),  # confirmed or corrected
    Column("note", Text, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_label_reviews_project", "project_id", "id"),
)

label_exclusions = Table(
    "label_exclusions",
    metadata,
    Column("project_id", Integer, ForeignKey("label_projects.id"), primary_key=True),
    Column("annotator", String(128), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

label_consensus = Table(
    "label_consensus",
    metadata,
    Column("project_id", Integer, ForeignKey("label_projects.id"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("details", Text, nullable=False),  # JSON: method, guideline versions, annotations, last annotation id
    Column("created_at", BigInteger, nullable=False),
)

# assessments of model versions (keel.core.models.Assessment; the store: sql/assessments.py) ---------------------------
model_assessments = Table(
    "model_assessments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("kind", String(32), nullable=False),  # fairness, ...
    Column("metrics", Text, nullable=False),  # JSON object of finite numbers
    Column("details", Text, nullable=False),  # JSON object
    Column("artifact_sha256", String(64)),  # the report's blob
    Column("run_id", String(32), ForeignKey("runs.id")),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_model_assessments_version_kind", "model_version_id", "kind", "id"),  # the latest of each kind
)

# privacy budgets of dataset versions (keel.core.privacy; the store: sql/privacy.py) -----------------------------------
privacy_budgets = Table(
    "privacy_budgets",
    metadata,
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

privacy_spends = Table(
    "privacy_spends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_version_id", Integer, ForeignKey("privacy_budgets.dataset_version_id"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id")),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("mechanism", String(200), nullable=False),
    Column("request_id", String(100)),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_privacy_spends_dataset", "dataset_version_id", "id"),
    # a retried spend finds its first record (NULLs are distinct on both databases: spends without one never collide)
    UniqueConstraint("dataset_version_id", "request_id", name="uq_privacy_spends_request"),
)
