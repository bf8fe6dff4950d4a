"""Label projects over the REST API of a real keel server with tokens required: an annotator is handed tasks and
answers as the token's principal (a body naming someone else is refused, nothing written); it reads neither the
items (they hold gold answers), nor others' answers, nor reviews; a gold item's task looks like any other; a retried
submit writes once; bad input is a 400 naming the field, an unknown project a 404; a viewer reads what annotators
may and more, but answers nothing; the REST client carries every entity whole."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.core.datasets import ColumnSchema
from keel.core.errors import InvalidArgument, NotFound, PermissionDenied
from keel.core.labeling import LabelItem, LabelProject, LabelSchema, Review
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest.client import RestStore
from keel.testing.services import serve_app

API = "/api/v1"
GOLD = {"g1": "pos", "g2": "neg"}
TASKS = ("t1", "t2", "t3", "t4")
TASK_KEYS = {"project", "item", "data", "guideline_version", "assigned_at", "qualification", "remaining_qualification"}


@dataclass
class Site:
    url: str
    store: MetadataStore
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.request(method, self.url + API + path, headers=headers, timeout=30, **kwargs)

    def client(self, who: str) -> RestStore:
        return RestStore(self.url, token=self.tokens[who])


def _project(name: str, **kwargs: Any) -> LabelProject:
    return LabelProject(name, "reviews@1", LabelSchema("classes", ("pos", "neg")), **{"overlap": 2, "gold_rate": 0.5, **kwargs})


def _items() -> list[LabelItem]:
    items = [LabelItem(k, {"text": f"review {k}"}, "gold", answer) for k, answer in GOLD.items()]
    return items + [LabelItem(k, {"text": f"review {k}"}) for k in TASKS]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, role in (("ann", "annotator"), ("bob", "annotator"), ("ed", "editor"), ("vic", "viewer")):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    store.datasets.log_version(
        "reviews", content_hash="a" * 64, artifact_sha256="a" * 64, size=1, row_count=6, schema=[ColumnSchema("text", "string")]
    )
    app = create_app(store, open_artifact_store(str(tmp_path / "artifacts")), auth=True)
    with serve_app(app) as url:
        site = Site(url, store, tokens)
        editor = site.client("ed")
        try:
            editor.labels.create_project(_project("sentiment"), "Choose **pos** or **neg**.", _items())
        finally:
            editor.close()
        yield site
    store.close()


def _next(site: Site, who: str, project: str = "sentiment") -> dict[str, Any] | None:
    answer = site.call("POST", f"/label-projects/{project}/next", who, json={})
    assert answer.status_code == 200, answer.text
    task: dict[str, Any] | None = answer.json()["task"]
    return task


def _submit(site: Site, who: str, body: dict[str, Any], project: str = "sentiment") -> httpx.Response:
    return site.call("POST", f"/label-projects/{project}/annotations", who, json=body)


def test_an_annotator_is_handed_tasks_and_answers_as_itself(site: Site) -> None:
    task = _next(site, "ann")
    assert task is not None and task["project"] == "sentiment" and task["data"]["text"] == f"review {task['item']}"
    refused = _submit(site, "ann", {"item": task["item"], "value": "pos", "annotator": "bob"})
    assert refused.status_code == 400 and "annotator" in refused.json()["error"]["message"]
    assert site.store.labels.annotations("sentiment") == []  # nothing written by the refused body
    answer = _submit(site, "ann", {"item": task["item"], "value": "pos"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True and answer.json()["annotation"]["annotator"] == "ann"
    stored = site.store.labels.annotations("sentiment")
    assert [(a.item, a.annotator, a.value, a.guideline_version) for a in stored] == [(task["item"], "ann", "pos", 1)]
    assert stored[0].assigned_at == task["assigned_at"] and stored[0].created_at >= stored[0].assigned_at
    # through the REST client: the store records the token's principal (there is no parameter to name another)
    bob = site.client("bob")
    try:
        handed = bob.labels.next_task("sentiment")
        assert handed is not None
        made, created = bob.labels.submit("sentiment", handed.item, "neg", request_id="bob-1")
        assert created and made.annotator == "bob" and made.value == "neg" and made.item == handed.item
    finally:
        bob.close()
    assert sorted(a.annotator for a in site.store.labels.annotations("sentiment")) == ["ann", "bob"]


def test_an_annotator_reads_neither_items_nor_reviews_nor_others_answers(site: Site) -> None:
    for who in ("ann", "bob"):
        task = _next(site, who)
        assert task is not None
        assert _submit(site, who, {"item": task["item"], "value": "pos"}).status_code == 200
    for method, path in (
        ("GET", "/label-projects/sentiment/items"),
        ("GET", "/label-projects/sentiment/items?role=gold"),
        ("GET", "/label-projects/sentiment/reviews"),
        ("GET", "/label-projects/sentiment/exclusions"),
        ("GET", "/label-projects/sentiment/consensus"),
    ):
        refused = site.call(method, path, "ann")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied", path
    writes = (
        ("/label-projects", {"project": {"name": "x", "dataset": "reviews@1", "schema": {"classes": ["a", "b"]}},
                             "guideline": "g", "items": []}),
        ("/label-projects/sentiment/guidelines", {"text": "new rules"}),
        ("/label-projects/sentiment/exclusions", {"annotator": "bob", "reason": "spam"}),
        ("/label-reviews", {"review": {"project": "sentiment", "item": "t1", "kind": "review", "value": "pos",
                                       "outcome": "confirmed"}}),
    )  # fmt: skip
    for path, body in writes:
        assert site.call("POST", path, "ann", json=body).status_code == 403, path
    # what an annotator may read: the project, its guidelines, and its own answers, whoever the query names
    assert site.call("GET", "/label-projects/sentiment", "ann").json()["name"] == "sentiment"
    assert [g["version"] for g in site.call("GET", "/label-projects/sentiment/guidelines", "ann").json()] == [1]
    assert [p["name"] for p in site.call("GET", "/label-projects", "ann").json()] == ["sentiment"]
    for query in ("", "?annotator=bob"):
        own = site.call("GET", f"/label-projects/sentiment/annotations{query}", "ann")
        assert own.status_code == 200 and [a["annotator"] for a in own.json()] == ["ann"], query
    # a reader sees everyone's, and may filter
    for reader in ("ed", "vic"):
        everyone = site.call("GET", "/label-projects/sentiment/annotations", reader).json()
        assert sorted(a["annotator"] for a in everyone) == ["ann", "bob"]
        only_bob = site.call("GET", "/label-projects/sentiment/annotations?annotator=bob", reader).json()
        assert [a["annotator"] for a in only_bob] == ["bob"]
    items = site.call("GET", "/label-projects/sentiment/items?role=gold", "vic").json()
    assert {i["key"]: i["answer"] for i in items} == GOLD


def test_a_viewer_reads_but_answers_nothing(site: Site) -> None:
    assert site.call("GET", "/label-projects/sentiment", "vic").status_code == 200
    assert site.call("POST", "/label-projects/sentiment/next", "vic", json={}).status_code == 403
    refused = _submit(site, "vic", {"item": "t1", "value": "pos"})
    assert refused.status_code == 403 and "'annotate' permission" in refused.json()["error"]["message"]
    assert site.call("GET", "/label-projects/sentiment", None).status_code == 401


def test_a_gold_item_is_handed_out_like_any_other(site: Site) -> None:
    handed: dict[str, dict[str, Any]] = {}
    while (task := _next(site, "ann")) is not None:
        assert task["item"] not in handed  # never the same item twice
        handed[task["item"]] = task
        assert _submit(site, "ann", {"item": task["item"], "value": "neg"}).status_code == 200
    assert set(handed) == set(GOLD) | set(TASKS)  # gold items were handed out, among the tasks
    for key, task in handed.items():
        assert set(task) == TASK_KEYS, key  # no role, no answer
        assert task["qualification"] is False and task["remaining_qualification"] == 0
        assert task["data"] == {"text": f"review {key}"}
    # gold answers were not in what the annotator saw, and the annotator is scored on them by the store's owners only
    assert all(GOLD[k] not in str(handed[k]["data"]) for k in GOLD)


def test_a_retried_submit_with_the_same_request_id_writes_once(site: Site) -> None:
    task = _next(site, "ann")
    assert task is not None
    body = {"item": task["item"], "value": "pos", "request_id": "req-42"}
    first, again = _submit(site, "ann", body), _submit(site, "ann", body)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["created"] is True and again.json()["created"] is False
    assert again.json()["annotation"] == first.json()["annotation"]
    assert len(site.store.labels.annotations("sentiment", annotator="ann")) == 1


def test_bad_input_is_a_400_naming_the_field(site: Site) -> None:
    task = _next(site, "ann")
    assert task is not None
    cases = (
        ({"item": task["item"], "value": "maybe"}, "value"),
        ({"value": "pos"}, "item"),
        ({"item": task["item"], "value": "pos", "request_id": 7}, "request_id"),
    )
    for body, field in cases:
        answer = _submit(site, "ann", body)
        assert answer.status_code == 400, body
        error = answer.json()["error"]
        assert error["code"] == "invalid_argument" and error["message"].startswith(field), error
    schema = {"kind": "classes", "classes": ["a", "b"]}
    bad_project: dict[str, Any] = {"project": {"name": "p2", "dataset": "reviews@1", "schema": schema,
                               "overlap": 0}, "guideline": "g", "items": [{"key": "k", "data": {}}]}  # fmt: skip
    answer = site.call("POST", "/label-projects", "ed", json=bad_project)
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("overlap")
    bad_schema = {**bad_project, "project": {**bad_project["project"], "overlap": 1, "schema": {"classes": ["a"]}}}
    answer = site.call("POST", "/label-projects", "ed", json=bad_schema)
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("schema.classes")
    assert [p["name"] for p in site.call("GET", "/label-projects", "ed").json()] == ["sentiment"]  # nothing written
    assert site.store.labels.annotations("sentiment") == []


def test_an_unknown_project_is_a_404(site: Site) -> None:
    for who, method, path in (
        ("ed", "GET", "/label-projects/nope"),
        ("ed", "GET", "/label-projects/nope/items"),
        ("ann", "GET", "/label-projects/nope/guidelines"),
        ("ann", "POST", "/label-projects/nope/next"),
    ):
        answer = site.call(method, path, who, json={} if method == "POST" else None)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    editor = site.client("ed")
    try:
        with pytest.raises(NotFound):
            editor.labels.get_project("nope")
    finally:
        editor.close()


def test_the_rest_client_carries_every_entity_whole(site: Site) -> None:
    editor, ann = site.client("ed"), site.client("ann")
    try:
        project = editor.labels.get_project("sentiment")
        assert (project.schema, project.overlap, project.gold_rate, project.items, project.gold_items) == (
            LabelSchema("classes", ("pos", "neg")), 2, 0.5, 6, 2,
        )  # fmt: skip
        assert project.created_by == "ed" and project.guideline_version == 1
        assert [(i.key, i.role, i.answer) for i in editor.labels.get_items("sentiment", role="gold")] == list(
            (k, "gold", a) for k, a in GOLD.items()
        )
        guideline = editor.labels.add_guideline("sentiment", "Sarcasm is **neg**.")
        assert (guideline.version, guideline.created_by) == (2, "ed")
        assert [g.text for g in ann.labels.guidelines("sentiment")] == ["Choose **pos** or **neg**.", "Sarcasm is **neg**."]
        with pytest.raises(InvalidArgument, match="guideline"):
            editor.labels.add_guideline("sentiment", "   ")
        task = ann.labels.next_task("sentiment")
        assert task is not None and task.guideline_version == 2
        ann.labels.submit("sentiment", task.item, "pos")
        review = editor.labels.add_review(Review("sentiment", task.item, "audit", "neg", "corrected", note="sarcasm"))
        assert (review.reviewer, review.value, review.outcome) == ("ed", "neg", "corrected") and review.id > 0
        assert [r.id for r in editor.labels.reviews("sentiment", kind="audit")] == [review.id]
        with pytest.raises(PermissionDenied):
            ann.labels.reviews("sentiment")
        exclusion = editor.labels.exclude_annotator("sentiment", "ann", "too fast")
        assert (exclusion.annotator, exclusion.reason, exclusion.created_by) == ("ann", "too fast", "ed")
        assert [e.annotator for e in editor.labels.exclusions("sentiment")] == ["ann"]
        with pytest.raises(PermissionDenied):
            ann.labels.next_task("sentiment")
        editor.labels.include_annotator("sentiment", "ann")
        assert editor.labels.exclusions("sentiment") == [] and ann.labels.next_task("sentiment") is not None
        version_id = site.store.datasets.get_version("reviews", 1).id
        editor.labels.record_consensus("sentiment", version_id, {"method": "majority", "annotations": 1})
        assert editor.labels.consensus_versions("sentiment") == [(version_id, {"method": "majority", "annotations": 1})]
        with pytest.raises(InvalidArgument, match="value"):  # checked before it is sent: no NaN travels as null
            ann.labels.submit("sentiment", "t1", float("nan"))
    finally:
        editor.close()
        ann.close()
