"""Prometheus metrics of one inference server, rendered at ``/metrics`` in the text exposition format.

Series (every one labelled ``deployment``):

- ``keel_serve_requests_total{route, model, status}``: answers, by HTTP status;
- ``keel_serve_request_seconds{route, model}``: latency histogram, buckets from 0.1 ms to 1 s;
- ``keel_serve_errors_total{route, model}``: requests on which the model raised (answered 500);
- ``keel_serve_batch_size``: rows per micro-batch (histogram);
- ``keel_serve_queue_depth``: requests waiting for a batch (read from the server when scraped);
- ``keel_serve_shadow_comparisons_total{model}`` and ``keel_serve_shadow_disagreements_total{model}``;
- ``keel_serve_shadow_skipped_total{model}``: rows not mirrored to a shadow, the server being busy;
- ``keel_serve_prediction_log_rows_total{outcome}``: prediction-log rows written, dropped or failed.

Several worker processes (``keel serve --workers N``): a scrape reaches one of them, so each process's own
counts would be a random sample. When ``PROMETHEUS_MULTIPROC_DIR`` names an empty folder before the workers
start, prometheus_client's multiprocess mode is on: every process writes its values to files there and any
worker's ``/metrics`` adds them all up (counters and histograms summed over every worker that ever ran; the
queue depth summed over live workers). The values read from the server (queue depth, log rows) are then
refreshed by each worker every ``REFRESH_SECONDS``, not only on a scrape. Without the variable each process
reports itself alone, which is right for one worker per container (the Kubernetes manifests of
``keel deploy package``): Prometheus scrapes every pod and sums.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable: the folder of its multiprocess mode
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LOG_OUTCOMES = ("written", "dropped", "failed")
REFRESH_SECONDS = 1.0


def multiprocess() -> bool:
    """Whether prometheus_client's multiprocess mode is on in this process.

    prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` itself, once, when first imported (keel leaves reading
    the environment to ``keel.core.config`` and to the libraries that own a variable): set it before that.
    """
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def fresh_multiprocess_dir(path: str | None = None) -> str:
    """An empty folder for the workers' metric files (``path`` emptied, or a new temporary folder).

    The command that starts the workers calls this once, before any of them starts, and exports the result
    as ``PROMETHEUS_MULTIPROC_DIR``: files left by an earlier run would be added to this one's counts.
    """
    if path is None:
        return tempfile.mkdtemp(prefix="keel-metrics-")
    folder = Path(path)
    if folder.is_dir():
        for f in folder.glob("*.db"):  # only prometheus_client's files: the folder may be one the user named
            f.unlink()
    else:
        folder.mkdir(parents=True)
    return str(folder)


def remove_multiprocess_dir(path: str) -> None:
    """Remove a folder made by ``fresh_multiprocess_dir()`` once every worker has stopped."""
    shutil.rmtree(path, ignore_errors=True)


class ServeMetrics:
    """The metrics of one deployment's server, in a registry of their own (not prometheus_client's global one).

    Every method is thread safe. ``observe`` is on the request path: it costs a dict lookup and three
    locked additions (see the microbenchmark in ``tests/serve/test_metrics.py``).
    """

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.multiprocess = multiprocess()
        self.registry = registry = CollectorRegistry()
        d = ["deployment"]
        self._requests = Counter("keel_serve_requests", "Answers, by route, model version and HTTP status.",
                                 [*d, "route", "model", "status"], registry=registry)  # fmt: skip
        self._latency = Histogram("keel_serve_request_seconds", "Time from request to answer, by route and model version.",
                                  [*d, "route", "model"], buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
        self._errors = Counter(
            "keel_serve_errors", "Requests on which the model raised.", [*d, "route", "model"], registry=registry
        )
        self._batches = Histogram("keel_serve_batch_size", "Rows per micro-batch.", d, buckets=BATCH_BUCKETS, registry=registry)
        self._queue = Gauge("keel_serve_queue_depth", "Requests waiting for a micro-batch.", d, registry=registry,
                            multiprocess_mode="livesum")  # fmt: skip
        self._compared = Counter("keel_serve_shadow_comparisons", "Requests a shadow model answered too.", [*d, "model"],
                                 registry=registry)  # fmt: skip
        self._disagreed = Counter("keel_serve_shadow_disagreements", "Shadow answers that differ from the primary's.",
                                  [*d, "model"], registry=registry)  # fmt: skip
        self._skipped = Counter("keel_serve_shadow_skipped", "Rows a shadow did not see: other requests were waiting.",
                                [*d, "model"], registry=registry)  # fmt: skip
        self._log_rows = Counter("keel_serve_prediction_log_rows", "Prediction-log rows, by outcome (written, dropped, failed).",
                                 [*d, "outcome"], registry=registry)  # fmt: skip
        self._batch_child = self._batches.labels(deployment)
        self._seen: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._depth_fn: Callable[[], int] | None = None
        self._log_fn: Callable[[], dict[str, int]] | None = None
        self._log_last: dict[str, int] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        """One answered request: counted by status, its latency into the histogram."""
        pair = self._seen.get((route, model, status))
        if pair is None:  # label lookups take a lock and build tuples: once per series, not per request
            pair = (
                self._requests.labels(self.deployment, route, model, str(status)),
                self._latency.labels(self.deployment, route, model),
            )
            self._seen[(route, model, status)] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def error(self, route: str, model: str) -> None:
        """The model raised on a request (the app also ``observe``\\ s its 500)."""
        self._errors.labels(self.deployment, route, model).inc()

    def batch(self, size: int) -> None:
        """One micro-batch of ``size`` rows went to the model."""
        self._batch_child.observe(size)

    def shadow(self, model: str, agreed: bool) -> None:
        """One shadow answer of ``model`` compared with the primary's."""
        self._compared.labels(self.deployment, model).inc()
        disagreed = self._disagreed.labels(self.deployment, model)  # created at 0 so that a rate has a series
        if not agreed:
            disagreed.inc()

    def shadow_skipped(self, model: str, rows: int) -> None:
        """``rows`` of a request not mirrored to the shadow ``model``: the server had no spare capacity."""
        self._skipped.labels(self.deployment, model).inc(rows)

    def queue_depth(self, fn: Callable[[], int]) -> None:
        """Read the queue depth from ``fn`` when scraped (a cheap, thread-safe call such as a queue's length)."""
        self._depth_fn = fn
        self._queue.labels(self.deployment).set(0)
        self._start_refresher()

    def log_counters(self, fn: Callable[[], dict[str, int]]) -> None:
        """Read the prediction log's cumulative row counts from ``fn`` when scraped: ``{"written": n, "dropped": n,
        "failed": n}`` (other keys are exported as outcomes too)."""
        self._log_fn = fn
        for outcome in LOG_OUTCOMES:
            self._log_rows.labels(self.deployment, outcome)
        self._start_refresher()

    def render(self) -> tuple[bytes, str]:
        """``(body, content type)`` of ``/metrics``: this process's series, or every worker's in multiprocess mode."""
        self.refresh()
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def refresh(self) -> None:
        """Copy the values read from the server (queue depth, log rows) into the metrics; a failing reader is logged
        and skipped, never failing a scrape."""
        with self._refresh_lock:
            if self._depth_fn is not None:
                try:
                    self._queue.labels(self.deployment).set(self._depth_fn())
                except Exception:
                    log.exception("reading the queue depth for metrics failed")
            if self._log_fn is not None:
                try:
                    counts = self._log_fn()
                except Exception:
                    log.exception("reading the prediction log's counters for metrics failed")
                    return
                for outcome, count in counts.items():
                    self._advance(outcome, int(count))

    def _advance(self, outcome: str, count: int) -> None:
        # counters only go up: the reader's totals become increments (a total below the last one is a restarted writer)
        last = self._log_last.get(outcome, 0)
        step = count - last if count >= last else count
        if step:
            self._log_rows.labels(self.deployment, outcome).inc(step)
        self._log_last[outcome] = count

    def _start_refresher(self) -> None:
        # in multiprocess mode a scrape refreshes only the worker it reaches: the others publish on a timer
        if not self.multiprocess or self._refresher is not None:
            return
        self._refresher = threading.Thread(target=self._refresh_loop, name="keel-metrics-refresh", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self.refresh()

    def close(self) -> None:
        """Stop the refresher thread (multiprocess mode), after publishing the last values."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
            self._refresher = None
        self.refresh()
