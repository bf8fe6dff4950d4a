"""keel.serve.metrics: what a Prometheus scrape reads, parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from keel.serve.metrics import ServeMetrics, fresh_multiprocess_dir


def samples(metrics: ServeMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_requests_latency_and_errors_by_route_model_and_status() -> None:
    m = ServeMetrics("churn")
    for seconds in (0.00005, 0.0003, 0.0003, 0.002, 0.7, 3.0):
        m.observe("primary", "models:/churn/3", 200, seconds)
    m.observe("primary", "models:/churn/3", 422, 0.0001)
    m.observe("canary", "models:/churn/4", 500, 0.01)
    m.error("canary", "models:/churn/4")
    found = samples(m)
    primary = {"deployment": "churn", "route": "primary", "model": "models:/churn/3"}
    assert value(found, "keel_serve_requests_total", **primary, status="200") == 6
    assert value(found, "keel_serve_requests_total", **primary, status="422") == 1
    assert (
        value(found, "keel_serve_requests_total", deployment="churn", route="canary", model="models:/churn/4", status="500") == 1
    )
    assert value(found, "keel_serve_errors_total", deployment="churn", route="canary", model="models:/churn/4") == 1
    assert ("keel_serve_errors_total", frozenset({**primary}.items())) not in found
    # cumulative buckets: 0.05 ms and the 422's 0.1 ms under 0.1 ms, two 0.3 ms under 0.5 ms, 2 ms under 2.5 ms, ...
    buckets = {
        le: value(found, "keel_serve_request_seconds_bucket", **primary, le=le)
        for le in ("0.0001", "0.0005", "0.0025", "1.0", "+Inf")
    }
    assert buckets == {"0.0001": 2, "0.0005": 4, "0.0025": 5, "1.0": 6, "+Inf": 7}
    assert value(found, "keel_serve_request_seconds_count", **primary) == 7
    assert value(found, "keel_serve_request_seconds_sum", **primary) == pytest.approx(
        0.00005 + 0.0006 + 0.002 + 0.7 + 3.0 + 0.0001
    )


def test_batches_shadows_queue_depth_and_log_rows_are_read_when_scraped() -> None:
    m = ServeMetrics("churn")
    for size in (1, 3, 3, 40):
        m.batch(size)
    m.shadow("models:/churn/5", agreed=True)
    m.shadow("models:/churn/5", agreed=False)
    m.shadow("models:/churn/6", agreed=True)
    depth = [7]
    counts = {"written": 10, "dropped": 0, "failed": 1}
    m.queue_depth(lambda: depth[0])
    m.log_counters(lambda: dict(counts))
    found = samples(m)
    assert value(found, "keel_serve_batch_size_count", deployment="churn") == 4
    assert value(found, "keel_serve_batch_size_sum", deployment="churn") == 47
    assert value(found, "keel_serve_batch_size_bucket", deployment="churn", le="4.0") == 3
    assert value(found, "keel_serve_shadow_comparisons_total", deployment="churn", model="models:/churn/5") == 2
    assert value(found, "keel_serve_shadow_disagreements_total", deployment="churn", model="models:/churn/5") == 1
    assert value(found, "keel_serve_shadow_disagreements_total", deployment="churn", model="models:/churn/6") == 0
    assert value(found, "keel_serve_queue_depth", deployment="churn") == 7
    rows = {
        o: value(found, "keel_serve_prediction_log_rows_total", deployment="churn", outcome=o)
        for o in ("written", "dropped", "failed")
    }
    assert rows == {"written": 10, "dropped": 0, "failed": 1}

    depth[0] = 0
    counts.update(written=25, dropped=4)
    found = samples(m)
    assert value(found, "keel_serve_queue_depth", deployment="churn") == 0
    assert value(found, "keel_serve_prediction_log_rows_total", deployment="churn", outcome="written") == 25
    assert value(found, "keel_serve_prediction_log_rows_total", deployment="churn", outcome="dropped") == 4
    # a writer that restarts counts from 0 again: the counter still only goes up
    counts.update(written=3)
    assert value(samples(m), "keel_serve_prediction_log_rows_total", deployment="churn", outcome="written") == 28


def test_a_failing_reader_never_fails_a_scrape() -> None:
    m = ServeMetrics("churn")
    m.observe("primary", "models:/churn/1", 200, 0.001)

    def broken() -> int:
        raise RuntimeError("queue gone")

    m.queue_depth(broken)
    m.log_counters(lambda: {"written": 1 // 0})
    found = samples(m)
    assert (
        value(found, "keel_serve_requests_total", deployment="churn", route="primary", model="models:/churn/1", status="200") == 1
    )


def test_each_server_has_its_own_registry() -> None:
    a, b = ServeMetrics("a"), ServeMetrics("a")
    a.observe("primary", "models:/m/1", 200, 0.001)
    assert value(samples(a), "keel_serve_requests_total", deployment="a", route="primary", model="models:/m/1", status="200") == 1
    assert not [k for k in samples(b) if k[0] == "keel_serve_requests_total"]
    labels = {"deployment": "a", "route": "primary", "model": "models:/m/1", "status": "200"}
    assert REGISTRY.get_sample_value("keel_serve_requests_total", labels) is None  # not prometheus_client's global one


_WORKER = textwrap.dedent("""
    import json, sys
    from keel.serve.metrics import ServeMetrics
    m = ServeMetrics("churn")
    n = int(sys.argv[1])
    for _ in range(n):
        m.observe("primary", "models:/churn/1", 200, 0.0003)
    m.batch(n)
    m.queue_depth(lambda: n)
    m.log_counters(lambda: {"written": n, "dropped": 1, "failed": 0})
    m.close()
    print(json.dumps({"multiprocess": m.multiprocess}))
""")


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    folder = fresh_multiprocess_dir(str(tmp_path / "prom"))
    (Path(folder) / "counter_999.db").write_bytes(b"")  # left by an earlier run: emptied again below
    folder = fresh_multiprocess_dir(folder)
    assert list(Path(folder).iterdir()) == []
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
    for n in (3, 5):
        done = subprocess.run([sys.executable, "-c", _WORKER, str(n)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"multiprocess": True}
    scrape = (
        "from keel.serve.metrics import ServeMetrics; import sys; sys.stdout.write(ServeMetrics('churn').render()[0].decode())"
    )
    done = subprocess.run([sys.executable, "-c", scrape], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(done.stdout) for s in f.samples
    }
    labels = {"deployment": "churn", "route": "primary", "model": "models:/churn/1"}
    assert value(found, "keel_serve_requests_total", **labels, status="200") == 8
    assert value(found, "keel_serve_request_seconds_bucket", **labels, le="0.0005") == 8
    assert value(found, "keel_serve_batch_size_sum", deployment="churn") == 8
    assert value(found, "keel_serve_queue_depth", deployment="churn") == 8  # livesum: both workers still have their files
    assert value(found, "keel_serve_prediction_log_rows_total", deployment="churn", outcome="written") == 8
    assert value(found, "keel_serve_prediction_log_rows_total", deployment="churn", outcome="dropped") == 2


def test_observe_costs_a_few_microseconds() -> None:
    m = ServeMetrics("churn")
    routes = [("primary", "models:/churn/3", 200), ("canary", "models:/churn/4", 200), ("primary", "models:/churn/3", 422)]
    n = 60_000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            route, model, status = routes[i % 3]
            m.observe(route, model, status, 0.0004)
        best = min(best, (time.perf_counter() - start) / n)
    print(f"ServeMetrics.observe: {best * 1e6:.2f} us per call")
    assert best < 20e-6
    assert (
        value(samples(m), "keel_serve_requests_total", deployment="churn", route="canary", model="models:/churn/4", status="200")
        == 3 * n / 3
    )
