"""Issue 13, helper 5: CLI options checked before any work, and messages that name the option to give."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd


@pytest.mark.parametrize(("args", "message"), [
    (["--trials", "0"], "keel: error: --trials must be a positive integer; got 0"),
    (["--trials", "-3"], "keel: error: --trials must be a positive integer; got -3"),
    (["--executor", "threads"], "keel: error: --executor must be one of inline, process, ray; got 'threads'"),
])  # fmt: skip
def test_quickstart_rejects_bad_options_before_logging_anything(tmp_path: Path, args: list[str], message: str) -> None:
    done = keel_cmd(tmp_path, "quickstart", *args, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == message
    assert "1. data" not in done.stdout  # nothing started
    assert not (tmp_path / ".keel").exists()  # no store, no dataset, no run


FLOW = """
import keel
import keel.data


@keel.step
def load(ref: str):
    return keel.data.get(ref)


@keel.step
def fit(frame):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(max_iter=50).fit(frame[["x"]], frame["y"])


@keel.step
def evaluate(model, frame):
    score = float(model.score(frame[["x"]], frame["y"]))
    keel.log_metric("accuracy", score)
    return score


@keel.pipeline
def train(ref: str = "points"):
    frame = load(ref)
    return evaluate(fit(frame), frame)
"""


@pytest.mark.slow  # a handful of keel subprocesses importing scikit-learn
def test_register_from_a_step_takes_the_pipelines_metrics_and_data_and_export_names_data(tmp_path: Path) -> None:
    (tmp_path / "flows_h5.py").write_text(textwrap.dedent(FLOW))
    (tmp_path / "points.csv").write_text("x,y\n" + "".join(f"{i},{int(i >= 10)}\n" for i in range(20)))
    assert keel_cmd(tmp_path, "data", "log", "points.csv", "--name", "points").returncode == 0
    ran = keel_cmd(tmp_path, "pipeline", "run", "flows_h5:train")
    assert ran.returncode == 0, ran.stderr
    fits = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", "name = 'fit'").stdout)
    pipelines = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", "name = 'train'").stdout)
    done = keel_cmd(tmp_path, "models", "register", "--run", fits[0]["id"], "--name", "points")
    assert done.returncode == 0, done.stderr
    assert f"source: pipeline run {pipelines[0]['id'][:12]}, which ran that step" in done.stdout
    assert "metrics: accuracy 1" in done.stdout and "training data: points@1" in done.stdout
    shown = keel_cmd(tmp_path, "models", "show", "points/1")
    assert "accuracy" in shown.stdout
    exported = keel_cmd(tmp_path, "models", "export", "points/1")
    assert exported.returncode == 2
    assert exported.stderr.strip() == (
        "keel: error: --data is required: models:/points/1 records no held-out rows to check ONNX parity on "
        "(give --data DATASET, or register with --holdout DATASET)"
    )
    held = keel_cmd(tmp_path, "models", "register", "--run", fits[0]["id"], "--name", "points", "--holdout", "points")
    assert held.returncode == 0, held.stderr
    exported = keel_cmd(tmp_path, "models", "export", "points/2")
    assert exported.returncode == 0 and "on 20 rows" in exported.stdout, exported.stderr
