"""The web UI in a real headless Chromium over the quickstart's store: every page, the runs table, a chart, sign-in.

Fixtures (tests/ui/conftest.py) watch each page: a request outside the server, a console error or an uncaught
exception fails the test, and each test's last page is saved as a screenshot.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

if TYPE_CHECKING:
    from tests.ui.conftest import AuthServer, Watched

MAX_PAGES = 200
PER_SHAPE = 6  # pages of one kind (same path with ids masked, same query keys) the crawl opens at most
SKIP = re.compile(r"^/ui/(static/|logout|session)|/(delete|restore|promote|rollback|actions?)(/|$)")
ID_SEGMENT = re.compile(r"/(?=[^/]*\d)[0-9a-zA-Z_.:-]{6,}|/\d+")

# JS: on each canvas, the pixels drawn (alpha > 0) and those in colour (the series' lines: axes and grid are grey)
DRAWN = """() => Array.from(document.querySelectorAll('canvas')).map(c => {
  const ctx = c.width && c.height ? c.getContext('2d') : null;
  if (!ctx) return {w: c.width, h: c.height, drawn: 0, coloured: 0};
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    drawn++;
    if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 60) coloured++;
  }
  return {w: c.width, h: c.height, drawn, coloured};
})"""
RESOURCES = """() => ({
  loaded: performance.getEntriesByType('resource').map(e => e.name),
  referenced: Array.from(document.querySelectorAll(
    'link[href], script[src], img[src], iframe[src], source[src], video[src], audio[src], embed[src], object[data]'))
    .map(e => new URL(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('data'), document.baseURI).href),
  sheets: Array.from(document.styleSheets).map(s => { try { return s.cssRules.length; } catch (e) { return -1; } }),
})"""


def _shape(url: str) -> tuple[str, tuple[str, ...]]:
    parts = urlsplit(url)
    return ID_SEGMENT.sub("/*", parts.path), tuple(sorted(parse_qs(parts.query, keep_blank_values=True)))


def _links(watched: Watched) -> list[str]:
    hrefs: list[str] = watched.page.eval_on_selector_all(
        "a[href]",
        "els => els.map(e => new URL(e.getAttribute('href'), document.baseURI).href)",  # SVG links too
    )
    out = []
    for href in hrefs:
        href = href.split("#", 1)[0]
        path = urlsplit(href).path
        if href.startswith(watched.origin + "/ui") and not SKIP.search(path):
            out.append(href)
    return out


def _open(watched: Watched, url: str) -> tuple[int, bool]:
    """Open ``url``; (status, whether it is a page whose links to follow). A download is checked by its status."""
    from playwright.sync_api import Error

    try:
        response = watched.page.goto(url, wait_until="load")
    except Error as exc:
        if "Download is starting" not in str(exc):
            raise
        return watched.context.request.get(url).status, False
    assert response is not None, url
    html = "text/html" in (response.headers.get("content-type") or "")
    return response.status, html


def test_crawl_every_ui_page_answers_without_errors_or_outside_requests(
    ui_page: Watched, ui_runs: dict[str, list[dict[str, Any]]]
) -> None:
    """Breadth-first over every /ui link from /ui/ (and every run's page: pipelines, steps, studies, trials each look
    different): each page answers 200, logs no error, loads nothing from elsewhere."""
    seeds = [ui_page.url("/ui/")] + [ui_page.url(f"/ui/runs/{r['id']}") for runs in ui_runs.values() for r in runs]
    queue, seen, shapes = deque(seeds), set(seeds), Counter[tuple[str, tuple[str, ...]]]()
    visited: list[str] = []
    failures: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        errors_before = len(ui_page.errors)
        status, is_page = _open(ui_page, url)
        visited.append(url)
        if status != 200:
            failures.append(f"{status} {url}")
            continue
        failures += [f"{url}: {e}" for e in ui_page.errors[errors_before:]]
        if not is_page:
            continue
        found = ui_page.page.evaluate(RESOURCES)
        failures += [f"{url} refers to {r}" for r in found["referenced"] if not r.startswith(ui_page.origin + "/")]
        for link in _links(ui_page):
            shape = _shape(link)
            if link not in seen and shapes[shape] < PER_SHAPE:
                seen.add(link)
                shapes[shape] += 1
                queue.append(link)
    kinds = {_shape(u)[0] for u in visited}
    print(f"crawled {len(visited)} UI pages of {len({_shape(u) for u in visited})} kinds:", *sorted(kinds))
    assert not failures, "\n".join(failures)
    ui_page.assert_clean()
    # the front page lists the quickstart's experiments and links to their runs; every menu entry is reachable
    assert {"/ui/", "/ui/runs", "/ui/datasets", "/ui/models", "/ui/deployments", "/ui/audit"} <= kinds, sorted(kinds)


# ---- the runs table: filter and sort through the page itself ------------------------------------------------------


def _row_run_ids(watched: Watched) -> list[str]:
    """The run of each row of the runs table, top to bottom."""
    ids: list[str] = watched.page.eval_on_selector_all("#runs-table tbody tr[data-run]", "rows => rows.map(r => r.dataset.run)")
    return ids


def _search(url: str, experiment_id: int, filter: str = "", order: list[str] | None = None) -> list[str]:
    body = {"experiment_ids": [experiment_id], "filter": filter, "order_by": order or [], "max_results": 1000}
    answer = httpx.post(f"{url}/api/v1/runs/search", json=body, timeout=30).raise_for_status().json()
    return [r["id"] for r in answer["runs"]]


def _experiment_id(url: str, name: str) -> int:
    for experiment in httpx.get(f"{url}/api/v1/experiments", timeout=30).raise_for_status().json():
        if experiment["name"] == name:
            return int(experiment["id"])
    raise AssertionError(f"no experiment {name}")


def _column(watched: Watched, spec: str) -> list[float]:
    """The values of one column of the runs table (its header reads ``spec``), from each cell's full-precision title."""
    heads: list[str] = watched.page.eval_on_selector_all("#runs-table thead th", "ths => ths.map(t => t.innerText)")
    index = next((i for i, h in enumerate(heads) if h.split()[:1] == [spec]), None)
    assert index is not None, f"no column {spec!r} in {heads}"
    cells: list[str] = watched.page.eval_on_selector_all(
        "#runs-table tbody tr", f"rows => rows.map(r => r.children[{index}].title || r.children[{index}].innerText)"
    )
    return [float(c) for c in cells]


def _query(watched: Watched) -> dict[str, list[str]]:
    return parse_qs(urlsplit(watched.page.url).query)


def test_runs_table_filters_and_sorts_through_the_page(ui_page: Watched, ui_url: str) -> None:
    """Type a filter in the page's form, pick a column, sort by clicking its header: the rows follow, the URL holds it all."""
    page = ui_page.page
    experiment = _experiment_id(ui_url, "quickstart")
    top_level = _search(ui_url, experiment, "kind != 'step' and kind != 'trial'")
    ui_page.goto("/ui/runs?" + urlencode({"experiment": "quickstart"}))
    assert sorted(_row_run_ids(ui_page)) == sorted(top_level), "unfiltered: the experiment's runs, steps and trials folded"

    # filter: the same language as `keel runs list -f`, typed in the page's filter box (a GET form: the URL keeps it)
    box = page.locator("#runs-filter input[name=f]")
    box.fill("metrics.value > 0")
    with page.expect_navigation():
        box.press("Enter")
    assert _query(ui_page).get("f") == ["metrics.value > 0"] and _query(ui_page).get("experiment") == ["quickstart"]
    trials = _search(ui_url, experiment, "metrics.value > 0")
    assert 2 <= len(trials) and set(trials) != set(top_level)
    assert sorted(_row_run_ids(ui_page)) == sorted(trials), "filtered: exactly the runs the filter selects"

    # columns: tick metrics.value in the picker (the defaults may not show it), then sort by its header
    page.click("#runs-picker summary")
    page.check("#runs-columns input[name=c][value='metrics.value']")
    with page.expect_navigation():
        page.click("#runs-columns button[type=submit]")
    assert "metrics.value" in _query(ui_page).get("c", []) and _query(ui_page).get("f") == ["metrics.value > 0"]
    header = page.locator("#runs-table thead th a", has_text=re.compile(r"^metrics\.value$"))
    for order in ("metrics.value DESC", "metrics.value ASC"):  # a click sorts descending first, a second one ascending
        with page.expect_navigation():
            header.click()
        assert _query(ui_page).get("order") == [order] and _query(ui_page).get("f") == ["metrics.value > 0"], page.url
        values = _column(ui_page, "metrics.value")
        assert values == sorted(values, reverse=order.endswith("DESC")) and len(values) == len(trials), values
        assert _row_run_ids(ui_page) == _search(ui_url, experiment, "metrics.value > 0", [order]), "the store's own order"

    # the URL is the view: opening it again gives the same rows in the same order
    shown = _row_run_ids(ui_page)
    ui_page.goto(page.url)
    assert _row_run_ids(ui_page) == shown and len(shown) == len(trials)
    ui_page.assert_clean()


# ---- compare view: a chart is drawn -------------------------------------------------------------------------------


def test_compare_view_draws_the_metric_curves(ui_page: Watched, ui_runs: dict[str, list[dict[str, Any]]]) -> None:
    """Two trials of the quickstart's sweep (each logs ``value`` over several steps), picked in the runs table and
    compared: the compare page is their link, and it draws their curves."""
    page = ui_page.page
    by_id = {r["id"]: r for r in ui_runs["quickstart"]}
    ui_page.goto("/ui/runs?" + urlencode({"experiment": "quickstart", "f": "metrics.value > 0", "order": "name ASC"}))
    picks = page.locator("#runs-table tbody input.runs-pick")
    chosen = [picks.nth(i).get_attribute("value") for i in range(2)]
    assert all(c in by_id and by_id[c]["name"].startswith("trial-") for c in chosen), chosen
    assert page.is_disabled("#runs-compare-button"), "nothing picked yet: nothing to compare"
    picks.nth(0).check()
    picks.nth(1).check()
    with page.expect_navigation():
        page.click("#runs-compare-button")
    assert urlsplit(page.url).path == "/ui/compare" and _query(ui_page).get("run") == chosen, page.url
    text = page.inner_text("main")
    for run_id in chosen:
        assert by_id[run_id]["name"] in text or run_id[:12] in text, f"{by_id[run_id]['name']} not on the compare page"
    # the curves (uPlot: a canvas) are drawn after the page loads, from /ui/data/...: wait for coloured lines on it
    page.wait_for_function(f"() => ({DRAWN})().some(c => c.coloured > 100)", timeout=15_000)
    canvases = page.evaluate(DRAWN)
    assert any(c["w"] > 100 and c["h"] > 100 and c["coloured"] > 100 for c in canvases), canvases
    assert any(urlsplit(u).path.startswith("/ui/data/") for u in ui_page.requests), "the curves came from the server's data"
    ui_page.assert_clean()


def test_the_watch_catches_outside_requests_and_browser_errors(ui_page: Watched) -> None:
    """The fixture's checks can fail: a request elsewhere, a console error and an uncaught exception are all seen."""
    from playwright.sync_api import Error

    elsewhere = ui_page.context.new_page()  # a page of the same context: its requests are watched too
    try:
        elsewhere.goto("http://example.invalid/")  # and no network: the name does not resolve
    except Error as exc:
        assert "ERR_NAME_NOT_RESOLVED" in str(exc)
    elsewhere.close()
    assert ui_page.foreign == ["http://example.invalid/"]
    ui_page.goto("/ui/")
    ui_page.page.evaluate("""() => {
      console.error('deliberate');
      setTimeout(() => { throw new Error('thrown on purpose'); }, 0);
    }""")
    ui_page.page.wait_for_timeout(300)
    problems = ui_page.problems()
    assert any("deliberate" in p for p in problems) and any("thrown on purpose" in p for p in problems), problems
    ui_page.foreign.clear()
    ui_page.errors.clear()  # seen: now the test itself must not fail for them


# ---- auth on: login, wrong token, cookie, sign out ----------------------------------------------------------------


def test_sign_in_with_a_token_and_out_again(open_page: Callable[[str], Watched], auth_server: AuthServer) -> None:
    watched = open_page(auth_server.url)
    page = watched.page
    watched.goto("/ui/")  # 303 to the sign-in page; the final answer is the form
    assert urlsplit(page.url).path == "/ui/login" and parse_qs(urlsplit(page.url).query).get("next") == ["/ui/"], page.url

    # a wrong token: the server's message, shown as text
    page.fill("input[name=token]", "keel_000000000000_not-a-token")
    with page.expect_response(lambda r: r.url.endswith("/ui/session")) as answer:
        page.click("#login button[type=submit]")
    assert answer.value.status == 401
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.inner_text("#login-error") == "invalid or expired token"
    assert not [c for c in watched.context.cookies() if c["name"] == "keel_token"]
    # the browser logs the refused sign-in call as a console error: that one is expected
    watched.errors[:] = [e for e in watched.errors if not e.endswith(f"({auth_server.url}/ui/session)")]

    # the right one: signed in, the cookie is HttpOnly and SameSite=Strict, limited to /ui
    page.fill("input[name=token]", auth_server.token)
    with page.expect_navigation(url=re.compile(r"/ui/$")):
        page.click("#login button[type=submit]")
    assert "quickstart" in page.inner_text("main")
    assert auth_server.user in page.inner_text("header")
    cookie = next(c for c in watched.context.cookies() if c["name"] == "keel_token")
    assert cookie["value"] == auth_server.token
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == "", "the token is never readable by scripts"

    # sign out: the cookie is gone and the pages ask for a token again
    with page.expect_navigation(url=re.compile(r"/ui/login")):
        page.click("#logout")
    assert not [c for c in watched.context.cookies() if c["name"] == "keel_token"]
    watched.goto("/ui/audit")
    assert urlsplit(page.url).path == "/ui/login"
    watched.assert_clean()


# ---- no network: every asset is the server's ----------------------------------------------------------------------


def test_pages_work_with_no_network(ui_page: Watched, ui_runs: dict[str, list[dict[str, Any]]]) -> None:
    """The browser resolves no host but 127.0.0.1: the pages are still styled and scripted, from the server alone."""
    trials = [r["id"] for r in ui_runs["quickstart"] if r["name"].startswith("trial-")][:2]
    for path in ("/ui/", "/ui/login", "/ui/runs?experiment=quickstart", "/ui/compare?" + urlencode([("run", t) for t in trials])):
        ui_page.goto(path)
        found = ui_page.page.evaluate(RESOURCES)
        assert found["loaded"] and all(u.startswith(ui_page.origin + "/ui/static/") or u.startswith(ui_page.origin + "/ui/data/")
                                       for u in found["loaded"]), found["loaded"]  # fmt: skip
        assert found["sheets"] and all(n > 0 for n in found["sheets"]), f"{path}: a stylesheet did not load: {found}"
        # keel.css applied (the top bar is a flex row) and keel.js ran (no inline script is allowed, so it is a file)
        assert ui_page.page.eval_on_selector("header.top", "e => getComputedStyle(e).display") == "flex"
        assert any(u.endswith("/ui/static/keel.js") for u in found["loaded"])
    ui_page.assert_clean()
    # the vendored chart library is a file of the package, served by keel itself
    vendor = httpx.get(f"{ui_page.origin}/ui/static/vendor/uplot-1.6.32/uPlot.iife.min.js", timeout=10)
    assert vendor.status_code == 200 and "uPlot" in vendor.text
