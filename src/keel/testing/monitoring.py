"""Shared pieces of the monitoring tests: a store with an hour of logged traffic, and a real Prometheus server
(Debian's ``prometheus``, which scripts/test installs) scraping targets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from keel.testing.services import stop

HOUR = 3_600_000
WAIT_S = 30.0


def store_with_traffic(folder: Path) -> None:
    """A store in ``folder/.keel`` with deployment ``live`` (a logistic regression on half the breast-cancer rows,
    trained on dataset ``train@1``) and a whole hour of its predictions (the hour before last) on the other half,
    ``mean area`` doubled."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import keel.data
    import keel.registry as registry
    from keel.context import Context
    from keel.serve.parquet_sink import ParquetSink
    from keel.serve.predlog import PredictionLog

    ctx = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    keel.data.log(X.iloc[::2], "train", ctx=ctx)
    model = LogisticRegression(max_iter=5000).fit(X.iloc[::2], y.iloc[::2])
    version = registry.register(model, "cancer", input_example=X.head(3), datasets=["train@1"], ctx=ctx)
    ctx.store.deployments.create("live", version.uri)
    live = X.iloc[1::2].copy()
    live["mean area"] *= 2.0
    start = (int(time.time() * 1000) // HOUR - 2) * HOUR  # the hour before last: a whole window
    values, proba = live.to_numpy(dtype=np.float64), model.predict_proba(live)
    log = PredictionLog(ParquetSink("live", ctx))
    log.offer([
        {"request_id": f"r{i}", "row": 0, "time": start + i, "deployment": "live", "route": "primary", "model": version.uri,
         "served": True, "inputs": values[i], "input_names": tuple(live.columns), "output": int(proba[i, 1] > 0.5),
         "proba": proba[i], "latency_ms": 0.3, "replica": "test"}
        for i in range(len(live))
    ])  # fmt: skip
    log.close()
    ctx.close()


def prometheus_binary() -> str:
    """The ``prometheus`` binary; a missing one fails the test (it is installed by scripts/test, never skipped)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError("the prometheus binary is not on PATH: install Debian's package (scripts/test does: "
                             "apt-get install -y --no-install-recommends prometheus)")  # fmt: skip
    return binary


def prometheus_config(home: Path, targets: dict[str, str]) -> Path:
    """A config scraping every ``{job: "host:port"}`` each second."""
    config = home / "prometheus.yml"
    jobs = "".join(
        f"  - job_name: {job}\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
        for job, target in targets.items()
    )
    config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}")
    return config


@contextlib.contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str] | None, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` running in ``cwd`` (output in ``log``), stopped on exit whatever happened."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc, 15)


def prometheus(home: Path, targets: dict[str, str], port: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A Prometheus server on 127.0.0.1:``port`` scraping ``targets``, its data and log in ``home``."""
    config = prometheus_config(home, targets)
    args = [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=info"]  # fmt: skip
    return running(args, home, None, home / "prometheus.log")


def tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else "(no log)"


def until(what: str, proc: subprocess.Popen[bytes], log: Path, check: Callable[[], object], timeout: float = 60.0) -> Any:
    """``check()``'s first truthy answer within ``timeout``, failing with the log's tail if ``proc`` exits or time
    runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}:\n{tail(log)}")
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, ValueError) as e:  # not up yet; while starting Prometheus answers 503 in plain text
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {timeout} s (last: {last}):\n{tail(log)}")


def targets_up(url: str, expected: int) -> list[tuple[str, str, str]] | None:
    """``(job, scrape URL, health)`` of the targets once ``expected`` of them are up, else None."""
    import httpx

    targets = httpx.get(f"{url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    if len(targets) == expected and all(t["health"] == "up" for t in targets):
        return [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in targets]
    return None


class PrometheusAPI:
    """Queries of a Prometheus server's HTTP API."""

    def __init__(self, url: str, wait_s: float = WAIT_S) -> None:
        self.url, self.wait_s = url, wait_s

    def query(self, promql: str) -> list[dict[str, Any]]:
        import httpx

        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", (promql, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def eventually(self, promql: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The query's result once ``done`` holds for it (a scrape every second brings new values)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            result = self.query(promql)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql}: still {result} after {self.wait_s} s")
            time.sleep(0.2)
