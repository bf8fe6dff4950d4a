"""Issue 13, "the SDK an MLflow user expects": search_runs as a DataFrame, set_experiment/set_store, and
log_dict/log_text/log_table/log_figure/log_image on the fluent API and Client, on real stores."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
from keel.core.errors import InvalidArgument, MissingExtra
from keel.tracking.client import Client


def _runs_in_two_experiments() -> tuple[str, str, str]:
    with keel.start_run(experiment="churn", name="rf", tags={"team": "risk"}) as rf:
        keel.log_params({"model": "rf", "depth": 6})
        for step, auc in enumerate([0.7, 0.8, 0.91]):
            keel.log_metric("auc", auc, step=step)  # the frame holds the latest value
    with keel.start_run(experiment="churn", name="lr") as lr:
        keel.log_param("model", "lr")
        keel.log_metrics({"auc": 0.85, "loss": 0.3})
    with keel.start_run(experiment="fraud", name="other") as other:
        keel.log_metric("auc", 0.99)
    return rf.id, lr.id, other.id


def test_search_runs_returns_a_frame_like_mlflow() -> None:
    rf, lr, other = _runs_in_two_experiments()
    df = keel.search_runs("churn", order_by=["metrics.auc DESC"])
    assert list(df.columns) == [
        "run_id", "experiment", "name", "status", "start_time", "end_time",
        "params.depth", "params.model", "metrics.auc", "metrics.loss", "tags.team",
    ]  # fmt: skip
    assert list(df["run_id"]) == [rf, lr]
    assert list(df["experiment"]) == ["churn", "churn"] and list(df["name"]) == ["rf", "lr"]
    assert list(df["status"]) == ["finished", "finished"]
    assert list(df["params.model"]) == ["rf", "lr"] and df["params.depth"].tolist() == ["6", None]
    assert df["metrics.auc"].tolist() == [0.91, 0.85]
    assert math.isnan(df["metrics.loss"].iloc[0]) and df["metrics.loss"].iloc[1] == 0.3
    assert df["tags.team"].tolist() == ["risk", None]
    stored = keel.get_client().get_run(rf)
    assert df["start_time"].iloc[0] == pd.Timestamp(stored.start_time, unit="ms", tz="UTC")
    assert df["end_time"].iloc[0] == pd.Timestamp(stored.end_time, unit="ms", tz="UTC")
    assert str(df["start_time"].dtype).startswith("datetime64") and str(df["start_time"].dt.tz) == "UTC"

    everything = keel.search_runs(filter="metrics.auc > 0.9", order_by=["metrics.auc"])
    assert list(everything["run_id"]) == [rf, other] and list(everything["experiment"]) == ["churn", "fraud"]
    assert list(keel.search_runs(["churn", "fraud"], max_results=2, order_by=["name"])["name"]) == ["lr", "other"]
    runs = keel.search_runs("churn", filter="params.model = 'lr'", output="list")
    assert [r.id for r in runs] == [lr] and runs[0].metric("loss") == 0.3

    empty = keel.search_runs("churn", filter="metrics.auc > 2")
    assert len(empty) == 0 and list(empty.columns) == ["run_id", "experiment", "name", "status", "start_time", "end_time"]


def test_search_runs_sees_metrics_still_buffered_and_refuses_bad_options() -> None:
    with keel.start_run(experiment="live") as run:
        keel.log_metric("loss", 0.5)
        assert keel.search_runs("live")["metrics.loss"].tolist() == [0.5]  # flushed before searching
    assert run.get().metric("loss") == 0.5
    with pytest.raises(InvalidArgument, match="output must be 'frame' or 'list'; got 'json'"):
        keel.search_runs(output="json")
    with pytest.raises(InvalidArgument, match="max_results must be a positive integer; got 0"):
        keel.search_runs(max_results=0)


def test_set_experiment_is_where_the_next_top_level_runs_go() -> None:
    exp = keel.set_experiment("baselines")
    assert exp.name == "baselines" and keel.get_client().store.get_experiment_by_name("baselines").id == exp.id
    with keel.start_run() as parent:
        with keel.start_run(experiment=None) as child:
            pass
    with keel.start_run(experiment="elsewhere") as explicit:
        pass
    by_id = {r.id: r for r in keel.search_runs(output="list")}
    assert by_id[parent.id].experiment_id == exp.id and by_id[child.id].experiment_id == exp.id
    assert keel.get_client().store.get_experiment(by_id[explicit.id].experiment_id).name == "elsewhere"
    with pytest.raises(InvalidArgument, match="name must be a non-empty experiment name"):
        keel.set_experiment("  ")
    keel.set_client(None)  # back to configuration, the experiment too
    with keel.start_run() as configured:
        pass
    assert keel.get_client().store.get_experiment(configured.get().experiment_id).name != "baselines"


def test_set_store_points_the_fluent_api_at_another_store(tmp_path: Path) -> None:
    with keel.start_run(experiment="here") as first:
        pass
    other_uri = f"sqlite:///{tmp_path / 'other' / 'keel.db'}"
    (tmp_path / "other").mkdir()
    keel.set_experiment("kept")
    client = keel.set_store(other_uri, str(tmp_path / "other" / "blobs"))
    assert keel.get_client() is client and getattr(client.store, "uri", None) == other_uri
    with keel.start_run() as second:
        keel.log_text("hello", "notes.txt")
    assert [r.id for r in keel.search_runs(output="list")] == [second.id]  # the new store only
    assert client.store.get_experiment(second.get().experiment_id).name == "kept"
    assert (tmp_path / "other" / "blobs").is_dir() and client.read_artifact(second.id, "notes.txt") == b"hello"
    back = Client(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    assert [r.id for r in back.search_runs().runs] == [first.id]  # the first store was left alone
    back.close()
    with pytest.raises(InvalidArgument, match="uri must be a store URI"):
        keel.set_store("")


def _png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


def test_fluent_log_helpers_round_trip_as_content_addressed_artifacts() -> None:
    from matplotlib.figure import Figure

    payload = {"lr": 0.01, "layers": [64, 32], "name": "résumé", "nested": {"ok": True}}
    table = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, None, 1.5]})
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = np.random.default_rng(0).random((5, 7, 3))
    fig = Figure(figsize=(2, 1.5), dpi=50)
    fig.subplots().plot([0, 1, 2], [2, 1, 3])
    with keel.start_run(experiment="media") as run:
        refs = [
            keel.log_dict(payload, "config.json"),
            keel.log_dict(payload, "config.yaml"),
            keel.log_text("line 1\nligne 2 ✓\n", "notes/readme.txt"),
            keel.log_table(table, "tables/sample.parquet"),
            keel.log_image(gray, "gray.png"),
            run.log_image(rgb, "rgb.png"),
            keel.log_figure(fig, "plot.png"),
            keel.log_figure(fig, "plot.svg"),
        ]
        again = keel.log_dict(payload, "copy.json")
    client = keel.get_client()
    read = lambda name: client.read_artifact(run.id, name)  # noqa: E731
    assert json.loads(read("config.json")) == payload
    import yaml

    assert yaml.safe_load(read("config.yaml")) == payload
    assert read("notes/readme.txt").decode() == "line 1\nligne 2 ✓\n"
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(read("tables/sample.parquet"))), table)
    assert np.array_equal(_png_array(read("gray.png")), gray)
    assert np.array_equal(_png_array(read("rgb.png")), np.rint(rgb * 255).astype(np.uint8))
    plot = _png_array(read("plot.png"))
    assert plot.ndim == 3 and plot.shape[2] == 4 and 30 <= plot.shape[0] <= 80 and plot.std() > 0  # drawn, not blank
    assert read("plot.svg").startswith(b"<?xml") and b"<svg" in read("plot.svg")
    listed = {r.path: r for r in client.list_artifacts(run.id)}
    assert {r.path for r in refs} | {"copy.json"} == set(listed)
    assert listed["config.json"].media_type == "application/json" and listed["gray.png"].media_type == "image/png"
    assert listed["tables/sample.parquet"].media_type == "application/vnd.apache.parquet"
    assert again.sha256 == refs[0].sha256  # content-addressed: the same bytes, one blob
    assert listed["plot.svg"].sha256 == keel.get_client().artifacts.put_bytes(read("plot.svg")).sha256


def test_a_pil_image_and_a_plotly_figure_over_rest(server_url: str) -> None:
    import plotly.graph_objects as go
    from PIL import Image

    client = Client(server_url)
    run = client.create_run("media-rest", capture_code=False)
    pil = Image.new("RGB", (6, 4), (10, 200, 30))
    client.log_image(run.id, pil, "pil.png")
    client.log_figure(run.id, go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2])), "curve.html")
    client.log_table(run.id, pd.DataFrame({"k": [1, 2]}), "t.parquet")
    client.log_dict(run.id, {"a": 1}, "d.json")
    client.end_run(run.id)
    decoded = _png_array(client.read_artifact(run.id, "pil.png"))
    assert decoded.shape == (4, 6, 3) and decoded[0, 0].tolist() == [10, 200, 30]
    html = client.read_artifact(run.id, "curve.html").decode()
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js itself is inside the page
    assert not re.search(r"<script[^>]+src=", html)  # no CDN: renders offline
    assert pd.read_parquet(io.BytesIO(client.read_artifact(run.id, "t.parquet")))["k"].tolist() == [1, 2]
    assert json.loads(client.read_artifact(run.id, "d.json")) == {"a": 1}
    ref = next(r for r in client.list_artifacts(run.id) if r.path == "curve.html")
    assert ref.media_type == "text/html"
    client.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: keel.log_dict([1, 2], "d.json"), "dictionary must be a mapping"),  # type: ignore[arg-type]
        (lambda: keel.log_dict({"x": object()}, "d.json"), "dictionary must be JSON-serializable"),
        (lambda: keel.log_dict({}, "../escape.json"), "artifact path must be a relative path without '..'"),
        (lambda: keel.log_dict({}, "d.txt"), "name must be a file name ending in .json, .yaml, .yml; got 'd.txt'"),
        (lambda: keel.log_text(b"bytes", "t.txt"), "text must be a str; got b'bytes'"),  # type: ignore[arg-type]
        (lambda: keel.log_text("x", "a/../b.txt"), "artifact path must be"),
        (lambda: keel.log_table({"a": [1]}, "t.parquet"), "frame must be a pandas DataFrame or a pyarrow Table"),
        (lambda: keel.log_table(pd.DataFrame({"a": [1]}), "t.csv"), "name must be a file name ending in .parquet"),
        (lambda: keel.log_figure("plot", "p.png"), "figure must be a matplotlib Figure"),
        (lambda: keel.log_figure(object(), "p.html"), "figure must be a plotly Figure"),
        (lambda: keel.log_figure(object(), "p.jpg"), "name must be a file name ending in .png, .svg, .html"),
        (lambda: keel.log_image([[0, 1]], "i.png"), "image must be a numpy array or a PIL image"),
        (lambda: keel.log_image(np.zeros((2, 2, 2)), "i.png"), r"image must be an HxW, HxWx1, HxWx3 or HxWx4 array"),
        (lambda: keel.log_image(np.full((2, 2), 1.5), "i.png"), r"image must be floats in \[0, 1\]"),
        (lambda: keel.log_image(np.full((2, 2), 300), "i.png"), "image must be uint8 values"),
        (lambda: keel.log_image(np.zeros((2, 2), np.uint8), "i.jpg"), "name must be a file name ending in .png"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(call: object, message: str) -> None:
    with keel.start_run(experiment="bad") as run:
        with pytest.raises(InvalidArgument, match=message):
            call()  # type: ignore[operator]
    assert keel.get_client().list_artifacts(run.id) == []


def test_an_html_figure_without_plotly_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # as if plotly were not installed
    with keel.start_run(experiment="bad"):
        with pytest.raises(MissingExtra, match=r"plotly is not installed; run: pip install 'keel\[plots\]'"):
            keel.log_figure(object(), "p.html")


def test_log_helpers_need_an_active_run() -> None:
    with pytest.raises(keel.KeelError, match="no active run"):
        keel.log_dict({"a": 1}, "d.json")


def test_the_readme_tracking_section_runs_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Tracking from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2  # the logging blocks first (the autolog block after them runs in tests/test_h5_readme.py)
    (tmp_path / "model.pkl").write_bytes(b"a model")  # the file the first block logs
    for block in blocks[:2]:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert "rf" in capsys.readouterr().out
    df = keel.search_runs(["churn"], order_by=["start_time"])
    assert df["name"].tolist() == ["baseline", "rf"] and df["metrics.auc"].tolist()[1] == 0.93
    rf = df["run_id"].iloc[1]
    names = {r.path for r in keel.get_client().list_artifacts(rf)}
    assert names == {"config.json", "notes.txt", "sample.parquet", "mask.png"}
