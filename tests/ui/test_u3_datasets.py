"""The datasets pages over a real server with auth on (uvicorn on 127.0.0.1, httpx): a dataset logged with a suite in
two versions that drift, a failed validation, a derived version and a run that read it. What is stored is shown,
text from stores is escaped, the drift headline is the one ``keel data drift`` prints, and runs of projects the
caller may not read stay out of the lineage."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import keel.data
from keel.context import Context
from keel.data.checks import NotNull, Range
from keel.data.suite import Suite
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.cli import keel_cmd
from keel.testing.services import serve_app
from keel.ui import install_ui

EVIL = "<script>alert('x')</script>"
COLUMN = "amt<b>"  # a column name is user text too


@dataclass
class Site:
    url: str
    folder: Path
    ctx: Context
    admin: str
    viewer: str
    other_run: str
    own_run: str

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.admin}"}
        return httpx.get(self.url + path, headers=headers, timeout=60, follow_redirects=False, **kwargs)


def _frame(seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame({
        "age": rng.normal(40 + shift, 5, n).round(1),
        COLUMN: rng.exponential(10, n),
        "city": rng.choice(["paris", "oslo", EVIL], n, p=[0.6, 0.3, 0.1]),
    })  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("u3-datasets")
    home = folder / ".keel"  # the project layout: `keel data drift` run in ``folder`` reads this store
    home.mkdir()
    store = open_store(f"sqlite:///{home / 'keel.db'}")
    artifacts = open_artifact_store(str(home / "artifacts"))
    ctx = Context(store, artifacts)
    suite = Suite([NotNull("age"), Range("age", min=0, max=120)], name="orders-suite")
    keel.data.log(_frame(1, 0.0), "orders", suite=suite, run=False, ctx=ctx, source=f"s3://bucket/{EVIL}")
    second = keel.data.log(_frame(2, 15.0), "orders", suite=suite, run=False, ctx=ctx)  # age moves by 3 sd: drift
    failing = keel.data.validate(_frame(2, 15.0), Suite([Range("age", min=0, max=50)], name=f"strict {EVIL}"))
    keel.data.save_validation(second, failing, ctx=ctx)
    keel.data.log(_frame(2, 15.0).head(100), "orders-sample", parents=[second], run=False, ctx=ctx)
    own = store.create_run(store.get_or_create_experiment("train").id, "reader")
    other = store.create_run(store.get_or_create_experiment("secret", project="vault").id, "hidden-reader")
    for run in (own, other):
        store.datasets.link_run(run.id, second.id, "input")
    for name, role in (("ada", "admin"), ("vic", "viewer")):
        store.identity.create_principal(name)
        store.identity.grant(name, role, project="default" if role == "viewer" else "*")
    admin = store.identity.create_token("ada").secret
    viewer = store.identity.create_token("vic").secret
    app = create_app(store, artifacts, auth=True)
    install_ui(app)
    with serve_app(app) as url:
        yield Site(url, folder, ctx, admin, viewer, other.id, own.id)
    store.close()


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_list_shows_every_dataset_with_its_latest_version_and_rows(site: Site) -> None:
    page = site.get("/ui/datasets")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = re.findall(r"<tr>\s*<td class=\"l\"><a href=\"/ui/datasets/([^\"]+)\">", page.text)
    assert rows == ["orders", "orders-sample"]
    assert 'href="/ui/datasets/orders/2">@2</a>' in page.text
    assert re.search(r"@2</a></td>\s*<td>400</td>\s*<td>3</td>", page.text)
    assert re.search(r"@1</a></td>\s*<td>100</td>", page.text)  # orders-sample: 100 rows
    assert "orders@2" in page.text  # orders-sample's parent


def test_the_versions_page_lists_versions_newest_first_with_their_validation(site: Site) -> None:
    page = site.get("/ui/datasets/orders")
    assert page.status_code == 200
    assert re.findall(r'href="/ui/datasets/orders/(\d)">@', page.text) == ["2", "1"]
    assert "/ui/datasets/orders/drift?a=1&amp;b=2" in page.text
    # the newest validation of version 2 is the strict suite's failure; version 1's passed
    assert "failed</span> (strict &lt;script&gt;" in page.text and "passed</span> (orders-suite)" in page.text
    assert site.get("/ui/datasets/nope").status_code == 404


def test_the_version_page_shows_the_profile_with_histograms_and_top_categories(site: Site) -> None:
    page = site.get("/ui/datasets/orders/1")
    assert page.status_code == 200
    profile = site.ctx.store.datasets.get_profile(site.ctx.store.datasets.get_version("orders", 1).id)
    assert profile is not None
    age = profile["columns"]["age"]
    row = re.search(r'<tr class="column" data-column="age">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = _text(row.group(1))
    assert "double" in cells and "0 (0.0%)" in cells
    from keel.core.numbers import short

    assert f"min {short(age['min'])}" in cells and f"max {short(age['max'])}" in cells
    bars = re.findall(r"<rect [^>]*><title>([^<]*)</title></rect>", row.group(1))
    assert len(bars) == len(age["histogram"]["counts"]) == 20
    assert [int(float(b.rsplit(": ", 1)[1])) for b in bars] == age["histogram"]["counts"]  # the stored counts drawn
    city = re.search(r'<tr class="column" data-column="city">(.*?)</tr>', page.text, re.S)
    assert city is not None
    top = profile["columns"]["city"]["top"]
    listed = re.findall(r"<li>(.*?) <span class=\"muted\">\((\d+)\)</span></li>", city.group(1))
    assert [(html.unescape(k), int(n)) for k, n in listed] == [(k, n) for k, n in top]
    assert EVIL not in page.text and "&lt;script&gt;alert" in page.text  # a category, a source: text, never markup
    assert 'data-column="amt&lt;b&gt;"' in page.text and "<b>" not in page.text.split("<main>")[1].replace("<br>", "")
    assert "s3://bucket/&lt;script&gt;" in page.text


def test_the_version_page_shows_validations_with_failed_checks_and_their_messages(site: Site) -> None:
    page = site.get("/ui/datasets/orders/2")
    blocks = re.findall(r'<div class="validation" data-passed="(true|false)">(.*?)</div>', page.text, re.S)
    assert [passed for passed, _ in blocks] == ["false", "true"]  # newest first: the strict suite failed
    failed = blocks[0][1]
    assert "suite strict &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in failed
    (row,) = re.findall(r'<tr class="failed">(.*?)</tr>', failed, re.S)
    text = _text(row)
    assert "range" in text and "age" in text and "FAIL" in text and "values outside [0, 50]" in text
    assert "2 checks passed" in blocks[1][1]  # the suite it was logged with: not_null and range


def test_the_version_page_shows_lineage_parents_children_and_readable_runs_only(site: Site) -> None:
    page = site.get("/ui/datasets/orders/2").text
    links = re.search(r'<ul class="lineage-links">(.*?)</ul>', page, re.S)
    assert links is not None
    assert 'href="/ui/datasets/orders-sample/1">orders-sample@1</a>' in links.group(1)
    assert f'href="/ui/runs/{site.own_run}"' in links.group(1)
    # the admin reads every project: both runs are in the graph
    assert f"run {site.other_run}" in page and "<svg" in page and "derived into" in page
    viewer = site.get("/ui/datasets/orders/2", site.viewer).text
    assert site.other_run not in viewer and "hidden-reader" not in viewer  # a run of a project the viewer may not read
    assert f"run {site.own_run}" in viewer and "1 runs of projects you may not read are left out" in viewer
    sample = site.get("/ui/datasets/orders-sample/1").text
    assert 'href="/ui/datasets/orders/2">orders@2</a>' in sample and "derived from" in sample


def test_the_drift_page_has_the_headline_and_verdicts_of_keel_data_drift(site: Site) -> None:
    page = site.get("/ui/datasets/orders/drift", params={"a": 1, "b": 2})
    assert page.status_code == 200
    headline = re.search(r'<p class="headline (\w+)" id="headline" data-verdict="(\w+)"><strong>(.*?)</strong>', page.text)
    assert headline is not None
    shown = html.unescape(headline.group(3))
    # the same words and verdicts as the command a user runs on the same store
    printed = keel_cmd(site.folder, "data", "drift", "orders@1", "orders@2")
    assert printed.returncode == 0, printed.stderr
    assert shown in " ".join(printed.stdout.split()), (shown, printed.stdout)
    assert shown == "1 of 3 columns drifted (below the 50% dataset threshold)"  # the data was made so: only age moved
    assert headline.group(1) == "warn" and headline.group(2) == "columns"
    as_json = keel_cmd(site.folder, "data", "drift", "orders@1", "orders@2", "--json")
    expected = {c["column"]: c["drifted"] for c in json.loads(as_json.stdout)["columns"]}
    verdicts = dict(re.findall(r'<tr data-column="([^"]+)" data-drifted="(true|false)">', page.text))
    assert {html.unescape(k): v == "true" for k, v in verdicts.items()} == expected == {"age": True, COLUMN: False, "city": False}
    # a histogram of both versions per column: two series, a legend naming them
    assert page.text.count("<figure>") == 3 and page.text.count("<span class=sw") == 6
    default = site.get("/ui/datasets/orders/drift")  # the latest against the one before
    assert shown in html.unescape(default.text)


def test_the_drift_page_says_what_is_wrong_and_keeps_the_pickers(site: Site) -> None:
    page = site.get("/ui/datasets/orders/drift", params={"a": 1, "b": 9})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    error = re.search(r'<p class="bad" id="drift-error">(.*?)</p>', page.text)
    assert error is not None and "orders" in error.group(1) and "9" in error.group(1)
    assert '<select name="b">' in page.text and 'id="headline"' not in page.text


def test_viewers_read_the_pages_and_strangers_are_sent_to_sign_in(site: Site) -> None:
    for path in ("/ui/datasets", "/ui/datasets/orders", "/ui/datasets/orders/1", "/ui/datasets/orders/drift"):
        assert site.get(path, site.viewer).status_code == 200, path
        stranger = httpx.get(site.url + path, timeout=30, follow_redirects=False)
        assert stranger.status_code == 303 and stranger.headers["location"].startswith("/ui/login"), path


def test_the_store_folder_is_not_touched(site: Site, tmp_path: Path) -> None:
    assert not (tmp_path / ".keel").exists()  # the pages read the server's stores, never a context of the cwd


def test_in_a_browser_the_pages_draw_their_charts_and_load_nothing_from_elsewhere(site: Site, open_page: Any) -> None:
    watched = open_page(site.url)
    watched.context.add_cookies([{"name": "keel_token", "value": site.admin, "domain": "127.0.0.1", "path": "/ui"}])
    for path in ("/ui/datasets", "/ui/datasets/orders", "/ui/datasets/orders/2", "/ui/datasets/orders/drift?a=1&b=2"):
        watched.goto(path)
    assert watched.page.locator("figure svg rect").count() > 20  # the drift page's bars, drawn
    assert watched.page.inner_text("#headline") == "1 of 3 columns drifted (below the 50% dataset threshold)"
    # /favicon.ico is outside /ui, so no cookie travels there (the layout names no icon): not a fault of these pages
    watched.errors[:] = [e for e in watched.errors if not e.endswith("/favicon.ico)")]
    watched.assert_clean()
