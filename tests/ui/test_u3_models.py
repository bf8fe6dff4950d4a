"""The models pages and their one action over a real server with auth on (uvicorn on 127.0.0.1, httpx): a model with
two versions, a source run, training and holdout data and aliases, and a protected model. What is stored is shown,
text from stores is escaped, a promotion through the UI moves the alias through the gates with the caller as its
actor (alias history and audit log), a refusal names the failed check, and who may not promote sees no button and is
refused as by the REST route."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest

import keel.data
from keel.context import Context
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app
from keel.ui import install_ui

EVIL = "<script>alert('x')</script>"
SIGNATURE = {
    "inputs": {"type": "dataframe", "columns": [{"name": "age", "kind": "float"}, {"name": f"city{EVIL}", "kind": "str"}]},
    "outputs": {"type": "tensor", "dtype": "integer", "shape": [-1]},
    "holdout": "orders-test@1",
}


@dataclass
class Site:
    url: str
    store: MetadataStore
    tokens: dict[str, str]
    run_id: str

    def get(self, path: str, who: str = "ada", **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.get(self.url + path, headers=headers, timeout=60, follow_redirects=False, **kwargs)

    def act(self, model: str, alias: str, who: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.post(f"{self.url}/ui/actions/models/{model}/aliases/{alias}", json=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("u3-models")
    store = open_store(f"sqlite:///{home / 'keel.db'}")
    artifacts = open_artifact_store(str(home / "artifacts"))
    ctx = Context(store, artifacts)
    frame = pd.DataFrame({"age": [30.0, 41.0, 52.0], "city": ["oslo", "paris", "rome"]})
    keel.data.log(frame, "orders", run=False, ctx=ctx)
    keel.data.log(frame.head(2), "orders-test", run=False, ctx=ctx)
    run = store.create_run(store.get_or_create_experiment("train").id, "fit", params={"C": "0.30000000000000004"})
    for number, auc in ((1, 0.81), (2, 0.86)):
        store.models.create_version("churn", flavor="sklearn", artifact_sha256=f"{number}" * 64, size=10,
                                    signature=SIGNATURE, source_run=run.id, metrics={"auc": auc, "rows": 3.0},
                                    datasets=["orders@1"], requirements=["scikit-learn==1.5"])  # fmt: skip
    store.models.move_alias("churn", "production", 1, force=True, actor="root", reason=f"first {EVIL}")
    store.models.move_alias("churn", "staging", 2, rules=["auc >= 0.8"], actor="root", reason="good enough")
    store.models.create_version("fraud", flavor="onnx", artifact_sha256="f" * 64, size=10, signature={})
    store.models.create_version("fraud", flavor="onnx", artifact_sha256="e" * 64, size=10, signature={})
    tokens = {}
    for name, role, model in (("ada", "admin", None), ("erin", "editor", None), ("vic", "viewer", None),
                              ("pat", "editor", "fraud")):  # fmt: skip
        store.identity.create_principal(name)
        store.identity.grant(name, role, model=model)
        tokens[name] = store.identity.create_token(name).secret
    store.identity.grant("pat", "viewer")  # pat reads everything, promotes fraud only (fraud is protected)
    app = create_app(store, artifacts, auth=True)
    install_ui(app)
    with serve_app(app) as url:
        yield Site(url, store, tokens, run.id)
    store.close()


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _holder(store: MetadataStore, model: str, alias: str) -> int:
    return store.models.resolve_alias(model, alias).version


def test_the_list_shows_each_model_its_latest_version_and_aliases(site: Site) -> None:
    page = site.get("/ui/models", "vic")
    assert page.status_code == 200
    rows = {
        m: body for m, body in re.findall(r'<td class="l"><a href="/ui/models/([^"]+)">.*?</a></td>(.*?)</tr>', page.text, re.S)
    }
    assert set(rows) == {"churn", "fraud"}
    assert "v2" in rows["churn"] and "sklearn" in rows["churn"]
    assert re.findall(r'<span class="tag">(\w+) → v(\d)</span>', rows["churn"]) == [("production", "1"), ("staging", "2")]
    assert "onnx" in rows["fraud"] and "tag" not in rows["fraud"]


def test_the_model_page_shows_versions_signature_metrics_run_and_data(site: Site) -> None:
    page = site.get("/ui/models/churn", "vic")
    assert page.status_code == 200
    versions = re.search(r'<table class="grid" id="versions">(.*?)</table>', page.text, re.S)
    assert versions is not None
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", versions.group(1).split("<tbody>")[1], re.S)
    assert [re.search(r">v(\d)</a>", r).group(1) for r in rows] == ["2", "1"]  # type: ignore[union-attr]
    newest = _text(rows[0])
    assert "sklearn" in newest and "in: dataframe: 2 columns" in newest and "out: tensor integer [-1]" in newest
    assert "auc 0.86" in newest and "rows 3" in newest and "staging" in newest
    assert f'href="/ui/runs/{site.run_id}"' in rows[0]
    assert 'href="/ui/datasets/orders/1">orders@1</a>' in rows[0]
    assert 'href="/ui/datasets/orders-test/1">orders-test@1</a> <span class="tag">holdout</span>' in rows[0]
    assert f"city{EVIL}" not in page.text and "city&lt;script&gt;" in page.text
    # default selection: the version production holds, with its card and its lineage
    assert "Model card: v1" in page.text and "Lineage of v1" in page.text
    card = re.search(r'<div class="card" id="model-card">(.*?)</div>', page.text, re.S)
    assert card is not None
    card_text = _text(card.group(1))
    assert "orders@1: 3 rows x 2 columns" in card_text and "C: 0.3" in card_text and "auc: 0.81" in card_text
    assert "production: set to v1 by root (first <script>alert('x')</script>)" in card_text  # text, escaped on the page
    assert EVIL not in page.text
    assert "trained in" in page.text and "dataset_version" in page.text  # lineage drawn from data to the model
    chosen = site.get("/ui/models/churn?version=2", "vic").text
    assert "Model card: v2" in chosen and "auc: 0.86" in _text(chosen)


def test_the_alias_history_is_on_a_timeline_with_who_when_why_and_gates(site: Site) -> None:
    page = site.get("/ui/models/churn", "vic").text
    timeline = re.search(r'<svg [^>]*class="timeline".*?</svg>', page, re.S)
    assert timeline is not None
    lanes = re.findall(r'<text x="\d+" y="[\d.]+" font-size="12" text-anchor="end">(\w+)</text>', timeline.group(0))
    assert lanes == ["production", "staging"]
    marks = re.findall(r'<g class="move" data-kind="(\w+)"><title>([^<]*)</title>', timeline.group(0))
    assert [kind for kind, _ in marks] == ["forced", "gated"]
    first, second = (html.unescape(t) for _, t in marks)
    assert first.startswith("production: nothing -> v1 by root at ") and "forced, no gates" in first and EVIL in first
    assert "staging: nothing -> v2 by root" in second and "gated (1 checks passed)" in second and "why: good enough" in second
    assert EVIL not in timeline.group(0)


def test_promoting_through_the_ui_moves_the_alias_with_the_caller_as_actor(site: Site) -> None:
    page = site.get("/ui/models/churn", "erin").text
    assert '<form id="promote"' in page and 'src="/ui/static/models.js"' in page
    holders = re.search(r'data-holders="([^"]*)"', page)
    assert holders is not None and html.unescape(holders.group(1)) == '{"production": 1, "staging": 2}'
    head = site.store.audit.head()
    before = head.seq if head else 0
    body = {"version": 2, "rules": "auc >= baseline\nrows >= 3", "reason": "better auc", "expected_from": 1}
    moved = site.act("churn", "production", "erin", body)
    assert moved.status_code == 200, moved.text
    assert moved.json()["actor"] == "erin" and moved.json()["gated"] and not moved.json()["forced"]
    assert _holder(site.store, "churn", "production") == 2
    last = site.store.models.alias_history("churn", "production")[-1]
    assert (last.actor, last.from_version, last.to_version, last.reason, last.gated) == ("erin", 1, 2, "better auc", True)
    assert [c["rule"] for c in last.checks or []] == ["auc >= baseline", "rows >= 3"]
    events = site.store.audit.events(after_seq=before)
    assert [(e.action, e.entity_id, e.actor) for e in events] == [("models.move_alias", "churn@production", "erin")]
    shown = _text(site.get("/ui/models/churn", "vic").text)
    assert "production v1 v2 erin better auc 2 passed" in shown  # the history table, newest first
    # a stale page (it still thinks v1 holds production) is refused, nothing moves
    stale = site.act("churn", "production", "erin", {"version": 1, "force": True, "expected_from": 1})
    assert stale.status_code == 409 and _holder(site.store, "churn", "production") == 2


def test_rolling_back_moves_the_alias_to_the_version_it_held_before(site: Site) -> None:
    held = _holder(site.store, "churn", "staging")
    site.act("churn", "staging", "ada", {"version": 1, "force": True, "reason": "try v1", "expected_from": held})
    page = site.get("/ui/models/churn", "ada").text
    button = re.search(r'<button type="button" class="rollback" data-model="churn" data-alias="staging" '
                       r'data-from="(\d)" data-to="(\d)">roll back to v(\d)</button>', page)  # fmt: skip
    assert button is not None and button.groups() == ("1", str(held), str(held))
    back = site.act("churn", "staging", "ada", {"rollback": True, "expected_from": 1, "reason": "v1 was worse"})
    assert back.status_code == 200, back.text
    assert _holder(site.store, "churn", "staging") == held
    last = site.store.models.alias_history("churn", "staging")[-1]
    assert (last.actor, last.forced, last.from_version, last.to_version) == ("ada", True, 1, held)
    assert last.reason == f"rollback to v{held}: v1 was worse"


def test_a_refused_promotion_names_the_failed_gate_check_and_moves_nothing(site: Site) -> None:
    before = _holder(site.store, "churn", "production")
    refused = site.act("churn", "production", "erin", {"version": 1, "rules": ["auc >= 0.9"], "expected_from": before})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "promotion_refused" and "'auc >= 0.9': auc is 0.81, threshold 0.9" in error["message"]
    assert error["details"]["checks"] == [
        {"rule": "auc >= 0.9", "metric": "auc", "candidate": 0.81, "baseline": None, "threshold": 0.9, "passed": False}
    ]
    assert _holder(site.store, "churn", "production") == before
    js = httpx.get(site.url + "/ui/static/models.js", timeout=30).text
    assert "error.details && error.details.checks" in js and "textContent" in js and "innerHTML" not in js


def test_a_viewer_sees_no_buttons_and_is_refused(site: Site) -> None:
    page = site.get("/ui/models/churn", "vic").text
    assert '<form id="promote"' not in page and 'class="rollback"' not in page
    refused = site.act("churn", "production", "vic", {"version": 1, "force": True})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert site.store.models.alias_history("churn", "production")[-1].actor != "vic"


def test_a_protected_model_moves_only_for_its_own_bindings_as_at_the_rest_route(site: Site) -> None:
    erin = site.get("/ui/models/fraud", "erin").text  # an editor everywhere, but fraud has bindings of its own
    assert '<form id="promote"' not in erin
    refused = site.act("fraud", "production", "erin", {"version": 1, "rules": ["x >= 0"]})
    assert refused.status_code == 403 and "protected" in refused.json()["error"]["message"]
    pat = site.get("/ui/models/fraud", "pat").text
    assert '<form id="promote"' in pat and 'name="force"' not in pat  # a forced move of a protected model: admins only
    forced = site.act("fraud", "production", "pat", {"version": 1, "force": True})
    assert forced.status_code == 403 and "needs an admin" in forced.json()["error"]["message"]
    with pytest.raises(Exception, match="production"):
        site.store.models.resolve_alias("fraud", "production")
    # the cookie a browser carries works as the bearer token, and the action still wants JSON (a form post is refused)
    cookie = {"keel_token": site.tokens["ada"]}
    form = httpx.post(f"{site.url}/ui/actions/models/fraud/aliases/production", data={"version": "1"}, cookies=cookie)
    assert form.status_code == 415
    done = httpx.post(f"{site.url}/ui/actions/models/fraud/aliases/production", json={"version": 1, "force": True},
                      cookies=cookie, timeout=60)  # fmt: skip
    assert done.status_code == 200 and site.store.models.alias_history("fraud")[-1].actor == "ada"


def test_unknown_models_are_not_found_and_strangers_sign_in(site: Site) -> None:
    assert site.get("/ui/models/nope").status_code == 404
    stranger = httpx.get(site.url + "/ui/models/churn", timeout=30, follow_redirects=False)
    assert stranger.status_code == 303 and stranger.headers["location"].startswith("/ui/login")
    anonymous = httpx.post(f"{site.url}/ui/actions/models/churn/aliases/production", json={"version": 1}, timeout=30)
    assert anonymous.status_code == 401


def test_in_a_browser_a_refusal_shows_the_failed_check_and_a_promotion_moves_the_alias(site: Site, open_page: Any) -> None:
    watched = open_page(site.url)
    watched.context.add_cookies([{"name": "keel_token", "value": site.tokens["erin"], "domain": "127.0.0.1", "path": "/ui"}])
    watched.goto("/ui/models/churn")
    page = watched.page
    page.fill("#promote input[name=alias]", "canary")
    page.select_option("#promote select[name=version]", "2")
    page.fill("#promote textarea[name=rules]", "auc >= 0.99")
    page.click("#promote button[type=submit]")
    page.wait_for_selector("#promote-result:not([hidden]) li")
    shown = page.inner_text("#promote-result")
    assert "refused" in shown and "FAILED auc >= 0.99: auc 0.86 (threshold 0.99)" in shown, shown
    assert [c.alias for c in site.store.models.alias_history("churn")].count("canary") == 0
    page.fill("#promote textarea[name=rules]", "auc >= 0.85")
    page.fill("#promote input[name=reason]", "ready for <canary>")
    with page.expect_navigation():  # the page reloads once the alias moved
        page.click("#promote button[type=submit]")
    assert _holder(site.store, "churn", "canary") == 2
    last = site.store.models.alias_history("churn", "canary")[-1]
    assert (last.actor, last.reason, last.gated) == ("erin", "ready for <canary>", True)
    assert "canary - v2 erin ready for <canary> 1 passed" in " ".join(page.inner_text("#history").split())
    # the refusal's 409 is the browser's console note of an answer the page handled; /favicon.ico is outside /ui, so
    # no cookie travels there (the layout names no icon): neither is a fault of this page
    expected = ("status of 409 (Conflict) (" + site.url + "/ui/actions/models/churn/aliases/canary)", "/favicon.ico)")
    watched.errors[:] = [e for e in watched.errors if not e.endswith(expected)]
    watched.assert_clean()
