"""Downsampling of metric curves (``keel.ui.downsample``): at most the points asked for, the first and last kept,
every bucket's extremes kept (so a spike survives), NaN and infinities never chosen and sent as null; numpy and the
pure-Python fallback choose the same points."""

from __future__ import annotations

import math
import random
from array import array
from pathlib import Path

import pytest

from keel.ui import downsample as ds


def _curve(n: int, seed: int = 0) -> tuple[list[int], list[float]]:
    rng = random.Random(seed)
    steps = sorted(rng.sample(range(n * 3), n))  # uneven steps
    return steps, [math.sin(i / 50) + rng.random() * 0.1 for i in range(n)]


@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_keeps_first_last_and_extremes_within_the_budget(engine: str) -> None:
    steps, values = _curve(50_000)
    values[12_345] = 40.0  # a spike
    values[33_333] = -40.0
    values[-1] = 0.123
    run = ds._python if engine == "python" else lambda s, v, p: ds.downsample(s, v, p)
    for points in (4, 5, 100, 2001):
        out = run(steps, values, points)
        assert len(out.steps) <= points and out.downsampled and out.count == 50_000
        assert out.steps[0] == steps[0] and out.steps[-1] == steps[-1] and out.values[-1] == 0.123
        assert steps[12_345] in out.steps and 40.0 in out.values
        assert steps[33_333] in out.steps and -40.0 in out.values
        assert out.steps == sorted(out.steps)
        assert all(values[steps.index(s)] == v for s, v in list(zip(out.steps, out.values, strict=True))[:50])


def test_every_bucket_keeps_its_min_and_max() -> None:
    steps = list(range(1000))
    values = [float((i * 7919) % 101) for i in steps]
    out = ds.downsample(steps, values, 102)  # 50 buckets of 20 steps
    kept = dict(zip(out.steps, out.values, strict=True))
    for b in range(50):
        bucket = values[b * 20 : (b + 1) * 20]
        assert min(bucket) in [kept[s] for s in kept if b * 20 <= s < (b + 1) * 20]
        assert max(bucket) in [kept[s] for s in kept if b * 20 <= s < (b + 1) * 20]


def test_numpy_and_python_choose_the_same_points() -> None:
    steps, values = _curve(20_000, seed=3)
    values[5] = math.nan
    values[7] = math.inf
    values[9] = -math.inf
    a = ds.downsample(array("q", steps), array("d", values), 500)
    b = ds._python(steps, values, 500)
    assert a == b


def test_nan_and_infinities_are_never_extremes_and_are_sent_as_null() -> None:
    steps = list(range(10_000))
    values = [1.0] * 10_000
    values[0] = math.nan  # the first point is kept whatever its value
    values[500] = math.inf
    values[600] = -math.inf
    values[700] = math.nan
    values[800] = 5.0
    out = ds.downsample(steps, values, 20)
    assert out.values[0] is None and out.steps[0] == 0
    assert 500 not in out.steps and 600 not in out.steps and 700 not in out.steps
    assert 800 in out.steps and out.nonfinite == 4
    short = ds.downsample([0, 1, 2], [1.0, math.nan, math.inf], 2000)  # small: every point, non-finite as null
    assert short.values == [1.0, None, None] and not short.downsampled and short.as_json()["count"] == 3


def test_an_empty_or_one_point_curve() -> None:
    assert ds.downsample([], [], 100).as_json() == {"steps": [], "values": [], "count": 0, "downsampled": False, "nonfinite": 0}
    assert ds.downsample([7], [0.5], 100).steps == [7]


def test_the_sql_stores_metric_series_is_the_history_in_columns(tmp_path: Path) -> None:
    from keel.store.metadata import open_store

    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    experiment = store.get_or_create_experiment("e")
    run = store.create_run(experiment.id, "r")
    store.log_metrics([(run.id, "m", float(s), s, 10) for s in range(100)])
    store.log_metrics([(run.id, "m", -1.0, 50, 5), (run.id, "m", math.nan, 3, 20), (run.id, "m", 7.0, 0, 1)])  # out of order
    steps, values = store.metric_series(run.id, "m")
    history = store.get_metric_history(run.id, "m")
    assert list(steps) == [m.step for m in history]
    assert [v if v == v else "nan" for v in values] == [m.value if m.value == m.value else "nan" for m in history]
    assert list(steps[:3]) == [0, 0, 1] and list(values[:2]) == [7.0, 0.0]  # step 0: the earlier timestamp first
    store.close()
