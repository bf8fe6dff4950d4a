"""Shadows take spare capacity only: the busy share is measured, a saturated server mirrors a sample (counted as
skipped), an idle one every request, and ``shadows="all"`` every request whatever the load."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import keel.registry as registry
from keel.context import Context
from keel.core.errors import InvalidArgument
from keel.serve import create_app
from keel.serve.capacity import SpareCapacity
from keel.testing.services import serve_app, wait_ready


class Sleepy:
    """Sleeps on every call (the GIL is released): a primary that keeps requests waiting."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, X):
        time.sleep(self.seconds)
        return np.zeros(len(X), dtype=np.int64)


def test_the_busy_share_of_a_window_is_measured_and_decides() -> None:
    capacity = SpareCapacity(busy_limit=0.5, window=0.05)
    assert capacity.spare()  # nothing waits
    capacity.enter()
    time.sleep(0.06)  # busy for a whole window
    assert not capacity.spare() and capacity.utilization > 0.9
    capacity.leave()
    assert capacity.spare()  # idle at this moment: the idle moment is spare even after a busy window
    time.sleep(0.06)  # idle for a whole window
    capacity.enter()
    assert capacity.spare() and capacity.utilization < 0.5  # busy now, but the last window had room
    capacity.leave()


def test_shadows_that_took_more_than_the_idle_share_get_nothing_in_the_next_window() -> None:
    capacity = SpareCapacity(busy_limit=0.5, window=0.05, min_shadow_share=0.02)
    capacity.enter()
    time.sleep(0.06)
    capacity.spent(0.02)  # the shadows took ~30% of a window in which the server was busy all the time
    assert not capacity.spare()
    capacity.leave()
    assert not capacity.spare()  # even at an idle moment: over its share, the shadow waits a window
    time.sleep(0.06)
    assert capacity.spare() and capacity.shadow_share == 0.0


@pytest.fixture
def ctx(tmp_path):
    context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    example = np.zeros((3, 2))
    registry.register(Sleepy(0.01), "sleepy", input_example=example, ctx=context)  # v1: the primary
    registry.register(Sleepy(0.0), "sleepy", input_example=example, ctx=context)  # v2: the shadow
    context.store.deployments.create("busy", "models:/sleepy/1", shadows=["models:/sleepy/2"])
    yield context
    context.close()


def _counts(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("keel_serve_shadow_comparisons_total", "keel_serve_shadow_skipped_total"):
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
            if sample.name == "keel_serve_requests_total" and sample.labels.get("route") == "primary":
                out["primary"] = out.get("primary", 0.0) + sample.value
    return out


def _load(url: str, clients: int, seconds: float) -> None:
    stop = time.monotonic() + seconds

    def call() -> None:
        with httpx.Client() as client:
            while time.monotonic() < stop:
                assert client.post(f"{url}/predict", json={"instances": [[1.0, 2.0]]}).status_code == 200

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _settled(url: str, n: float) -> dict[str, float]:
    """The counts once every mirrored request's shadow has answered (they run after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        counts = _counts(url)
        seen = counts.get("keel_serve_shadow_comparisons_total", 0) + counts.get("keel_serve_shadow_skipped_total", 0)
        if seen >= n or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def test_a_saturated_server_mirrors_a_sample_and_counts_the_rest(ctx) -> None:
    with serve_app(create_app("busy", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        _load(url, clients=8, seconds=2.0)  # the primary is busy all the time
        counts = _settled(url, 1)
        served = counts["primary"]
        mirrored, skipped = counts["keel_serve_shadow_comparisons_total"], counts["keel_serve_shadow_skipped_total"]
        assert mirrored + skipped == served  # every request is either mirrored or counted as skipped
        assert skipped > 0.5 * served, counts  # most requests found others waiting
        for _ in range(20):  # one at a time: the server is idle between requests, every one is mirrored
            httpx.post(f"{url}/predict", json={"instances": [[1.0, 2.0]]})
        time.sleep(0.3)
        after = _settled(url, served + 20)
    assert after["keel_serve_shadow_comparisons_total"] == mirrored + 20
    assert after["keel_serve_shadow_skipped_total"] == skipped


def test_shadows_all_mirrors_every_request_under_load(ctx) -> None:
    with serve_app(create_app("busy", ctx=ctx, prediction_log=None, shadows="all")) as url:
        wait_ready(url)
        _load(url, clients=8, seconds=1.0)
        served = _counts(url)["primary"]
        counts = _settled(url, served)
    assert counts["keel_serve_shadow_comparisons_total"] == served > 0
    assert counts.get("keel_serve_shadow_skipped_total", 0) == 0


def test_an_unknown_shadow_policy_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="shadows"):
        create_app("busy", shadows="some")
