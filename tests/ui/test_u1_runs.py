"""The runs page (/ui/runs) over a real ``keel server`` with tokens required, read with httpx: filter, sort, columns,
keyset pages through every run, the store's message for a bad filter, hidden children and deleted runs, and the
projects a user may not read staying out of the page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import markupsafe
import pytest

from keel.core.entities import RunKind, RunStatus
from keel.core.errors import InvalidArgument
from keel.store.metadata import open_store, search
from keel.testing import services

RUNS = 31  # top-level runs of the "sweep" experiment (one of them deleted below)


@dataclass(frozen=True)
class World:
    url: str
    tokens: dict[str, str]
    auc: dict[str, float]  # run id -> auc, the runs that logged one
    top: list[str]  # the live top-level runs of "sweep", newest first
    children: list[str]
    deleted: str
    secret: list[str]  # the runs of project "research"
    number: dict[str, int]  # run id -> i of trial-<i>

    def get(self, who: str, query: str = "", **params: Any) -> httpx.Response:
        headers = {"cookie": f"keel_token={self.tokens[who]}"}
        return httpx.get(f"{self.url}/ui/runs{query}", params=params or None, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("u1-runs")
    uri = f"sqlite:///{folder / 'keel.db'}"
    store = open_store(uri)
    exp = store.get_or_create_experiment("sweep")
    auc: dict[str, float] = {}
    top: list[str] = []
    number: dict[str, int] = {}
    start = 1_790_000_000_000
    for i in range(RUNS):
        run = store.create_run(exp.id, f"trial-{i:02d}", params={"C": str(i % 7), "model": "rf" if i % 2 else "lr"},
                               start_time=start + i * 1000)  # fmt: skip
        if i % 5:
            auc[run.id] = round((i * 37 % 100) / 100, 2)
            store.log_metrics([(run.id, "auc", auc[run.id], 0, start), (run.id, "loss", i / 10, 0, start)])
        store.end_run(run.id, RunStatus.FINISHED, end_time=start + i * 1000 + 500 * i)
        top.append(run.id)
        number[run.id] = i
    store.set_tags(top[3], {"keel.gate": "passed", "keel.gate.metrics": "loss"})
    study = store.create_run(exp.id, "study", kind=RunKind.STUDY, start_time=start + RUNS * 1000)
    children = [
        store.create_run(exp.id, f"t{k}", parent_run_id=study.id, kind=RunKind.TRIAL, start_time=start + 1).id for k in range(3)
    ]
    top.append(study.id)
    deleted = top.pop(0)
    store.delete_run(deleted)
    auc.pop(deleted, None)
    research = store.get_or_create_experiment("secret", "research")
    secret = [store.create_run(research.id, f"hidden-{k}").id for k in range(2)]
    tokens = {}
    for name, project in (("dora", "default"), ("rex", "research")):
        store.identity.create_principal(name)
        store.identity.grant(name, "viewer", project=project)
        tokens[name] = store.identity.create_token(name).secret
    store.close()
    with services.keel_server(uri, str(folder / "artifacts")) as url:
        yield World(url, tokens, auc, list(reversed(top)), children, deleted, secret, number)


def rows(answer: httpx.Response) -> list[str]:
    """The run ids of the table's rows, in their order."""
    assert answer.status_code == 200, answer.text[:2000]
    return re.findall(r'<tr[^>]* data-run="([0-9a-f]+)"', answer.text)


def headers(answer: httpx.Response) -> list[str]:
    return re.findall(r'title="sort by ([^"]+)"', answer.text)


def test_filter_in_the_store_grammar(world: World) -> None:
    answer = world.get("dora", experiment="sweep", f="metrics.auc > 0.5 and params.model = 'rf'", n=100)
    expected = {r for r, a in world.auc.items() if a > 0.5 and world.number[r] % 2}
    assert set(rows(answer)) == expected and len(rows(answer)) == len(expected) > 0
    assert 'value="metrics.auc &gt; 0.5 and params.model = &#39;rf&#39;"' in answer.text  # the box keeps it, escaped


def test_sort_by_a_metric_both_ways_with_runs_without_it_last(world: World) -> None:
    down = rows(world.get("dora", experiment="sweep", order="metrics.auc DESC", n=100))
    with_auc = sorted(world.auc, key=lambda r: (-world.auc[r], r))
    assert set(down) == set(world.top)
    assert [world.auc[r] for r in down[: len(with_auc)]] == sorted(world.auc.values(), reverse=True)
    assert not set(down[len(with_auc) :]) & set(world.auc)  # the runs without auc come last
    up = world.get("dora", experiment="sweep", order="metrics.auc ASC", n=100)
    assert [world.auc[r] for r in rows(up)[: len(with_auc)]] == sorted(world.auc.values())
    # the header of the sorted column toggles the direction; the others start descending
    assert "order=metrics.auc+DESC" in up.text and "order=start_time+DESC" in up.text
    assert rows(world.get("dora", experiment="sweep", order="start_time ASC", n=100)) == list(reversed(world.top))


def test_chosen_columns_and_the_gate_metric_first_by_default(world: World) -> None:
    chosen = world.get("dora", "?experiment=sweep&c=params.C&c=metrics.auc")
    assert headers(chosen)[-2:] == ["params.C", "metrics.auc"]
    assert 'value="params.C" checked' in chosen.text and 'value="metrics.loss" >' in chosen.text  # the picker
    defaults = headers(world.get("dora", experiment="sweep"))
    assert defaults[5:] == ["params.C", "params.model", "metrics.loss", "metrics.auc", "tags.keel.gate"]


def test_paging_through_every_run_with_the_cursor(world: World) -> None:
    for order in ("", "metrics.auc DESC", "params.C ASC", "name DESC", "duration DESC"):
        seen: list[str] = []
        answer = world.get("dora", experiment="sweep", order=order, n=4)
        pages = 0
        while True:
            pages += 1
            assert f"page {pages} ·" in answer.text
            seen += rows(answer)
            link = re.search(r'href="(/ui/runs\?[^"]+)" id="runs-next"', answer.text)
            if not link:
                break
            assert "after=k1." in link.group(1)  # a keyset cursor, not an offset
            answer = httpx.get(world.url + html.unescape(link.group(1)),
                               headers={"cookie": f"keel_token={world.tokens['dora']}"}, timeout=30)  # fmt: skip
        whole = rows(world.get("dora", experiment="sweep", order=order, n=100))
        assert seen == whole and len(set(seen)) == len(world.top), order
        assert pages == -(-len(world.top) // 4)


def test_a_bad_filter_shows_the_store_message_not_an_error_page(world: World) -> None:
    bad = "metrics.auc > 'high'"
    with pytest.raises(InvalidArgument) as refused:
        search.parse_filter(bad)
    answer = world.get("dora", experiment="sweep", f=bad)
    assert answer.status_code == 200
    assert f'<p class="error" id="runs-error">{markupsafe.escape(str(refused.value))}</p>' in answer.text
    assert rows(answer) == []
    tampered = world.get("dora", experiment="sweep", after="k1.bm90LWEtY3Vyc29y.0000")
    assert tampered.status_code == 200 and "page_token must be a token returned by a previous search" in tampered.text
    order = world.get("dora", experiment="sweep", order="metrics.auc sideways")
    assert order.status_code == 200 and "order_by" in order.text


def test_children_and_deleted_runs_are_hidden_until_asked_for(world: World) -> None:
    default = set(rows(world.get("dora", experiment="sweep", n=100)))
    assert default == set(world.top)
    with_children = set(rows(world.get("dora", experiment="sweep", n=100, children=1)))
    assert with_children == set(world.top) | set(world.children)
    filtered = world.get("dora", experiment="sweep", n=100, f="kind = 'trial'")  # a filter searches children too
    assert set(rows(filtered)) == set(world.children) and "a filter searches them too" in filtered.text
    assert rows(world.get("dora", experiment="sweep", n=100, f="kind = 'trial' and kind != 'trial'")) == []
    with_deleted = world.get("dora", experiment="sweep", n=100, deleted=1)
    assert set(rows(with_deleted)) == set(world.top) | {world.deleted}
    assert f'<tr class="deleted" data-run="{world.deleted}">' in with_deleted.text


def test_a_user_sees_only_the_projects_they_may_read(world: World) -> None:
    dora_all = set(rows(world.get("dora", n=500, children=1)))
    assert dora_all == set(world.top) | set(world.children) and not dora_all & set(world.secret)
    hidden = world.get("dora", experiment="secret", project="research")
    assert hidden.status_code == 404 and "does not exist" in hidden.text and not set(world.secret) & set(rows_any(hidden))
    assert set(rows(world.get("rex", n=500))) == set(world.secret)
    assert set(rows(world.get("rex", experiment="secret", project="research"))) == set(world.secret)
    assert world.get("rex", experiment="sweep").status_code == 404
    anonymous = httpx.get(f"{world.url}/ui/runs?experiment=sweep", timeout=30)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/ui/login")


def rows_any(answer: httpx.Response) -> list[str]:
    return re.findall(r'data-run="([0-9a-f]+)"', answer.text)


def test_links_compare_form_and_server_timing(world: World) -> None:
    answer = world.get("dora", experiment="sweep", n=5)
    first = rows(answer)[0]
    assert f'href="/ui/runs/{first}"' in answer.text
    assert f'name="run" value="{first}" form="runs-compare"' in answer.text
    assert '<form id="runs-compare" method="get" action="/ui/compare">' in answer.text
    timing = answer.headers["server-timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d", timing) and float(timing.split("=")[1]) < 30_000
    assert '<script src="/ui/static/runs.js"></script>' in answer.text
    assert httpx.get(f"{world.url}/ui/static/runs.js", timeout=30).status_code == 200
