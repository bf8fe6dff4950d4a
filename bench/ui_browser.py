"""UI benchmark, browser side: time to first render of the runs page, keel against MLflow, in the same headless Chromium.

    python bench/ui_browser.py                 # 10,000 runs in each store, median of 5
    python bench/ui_browser.py --runs 2000 --repeats 7

Both stores get the same runs (10 params and 5 metrics each, one experiment), each written through its own API:
keel's store directly, MLflow's ``MlflowClient`` (``create_run`` + ``log_batch`` + ``set_terminated``) in its own
virtual environment (``.bench-venv/mlflow``: its pins clash with keel's; ``bench/tracking.py --install-peers`` makes
it). MLflow writes ~55 runs/s here (10,000 runs take about 3 minutes), so the default is 10,000 runs, not the issue's
100,000 (``bench/ui.py`` measures keel's server time at that size); the size is printed with the figures.

What is measured: from navigation start to the first row of the runs table being visible (in the DOM with a size,
and the next animation frame after that), read in the page from ``performance.now()`` by a script Playwright adds
before the page's own (a ``MutationObserver``). keel: ``/ui/runs?experiment=bench-ui`` (server-rendered rows);
MLflow: ``/#/experiments/<id>/runs`` (its React app fetches the runs, then draws its grid). Cold: a new browser
context each time (empty cache); warm: the same page loaded again in that context. Each tool is opened once first
(not counted), then they alternate, so both see the same machine. The browser resolves no host name but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".bench-venv" / "mlflow" / "bin" / "python"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip
EXPERIMENT = "bench-ui"
KEEL_ROW = "table tbody tr"
MLFLOW_ROW = ".ag-center-cols-container .ag-row a, .ag-row [role=gridcell] a"

# runs before any of the page's scripts: the time the first row of the table is laid out with a size, then painted
FIRST_ROW = """(() => {
  window.__firstRow = null;
  const selector = %s;
  let seen = false;
  const check = () => {
    if (seen) return;
    const el = document.querySelector(selector);
    if (!el) return;
    const box = el.getBoundingClientRect();
    if (box.width <= 0 || box.height <= 0) return;
    seen = true;
    observer.disconnect();
    requestAnimationFrame(() => { window.__firstRow = performance.now(); });
  };
  const observer = new MutationObserver(check);
  observer.observe(document, {childList: true, subtree: true, attributes: true, characterData: true});
  document.addEventListener('DOMContentLoaded', check);
})();"""


def _reuse(made: Path, runs: int) -> dict[str, Any] | None:
    """What a previous run with ``--folder`` recorded about a store it filled, if it holds ``runs`` runs."""
    if not made.exists():
        return None
    recorded: dict[str, Any] = json.loads(made.read_text())
    return {**recorded, "cached": True} if recorded.get("runs") == runs else None


def _cached(filled: dict[str, Any]) -> str:
    return " (reused: written by an earlier run)" if filled.get("cached") else ""


def _remember(made: Path, filled: dict[str, Any]) -> dict[str, Any]:
    made.write_text(json.dumps(filled))
    return filled


def fill_keel(folder: Path, runs: int) -> dict[str, Any]:
    """``runs`` finished runs with 10 params and 5 metrics in experiment ``bench-ui`` of a new SQLite store."""
    from keel.core.clock import now_ms
    from keel.core.entities import RunStatus
    from keel.store.metadata import open_store

    (folder / "keel.db").unlink(missing_ok=True)
    store = open_store(f"sqlite:///{folder / 'keel.db'}")
    exp = store.get_or_create_experiment(EXPERIMENT)
    t0 = time.perf_counter()
    for r in range(runs):
        run = store.create_run(exp.id, f"run-{r}", params={f"p{k}": str((r * (k + 3)) % 97) for k in range(10)})
        ts = now_ms()
        metrics = [(run.id, f"m{k}", ((r * 7919 + k) % 10007) / 10007, 0, ts) for k in range(5)]
        store.end_run(run.id, RunStatus.FINISHED, metrics=metrics)
    seconds = time.perf_counter() - t0
    store.close()
    return {"runs": runs, "seconds": seconds}


def fill_mlflow(folder: Path, runs: int) -> dict[str, Any]:
    (folder / "mlflow.db").unlink(missing_ok=True)
    script = ROOT / "bench" / "peers" / "mlflow_ui.py"
    done = subprocess.run(
        [str(PEER_PYTHON), str(script), str(folder / "mlflow.db"), str(folder / "art"), str(runs)],
        capture_output=True, text=True, check=True, env={**os.environ, "DO_NOT_TRACK": "true"},
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    from keel.testing.services import free_port, stop

    port = free_port()
    cmd = [str(PEER_PYTHON.parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
           "--default-artifact-root", str(folder / "art"), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = open(folder / "mlflow-server.log", "w")  # closed below: the server writes to it until then
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DO_NOT_TRACK": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/health", proc, 180)
        yield url
    finally:
        stop(proc, 15)
        log.close()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def first_render_ms(browser: Any, url: str, selector: str, screenshot: Path | None = None) -> tuple[float, float]:
    """(cold, warm) ms from navigation start to the first visible row: a new context, then the same page again."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.add_init_script(FIRST_ROW % json.dumps(selector))
        page = context.new_page()
        times = []
        for load in (page.goto, page.reload):  # a reload, not a goto: MLflow's URL has a #fragment (same-document)
            load(*([url] if load == page.goto else []), wait_until="commit", timeout=180_000)
            page.wait_for_function("() => window.__firstRow !== null", timeout=180_000, polling=50)
            times.append(float(page.evaluate("window.__firstRow")))
        if screenshot:
            page.screenshot(path=str(screenshot))
        return times[0], times[1]
    finally:
        context.close()


def measure(targets: dict[str, tuple[str, str]], repeats: int, shots: Path) -> dict[str, dict[str, list[float]]]:
    """Each target (url, row selector) opened once unmeasured, then ``repeats`` times each, alternating."""
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in targets}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name, (url, selector) in targets.items():
            first_render_ms(browser, url, selector, shots / f"{name}.png")
        for _ in range(repeats):
            for name, (url, selector) in targets.items():
                cold, warm = first_render_ms(browser, url, selector)
                out[name]["cold"].append(cold)
                out[name]["warm"].append(warm)
        browser.close()
    return out


def compare(runs: int, repeats: int, folder: Path, *, peer: bool = True, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Fill (or reuse) both stores of ``runs`` runs in ``folder``, serve them, measure; the figures (also printed).

    ``extra``: more keel stores to measure the same way (a name and its SQLite URI, experiment ``bench-ui``), e.g.
    ``bench/ui.py``'s 100,000-run store, which MLflow could not be filled to in reasonable time."""
    from keel.testing.services import keel_server

    os.environ.setdefault("DO_NOT_TRACK", "true")
    if peer and not PEER_PYTHON.exists():
        raise SystemExit(f"no MLflow venv at {PEER_PYTHON.parent.parent}: python bench/tracking.py --install-peers")
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"runs": runs, "params_per_run": 10, "metrics_per_run": 5, "repeats": repeats}
    print(f"keel's store: {runs:,} runs ...", flush=True)
    keel = _reuse(folder / "keel.json", runs) or _remember(folder / "keel.json", fill_keel(folder, runs))
    figures["keel_fill_s"] = round(keel["seconds"], 1)
    print(f"  written in {keel['seconds']:.1f} s ({runs / keel['seconds']:,.0f} runs/s){_cached(keel)}", flush=True)
    if peer:
        print(f"MLflow's store: {runs:,} runs through MlflowClient ...", flush=True)
        filled = _reuse(folder / "mlflow.json", runs) or _remember(folder / "mlflow.json", fill_mlflow(folder, runs))
        figures["mlflow_version"], figures["mlflow_fill_s"] = filled["version"], round(filled["seconds"], 1)
        rate = runs / filled["seconds"]
        print(
            f"  MLflow {filled['version']}: written in {filled['seconds']:.1f} s ({rate:,.0f} runs/s){_cached(filled)}",
            flush=True,
        )
    with contextlib.ExitStack() as stack:
        keel_url = stack.enter_context(keel_server(f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts")))
        targets = {"keel": (f"{keel_url}/ui/runs?experiment={EXPERIMENT}", KEEL_ROW)}
        if peer:
            mlflow_url = stack.enter_context(mlflow_server(folder))
            targets["mlflow"] = (f"{mlflow_url}/#/experiments/{filled['experiment_id']}/runs", MLFLOW_ROW)
        for name, uri in (extra or {}).items():
            url = stack.enter_context(keel_server(uri, str(folder / f"artifacts-{name}")))
            targets[name] = (f"{url}/ui/runs?experiment={EXPERIMENT}", KEEL_ROW)
        print(f"measuring: {repeats} loads each, cold and warm, in {CHROMIUM} (headless) ...", flush=True)
        times = measure(targets, repeats, folder)
    report(figures, times)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in each store (default 10,000)")
    parser.add_argument("--repeats", type=int, default=5, help="measured page loads per tool (median)")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--keep", action="store_true", help="keep the stores and screenshots (the folder is printed)")
    parser.add_argument("--folder", type=Path, help="make the stores here, or reuse those a previous --folder run made (kept)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="keel-bench-ui-browser-"))
    try:
        compare(args.runs, args.repeats, folder, peer=not args.no_peer)
    finally:
        if args.keep or args.folder:
            print(f"stores, server log and first-load screenshots kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def report(figures: dict[str, Any], times: dict[str, dict[str, list[float]]]) -> None:
    print(f"\ntime to first render of the runs page ({figures['runs']:,} runs, 10 params + 5 metrics each), "
          f"median of {figures['repeats']}, ms:")  # fmt: skip
    print(f"{'':12}{'cold':>10}{'warm':>10}")
    for name, by in times.items():
        medians = {kind: statistics.median(values) for kind, values in by.items()}
        figures[f"{name}_first_render_ms"] = {kind: round(v, 1) for kind, v in medians.items()}
        figures[f"{name}_first_render_all_ms"] = {kind: [round(v, 1) for v in values] for kind, values in by.items()}
        print(f"{name:12}{medians['cold']:>10.0f}{medians['warm']:>10.0f}")
    if "mlflow" in times:
        ratio = {k: figures["keel_first_render_ms"][k] / figures["mlflow_first_render_ms"][k] for k in ("cold", "warm")}
        figures["keel_over_mlflow"] = {k: round(v, 3) for k, v in ratio.items()}
        print(f"{'keel/MLflow':12}{ratio['cold']:>10.3f}{ratio['warm']:>10.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
