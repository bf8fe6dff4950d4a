"""Who may call what: the permission each route of the platform API needs, one line per route.

Written out route by route on purpose: ``create_app`` refuses to start when a route has no line here, and
``tests/server/test_auth_matrix.py`` calls every route of the OpenAPI schema as every role and checks the answer
against this table, so a new route cannot ship without someone deciding who may call it.

``public``: anyone, even without a token (health, the API's own documentation). The other values are the
permissions of ``keel.core.identity`` (``read``, ``write``, ``promote``, ``serve``, ``log``, ``annotate``, ``admin``),
or alternatives joined by ``|`` (``read|annotate``: either will do; a route may then answer by which one, as
``GET .../annotations`` lists only the caller's own to a caller without ``read``).
"""

from __future__ import annotations

__all__ = ["POLICY", "PUBLIC", "READ_OR_ANNOTATE", "alternatives", "policy_for"]

PUBLIC = "public"
READ_OR_ANNOTATE = "read|annotate"  # what anyone who reads may see, and an annotator needs to do their work

POLICY: dict[tuple[str, str], str] = {
    # health and documentation
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # the web UI (keel.ui): sign-in is public (the page, and the JSON call that checks a token and sets the cookie);
    # pages need what their REST twins need
    ("GET", "/"): PUBLIC,  # a redirect to /ui/
    ("GET", "/ui/login"): PUBLIC,
    ("POST", "/ui/session"): PUBLIC,
    ("POST", "/ui/logout"): PUBLIC,
    ("GET", "/ui/"): "read",
    ("GET", "/ui/runs"): "read",  # lists only the projects the caller may read; a named experiment elsewhere: 404
    ("GET", "/ui/runs/{ref}"): "read",  # the run's own project is checked by the page (404 where it may not read)
    ("GET", "/ui/runs/{ref}/artifacts/{path:path}"): "read",
    ("GET", "/ui/compare"): "read",
    ("GET", "/ui/data/metrics"): "read",
    ("GET", "/ui/deployments"): "read",
    ("GET", "/ui/deployments/{name}"): "read",
    ("GET", "/ui/data/deployments/{name}/traffic"): "read",
    ("GET", "/ui/monitors/{name}"): "read",
    ("GET", "/ui/data/monitors/{name}/windows"): "read",
    ("GET", "/ui/audit"): "admin",
    ("GET", "/ui/audit/verify"): "admin",
    ("GET", "/ui/admin"): "admin",
    ("GET", "/ui/datasets"): "read",
    ("GET", "/ui/datasets/{name}"): "read",
    ("GET", "/ui/datasets/{name}/drift"): "read",
    ("GET", "/ui/datasets/{name}/{version}"): "read",
    ("GET", "/ui/models"): "read",
    ("GET", "/ui/models/{name}"): "read",
    ("POST", "/ui/actions/models/{name}/aliases/{alias}"): "promote",  # and check_promotion, as the REST route
    ("GET", "/ui/label"): "annotate",  # the annotator's pages (keel.ui.pages.label): the store acts as the caller
    ("GET", "/ui/label/{project}"): "annotate",
    ("POST", "/ui/data/label/{project}/next"): "annotate",
    ("POST", "/ui/data/label/{project}/annotations"): "annotate",
    ("GET", "/ui/label/{project}/report"): "read",  # the project's report: every annotator's scores, the gold answers' use
    ("GET", "/ui/models/{name}/{version}/assessments/{assessment_id}"): "read",  # an assessment's report, sandboxed
    # artifacts
    ("GET", "/api/v1/artifacts/{sha256}"): "read",
    ("HEAD", "/api/v1/artifacts/{sha256}"): "read",
    ("PUT", "/api/v1/artifacts/{sha256}"): "write",
    # experiments and runs
    ("GET", "/api/v1/experiments"): "read",
    ("POST", "/api/v1/experiments"): "write",
    ("GET", "/api/v1/experiments/{experiment_id}"): "read",
    ("DELETE", "/api/v1/experiments/{experiment_id}"): "write",
    ("POST", "/api/v1/experiments/{experiment_id}/restore"): "write",
    ("GET", "/api/v1/experiments/{experiment_id}/latest-run"): "read",
    ("POST", "/api/v1/runs"): "write",
    ("POST", "/api/v1/runs/heartbeat"): "write",
    ("POST", "/api/v1/runs/search"): "read",
    ("GET", "/api/v1/runs/{run_id}"): "read",
    ("DELETE", "/api/v1/runs/{run_id}"): "write",  # and only by its creator or an admin (ownership.run_hook)
    ("POST", "/api/v1/runs/{run_id}/restore"): "write",  # the same
    ("GET", "/api/v1/runs/{run_id}/artifacts"): "read",
    ("POST", "/api/v1/runs/{run_id}/artifacts"): "write",
    ("GET", "/api/v1/runs/{run_id}/children"): "read",
    ("GET", "/api/v1/runs/{run_id}/datasets"): "read",
    ("POST", "/api/v1/runs/{run_id}/end"): "write",
    ("GET", "/api/v1/runs/{run_id}/metrics"): "read",
    ("POST", "/api/v1/runs/{run_id}/params"): "write",
    ("POST", "/api/v1/runs/{run_id}/tags"): "write",
    ("POST", "/api/v1/runs/{run_id}/trial-result"): "write",
    ("POST", "/api/v1/metrics"): "write",
    ("GET", "/api/v1/metric-batches/{batch_id}"): "read",
    # datasets
    ("GET", "/api/v1/datasets"): "read",
    ("GET", "/api/v1/datasets/by-name/all"): "read",
    ("GET", "/api/v1/datasets/by-name/versions"): "read",
    ("POST", "/api/v1/datasets/versions"): "write",
    ("GET", "/api/v1/datasets/versions/{version_id}"): "read",
    ("GET", "/api/v1/datasets/versions/{version_id}/children"): "read",
    ("GET", "/api/v1/datasets/versions/{version_id}/profile"): "read",
    ("POST", "/api/v1/datasets/versions/{version_id}/runs"): "write",
    ("GET", "/api/v1/datasets/versions/{version_id}/runs"): "read",
    ("GET", "/api/v1/datasets/versions/{version_id}/validations"): "read",
    ("POST", "/api/v1/datasets/versions/{version_id}/validations"): "write",
    # pipelines
    ("GET", "/api/v1/step-cache/{cache_key}"): "read",
    ("PUT", "/api/v1/step-cache/{cache_key}"): "write",
    # models: moving an alias is its own permission (and a protected model's own bindings: keel.server.auth)
    ("GET", "/api/v1/models"): "read",
    ("POST", "/api/v1/models/versions"): "write",
    ("GET", "/api/v1/models/{name}/aliases/{alias}"): "read",
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): "promote",
    ("GET", "/api/v1/models/{name}/history"): "read",
    ("GET", "/api/v1/models/{name}/versions"): "read",
    ("GET", "/api/v1/models/{name}/versions/{version}"): "read",
    ("POST", "/api/v1/model-assessments"): "write",  # an assessment (fairness, ...) of a version; gates then read it
    ("GET", "/api/v1/models/{name}/versions/{version}/assessments"): "read",
    # deployments and the prediction log
    ("GET", "/api/v1/deployments"): "read",
    ("POST", "/api/v1/deployments"): "write",
    ("GET", "/api/v1/deployments/{name}"): "read",
    ("GET", "/api/v1/deployments/{name}/history"): "read",
    ("POST", "/api/v1/deployments/{name}/rollback"): "deploy",  # a monitor's rollback action: schedulers may
    ("PUT", "/api/v1/deployments/{name}/routes"): "deploy",  # a monitor's retrain action adds a shadow
    ("GET", "/api/v1/deployments/{deployment}/prediction-files"): "read",
    ("POST", "/api/v1/prediction-files"): "log",
    ("POST", "/api/v1/deployments/{deployment}/labels"): "log",
    ("POST", "/api/v1/deployments/{deployment}/labels/search"): "read",
    # monitoring: what schedulers write is "log"; defining monitors is "write"
    ("GET", "/api/v1/monitors"): "read",
    ("POST", "/api/v1/monitors"): "write",
    ("PUT", "/api/v1/monitors"): "write",
    ("GET", "/api/v1/monitors/{name}"): "read",
    ("GET", "/api/v1/monitors/{monitor}/windows"): "read",
    ("PUT", "/api/v1/monitor-windows"): "log",
    ("GET", "/api/v1/monitor-alerts"): "read",
    ("POST", "/api/v1/monitor-alerts"): "log",
    ("POST", "/api/v1/monitors/{monitor}/alerts/{rule}/resolve"): "log",
    ("GET", "/api/v1/monitor-alerts/{alert_id}/actions"): "read",
    ("POST", "/api/v1/monitor-actions"): "log",
    ("POST", "/api/v1/scheduler-leases/acquire"): "log",
    ("POST", "/api/v1/scheduler-leases/release"): "log",
    # label projects: annotators are handed tasks and answer as themselves (keel.core.actor); the items hold the known
    # answers of gold items, so they, everyone's answers, reviews and exclusions need "read", which annotators have not
    ("GET", "/api/v1/label-projects"): READ_OR_ANNOTATE,
    ("POST", "/api/v1/label-projects"): "write",
    ("GET", "/api/v1/label-projects/{name}"): READ_OR_ANNOTATE,
    ("GET", "/api/v1/label-projects/{name}/guidelines"): READ_OR_ANNOTATE,
    ("POST", "/api/v1/label-projects/{name}/guidelines"): "write",
    ("GET", "/api/v1/label-projects/{name}/items"): "read",
    ("POST", "/api/v1/label-projects/{name}/next"): "annotate",
    ("POST", "/api/v1/label-projects/{name}/annotations"): "annotate",
    ("GET", "/api/v1/label-projects/{name}/annotations"): READ_OR_ANNOTATE,  # without read: one's own (routes.labels)
    ("POST", "/api/v1/label-projects/{name}/imports"): "write",  # annotations made elsewhere, with their annotators
    ("POST", "/api/v1/label-reviews"): "write",
    ("GET", "/api/v1/label-projects/{name}/reviews"): "read",
    ("POST", "/api/v1/label-projects/{name}/exclusions"): "write",
    ("DELETE", "/api/v1/label-projects/{name}/exclusions"): "write",
    ("GET", "/api/v1/label-projects/{name}/exclusions"): "read",
    ("POST", "/api/v1/label-projects/{name}/consensus"): "write",
    ("GET", "/api/v1/label-projects/{name}/consensus"): "read",
    # privacy budgets: setting or raising one is "admin" (whoever may set a budget may spend without limit: a writer who
    # could raise it would defeat it); a DP run records its spend with "write", as it logs its run
    ("PUT", "/api/v1/privacy-budgets/{name}"): "admin",
    ("GET", "/api/v1/privacy-budgets/{name}"): "read",
    ("GET", "/api/v1/privacy-budgets/{name}/spends"): "read",
    ("POST", "/api/v1/privacy-spends"): "write",
    # identity: admins only, but checking a token presented to a serving replica (its service account does that)
    ("POST", "/api/v1/identity/principals"): "admin",
    ("GET", "/api/v1/identity/principals"): "admin",
    ("GET", "/api/v1/identity/principals/{name}"): "admin",
    ("POST", "/api/v1/identity/principals/{name}/disabled"): "admin",
    ("GET", "/api/v1/identity/principal-count"): "admin",
    ("POST", "/api/v1/identity/bindings"): "admin",
    ("DELETE", "/api/v1/identity/bindings"): "admin",
    ("GET", "/api/v1/identity/bindings"): "log",  # a serving replica reads a caller's roles (keel.serve.tokens)
    ("POST", "/api/v1/identity/tokens"): "admin",
    ("GET", "/api/v1/identity/tokens"): "admin",
    ("POST", "/api/v1/identity/tokens/{token_id}/revoke"): "admin",
    ("POST", "/api/v1/identity/authenticate"): "log",
    ("GET", "/api/v1/identity/blob-trust/{sha256}"): "read",  # answered for the caller only
    ("GET", "/api/v1/identity/trusted-roles"): "read",
    ("PUT", "/api/v1/identity/trusted-roles"): "admin",
    # the audit log: read by admins; written only by the store, in the transaction of each change
    ("GET", "/api/v1/audit/events"): "admin",
    ("GET", "/api/v1/audit/head"): "admin",
}


def alternatives(needed: str) -> tuple[str, ...]:
    """The permissions a policy value accepts, any one of which will do (``"read|annotate"``: read or annotate)."""
    return tuple(needed.split("|"))


def policy_for(method: str, path: str) -> str | None:
    """The permission a route needs (``PUBLIC``: none), None when the table has no line for it. ``HEAD`` of a route
    without its own line is its ``GET``'s."""
    found = POLICY.get((method, path))
    if found is None and method == "HEAD":
        found = POLICY.get(("GET", path))
    return found
