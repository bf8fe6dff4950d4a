"""``keel serve DEPLOYMENT`` as a process: it serves and follows the deployment, and SIGTERM lets in-flight
requests finish and flushes the prediction log before it exits."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel.registry as registry
from keel.context import Context
from keel.serve.predictions import read_predictions
from keel.testing.cli import keel_cmd, keel_env
from keel.testing.services import free_port


def test_sigterm_finishes_in_flight_requests_and_flushes_the_prediction_log(tmp_path: Path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    registry.register(LogisticRegression(max_iter=5000).fit(X, y), "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("web", "models:/cancer/1")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "keel.cli.main", "serve", "web", "--port", str(port)],
        cwd=tmp_path, env=keel_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "keel serve never became ready"
            time.sleep(0.1)
        statuses: list[int] = []
        stop = threading.Event()

        def call(i: int) -> None:
            statuses.append(httpx.post(f"{url}/predict", json={"records": [X.iloc[i].to_dict()]}, timeout=30).status_code)

        def keep_calling() -> None:
            i = 0
            while not stop.is_set():
                try:
                    call(i % 500)
                except httpx.TransportError:  # the listener is closed: no answer, and nothing to log
                    return
                i += 1

        for i in range(25):
            call(i)
        load = [threading.Thread(target=keep_calling) for _ in range(4)]
        for t in load:
            t.start()
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        for t in load:
            t.join(timeout=60)
        stop.set()
        # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit status says SIGTERM
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
    out, _ = server.communicate()
    assert "keel serve deployment web (primary models:/cancer/1)" in out
    assert set(statuses) == {200}  # every request the server took was answered, none failed by the shutdown
    answered = len(statuses)
    assert answered > 30
    logged = read_predictions("web", ctx=ctx, labels=False)
    assert len(logged) == answered and set(logged["model"]) == {"models:/cancer/1"}
    ctx.close()


def test_an_unknown_deployment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = keel_cmd(tmp_path, "serve", "nowhere", "--port", str(free_port()))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nowhere" in lines[0] and "Traceback" not in result.stderr


def test_an_unknown_shadow_policy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = keel_cmd(tmp_path, "serve", "nowhere", "--shadows", "most", "--port", str(free_port()))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--shadows" in lines[0] and "'most'" in lines[0] and "spare or all" in lines[0]


def test_two_workers_serve_one_deployment_and_any_scrape_counts_both(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    ctx = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    registry.register(LogisticRegression(max_iter=5000).fit(X, y), "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("pair", "models:/cancer/1")
    port = free_port()
    env = {**keel_env(tmp_path), "KEEL_PREDICTION_LOG": "off"}
    server = subprocess.Popen([sys.executable, "-m", "keel.cli.main", "serve", "pair", "--port", str(port), "--workers", "2"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        ready = 0
        while ready < 6:  # both workers loaded: several ready answers in a row (each connection may reach either)
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "keel serve --workers 2 never became ready"
            try:
                ready = ready + 1 if httpx.get(f"{url}/v2/health/ready").status_code == 200 else 0
            except httpx.TransportError:
                ready = 0
            time.sleep(0.1)
        for i in range(40):
            assert httpx.post(f"{url}/predict", json={"records": [X.iloc[i].to_dict()]}).status_code == 200
        totals = set()
        for _ in range(6):  # every scrape, whichever worker answers it, adds up both workers' counts
            families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
            counted = sum(
                s.value for f in families if f.name == "keel_serve_requests" for s in f.samples
                if s.name == "keel_serve_requests_total" and s.labels.get("status") == "200"
            )  # fmt: skip
            totals.add(counted)
        assert totals == {40.0}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    ctx.close()
