"""Fairness and privacy in the UI over a real server with auth on: a model version's assessments (numbers, who, when)
with the report served sandboxed, and a dataset version's privacy budget with each spend; stored text is escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pandas as pd
import pytest

import keel.data
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.models import Assessment
from keel.core.privacy import PrivacySpend
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app
from keel.ui import install_ui

EVIL = "<script>alert('x')</script>"


@dataclass
class Site:
    url: str
    tokens: dict[str, str]
    run_id: str
    assessment_id: int

    def get(self, path: str, who: str = "vic") -> httpx.Response:
        return httpx.get(self.url + path, headers={"authorization": f"Bearer {self.tokens[who]}"}, timeout=60)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("ui-fairness")
    store = open_store(f"sqlite:///{home / 'keel.db'}")
    artifacts = open_artifact_store(str(home / "artifacts"))
    ctx = Context(store, artifacts)
    keel.data.log(pd.DataFrame({"age": [30.0, 41.0], "y": [0, 1]}), "people", run=False, ctx=ctx)
    run = store.create_run(store.get_or_create_experiment("privacy").id, "dp")
    store.models.create_version("credit", flavor="sklearn", artifact_sha256="1" * 64, size=10, signature={},
                                source_run=run.id, metrics={"accuracy": 0.9}, datasets=["people@1"])  # fmt: skip
    report = artifacts.put_bytes(b"<html><body><p>fairness report</p></body></html>").sha256
    with acting_as("auditor"):
        made = store.models.add_assessment(Assessment("credit", 1, "fairness", {"demographic_parity_difference": 0.12},
                                                      {"sensitive": [EVIL]}, artifact_sha256=report, run_id=run.id))  # fmt: skip
        store.privacy.set_budget("people@1", 3.0, 0.0)
        store.privacy.spend(PrivacySpend("people@1", 1.0, 0.0, f"objective-perturbation {EVIL}", run_id=run.id))
    tokens = {}
    for name, role in (("vic", "viewer"), ("ann", "annotator")):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    app = create_app(store, artifacts, auth=True)
    install_ui(app)
    with serve_app(app) as url:
        yield Site(url, tokens, run.id, made.id)
    store.close()


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_model_page_lists_the_assessments_and_serves_their_report_sandboxed(site: Site) -> None:
    page = site.get("/ui/models/credit?version=1")
    assert page.status_code == 200
    table = re.search(r'<table class="grid" id="assessments">(.*?)</table>', page.text, re.S)
    assert table is not None
    text = _text(table.group(1))
    assert "fairness" in text and "demographic_parity_difference 0.12" in text and "auditor" in text
    link = f"/ui/models/credit/1/assessments/{site.assessment_id}"
    assert link in table.group(1)
    report = site.get(link)
    assert report.status_code == 200 and "fairness report" in report.text
    assert report.headers["content-security-policy"].startswith("sandbox")
    assert site.get(f"/ui/models/credit/1/assessments/{site.assessment_id + 99}").status_code == 404
    assert site.get(link, "ann").status_code == 403  # an annotator reads no model
    assert "Assessment: fairness" in _text(page.text)  # the card lists it too
    assert EVIL not in page.text  # the sensitive feature's name is text


def test_the_dataset_page_shows_the_privacy_budget_and_each_spend(site: Site) -> None:
    page = site.get("/ui/datasets/people/1")
    assert page.status_code == 200
    budget = re.search(r'<p id="privacy-budget">(.*?)</p>', page.text, re.S)
    assert budget is not None and "epsilon 1 of 3 spent (2 left)" in _text(budget.group(1))
    spends = re.search(r'<table class="grid" id="privacy-spends">(.*?)</table>', page.text, re.S)
    assert spends is not None
    assert f"objective-perturbation {EVIL}" in _text(spends.group(1)) and EVIL not in spends.group(1)
    assert f'href="/ui/runs/{site.run_id}"' in spends.group(1) and "auditor" in _text(spends.group(1))
