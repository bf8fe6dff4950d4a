"""The deployment, monitor, audit and admin pages over a real server with auth on (uvicorn on 127.0.0.1, httpx): a
deployment with a prediction log and labels, a monitor with windows, an alert and an action, users and tokens.
What is stored is shown, text from stores is escaped, viewers are kept out of the admin pages, and no token secret
or hash appears anywhere."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.context import Context
from keel.core.audit import AuditEvent
from keel.core.monitoring import ActionRecord, Alert, AlertRule, Monitor, MonitorWindow
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.audit import AuditStore
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app
from keel.ui import install_ui
from keel.ui.pages import audit as audit_page
from keel.ui.pages.audit import Filters, newest_first
from keel.ui.pages.deployments import rate_chart

EVIL = "<script>alert('x')</script>"
HOUR = 3_600_000
N = 60  # requests in the log; the shadow disagrees with the primary on the first 15
PRIMARY, SHADOW, CANARY = "models:/churn/1", "models:/churn/2", "models:/churn/3"


@dataclass
class Site:
    url: str
    store: MetadataStore
    admin: str
    viewer: str
    db: Path
    secrets: list[str]

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.admin}"}
        return httpx.get(self.url + path, headers=headers, timeout=60, follow_redirects=False, **kwargs)


def _rows(now: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(N):
        rid, y = f"req-{i}", "yes" if i % 2 else "no"
        other = "no" if y == "yes" else "yes"
        for route, model, out in (("primary", PRIMARY, y), ("shadow", SHADOW, other if i < 15 else y)):
            rows.append({"request_id": rid, "row": 0, "time": now - 600_000 + i * 1000, "deployment": "churn", "route": route,
                         "model": model, "served": route == "primary", "inputs": {"x": i}, "output": out, "proba": None,
                         "latency_ms": 2.0 if route == "primary" else 5.0, "replica": None})  # fmt: skip
    return rows


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from keel.serve.parquet_sink import ParquetSink

    db = tmp_path / "keel.db"
    store = open_store(f"sqlite:///{db}")
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    ident = store.identity
    ident.create_principal("root")
    ident.grant("root", "admin")
    ident.create_principal("vic")
    ident.grant("vic", "viewer")
    ident.create_principal("ci-bot", kind="service")
    ident.grant("ci-bot", "editor", project="team-a")
    secrets = [ident.create_token("root", name="laptop").secret, ident.create_token("vic").secret]
    secrets.append(
        ident.create_token("ci-bot", name="deployer", scopes=["read"], expires_at=int(time.time() * 1000) + HOUR).secret
    )
    revoked = ident.create_token("ci-bot", name="old")
    ident.revoke_token(revoked.token.id)
    secrets.append(revoked.secret)

    now = int(time.time() * 1000)
    store.deployments.create("churn", PRIMARY, shadows=[SHADOW], sticky_key="user_id", actor="alice", reason=EVIL)
    store.deployments.set_routes("churn", canaries=[(CANARY, 0.2)], actor="bob", reason="try v3 on a fifth")
    ctx = Context(store, artifacts)
    ParquetSink("churn", ctx, replica="replica-a").write(_rows(now)[:N])
    ParquetSink("churn", ctx, replica="replica-b").write(_rows(now)[N:])
    store.predictions.log_labels("churn", [(f"req-{i}", 0, "yes" if i % 2 else "no") for i in range(N)])

    rule = AlertRule("too-much-drift", "drift.share > 0.3", 1, "critical", ("rollback",))
    store.monitors.create_monitor(Monitor("churn-hourly", "churn", HOUR, "churn-train@3", (rule,)))
    start = now - 3 * HOUR
    for k, share in enumerate((0.1, 0.2, 0.5)):
        values = {"drift.share": share, "drift.age.score": share / 2, "health.latency_p50_ms": 2.0 + k,
                  "health.latency_p99_ms": 9.0 + k, "health.rows": 100.0 * (k + 1)}  # fmt: skip
        store.monitors.put_window(
            MonitorWindow("churn-hourly", start + k * HOUR, start + (k + 1) * HOUR, values, 100 * (k + 1), 10)
        )
    alert, _ = store.monitors.open_alert(Alert(0, "churn-hourly", "too-much-drift", "critical", "firing", start + 2 * HOUR,
                                               start + 2 * HOUR, 0.5, f"drift.share 0.5 > 0.3 {EVIL}"))  # fmt: skip
    store.monitors.record_action(ActionRecord(alert.id, "rollback", "ok", "primary models:/churn/1 -> models:/churn/0"))

    app = create_app(store, artifacts, auth=True)
    install_ui(app)
    with serve_app(app) as url:
        yield Site(url, store, secrets[0], secrets[1], db, secrets)
    store.close()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_deployments_list_and_page_show_routes_weights_history_and_monitors(site: Site) -> None:
    listed = site.get("/ui/deployments")
    assert listed.status_code == 200, listed.text
    row = _text(listed.text)
    assert "churn" in row and f"{PRIMARY} (80%)" in row and f"{CANARY} (20%)" in row and SHADOW in row and "user_id" in row

    page = site.get("/ui/deployments/churn")
    assert page.status_code == 200, page.text
    routes = _text(page.text.split('id="routes"')[1].split("</table>")[0])
    assert f"primary {PRIMARY} 80%" in routes and f"canary {CANARY} 20%" in routes and f"shadow {SHADOW} mirrored" in routes
    history = _text(page.text.split('id="history"')[1].split("</table>")[0])
    assert history.index("canary bob try v3 on a fifth") < history.index("create alice")  # newest first
    assert f"primary {PRIMARY}; shadow {SHADOW}; sticky by user_id" in history  # from -> to
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text and EVIL not in page.text
    assert 'href="/ui/monitors/churn-hourly"' in page.text
    assert "script-src" not in page.headers["content-security-policy"] or "unsafe-inline" not in page.headers[
        "content-security-policy"].split("script-src")[1]  # fmt: skip


def test_traffic_data_counts_the_logged_rows_and_monitor_latency(site: Site) -> None:
    data = site.get("/ui/data/deployments/churn/traffic").json()
    rate, latency = data["charts"]
    seconds = float(rate["title"].split("(")[1].split(" s")[0])
    total = next(s for s in rate["series"] if s["label"] == "all replicas")
    assert sum(total["values"]) * seconds == pytest.approx(2 * N)  # every logged row, in some bucket
    assert {s["label"] for s in rate["series"]} == {"all replicas", "replica-a", "replica-b"}
    assert [s["values"] for s in latency["series"]] == [[2.0, 3.0, 4.0], [9.0, 10.0, 11.0]]
    assert len(rate["x"]) <= 240


def test_rate_chart_spreads_a_file_over_its_span() -> None:
    from keel.core.predictions import PredictionLogFile

    sha = "0" * 64
    chart = rate_chart([PredictionLogFile("d", sha, 100, 10_000, 20_000, "r")], 0, 240_000)  # 1 s buckets
    values = chart["series"][0]["values"]
    assert sum(values) == pytest.approx(100) and values[9] == 0 and values[10] == pytest.approx(10) and values[20] == 0


def test_comparison_runs_when_asked_with_the_deploy_compare_numbers(site: Site) -> None:
    plain = site.get("/ui/deployments/churn")
    assert 'id="comparison"' not in plain.text  # reading Parquet files only when asked
    page = site.get("/ui/deployments/churn", params={"compare": "1", "since": "1h"})
    assert page.status_code == 200, page.text
    block = _text(page.text.split('id="comparison"')[1].split("<h2>")[0])
    assert f"{N} requests, {2 * N} rows, {N} labeled" in block
    assert "agreement: 75% of 60 rows" in block  # 45 of 60 equal
    assert "accuracy: 0.75 vs 1" in block  # the shadow right on 45, the primary on all
    empty = site.get("/ui/deployments/churn", params={"compare": "1", "since": "2000-01-01", "until": "2000-01-02"})
    assert 'id="compare-empty"' in empty.text
    bad = site.get("/ui/deployments/churn", params={"compare": "1", "since": "soon"})
    assert bad.status_code == 200 and 'id="compare-problem"' in bad.text and "since" in _text(bad.text)


def test_monitor_page_shows_windows_alerts_and_actions(site: Site) -> None:
    page = site.get("/ui/monitors/churn-hourly")
    assert page.status_code == 200, page.text
    alerts = _text(page.text.split('id="alerts"')[1].split("</table>")[0])
    assert "too-much-drift critical firing" in alerts and "rollback: ok" in alerts and "models:/churn/0" in alerts
    assert EVIL not in page.text and "&lt;script&gt;" in page.text
    assert "drift.share &gt; 0.3" in page.text
    charts = {c["title"]: c for c in site.get("/ui/data/monitors/churn-hourly/windows").json()["charts"]}
    assert charts["drift share"]["series"][0]["values"] == [0.1, 0.2, 0.5]
    assert charts["drift score, top columns"]["series"][0] == {"label": "age", "values": [0.05, 0.1, 0.25]}
    assert charts["traffic per window"]["series"][0]["values"] == [100.0, 200.0, 300.0]
    assert len(charts["latency (ms)"]["x"]) == 3
    assert site.get("/ui/monitors/nope").status_code == 404


def test_audit_log_newest_first_filtered_and_paged(site: Site) -> None:
    for i in range(40):  # more events than a page holds
        site.store.identity.create_principal(f"user-{i}")
    page = site.get("/ui/audit")
    assert page.status_code == 200, page.text
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", page.text)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == audit_page.PAGE
    head = site.store.audit.head()
    assert head is not None and seqs[0] == head.seq
    assert f'href="/ui/audit?before={seqs[-1]}"' in page.text
    older = site.get("/ui/audit", params={"before": seqs[-1]})
    assert next(int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", older.text)) == seqs[-1] - 1
    filtered = site.get("/ui/audit", params={"entity": "deployment", "entity_id": "churn"})
    rows = _text(filtered.text.split('id="events"')[1].split("</table>")[0])
    assert "deployment churn" in rows and "principal" not in rows
    assert "&lt;script&gt;" in filtered.text and EVIL not in filtered.text
    none = site.get("/ui/audit", params={"actor": "nobody-at-all"})
    assert 'id="no-events"' in none.text
    check = site.get("/ui/audit/verify")
    assert "audit log intact" in check.text and f"{head.seq} events" in _text(check.text).replace(",", "")


def test_newest_first_reads_backwards_through_filters_and_stops_on_the_scan_limit(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: AuditStore = site.store.audit
    every = list(store.all_events())
    got = newest_first(store, Filters(entity="deployment"), None, limit=1)
    assert [e.entity for e in got.events] == ["deployment"] and got.next_before == got.events[0].seq
    pages: list[AuditEvent] = []
    before = None
    while True:  # every event, 7 at a time, newest first, no repeats
        p = newest_first(store, Filters(), before, limit=7)
        pages += p.events
        if p.next_before is None:
            break
        before = p.next_before
    assert [e.seq for e in pages] == [e.seq for e in reversed(every)]
    monkeypatch.setattr(audit_page, "MAX_SCANNED", 5)
    monkeypatch.setattr(audit_page, "MAX_PAGE", 5)
    stopped = newest_first(store, Filters(actor="nobody"), None)
    assert stopped.events == [] and stopped.scanned_to == stopped.next_before == every[-1].seq + 1 - 5


def test_admin_page_lists_users_bindings_tokens_and_trusted_roles(site: Site) -> None:
    page = site.get("/ui/admin")
    assert page.status_code == 200, page.text
    principals = _text(page.text.split('id="principals"')[1].split("</table>")[0])
    assert "ci-bot service enabled editor in team-a" in principals and "root user enabled admin in every project" in principals
    tokens = _text(page.text.split('id="tokens"')[1].split("</table>")[0])
    assert "ci-bot deployer read active" in tokens and "ci-bot old all of the roles' revoked" in tokens
    for t in site.store.identity.list_tokens():
        assert t.id in tokens
    assert 'href="/ui/admin"' in page.text  # the nav's Admin link, for an admin
    assert "default" in _text(page.text.split('id="trusted"')[1])


def test_viewers_are_kept_out_of_audit_and_admin_but_see_deployments(site: Site) -> None:
    for path in ("/ui/audit", "/ui/audit/verify", "/ui/admin"):
        assert site.get(path, site.viewer).status_code == 403, path
    page = site.get("/ui/deployments/churn", site.viewer)
    assert page.status_code == 200 and 'href="/ui/admin"' not in page.text
    assert site.get("/ui/monitors/churn-hourly", site.viewer).status_code == 200
    assert httpx.get(site.url + "/ui/audit", timeout=30).status_code == 303  # no token: to the sign-in page


def test_no_token_secret_or_hash_in_any_page(site: Site) -> None:
    with sqlite3.connect(site.db) as db:
        hashes = [h for (h,) in db.execute("select hash from api_tokens")]
    assert len(hashes) == 4
    secrets = [s.split("_", 2)[2] for s in site.secrets]  # keel_<id>_<secret>: the secret itself may hold "_"
    pages = ["/ui/admin", "/ui/audit", "/ui/audit?entity=token", "/ui/audit/verify", "/ui/deployments",
             "/ui/deployments/churn", "/ui/monitors/churn-hourly", "/ui/data/deployments/churn/traffic",
             "/ui/data/monitors/churn-hourly/windows"]  # fmt: skip
    for path in pages:
        body = site.get(path).text
        for secret in secrets + hashes:
            assert secret not in body, path


def test_charts_draw_in_a_real_browser(site: Site, open_page: Any) -> None:
    watched = open_page(site.url)
    watched.context.add_cookies([{"name": "keel_token", "value": site.admin, "domain": "127.0.0.1", "path": "/ui"}])
    watched.goto("/ui/deployments/churn")
    watched.page.wait_for_selector("#traffic figure canvas")
    captions = watched.page.locator("#traffic figcaption").all_text_contents()
    assert captions[0].startswith("rows logged per second") and captions[1].startswith("latency")
    watched.goto("/ui/monitors/churn-hourly")
    watched.page.wait_for_selector("#series figure canvas")
    assert "drift share" in watched.page.locator("#series figcaption").all_text_contents()
    watched.goto("/ui/admin")
    assert watched.page.locator("#tokens tbody tr").count() == 4
    # the browser's own /favicon.ico request (outside /ui: no cookie) is refused with 401 on a server with auth on
    watched.errors[:] = [e for e in watched.errors if "/favicon.ico" not in e]
    watched.assert_clean()
