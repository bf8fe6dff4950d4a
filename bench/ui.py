"""UI benchmark (issue 14): the runs page of a store with 100,000 runs, as a real ``keel server`` answers it.

    python bench/ui.py                          # builds the store once (minutes), then measures
    python bench/ui.py --store /tmp/keel-ui-100k  # reuse (or build there) the cached store
    python bench/ui.py --runs 10000 --repeats 5

The store: SQLite, one experiment ``bench-ui``, ``--runs`` runs of 10 params and 5 metrics each, written through the
store's own API (``create_run`` with its params, ``end_run`` with its metrics: two transactions a run, the audit
log included, as a user's runs are). It is built once in ``--store`` (default: a folder under the system's temp
folder) and reused while its run count matches.

What is measured (median of ``--repeats`` requests, after one warm-up; httpx on 127.0.0.1, one client):
  runs page, first page   /ui/runs?experiment=bench-ui&f=metrics.m0 > 0.5&order=metrics.m1 DESC
  runs page, page 50      the same, reached by following the "next page" links (the keyset cursor) 49 times
  the same two with the same filter and a sort by a param: ``params.p3 DESC`` (numbers) and ``params.p2`` (text)
  (and the default view, newest first with no filter, for contrast)
Each row gives the full request time seen by the client and the server's own time from its ``Server-Timing``
header (``app;dur=``: from the page handler's start to the rendered HTML). Target: < 300 ms server time.

Then: chart data of a run with 1,000,000 points (``bench/ui_charts.py``), and the time to first render of the runs
page in headless Chromium, keel beside MLflow's UI on the same number of runs (``bench/ui_browser.py``; MLflow in its
own venv: ``python bench/tracking.py --install-peers``).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

console = Console()
EXPERIMENT = "bench-ui"
FILTER = "metrics.m0 > 0.5"
ORDER = "metrics.m1 DESC"
# a sort by a param: p3 holds numbers (0 to 99), p2 text (four values): each walks its own part of the params index
PARAM_ORDERS = ("params.p3 DESC", "params.p2")
TARGET_MS = 300.0
DEEP_PAGE = 50


@dataclass(frozen=True)
class Figure:
    """One measured row of the results table."""

    section: str
    what: str
    request_ms: float | None
    server_ms: float | None
    note: str = ""


# --- the store ------------------------------------------------------------------------------------------------------
def build_store(folder: Path, runs: int) -> str:
    """The store's URI, after writing ``runs`` runs into ``folder`` unless a store of that size is there already."""
    from keel.core.entities import RunStatus
    from keel.store.metadata import open_store

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'keel.db'}"
    marker = folder / "runs.txt"
    if marker.exists() and marker.read_text().strip() == str(runs):
        console.print(f"store: {folder} ({runs:,} runs, cached)")
        return uri
    for stale in folder.glob("keel.db*"):
        stale.unlink()
    store = open_store(uri)
    exp = store.get_or_create_experiment(EXPERIMENT)
    rng = random.Random(14)
    start = 1_780_000_000_000
    t0 = time.perf_counter()
    for i in range(runs):
        params = {f"p{k}": str(rng.randrange(100)) if k % 2 else rng.choice(["rf", "lr", "xgb", "svm"]) for k in range(10)}
        run = store.create_run(exp.id, f"run-{i}", params=params, start_time=start + i * 1000)
        metrics = [(run.id, f"m{k}", rng.random(), 0, start + i * 1000) for k in range(5)]
        store.end_run(run.id, RunStatus.FINISHED, end_time=start + i * 1000 + rng.randrange(100_000), metrics=metrics)
        if i and i % 10_000 == 0:
            rate = i / (time.perf_counter() - t0)
            console.print(f"  {i:,} runs written ({rate:,.0f} runs/s)")
    store.close()
    marker.write_text(str(runs))
    console.print(f"store: {folder} ({runs:,} runs written in {time.perf_counter() - t0:,.0f} s)")
    return uri


# --- the runs page ----------------------------------------------------------------------------------------------------
def _server_ms(answer: httpx.Response) -> float | None:
    found = re.search(r"app;dur=([0-9.]+)", answer.headers.get("server-timing", ""))
    return float(found.group(1)) if found else None


def timed(client: httpx.Client, url: str, repeats: int) -> tuple[float, float | None, httpx.Response]:
    """Median full request time and median server time (ms) of ``repeats`` GETs of ``url``, after a warm-up."""
    answer = client.get(url)
    answer.raise_for_status()
    full: list[float] = []
    server: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        answer = client.get(url)
        full.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
        ms = _server_ms(answer)
        if ms is not None:
            server.append(ms)
    return statistics.median(full), statistics.median(server) if server else None, answer


def _next_link(answer: httpx.Response) -> str | None:
    import html

    found = re.search(r'href="(/ui/runs\?[^"]+)" id="runs-next"', answer.text)
    return html.unescape(found.group(1)) if found else None


def _rows(answer: httpx.Response) -> int:
    return len(re.findall(r"<tr[^>]* data-run=", answer.text))


def filter_and_sort(client: httpx.Client, order: str, repeats: int) -> list[Figure]:
    """The runs page with ``FILTER`` and ``order``: the first page and page ``DEEP_PAGE`` (via the cursor)."""
    figures: list[Figure] = []
    sort = "" if order == ORDER else f" by {order}"
    first = f"/ui/runs?{httpx.QueryParams({'experiment': EXPERIMENT, 'f': FILTER, 'order': order})}"
    full, server, answer = timed(client, first, repeats)
    figures.append(Figure("runs page", f"filter + sort{sort}, page 1 ({_rows(answer)} rows)", full, server))
    url: str | None = first
    for _ in range(DEEP_PAGE - 1):
        url = _next_link(client.get(url)) if url else None
    if url is None:
        figures.append(Figure("runs page", f"filter + sort{sort}, page {DEEP_PAGE}", None, None, "fewer pages than that"))
    else:
        full, server, answer = timed(client, url, repeats)
        assert f"page {DEEP_PAGE} ·" in answer.text, "the cursor did not reach the deep page"
        figures.append(Figure("runs page", f"filter + sort{sort}, page {DEEP_PAGE} via the cursor ({_rows(answer)} rows)",
                              full, server))  # fmt: skip
    return figures


def runs_page(base: str, repeats: int) -> list[Figure]:
    """The runs page with a metric filter and a metric sort, then a param sort: the first page and page ``DEEP_PAGE``
    (via the cursor) of each; then the default view."""
    figures: list[Figure] = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for order in (ORDER, *PARAM_ORDERS):
            figures += filter_and_sort(client, order, repeats)
        full, server, answer = timed(client, f"/ui/runs?experiment={EXPERIMENT}", repeats)
        figures.append(Figure("runs page", f"default view, newest first ({_rows(answer)} rows)", full, server))
    return figures


# --- chart data -------------------------------------------------------------------------------------------------------
def chart_data(args: argparse.Namespace) -> list[Figure]:
    """A run with 1,000,000 metric points: its chart data (``/ui/data/metrics``, 2,000 points asked for, downsampled on
    the server) in < 300 ms (``bench/ui_charts.py``, which also runs alone). Request time as httpx sees it."""
    from ui_charts import chart_data as measure

    got = measure(args.chart_values, 2000, args.repeats)
    what = f"{got['values']:,} points -> {got['points_answered']:,} ({got['engine']})"
    return [Figure("chart data", what, got["ms_median"], None, f"max {got['ms_max']} ms")]


# --- MLflow comparison ------------------------------------------------------------------------------------------------
MLFLOW_RUNS = 10_000  # MLflow writes ~55 runs/s here: 100,000 would take half an hour (bench/ui_browser.py)


def mlflow_comparison(args: argparse.Namespace) -> list[Figure]:
    """Time to first render of the runs page in the same headless Chromium (``bench/ui_browser.py``: navigation start
    to the table's first row visible), median of 5 cold loads: keel and MLflow (its own venv, ``mlflow server``) on
    stores of ``MLFLOW_RUNS`` runs each (``--mlflow-runs``), and keel on this benchmark's own store. Stores are kept in
    ``<--store>-browser`` and reused. The figures go in the "request ms" column (browser time, not a request)."""
    from ui_browser import PEER_PYTHON, compare

    runs = int(args.mlflow_runs)
    peer = PEER_PYTHON.exists()
    if not peer:
        console.print(f"no MLflow venv at {PEER_PYTHON.parent}: keel alone (python bench/tracking.py --install-peers)")
    own = f"keel {args.runs:,}"
    got = compare(runs, 5, Path(f"{args.store}-browser"), peer=peer, extra={own: f"sqlite:///{args.store / 'keel.db'}"})
    section = "first render (browser)"
    figures = [Figure(section, f"keel runs page, {runs:,} runs, cold", got["keel_first_render_ms"]["cold"], None)]
    if peer:
        ratio = got["keel_over_mlflow"]["cold"]
        figures.append(Figure(section, f"MLflow {got['mlflow_version']} runs page, {runs:,} runs, cold",
                              got["mlflow_first_render_ms"]["cold"], None, f"keel/MLflow {ratio:.3f}"))  # fmt: skip
    figures.append(Figure(section, f"keel runs page, {args.runs:,} runs, cold", got[f"{own}_first_render_ms"]["cold"], None))
    return figures


# --- results ----------------------------------------------------------------------------------------------------------
def print_results(figures: list[Figure], runs: int, repeats: int) -> None:
    table = Table(title=f"UI benchmark: {runs:,} runs (10 params, 5 metrics each), SQLite, median of {repeats}")
    for column in ("section", "what", "request ms", "server ms", f"< {TARGET_MS:.0f} ms"):
        table.add_column(column, justify="left" if column in ("section", "what") else "right")
    for f in figures:
        ok = "" if f.server_ms is None else ("yes" if f.server_ms < TARGET_MS else "NO")
        request = "-" if f.request_ms is None else f"{f.request_ms:.1f}"
        server = "-" if f.server_ms is None else f"{f.server_ms:.1f}"
        table.add_row(f.section, f.what + (f" ({f.note})" if f.note else ""), request, server, ok)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path(tempfile.gettempdir()) / "keel-bench-ui",
                        help="folder of the cached store (built there when missing or of another size)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--chart-values", type=int, default=1_000_000, help="metric points of the charted run")
    parser.add_argument("--mlflow-runs", type=int, default=MLFLOW_RUNS, help="runs in each store of the browser comparison")
    parser.add_argument("--no-browser", action="store_true", help="skip the first-render comparison (Chromium)")
    args = parser.parse_args()

    from keel.testing.services import keel_server

    uri = build_store(args.store, args.runs)
    figures: list[Figure] = []
    with keel_server(uri, str(args.store / "artifacts")) as url:
        figures += runs_page(url, args.repeats)
    sections: list[Callable[[argparse.Namespace], list[Figure]]] = [chart_data]
    if not args.no_browser:
        sections.append(mlflow_comparison)
    for section in sections:
        figures += section(args)
    print_results(figures, args.runs, args.repeats)


if __name__ == "__main__":
    main()
