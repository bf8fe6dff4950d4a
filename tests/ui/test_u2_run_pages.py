"""The run page, artifact previews, the compare page and the metric chart data, over a real server with auth on
(uvicorn on 127.0.0.1, httpx): every section shows what was stored, as text; HTML and SVG artifacts come sandboxed;
a failed step's traceback is shown on its pipeline's page; a run of a project the caller may not read is a 404."""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest
from markupsafe import escape

from keel.core.entities import RunKind, RunStatus, StepInfo
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app
from keel.tracking.client import Client
from keel.ui import install_ui

EVIL = "<script>alert('x')</script>"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201"
    "a1d3b5c30000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
REPORT = b"<!doctype html><html><body><h1>report</h1></body></html>"
TRACE = 'Traceback (most recent call last):\n  File "step.py", line 3\nValueError: bad <input>\n'
MILLION = 1_000_000


def esc(text: str) -> str:
    """``text`` as the templates escape it (markupsafe: quotes as &#39; and &#34;)."""
    return str(escape(text))


@dataclass
class Site:
    url: str
    admin: str
    dora: str  # a viewer of the default project only
    run: str
    other: str  # a second run of the same experiment, for compare
    pipeline: str
    failed_step: str
    cached_step: str
    foreign: str  # a run of project "research"
    big: str  # 1,000,000 values of "loss"

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.admin}"}
        return httpx.get(self.url + path, headers=headers, timeout=60, follow_redirects=False, **kwargs)


def _populate(client: Client) -> dict[str, str]:
    run = client.create_run("exp", "main-run", params={"lr": 0.1, "evil": EVIL, "layers": 3}, capture_code=False)
    for step in range(10):
        client.log_metrics(run.id, {"loss": 1.0 / (step + 1), "acc": step / 10}, step=step)
    client.set_tags(run.id, {"team": EVIL})
    client.set_description(run.id, "my <b>notes</b>")
    client.log_bytes(run.id, PNG, "plots/curve.png", "image/png")
    client.log_bytes(run.id, SVG, "plots/shape.svg", "image/svg+xml")
    client.log_bytes(run.id, REPORT, "report.html", "text/html")
    client.log_text(run.id, json.dumps({"key": EVIL}), "info.json")
    buffer = io.BytesIO()
    pd.DataFrame({"x": list(range(80)), "name": [EVIL] * 80}).to_parquet(buffer)
    client.log_bytes(run.id, buffer.getvalue(), "table.parquet", "application/vnd.apache.parquet")
    client.end_run(run.id)
    other = client.create_run("exp", "other-run", params={"lr": 0.2, "evil": EVIL, "layers": 3}, capture_code=False)
    for step in range(5):
        client.log_metrics(other.id, {"loss": 0.1 / (step + 1), "acc": 0.05 * step}, step=step)
    client.end_run(other.id)
    pipe = client.create_run("exp", "pipe", kind=RunKind.PIPELINE, capture_code=False)
    load = client.create_run(None, "load", parent_run_id=pipe.id, kind=RunKind.STEP, step=StepInfo("load", "1" * 64, run.id),
                             tags={"keel.inputs": "{}", "keel.cached": "true"}, capture_code=False)  # fmt: skip
    client.end_run(load.id)
    fit = client.create_run(None, "fit", parent_run_id=pipe.id, kind=RunKind.STEP, step=StepInfo("fit", "2" * 64),
                            tags={"keel.inputs": json.dumps({"load": "x"}), "keel.error": "ValueError: bad <input>"},
                            capture_code=False)  # fmt: skip
    client.log_text(fit.id, TRACE, "traceback.txt")
    client.end_run(fit.id, RunStatus.FAILED)
    client.end_run(pipe.id, RunStatus.FAILED)
    foreign = client.create_run("secret", "foreign-run", project="research", capture_code=False)
    client.end_run(foreign.id)
    big = client.create_run("exp", "big", capture_code=False)
    for step in range(MILLION):
        client.log_metric(big.id, "loss", math.sin(step / 5000) + (9.0 if step == 654_321 else 0.0), step=step)
    client.end_run(big.id)
    client.flush()
    return {"run": run.id, "other": other.id, "pipeline": pipe.id, "failed_step": fit.id, "cached_step": load.id,
            "foreign": foreign.id, "big": big.id}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("u2")
    store = open_store(f"sqlite:///{folder / 'keel.db'}")
    artifacts = open_artifact_store(str(folder / "artifacts"))
    client = Client(store, artifacts)
    ids = _populate(client)
    store.identity.create_principal("root")
    store.identity.grant("root", "admin", project="*")
    store.identity.create_principal("dora")
    store.identity.grant("dora", "viewer", project="default")
    tokens = {name: store.identity.create_token(name).secret for name in ("root", "dora")}
    app = create_app(store, artifacts, auth=True)
    install_ui(app)
    with serve_app(app) as url:
        yield Site(url, tokens["root"], tokens["dora"], **ids)
    client.close()
    store.close()


def _cells(page: str, section: str) -> str:
    """The HTML of one ``<section id=...>`` of a page."""
    found = re.search(rf'<section id="{section}">(.*?)</section>', page, re.S)
    assert found, f"no section {section!r}"
    return found.group(1)


def test_the_run_page_shows_each_section_as_text(site: Site) -> None:
    answer = site.get(f"/ui/runs/{site.run}")
    assert answer.status_code == 200
    page = answer.text
    assert EVIL not in page  # every stored string is escaped
    params = _cells(page, "params")
    assert esc(EVIL) in params and ">0.1<" in params and ">3<" in params
    metrics = _cells(page, "metrics")
    assert re.search(r"<td class=\"l\">loss</td><td class=\"value\"[^>]*>0.1</td><td>9</td>", metrics)
    assert re.search(r"<td class=\"l\">acc</td><td class=\"value\"[^>]*>0.9</td><td>9</td>", metrics)
    assert metrics.count('class="metric-chart"') == 2  # a chart per key by default
    assert esc(EVIL) in _cells(page, "tags")
    assert "my &lt;b&gt;notes&lt;/b&gt;" in page
    assert "keel.note" not in _cells(page, "tags")  # the description is shown as such, not as a tag


def test_chosen_chart_keys_are_in_the_url(site: Site) -> None:
    page = site.get(f"/ui/runs/{site.run}?chart=acc").text
    charts = re.findall(r'<figure class="metric-chart" data-key="([^"]+)"', page)
    assert charts == ["acc"]
    series = json.loads(html.unescape(re.search(r'data-series="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
    assert series == [{"run": site.run, "label": "main-run"}]


def test_a_12_character_prefix_opens_the_run(site: Site) -> None:
    answer = site.get(f"/ui/runs/{site.run[:12]}")
    assert answer.status_code == 200 and site.run in answer.text
    assert site.get("/ui/runs/zzzzzzzzzzzz").status_code == 404


def test_artifact_previews_and_their_content_types(site: Site) -> None:
    page = site.get(f"/ui/runs/{site.run}").text
    base = f"/ui/runs/{site.run}/artifacts/"
    assert f'<img src="{base}plots/curve.png"' in page
    assert f'<iframe sandbox src="{base}report.html"' in page
    section = _cells(page, "artifacts")
    assert esc(json.dumps({"key": EVIL})) in section  # json as escaped text
    table = re.search(r'<table class="grid table-preview">(.*?)</table>', section, re.S).group(1)  # type: ignore[union-attr]
    assert table.count("<tr>") == 51  # the header and the first 50 rows
    assert esc(EVIL) in table and EVIL not in table
    assert "first 50 of 80 rows" in section
    for path, media in [("plots/curve.png", "image/png"), ("plots/shape.svg", "image/svg+xml"),
                        ("report.html", "text/html; charset=utf-8"), ("info.json", "text/plain; charset=utf-8"),
                        ("table.parquet", "application/octet-stream")]:  # fmt: skip
        answer = site.get(base + path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"] == media, path
        csp = answer.headers["content-security-policy"]
        assert csp.startswith("sandbox;") and "allow-scripts" not in csp, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert site.get(base + "plots/curve.png").content == PNG
    assert site.get(base + "report.html").content == REPORT
    assert site.get(base + "table.parquet").headers["content-disposition"] == 'attachment; filename="table.parquet"'
    assert site.get(base + "nope.txt").status_code == 404


def test_a_failed_pipeline_shows_the_steps_traceback_and_its_dag(site: Site) -> None:
    page = site.get(f"/ui/runs/{site.pipeline}").text
    failure = _cells(page, "failure")
    assert esc(TRACE) in failure
    assert f'href="/ui/runs/{site.failed_step}"' in failure
    dag = _cells(page, "dag")
    steps = re.findall(r'<g class="step" data-run="\w+" data-status="(\w+)" data-cached="(\w+)">', dag)
    assert sorted(steps) == [("failed", "false"), ("finished", "true")]
    assert dag.count("<path d=") == 1 + 1  # the arrow's marker, and one edge load -> fit
    children = _cells(page, "children")
    assert children.count('<tr class="child') == 2 and "cached" in children
    own = site.get(f"/ui/runs/{site.failed_step}").text  # the step's own page shows its traceback too
    assert esc(TRACE) in _cells(own, "failure")


def test_compare_puts_params_and_latest_metrics_side_by_side(site: Site) -> None:
    page = site.get(f"/ui/compare?run={site.run[:12]}&run={site.other}").text
    rows = dict(re.findall(r'<tr class="metric" data-key="(\w+)">(.*?)</tr>', page, re.S))
    # loss: lower is better -> the other run (0.02); acc: higher is better -> the main run (0.9)
    assert re.findall(r"<td( class=\"best\")?><span[^>]*>([^<]+)", rows["loss"]) == [("", "0.1"), (' class="best"', "0.02")]
    assert re.findall(r"<td( class=\"best\")?><span[^>]*>([^<]+)", rows["acc"]) == [(' class="best"', "0.9"), ("", "0.2")]
    params = dict(re.findall(r'<tr class="param([^"]*)" data-key="(\w+)">', page)[i][::-1] for i in range(3))
    assert params == {"evil": "", "layers": "", "lr": " differs"}
    assert EVIL not in page
    assert page.count('class="metric-chart"') == 2
    series = json.loads(html.unescape(re.search(r'data-series="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
    assert [s["run"] for s in series] == [site.run, site.other]


def test_chart_data_is_downsampled_on_the_server(site: Site) -> None:
    small = site.get(f"/ui/data/metrics?run={site.run}&key=loss").json()
    assert small["steps"] == list(range(10)) and small["values"][-1] == pytest.approx(0.1) and not small["downsampled"]
    big = site.get(f"/ui/data/metrics?run={site.big[:12]}&key=loss&points=2000")
    assert big.status_code == 200
    data = big.json()
    assert data["count"] == MILLION and data["downsampled"] and len(data["steps"]) <= 2000
    assert data["steps"][0] == 0 and data["steps"][-1] == MILLION - 1
    assert 654_321 in data["steps"] and max(data["values"]) == pytest.approx(9.0 + math.sin(654_321 / 5000))
    assert data["steps"] == sorted(data["steps"])
    assert site.get(f"/ui/data/metrics?run={site.run}&key=nope").status_code == 404
    assert site.get(f"/ui/data/metrics?run={site.run}&key=loss&points=1").status_code == 400


def test_a_run_of_a_project_the_caller_may_not_read_is_not_found(site: Site) -> None:
    assert site.get(f"/ui/runs/{site.foreign}").status_code == 200  # the admin reads everywhere
    for path in (f"/ui/runs/{site.foreign}", f"/ui/runs/{site.foreign[:12]}", f"/ui/runs/{site.foreign}/artifacts/x",
                 f"/ui/data/metrics?run={site.foreign}&key=loss"):  # fmt: skip
        answer = site.get(path, token=site.dora)
        assert answer.status_code == 404, path
        assert "foreign-run" not in answer.text
    compare = site.get(f"/ui/compare?run={site.run}&run={site.foreign}", token=site.dora).text
    assert "foreign-run" not in compare and "main-run" in compare
    assert site.get(f"/ui/runs/{site.run}", token=site.dora).status_code == 200
    assert httpx.get(f"{site.url}/ui/runs/{site.run}", timeout=30).status_code == 303  # no token: the sign-in page
