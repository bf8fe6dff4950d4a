-- generated from keel/store/metadata/sql/schema.py by `python -m keel.store.metadata.sql.ddl`: do not edit
CREATE TABLE artifacts (
	sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	media_type VARCHAR(128) NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (sha256)
);
CREATE TABLE audit_events (
	seq INTEGER NOT NULL, 
	at BIGINT NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	entity VARCHAR(32) NOT NULL, 
	entity_id VARCHAR(256) NOT NULL, 
	"before" TEXT, 
	"after" TEXT, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (hash)
);
CREATE INDEX ix_audit_events_entity ON audit_events (entity, entity_id);
CREATE TABLE blob_writers (
	sha256 VARCHAR(64) NOT NULL, 
	principal VARCHAR(128) NOT NULL, 
	first_at BIGINT NOT NULL, 
	PRIMARY KEY (sha256, principal)
);
CREATE TABLE datasets (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE deployments (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	primary_model TEXT NOT NULL, 
	shadows TEXT NOT NULL, 
	canaries TEXT NOT NULL, 
	sticky_key VARCHAR(250), 
	created_at BIGINT NOT NULL, 
	updated_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE metric_batches (
	id VARCHAR(100) NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_metric_batches_created_at ON metric_batches (created_at);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	description TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE principals (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	disabled BOOLEAN DEFAULT 0 NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE projects (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	description TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE scheduler_leases (
	job VARCHAR(200) NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	until_ms BIGINT NOT NULL, 
	PRIMARY KEY (job)
);
CREATE TABLE trusted_roles (
	project VARCHAR(128) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	PRIMARY KEY (project, role)
);
CREATE TABLE alias_history (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	alias VARCHAR(64) NOT NULL, 
	from_version INTEGER, 
	to_version INTEGER, 
	actor VARCHAR(128) NOT NULL, 
	reason TEXT NOT NULL, 
	at BIGINT NOT NULL, 
	gated BOOLEAN DEFAULT 0 NOT NULL, 
	forced BOOLEAN DEFAULT 0 NOT NULL, 
	checks TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(model_id) REFERENCES models (id)
);
CREATE INDEX ix_alias_history_model_alias_at ON alias_history (model_id, alias, at);
CREATE TABLE api_tokens (
	id VARCHAR(12) NOT NULL, 
	principal_id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	hash VARCHAR(128) NOT NULL, 
	scopes VARCHAR(256) NOT NULL, 
	created_at BIGINT NOT NULL, 
	expires_at BIGINT, 
	revoked_at BIGINT, 
	last_used_at BIGINT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(principal_id) REFERENCES principals (id)
);
CREATE INDEX ix_api_tokens_principal ON api_tokens (principal_id);
CREATE TABLE dataset_versions (
	id INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	artifact_sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	row_count BIGINT NOT NULL, 
	schema TEXT NOT NULL, 
	source TEXT NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	transform TEXT, 
	profile TEXT, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_dataset_versions_number UNIQUE (dataset_id, version), 
	CONSTRAINT uq_dataset_versions_content UNIQUE (dataset_id, content_hash), 
	FOREIGN KEY(dataset_id) REFERENCES datasets (id)
);
CREATE TABLE deployment_changes (
	id INTEGER NOT NULL, 
	deployment_id INTEGER NOT NULL, 
	what VARCHAR(16) NOT NULL, 
	from_routes TEXT, 
	to_routes TEXT NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	reason TEXT NOT NULL, 
	at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(deployment_id) REFERENCES deployments (id)
);
CREATE INDEX ix_deployment_changes_deployment ON deployment_changes (deployment_id, id);
CREATE TABLE experiments (
	id INTEGER NOT NULL, 
	project_id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	created_at BIGINT NOT NULL, 
	deleted_at BIGINT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_experiments_project_name UNIQUE (project_id, name), 
	FOREIGN KEY(project_id) REFERENCES projects (id)
);
CREATE TABLE model_aliases (
	model_id INTEGER NOT NULL, 
	alias VARCHAR(64) NOT NULL, 
	version INTEGER NOT NULL, 
	updated_at BIGINT NOT NULL, 
	PRIMARY KEY (model_id, alias), 
	FOREIGN KEY(model_id) REFERENCES models (id)
);
CREATE TABLE monitors (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	deployment_id INTEGER NOT NULL, 
	window_ms BIGINT NOT NULL, 
	reference TEXT, 
	rules TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	updated_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(deployment_id) REFERENCES deployments (id)
);
CREATE INDEX ix_monitors_deployment ON monitors (deployment_id);
CREATE TABLE prediction_files (
	id INTEGER NOT NULL, 
	deployment_id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	rows BIGINT NOT NULL, 
	start_ms BIGINT NOT NULL, 
	end_ms BIGINT NOT NULL, 
	replica VARCHAR(128) NOT NULL, 
	size BIGINT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_prediction_files_deployment_sha256 UNIQUE (deployment_id, sha256), 
	FOREIGN KEY(deployment_id) REFERENCES deployments (id)
);
CREATE INDEX ix_prediction_files_deployment_end ON prediction_files (deployment_id, end_ms);
CREATE TABLE prediction_labels (
	id INTEGER NOT NULL, 
	deployment_id INTEGER NOT NULL, 
	request_id VARCHAR(128) NOT NULL, 
	"row" BIGINT NOT NULL, 
	label TEXT NOT NULL, 
	at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_prediction_labels_deployment_request_row UNIQUE (deployment_id, request_id, "row"), 
	FOREIGN KEY(deployment_id) REFERENCES deployments (id)
);
CREATE INDEX ix_prediction_labels_deployment_at ON prediction_labels (deployment_id, at);
CREATE TABLE role_bindings (
	id INTEGER NOT NULL, 
	principal_id INTEGER NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	project VARCHAR(128) NOT NULL, 
	model VARCHAR(128) DEFAULT '' NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_role_bindings UNIQUE (principal_id, role, project, model), 
	FOREIGN KEY(principal_id) REFERENCES principals (id)
);
CREATE INDEX ix_role_bindings_model ON role_bindings (model);
CREATE TABLE dataset_parents (
	version_id INTEGER NOT NULL, 
	parent_id INTEGER NOT NULL, 
	PRIMARY KEY (version_id, parent_id), 
	FOREIGN KEY(version_id) REFERENCES dataset_versions (id), 
	FOREIGN KEY(parent_id) REFERENCES dataset_versions (id)
);
CREATE INDEX ix_dataset_parents_parent ON dataset_parents (parent_id);
CREATE TABLE label_projects (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	dataset_version_id INTEGER NOT NULL, 
	dataset VARCHAR(300) NOT NULL, 
	schema TEXT NOT NULL, 
	overlap INTEGER NOT NULL, 
	gold_rate FLOAT NOT NULL, 
	qualification_pass FLOAT NOT NULL, 
	fields TEXT NOT NULL, 
	lease_ms BIGINT NOT NULL, 
	guideline_version INTEGER NOT NULL, 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_versions (id)
);
CREATE TABLE monitor_alerts (
	id INTEGER NOT NULL, 
	monitor_id INTEGER NOT NULL, 
	rule VARCHAR(128) NOT NULL, 
	severity VARCHAR(16) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	first_window_ms BIGINT NOT NULL, 
	last_window_ms BIGINT NOT NULL, 
	value FLOAT, 
	message TEXT NOT NULL, 
	windows INTEGER NOT NULL, 
	created_at BIGINT NOT NULL, 
	resolved_at BIGINT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(monitor_id) REFERENCES monitors (id)
);
CREATE INDEX ix_monitor_alerts_created ON monitor_alerts (created_at);
CREATE INDEX ix_monitor_alerts_monitor_created ON monitor_alerts (monitor_id, created_at);
CREATE UNIQUE INDEX uq_monitor_alerts_firing ON monitor_alerts (monitor_id, rule) WHERE state = 'firing';
CREATE TABLE monitor_windows (
	id INTEGER NOT NULL, 
	monitor_id INTEGER NOT NULL, 
	start_ms BIGINT NOT NULL, 
	end_ms BIGINT NOT NULL, 
	numbers TEXT NOT NULL, 
	rows BIGINT NOT NULL, 
	labelled_rows BIGINT NOT NULL, 
	profile_sha256 VARCHAR(64), 
	computed_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_monitor_windows_monitor_start UNIQUE (monitor_id, start_ms), 
	FOREIGN KEY(monitor_id) REFERENCES monitors (id)
);
CREATE TABLE privacy_budgets (
	dataset_version_id INTEGER NOT NULL, 
	epsilon FLOAT NOT NULL, 
	delta FLOAT NOT NULL, 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (dataset_version_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_versions (id)
);
CREATE TABLE runs (
	pk INTEGER NOT NULL, 
	id VARCHAR(32) NOT NULL, 
	experiment_id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	start_time BIGINT NOT NULL, 
	end_time BIGINT, 
	heartbeat BIGINT, 
	parent_run_id VARCHAR(32), 
	git_commit VARCHAR(64), 
	git_dirty_hash VARCHAR(64), 
	entry_point TEXT, 
	entry_point_hash VARCHAR(64), 
	python_version VARCHAR(32), 
	platform VARCHAR(128), 
	packages_hash VARCHAR(64), 
	packages_blob VARCHAR(64), 
	kind VARCHAR(16) DEFAULT 'run' NOT NULL, 
	step_name VARCHAR(128), 
	cache_key VARCHAR(64), 
	cached_from VARCHAR(32), 
	trial_number INTEGER, 
	trial_params TEXT, 
	trial_state VARCHAR(16), 
	trial_value FLOAT, 
	deleted_at BIGINT, 
	PRIMARY KEY (pk), 
	UNIQUE (id), 
	FOREIGN KEY(experiment_id) REFERENCES experiments (id), 
	FOREIGN KEY(parent_run_id) REFERENCES runs (id)
);
CREATE INDEX ix_runs_experiment_kind_name ON runs (experiment_id, kind, name);
CREATE INDEX ix_runs_experiment_start ON runs (experiment_id, start_time);
CREATE INDEX ix_runs_parent ON runs (parent_run_id);
CREATE TABLE validation_results (
	id INTEGER NOT NULL, 
	version_id INTEGER NOT NULL, 
	suite VARCHAR(256) NOT NULL, 
	passed BOOLEAN NOT NULL, 
	errors INTEGER NOT NULL, 
	warnings INTEGER NOT NULL, 
	result TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(version_id) REFERENCES dataset_versions (id)
);
CREATE INDEX ix_validation_results_version ON validation_results (version_id);
CREATE TABLE label_consensus (
	project_id INTEGER NOT NULL, 
	dataset_version_id INTEGER NOT NULL, 
	details TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (project_id, dataset_version_id), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_versions (id)
);
CREATE TABLE label_exclusions (
	project_id INTEGER NOT NULL, 
	annotator VARCHAR(128) NOT NULL, 
	reason TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (project_id, annotator), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id)
);
CREATE TABLE label_guidelines (
	project_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (project_id, version), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id)
);
CREATE TABLE label_items (
	id INTEGER NOT NULL, 
	project_id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	position INTEGER NOT NULL, 
	data TEXT NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	answer TEXT, 
	answers INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_label_items_project_key UNIQUE (project_id, "key"), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id)
);
CREATE INDEX ix_label_items_project_role_answers ON label_items (project_id, role, answers, position);
CREATE TABLE latest_metrics (
	run_id VARCHAR(32) NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	value FLOAT, 
	step BIGINT NOT NULL, 
	timestamp BIGINT NOT NULL, 
	PRIMARY KEY (run_id, "key"), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_latest_metrics_key_value ON latest_metrics ("key", value);
CREATE TABLE metric_blocks (
	id INTEGER NOT NULL, 
	run_pk INTEGER NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	count INTEGER NOT NULL, 
	vals BLOB NOT NULL, 
	steps BLOB NOT NULL, 
	stamps BLOB NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_pk) REFERENCES runs (pk)
);
CREATE INDEX ix_metric_blocks_run_key ON metric_blocks (run_pk, "key");
CREATE TABLE model_versions (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	flavor VARCHAR(32) NOT NULL, 
	artifact_sha256 VARCHAR(64) NOT NULL, 
	size BIGINT NOT NULL, 
	signature TEXT NOT NULL, 
	source_run VARCHAR(32), 
	metrics TEXT NOT NULL, 
	datasets TEXT NOT NULL, 
	requirements TEXT NOT NULL, 
	description TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_model_versions_number UNIQUE (model_id, version), 
	FOREIGN KEY(model_id) REFERENCES models (id), 
	FOREIGN KEY(source_run) REFERENCES runs (id)
);
CREATE TABLE monitor_actions (
	id INTEGER NOT NULL, 
	alert_id INTEGER NOT NULL, 
	action VARCHAR(1024) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	detail TEXT NOT NULL, 
	attempts INTEGER NOT NULL, 
	at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_monitor_actions_alert_action UNIQUE (alert_id, action), 
	FOREIGN KEY(alert_id) REFERENCES monitor_alerts (id)
);
CREATE TABLE params (
	run_id VARCHAR(32) NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	value TEXT NOT NULL, 
	num FLOAT, 
	PRIMARY KEY (run_id, "key"), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_params_key_num_value ON params ("key", num, value);
CREATE TABLE privacy_spends (
	id INTEGER NOT NULL, 
	dataset_version_id INTEGER NOT NULL, 
	run_id VARCHAR(32), 
	epsilon FLOAT NOT NULL, 
	delta FLOAT NOT NULL, 
	mechanism VARCHAR(200) NOT NULL, 
	request_id VARCHAR(100), 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_privacy_spends_request UNIQUE (dataset_version_id, request_id), 
	FOREIGN KEY(dataset_version_id) REFERENCES privacy_budgets (dataset_version_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_privacy_spends_dataset ON privacy_spends (dataset_version_id, id);
CREATE TABLE run_artifacts (
	run_id VARCHAR(32) NOT NULL, 
	path VARCHAR(1024) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	PRIMARY KEY (run_id, path), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(sha256) REFERENCES artifacts (sha256)
);
CREATE TABLE run_datasets (
	run_id VARCHAR(32) NOT NULL, 
	version_id INTEGER NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	PRIMARY KEY (run_id, version_id, direction), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(version_id) REFERENCES dataset_versions (id)
);
CREATE INDEX ix_run_datasets_version ON run_datasets (version_id);
CREATE TABLE step_cache (
	cache_key VARCHAR(64) NOT NULL, 
	run_id VARCHAR(32) NOT NULL, 
	step VARCHAR(128) NOT NULL, 
	outputs TEXT NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (cache_key), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE tags (
	run_id VARCHAR(32) NOT NULL, 
	"key" VARCHAR(250) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY (run_id, "key"), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_tags_key_value ON tags ("key", value);
CREATE TABLE label_annotations (
	id INTEGER NOT NULL, 
	project_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	annotator VARCHAR(128) NOT NULL, 
	value TEXT NOT NULL, 
	assigned_at BIGINT NOT NULL, 
	created_at BIGINT NOT NULL, 
	guideline_version INTEGER NOT NULL, 
	request_id VARCHAR(100), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_label_annotations_item_annotator UNIQUE (item_id, annotator), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id), 
	FOREIGN KEY(item_id) REFERENCES label_items (id)
);
CREATE INDEX ix_label_annotations_project_annotator ON label_annotations (project_id, annotator);
CREATE INDEX ix_label_annotations_project_created ON label_annotations (project_id, created_at);
CREATE UNIQUE INDEX uq_label_annotations_request ON label_annotations (project_id, annotator, request_id) WHERE request_id IS NOT NULL;
CREATE TABLE label_assignments (
	item_id INTEGER NOT NULL, 
	annotator VARCHAR(128) NOT NULL, 
	project_id INTEGER NOT NULL, 
	assigned_at BIGINT NOT NULL, 
	expires_at BIGINT NOT NULL, 
	guideline_version INTEGER NOT NULL, 
	PRIMARY KEY (item_id, annotator), 
	FOREIGN KEY(item_id) REFERENCES label_items (id), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id)
);
CREATE INDEX ix_label_assignments_project_annotator ON label_assignments (project_id, annotator);
CREATE INDEX ix_label_assignments_project_expires ON label_assignments (project_id, expires_at);
CREATE TABLE label_reviews (
	id INTEGER NOT NULL, 
	project_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	value TEXT NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	note TEXT NOT NULL, 
	reviewer VARCHAR(128) NOT NULL, 
	created_at BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(project_id) REFERENCES label_projects (id), 
	FOREIGN KEY(item_id) REFERENCES label_items (id)
);
CREATE INDEX ix_label_reviews_project ON label_reviews (project_id, id);
CREATE TABLE model_assessments (
	id INTEGER NOT NULL, 
	model_version_id INTEGER NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	metrics TEXT NOT NULL, 
	details TEXT NOT NULL, 
	artifact_sha256 VARCHAR(64), 
	run_id VARCHAR(32), 
	created_at BIGINT NOT NULL, 
	created_by VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_model_assessments_version_kind ON model_assessments (model_version_id, kind, id);
CREATE TABLE model_version_datasets (
	model_version_id INTEGER NOT NULL, 
	dataset_version_id INTEGER NOT NULL, 
	PRIMARY KEY (model_version_id, dataset_version_id), 
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id), 
	FOREIGN KEY(dataset_version_id) REFERENCES dataset_versions (id)
);
CREATE INDEX ix_model_version_datasets_dataset ON model_version_datasets (dataset_version_id);
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version (version_num) VALUES ('0017');
