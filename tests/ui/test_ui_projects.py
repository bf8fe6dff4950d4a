"""A user who may read one project only: every page of experiments and runs shows that project's and nothing of
the others, and a run of another project answers 404 as if it did not exist (never 403, which would tell it does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.core.entities import RunStatus
from keel.store.metadata import open_store
from keel.testing import services


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str, str]]:
    folder: Path = tmp_path_factory.mktemp("ui-projects")
    uri = f"sqlite:///{folder / 'keel.db'}"
    store = open_store(uri)
    mine = store.create_run(store.get_or_create_experiment("lab-notes", "research").id, "mine")
    store.log_metrics([(mine.id, "auc", 0.91, 0, 1)])
    store.end_run(mine.id, RunStatus.FINISHED)
    theirs = store.create_run(store.get_or_create_experiment("payroll-model").id, "theirs")
    store.end_run(theirs.id, RunStatus.FINISHED)
    store.identity.create_principal("rex")
    store.identity.grant("rex", "viewer", project="research")
    token = store.identity.create_token("rex").secret
    store.close()
    with services.keel_server(uri, str(folder / "artifacts")) as url:
        yield url, token, mine.id, theirs.id


def _get(url: str, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}{path}", params=params or None, headers={"cookie": f"keel_token={token}"}, timeout=30)


def test_the_front_page_lists_the_readable_project_only(world: tuple[str, str, str, str]) -> None:
    url, token, _, _ = world
    page = _get(url, token, "/ui/")
    assert page.status_code == 200, page.text[:300]
    assert "lab-notes" in page.text and "payroll-model" not in page.text


def test_a_run_of_the_readable_project_opens_and_one_of_another_is_not_found(world: tuple[str, str, str, str]) -> None:
    url, token, mine, theirs = world
    page = _get(url, token, f"/ui/runs/{mine}")
    assert page.status_code == 200 and "mine" in page.text and "0.91" in page.text
    hidden = _get(url, token, f"/ui/runs/{theirs}")
    assert hidden.status_code == 404 and "theirs" not in hidden.text
    assert _get(url, token, f"/ui/runs/{theirs[:12]}").status_code == 404  # a prefix tells nothing either


def test_compare_and_chart_data_follow_the_same_rule(world: tuple[str, str, str, str]) -> None:
    url, token, mine, theirs = world
    compare = _get(url, token, "/ui/compare", run=[mine])
    assert compare.status_code == 200 and "mine" in compare.text
    data = _get(url, token, "/ui/data/metrics", run=mine, key="auc")
    assert data.status_code == 200 and data.json()["values"] == [0.91]
    assert _get(url, token, "/ui/data/metrics", run=theirs, key="auc").status_code == 404
    assert "theirs" not in _get(url, token, "/ui/compare", run=[mine, theirs]).text
