"""The annotator's page in real Chromium, on a real ``keel server`` with tokens required: an annotator signs in,
answers the qualification items and then real items with the keyboard, and the store holds each answer with its
annotator, guideline version and measured time; a hostile guideline and item text show as text; an annotator who
fails qualification, an excluded one and one with nothing left each see their state; spans are marked by selecting
text and pressing a class key (offsets in code points, as Python counts them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keel.core.actor import acting_as
from keel.core.datasets import ColumnSchema
from keel.core.labeling import LabelItem, LabelProject, LabelSchema
from keel.store.metadata import open_store
from keel.testing import services

if TYPE_CHECKING:
    from tests.ui.conftest import Watched

HOSTILE_GUIDELINE = """# Sentiment

Choose **pos**, *neu* or `neg` for the review.

<script>window.__pwned = 1</script>

<img src="x" onerror="window.__pwned = 2">

- a [safe link](https://example.org/guide)
- a [bad link](javascript:window.__pwned=3)
"""
HOSTILE_TEXT = '<img src=x onerror="window.__pwned = 4"><b>bold?</b>'
QUALIFICATION = {"q1": ("I loved it", "pos"), "q2": ("It was fine", "neu"), "q3": ("Awful", "neg")}
TASKS = {"t1": "Great value", "t2": HOSTILE_TEXT, "t3": "Meh"}
CLASSES = ("neg", "neu", "pos")  # keys 1, 2, 3
SPAN_TEXT = "🙂 Alice met Bob in Paris"  # an astral character first: UTF-16 and code point offsets differ


@dataclass(frozen=True)
class World:
    url: str
    uri: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("ui-label")
    uri = f"sqlite:///{folder / 'keel.db'}"
    store = open_store(uri)
    tokens = {}
    for name, role in (
        ("lead", "admin"),
        ("ann", "annotator"),
        ("bad", "annotator"),
        ("gone", "annotator"),
        ("spanner", "annotator"),
    ):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    for name, digit in (("reviews", "a"), ("names", "b")):
        store.datasets.log_version(
            name,
            content_hash=digit * 64,
            artifact_sha256=digit * 64,
            size=1,
            row_count=6,
            schema=[ColumnSchema("text", "string")],
        )
    items = [LabelItem(k, {"text": t}, "qualification", a) for k, (t, a) in QUALIFICATION.items()]
    items += [LabelItem(k, {"text": t, "stars": i}) for i, (k, t) in enumerate(TASKS.items())]
    with acting_as("lead"):
        sentiment = LabelProject("sentiment", "reviews@1", LabelSchema("classes", CLASSES), overlap=2, gold_rate=0.0)
        store.labels.create_project(sentiment, HOSTILE_GUIDELINE, items)
        spans = LabelProject("people", "names@1", LabelSchema("spans", ("person", "place"), text_field="text"), overlap=1,
                             gold_rate=0.0)  # fmt: skip
        store.labels.create_project(spans, "Mark **people** and places.", [LabelItem("s1", {"text": SPAN_TEXT, "lang": "en"})])
        tags = LabelProject("tags", "names@1", LabelSchema("multilabel", ("red", "green", "blue")), overlap=1, gold_rate=0.0)
        store.labels.create_project(tags, "Every colour named.", [LabelItem("m1", {"text": "red and blue"})])
        score = LabelProject("score", "names@1", LabelSchema("number", minimum=0, maximum=10), overlap=1, gold_rate=0.0)
        store.labels.create_project(score, "From 0 to 10.", [LabelItem("n1", {"text": "fine"}), LabelItem("n2", {"text": "bad"})])
        notes = LabelProject("notes", "names@1", LabelSchema("classes", ("no", "yes")), overlap=1, gold_rate=0.0)
        store.labels.create_project(notes, "Version one.", [LabelItem("a", {"text": "A"}), LabelItem("b", {"text": "B"})])
        store.labels.exclude_annotator("sentiment", "gone", "spam answers <b>fast</b>")
    store.close()
    with services.keel_server(uri, str(folder / "artifacts")) as url:
        yield World(url, uri, tokens)


def _signed_in(open_page: Callable[[str], Watched], world: World, who: str) -> Watched:
    watched = open_page(world.url)
    host = world.url.split("//", 1)[1].split(":", 1)[0]
    watched.context.add_cookies([{"name": "keel_token", "value": world.tokens[who], "domain": host, "path": "/ui"}])
    return watched


def _annotations(world: World, project: str, who: str) -> list[Any]:
    store = open_store(world.uri)
    try:
        return list(store.labels.annotations(project, annotator=who))
    finally:
        store.close()


def test_an_annotator_signs_in_qualifies_and_labels_with_the_keyboard(open_page: Callable[[str], Watched], world: World) -> None:
    watched = open_page(world.url)
    page = watched.page
    watched.goto("/ui/label/sentiment")  # no cookie: the sign-in page, which brings the annotator back
    assert "/ui/login" in page.url
    page.fill("#login input[name=token]", world.tokens["ann"])
    page.click("#login button[type=submit]")
    page.wait_for_url("**/ui/label/sentiment")
    page.wait_for_selector("#label-task:not([hidden])")
    assert page.locator("#label-qualification").text_content() == "qualification: 0 of 3"
    assert page.locator("#label-guideline-version").text_content() == "version 1"
    assert [page.locator(f"#label-choices [data-key='{i}']").text_content() for i in (1, 2, 3)] == ["1neg", "2neu", "3pos"]

    seen: list[str] = []
    for step in range(6):
        page.wait_for_function("n => document.querySelector('#label-item').textContent && "
                               "!document.querySelector('#label-task').hidden && "
                               "document.querySelector('#label-progress').textContent.startsWith('answered by you: ' + n)",
                               arg=step)  # fmt: skip
        item = str(page.locator("#label-item").text_content())
        assert item not in seen
        seen.append(item)
        if item in QUALIFICATION:
            assert page.locator("#label-is-qualification").is_visible()
            assert page.locator("#label-fields dd").first.text_content() == QUALIFICATION[item][0]
            answer = QUALIFICATION[item][1]
        else:
            assert not page.locator("#label-is-qualification").is_visible()
            answer = "pos"
            if item == "t2":  # the hostile item: its markup is text on the page, nothing of it runs
                assert page.locator("#label-fields dd").first.text_content() == HOSTILE_TEXT
                assert page.locator("#label-fields img, #label-fields b").count() == 0
                page.wait_for_timeout(150)  # time spent on it is measured by the store
        page.keyboard.press(str(CLASSES.index(answer) + 1))
        assert page.locator(f"#label-choices [data-class='{answer}']").get_attribute("class") == "choice on"
        page.keyboard.press("Enter")
    page.wait_for_selector("#label-state:not([hidden])")
    assert page.locator("#label-state").get_attribute("data-state") == "done"
    assert "Nothing left for you" in str(page.locator("#label-state").text_content())
    assert page.locator("#label-progress").text_content() == "answered by you: 6 · items left: 0"
    assert page.locator("#label-qualification").text_content() == "qualified (3/3)"
    assert seen[:3] == list(QUALIFICATION) and sorted(seen[3:]) == sorted(TASKS)
    assert page.evaluate("window.__pwned") is None

    stored = {a.item: a for a in _annotations(world, "sentiment", "ann")}
    assert sorted(stored) == sorted([*QUALIFICATION, *TASKS])
    assert all(a.annotator == "ann" and a.guideline_version == 1 for a in stored.values())
    assert {k: stored[k].value for k in QUALIFICATION} == {k: v[1] for k, v in QUALIFICATION.items()}
    assert all(stored[k].value == "pos" for k in TASKS)
    assert all(0 < a.assigned_at <= a.created_at for a in stored.values())
    assert stored["t2"].time_spent_ms >= 150


def test_the_guideline_is_rendered_markdown_and_its_html_is_text(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "lead")
    watched.goto("/ui/label/sentiment")
    page = watched.page
    guide = page.locator("#label-guideline")
    assert guide.locator("h1").text_content() == "Sentiment"
    assert guide.locator("strong").text_content() == "pos" and guide.locator("code").first.text_content() == "neg"
    text = str(guide.text_content())
    assert "<script>window.__pwned = 1</script>" in text and '<img src="x" onerror="window.__pwned = 2">' in text
    assert guide.locator("script, img").count() == 0
    links = guide.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.org/guide"
    assert "noopener" in str(links.get_attribute("rel"))
    assert "[bad link](javascript:window.__pwned=3)" in text  # not a link at all
    assert page.evaluate("window.__pwned") is None


def test_a_double_click_on_a_class_writes_one_answer(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "lead")
    watched.goto("/ui/label/sentiment")
    page = watched.page
    page.wait_for_selector("#label-task:not([hidden])")
    first = str(page.locator("#label-item").text_content())
    assert first == "q1"
    page.locator("#label-choices [data-class='pos']").dblclick()
    page.wait_for_function("() => document.querySelector('#label-item').textContent === 'q2'")
    stored = _annotations(world, "sentiment", "lead")
    assert [(a.item, a.value) for a in stored] == [("q1", "pos")]


def test_an_annotator_who_fails_qualification_is_told_the_score(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "bad")
    watched.goto("/ui/label/sentiment")
    page = watched.page
    for step in range(3):
        page.wait_for_function("n => !document.querySelector('#label-task').hidden && "
                               "document.querySelector('#label-progress').textContent.startsWith('answered by you: ' + n)",
                               arg=step)  # fmt: skip
        item = str(page.locator("#label-item").text_content())
        right = QUALIFICATION[item][1]
        wrong = next(c for c in CLASSES if c != right) if step else right  # one right of three
        page.locator(f"#label-choices [data-class='{wrong}']").click()  # one click answers
    page.wait_for_selector("#label-state:not([hidden])")
    assert page.locator("#label-state").get_attribute("data-state") == "not_qualified"
    assert page.locator("#label-state").text_content() == "not qualified (score 1/3, 80% needed)"
    assert page.locator("#label-task").is_hidden()
    assert len(_annotations(world, "sentiment", "bad")) == 3


def test_an_excluded_annotator_sees_the_reason_as_text(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "gone")
    watched.goto("/ui/label/sentiment")
    page = watched.page
    page.wait_for_selector("#label-state:not([hidden])")
    assert page.locator("#label-state").get_attribute("data-state") == "excluded"
    assert page.locator("#label-state").text_content() == "excluded: spam answers <b>fast</b>"
    assert page.locator("#label-task").is_hidden()


def test_spans_are_marked_by_selecting_text_and_pressing_a_class_key(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "spanner")
    watched.goto("/ui/label")
    page = watched.page
    assert page.locator("#label-projects td a").all_text_contents() == ["notes", "people", "score", "sentiment", "tags"]
    page.click("#label-projects a[href='/ui/label/people']")
    page.wait_for_selector("#label-task:not([hidden])")
    assert page.locator("#label-text").text_content() == SPAN_TEXT
    assert page.locator("#label-fields dt").all_text_contents() == ["lang"]

    def select(word: str) -> None:
        page.evaluate(
            """word => {
                const node = document.querySelector('#label-text');
                const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
                for (let t = walker.nextNode(); t; t = walker.nextNode()) {
                    const at = t.data.indexOf(word);
                    if (at < 0) continue;
                    const range = document.createRange();
                    range.setStart(t, at); range.setEnd(t, at + word.length);
                    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
                    return;
                }
                throw new Error('not found: ' + word);
            }""",
            word,
        )
        page.wait_for_timeout(50)  # selectionchange is dispatched asynchronously

    select("Alice")
    page.keyboard.press("1")
    select("Paris")
    page.keyboard.press("2")
    select("Bob")
    page.locator("#label-choices [data-class='place']").click()  # a wrong one, clicked, then removed
    assert page.locator("#label-text mark").all_text_contents() == ["Alice", "Bob", "Paris"]
    page.locator("#label-spans li", has_text="Bob").locator("button").click()
    assert page.locator("#label-spans li").count() == 2
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-state[data-state='done']")
    (stored,) = _annotations(world, "people", "spanner")
    alice, paris = SPAN_TEXT.index("Alice"), SPAN_TEXT.index("Paris")  # code points, as the store counts
    assert stored.value == [
        {"start": alice, "end": alice + 5, "label": "person"},
        {"start": paris, "end": paris + 5, "label": "place"},
    ]
    assert stored.annotator == "spanner"


def test_multilabel_keys_toggle_and_a_number_is_typed(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "spanner")
    page = watched.page
    watched.goto("/ui/label/tags")
    page.wait_for_selector("#label-task:not([hidden])")
    for key in ("1", "2", "3", "2"):  # green on, then off again
        page.keyboard.press(key)
    assert page.locator("#label-choices label.on").all_text_contents() == ["1red", "3blue"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-state[data-state='done']")
    assert [a.value for a in _annotations(world, "tags", "spanner")] == [["red", "blue"]]

    watched.goto("/ui/label/score")
    page.wait_for_selector("#label-task:not([hidden])")
    page.keyboard.type("11")  # the number box has the focus; out of the schema's range: the page says so
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-error:not([hidden])")
    assert page.locator("#label-error").text_content() == "a number from 0 to 10, please"
    page.fill("#label-number", "7.5")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#label-progress').textContent.startsWith('answered by you: 1')")
    page.keyboard.type("3")
    page.locator("#label-submit").click()
    page.wait_for_selector("#label-state[data-state='done']")
    assert sorted(a.value for a in _annotations(world, "score", "spanner")) == [3.0, 7.5]


def test_a_new_guideline_version_is_announced_and_recorded(open_page: Callable[[str], Watched], world: World) -> None:
    watched = _signed_in(open_page, world, "spanner")
    page = watched.page
    watched.goto("/ui/label/notes")
    page.wait_for_selector("#label-task:not([hidden])")
    assert page.locator("#label-guideline-changed").is_hidden()
    store = open_store(world.uri)
    try:
        with acting_as("lead"):
            store.labels.add_guideline("notes", "Version **two**.")
    finally:
        store.close()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-guideline-changed:not([hidden])")
    assert page.locator("#label-guideline-changed").text_content() == (
        "The guideline changed (now version 2): reload the page to read it."
    )
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-state[data-state='done']")
    stored = _annotations(world, "notes", "spanner")
    assert [(a.value, a.guideline_version) for a in stored] == [("yes", 1), ("no", 2)]
    page.reload()
    assert page.locator("#label-guideline-version").text_content() == "version 2"
    assert page.locator("#label-guideline strong").text_content() == "two"


def test_an_unknown_project_is_a_page_that_says_so(world: World) -> None:
    # over HTTP, not in the browser: Chromium logs every 404 document as a console error
    answer = httpx.get(
        f"{world.url}/ui/label/no-such-project", headers={"cookie": f"keel_token={world.tokens['ann']}"}, timeout=30
    )
    assert answer.status_code == 404
    assert "no label project named &#39;no-such-project&#39;" in answer.text
    listed = httpx.get(f"{world.url}/ui/label", headers={"cookie": f"keel_token={world.tokens['ann']}"}, timeout=30)
    assert listed.status_code == 200 and "/ui/label/sentiment" in listed.text


def test_the_json_routes_need_the_annotate_permission_and_act_as_the_caller(world: World) -> None:
    store = open_store(world.uri)
    try:
        store.identity.create_principal("vic")
        store.identity.grant("vic", "viewer")
        viewer = store.identity.create_token("vic").secret
    finally:
        store.close()
    for path in ("/ui/label", "/ui/label/sentiment"):
        assert httpx.get(world.url + path, headers={"cookie": f"keel_token={viewer}"}, timeout=30).status_code == 403
    posted = httpx.post(
        f"{world.url}/ui/data/label/sentiment/next", json={}, headers={"cookie": f"keel_token={viewer}"}, timeout=30
    )
    assert posted.status_code == 403
    assert httpx.post(f"{world.url}/ui/data/label/sentiment/next", json={}, timeout=30).status_code == 401
    cookie = {"cookie": f"keel_token={world.tokens['spanner']}"}
    task = httpx.post(f"{world.url}/ui/data/label/sentiment/next", json={}, headers=cookie, timeout=30).json()
    assert task["state"] == "task" and task["task"]["qualification"] and task["task"]["item"] == "q1"
    body = {"item": "q1", "value": "pos", "request_id": "r-1", "annotator": "ann"}  # a named annotator is ignored
    first = httpx.post(f"{world.url}/ui/data/label/sentiment/annotations", json=body, headers=cookie, timeout=30).json()
    again = httpx.post(f"{world.url}/ui/data/label/sentiment/annotations", json=body, headers=cookie, timeout=30).json()
    assert first["annotation"]["annotator"] == "spanner" and first["created"] is True and again["created"] is False
    assert [a.item for a in _annotations(world, "sentiment", "spanner")] == ["q1"]


def test_the_guideline_renderer_keeps_only_inert_markup() -> None:
    from keel.ui.pages.label import render_guideline

    html = render_guideline(
        "## Rules\n\n1. **one** _two_ `<three>`\n\n<div onclick=x>raw</div>\n\ninline <span>tag</span>\n\n"
        "[a](JavaScript:alert(1)) [b](data:text/html,hi) [c](/ui/admin) <https://ok.example/x> ![i](https://x.example/y.png)"
    )
    assert "<h2>Rules</h2>" in html and "<ol>" in html and "<strong>one</strong>" in html and "<em>two</em>" in html
    assert "<code>&lt;three&gt;</code>" in html
    assert "&lt;div onclick=x&gt;raw&lt;/div&gt;" in html and "&lt;span&gt;tag&lt;/span&gt;" in html
    # only the web links are links (an image is a link to it: nothing is fetched by the page)
    assert html.count("<a ") == 2 and 'href="https://ok.example/x"' in html and 'href="https://x.example/y.png"' in html
    assert html.count('rel="noopener noreferrer nofollow"') == 2 and "JavaScript:" in html and "/ui/admin" in html
    assert "<img" not in html and "<div" not in html and "<span" not in html


def test_an_annotator_signing_in_lands_on_the_label_projects_and_sees_no_menu_they_cannot_open(
    open_page: Callable[[str], Watched], world: World
) -> None:
    watched = open_page(world.url)
    page = watched.page
    watched.goto("/ui/login")
    page.fill("#login input[name=token]", world.tokens["spanner"])
    page.click("#login button[type=submit]")
    page.wait_for_url("**/ui/label")
    menu = [str(a.text_content()).strip() for a in page.locator("nav a").all()]
    assert menu == ["Label"]  # no Experiments, Datasets, ... that would answer 403
    answer = httpx.post(f"{world.url}/ui/session", json={"token": world.tokens["lead"]}, timeout=30)
    assert answer.status_code == 200 and answer.json() == {"home": "/ui/"}


def test_the_project_report_is_for_readers_and_sandboxed(world: World) -> None:
    lead = {"cookie": f"keel_token={world.tokens['lead']}"}
    answer = httpx.get(f"{world.url}/ui/label/sentiment/report", headers=lead, timeout=60)
    assert answer.status_code == 200 and "Label project sentiment" in answer.text
    assert answer.headers["content-security-policy"].startswith("sandbox")
    assert "<script" not in answer.text.lower()
    listed = httpx.get(f"{world.url}/ui/label", headers=lead, timeout=30)
    assert "/ui/label/sentiment/report" in listed.text
    annotator = {"cookie": f"keel_token={world.tokens['ann']}"}
    assert httpx.get(f"{world.url}/ui/label/sentiment/report", headers=annotator, timeout=30).status_code == 403
    assert "/report" not in httpx.get(f"{world.url}/ui/label", headers=annotator, timeout=30).text
    missing = httpx.get(f"{world.url}/ui/label/nothing-here/report", headers=lead, timeout=30)
    assert missing.status_code == 404


def test_the_page_data_never_tells_which_qualification_answers_were_right_until_all_are_in(world: World) -> None:
    store = open_store(world.uri)
    try:
        store.identity.create_principal("quinn")
        store.identity.grant("quinn", "annotator")
        cookie = {"cookie": f"keel_token={store.identity.create_token('quinn').secret}"}
    finally:
        store.close()
    seen = []
    for key in QUALIFICATION:
        answer = httpx.post(f"{world.url}/ui/data/label/sentiment/next", json={}, headers=cookie, timeout=30).json()
        seen.append(answer["progress"]["qualification"])
        body = {"item": answer["task"]["item"], "value": "pos", "request_id": f"quinn-{key}"}
        httpx.post(f"{world.url}/ui/data/label/sentiment/annotations", json=body, headers=cookie, timeout=30)
    assert [q["correct"] for q in seen] == [None, None, None]  # no score while answering
    after = httpx.post(f"{world.url}/ui/data/label/sentiment/next", json={}, headers=cookie, timeout=30).json()
    assert after["state"] == "not_qualified" and "1/3" in after["message"]  # the score once all are in
