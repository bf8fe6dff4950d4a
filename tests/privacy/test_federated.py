"""Federated learning: only parameters and counts cross the silo boundary, the model is close to a central one,
robust aggregation resists a poisoned silo, and the rounds are runs with lineage to every silo's data."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel
import keel.data
import keel.registry
from keel.core.entities import RunStatus
from keel.core.errors import BudgetExceeded, FederatedError, InvalidArgument
from keel.privacy.federated import aggregate, federated_train
from keel.privacy.silos import Message, decode, encode

FEATURES = [f"f{i}" for i in range(8)]
MARGIN = 0.02  # the federated model's holdout accuracy is within 2 points of the centrally trained one


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A binary task whose features have very different scales (so scaling matters)."""
    x, y = make_classification(n_samples=n, n_features=8, n_informative=5, class_sep=0.8, random_state=seed)
    df = pd.DataFrame(x * np.array([1, 10, 100, 0.1, 1, 5, 1000, 1]), columns=FEATURES)
    df["label"] = y
    return df


def log_silos(df: pd.DataFrame, sizes: list[int], prefix: str = "clinic") -> list[str]:
    refs, start = [], 0
    for i, size in enumerate(sizes):
        refs.append(keel.data.log(df.iloc[start : start + size].reset_index(drop=True), f"{prefix}-{i}").ref)
        start += size
    return refs


def central_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[FEATURES], train["label"])
    return float(model.score(test[FEATURES], test["label"]))


def test_only_parameters_and_counts_cross_the_silo_boundary() -> None:
    df = frame(2400)
    refs = log_silos(df, [700, 500, 600])
    keel.data.log(df.iloc[1800:], "clinic-test")
    messages: list[tuple[str, int, bytes]] = []
    result = federated_train(
        refs, target="label", holdout="clinic-test", rounds=3, executor="process", name="clinic-model",
        on_message=lambda direction, silo, data: messages.append((direction, silo, data)),
    )  # fmt: skip
    d = len(FEATURES)
    for silo, ref in enumerate(refs):
        mine = [(direction, decode(data)) for direction, s, data in messages if s == silo]
        kinds = [(direction, m.kind) for direction, m in mine]
        assert kinds == [("to_silo", "open"), ("from_silo", "ready")] + [("to_silo", "train"), ("from_silo", "update")] * 3 + [
            ("to_silo", "close"), ("from_silo", "closed"),
        ]  # fmt: skip
        opened, ready = mine[0][1], mine[1][1]
        assert opened.arrays == {} and opened.fields["dataset"] == ref  # a reference crosses, never rows
        assert set(opened.fields) == {"silo", "store", "artifacts", "dataset", "target", "features", "seed", "run_id"}
        assert ready.arrays == {} and ready.fields == {"rows": [700, 500, 600][silo], "classes": [0, 1]}
        for _, m in mine[2:-2]:
            assert set(m.arrays) == {"coef", "intercept"}  # the model's parameters, of the model's shape
            assert m.arrays["coef"].shape == (1, d) and m.arrays["intercept"].shape == (1,)
            assert m.arrays["coef"].dtype == np.float64
            if m.kind == "update":
                assert m.fields == {"rows": [700, 500, 600][silo]}
            else:
                assert set(m.fields) == {"round", "classes", "epochs", "learning_rate", "batch_size", "alpha", "run_id"}
        assert mine[-1][1].fields == {} and mine[-1][1].arrays == {}
    assert max(len(data) for _, _, data in messages) < 3000  # a silo's rows are 700 x 9 x 8 bytes and more
    # no value of any silo's rows, as binary float64 or as text, in any message (either direction)
    blob = b"\x00".join(data for _, _, data in messages)
    for ref in refs:
        rows = keel.data.get(ref, run=False)
        values = rows[FEATURES].to_numpy(dtype="float64")
        for row in values:
            assert row.tobytes() not in blob
        for value in values.ravel():
            assert struct.pack("<d", value) not in blob and repr(float(value)).encode() not in blob
    assert len(result.rounds) == 3 and all(r.bytes_exchanged > 0 for r in result.rounds)


def test_rounds_are_child_runs_and_the_model_names_every_silo() -> None:
    df = frame(1600, seed=1)
    refs = log_silos(df, [400, 400, 400], prefix="bank")
    keel.data.log(df.iloc[1200:], "bank-test")
    result = federated_train(refs, target="label", holdout="bank-test", rounds=4, aggregation="median", executor="inline")
    client = keel.get_client()
    parent = client.get_run(result.run_id)
    assert parent.status is RunStatus.FINISHED and parent.tags["keel.kind"] == "federated"
    assert parent.params["aggregation"] == "median" and parent.params["rounds"] == "4"
    history = client.get_metric_history(result.run_id, "holdout.accuracy")
    assert [m.step for m in history] == [1, 2, 3, 4] and [m.value for m in history] == result.history
    children = client.store.list_child_runs(result.run_id)
    assert [c.name for c in children] == ["round 1", "round 2", "round 3", "round 4"]
    for child, record in zip(children, result.rounds, strict=True):
        assert child.id == record.run_id and child.status is RunStatus.FINISHED
        assert child.params["participants"] == str(refs).replace("'", '"')
        for i in range(3):  # written by the silo itself, on its own rows
            assert 0.5 < child.metrics[f"silo{i}.accuracy"].value <= 1 and child.metrics[f"silo{i}.rows"].value == 400
        assert child.metrics["holdout.accuracy"].value == record.metrics["holdout.accuracy"]
        assert child.metrics["rows"].value == 1200
    inputs = {link.version.ref for link in client.store.datasets.versions_of_run(result.run_id) if link.direction == "input"}
    assert inputs == {*refs, "bank-test@1"}  # each silo linked the version it read; the coordinator its holdout
    version = result.version
    assert version is not None and list(version.datasets) == refs and version.source_run == result.run_id
    assert "median" in version.description and "3 silos" in version.description
    assert version.signature["holdout"] == "bank-test@1"
    loaded = keel.registry.load(version.uri)
    test = df.iloc[1200:][FEATURES]
    assert np.array_equal(loaded.predict(test), result.model.predict(test))
    assert float(result.model.score(test, df.iloc[1200:]["label"])) == pytest.approx(result.history[-1])


def test_the_federated_model_is_close_to_the_central_one() -> None:
    df = frame(6000, seed=2)
    train, test = df.iloc[:4000], df.iloc[4000:].reset_index(drop=True)
    # silos that differ: sorted by one feature, so each holds another part of the feature space
    ordered = train.sort_values("f2").reset_index(drop=True)
    refs = log_silos(ordered, [1000, 1500, 800, 700], prefix="site")
    keel.data.log(test, "site-test")
    result = federated_train(refs, target="label", holdout="site-test", rounds=10, executor="inline")
    central = central_accuracy(train, test)
    federated = float(result.model.score(test[FEATURES], test["label"]))
    assert federated >= central - MARGIN, (federated, central)
    assert federated == pytest.approx(result.history[-1]) and result.history[-1] > result.history[0] - MARGIN


def test_median_and_trimmed_mean_resist_a_poisoned_silo_that_fedavg_follows() -> None:
    df = frame(5000, seed=3)
    honest = log_silos(df.iloc[:1600], [400, 400, 400, 400], prefix="honest")
    poisoned = df.iloc[1600:4000].copy()
    poisoned["label"] = 1 - poisoned["label"]  # flipped labels, and more rows than the honest silos together
    refs = [*honest, keel.data.log(poisoned, "poisoned").ref]
    test = df.iloc[4000:].reset_index(drop=True)
    keel.data.log(test, "poison-test")
    central = central_accuracy(df.iloc[:1600], test)
    accuracy = {}
    for method in ("fedavg", "median", "trimmed_mean"):
        result = federated_train(
            refs, target="label", holdout="poison-test", rounds=5, aggregation=method, trim=0.2, executor="inline",
            name=f"poison-{method}",
        )  # fmt: skip
        accuracy[method] = result.history[-1]
    assert accuracy["fedavg"] < 0.5  # weighted by rows, the poisoned silo wins
    assert accuracy["median"] >= central - 0.03 and accuracy["trimmed_mean"] >= central - 0.03, (accuracy, central)


def test_ray_actors_give_the_same_model_as_the_other_executors(ray_local: None) -> None:
    df = frame(900, seed=4)
    refs = log_silos(df, [300, 300], prefix="ray")
    keel.data.log(df.iloc[600:], "ray-test")
    on_ray = federated_train(refs, target="label", holdout="ray-test", rounds=2, executor="ray", name="fed-ray")
    inline = federated_train(refs, target="label", holdout="ray-test", rounds=2, executor="inline", name="fed-inline")
    assert on_ray.history == inline.history and len(on_ray.history) == 2
    assert np.array_equal(on_ray.model.coef_, inline.model.coef_)
    children = keel.get_client().store.list_child_runs(on_ray.run_id)
    assert len(children) == 2 and children[0].metrics["silo1.rows"].value == 300


def test_silo_processes_work_against_a_keel_server(server_url: str) -> None:
    from keel.context import Context

    ctx = Context(server_url)  # not the current context: the silos open the server's stores from its URL
    df = frame(800, seed=6)
    refs = [keel.data.log(df.iloc[i * 300 : (i + 1) * 300], f"remote-{i}", ctx=ctx).ref for i in range(2)]
    keel.data.log(df.iloc[600:], "remote-test", ctx=ctx)
    result = federated_train(refs, target="label", holdout="remote-test", rounds=2, executor="process", name="remote", ctx=ctx)
    assert result.version is not None and list(result.version.datasets) == refs
    children = ctx.store.list_child_runs(result.run_id)
    assert [c.metrics["silo1.rows"].value for c in children] == [300, 300]
    assert ctx.store.get_run(result.run_id).status is RunStatus.FINISHED


def test_aggregations_by_hand() -> None:
    updates = [np.array([1.0, 10.0]), np.array([2.0, 20.0]), np.array([3.0, 30.0]), np.array([100.0, -100.0])]
    rows = [1, 1, 2, 4]
    assert np.allclose(aggregate(updates, rows, "fedavg"), [(1 + 2 + 6 + 400) / 8, (10 + 20 + 60 - 400) / 8])
    assert np.allclose(aggregate(updates, rows, "median"), [2.5, 15.0])
    assert np.allclose(aggregate(updates, rows, "trimmed_mean", trim=0.25), [2.5, 15.0])  # one cut at each end
    assert np.allclose(aggregate(updates, rows, "trimmed_mean", trim=0.0), [26.5, -10.0])


def test_messages_refuse_objects_and_bad_input_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="must be a numeric array"):
        encode(Message("update", {}, {"rows": np.array([{"a": 1}], dtype=object)}))
    assert decode(encode(Message("x", {"n": 3}, {"a": np.arange(3.0)}))).fields == {"n": 3}
    first, second = keel.data.log(frame(200), "site-a").ref, keel.data.log(frame(200, seed=9), "site-b").ref
    with pytest.raises(InvalidArgument, match="holdout must be a dataset version none of the silos holds"):
        federated_train([first, second], target="label", holdout=first)  # the coordinator would read a silo's rows
    df = frame(300)
    df["note"] = "alice@example.com SSN 123-45-6789"  # a cell no error message may carry out of the silo
    ref = keel.data.log(df, "texty").ref
    with pytest.raises(InvalidArgument, match="aggregation must be one of fedavg"):
        federated_train([ref], target="label", aggregation="mean")
    with pytest.raises(InvalidArgument, match="executor must be one of"):
        federated_train([ref], target="label", executor="cloud")
    with pytest.raises(InvalidArgument, match="rounds must be a positive integer"):
        federated_train([ref], target="label", rounds=0)
    with pytest.raises(InvalidArgument, match="silos must be a non-empty list"):
        federated_train(ref, target="label")
    with pytest.raises(InvalidArgument, match="different dataset versions"):
        federated_train([ref, ref], target="label")
    with pytest.raises(InvalidArgument, match="has no column 'nope'"):
        federated_train([ref], target="nope")
    runs_before = len(list(keel.get_client().iter_runs()))
    assert runs_before == 0  # refused before any run was created
    with pytest.raises(FederatedError, match=r"silo 0: InvalidArgument: .*feature 'note' is \w+, not a number") as caught:
        federated_train([ref], target="label", executor="inline")  # a text feature is refused in the silo
    failed = next(iter(keel.get_client().iter_runs()))
    assert failed.status is RunStatus.FAILED and "silo 0" in failed.tags["keel.error"]
    for text in (str(caught.value), failed.tags["keel.error"]):
        assert "alice" not in text and "123-45" not in text


def test_differential_privacy_pays_every_silo_budget_first_and_sends_only_noisy_parameters() -> None:
    df = frame(6000, seed=5)
    refs = log_silos(df, [1500, 1500, 1500], prefix="dp")
    keel.data.log(df.iloc[4500:], "dp-test")
    store = keel.get_client().store
    for ref in refs:
        store.privacy.set_budget(ref, 2.0, 0.0)
    scale = np.array([1, 10, 100, 0.1, 1, 5, 1000, 1])
    bounds = {f: (-4.0 * s, 4.0 * s) for f, s in zip(FEATURES, scale, strict=True)}  # public, not from the rows
    messages: list[tuple[str, int, bytes]] = []
    kw: dict[str, Any] = {"target": "label", "rounds": 8, "local_epochs": 2, "executor": "inline", "epsilon": 1.0,
                          "bounds": bounds, "classes": [0, 1], "learning_rate": 10.0}  # fmt: skip
    result = federated_train(
        refs, holdout="dp-test", name="dp-model", on_message=lambda d, s, data: messages.append((d, s, data)), **kw
    )  # fmt: skip
    for ref in refs:
        budget = store.privacy.get_budget(ref)
        assert budget is not None and budget.spent_epsilon == pytest.approx(1.0) and budget.spent_delta == 0.0
        (spend,) = store.privacy.spends(ref)
        assert spend.run_id == result.run_id and spend.mechanism == "federated-laplace-gradient"
    ready = [decode(data) for d, _, data in messages if d == "from_silo" and decode(data).kind == "ready"]
    assert [m.fields for m in ready] == [{"rows": 1500}] * 3  # not even which labels a silo holds
    trains = [decode(data) for _, _, data in messages if decode(data).kind == "train"]
    assert {m.fields["epsilon_step"] for m in trains} == {1.0 / 16}  # 8 rounds x 2 noisy steps
    child = store.list_child_runs(result.run_id)[0]
    silo_metrics = {k for k in child.metrics if k.startswith("silo")}
    assert silo_metrics == {"silo0.rows", "silo1.rows", "silo2.rows"}  # no exact accuracy on private rows
    version = result.version
    assert version is not None and version.metrics["privacy.epsilon"] == 1.0 and "epsilon=1," in version.description
    test = df.iloc[4500:]
    central = central_accuracy(df.iloc[:4500], test)
    private = float(result.model.score(test[FEATURES], test["label"]))
    # epsilon=1 costs accuracy (0.75-0.81 against 0.88 central over 12 tries): learning happened despite the noise
    assert private == pytest.approx(result.history[-1]) and private >= 0.70, (private, central)
    for ref in refs:
        store.privacy.set_budget(ref, 3.0, 0.0)
    again = federated_train(refs, **kw)  # the same seed, new noise (from the OS, not from the public seed)
    assert not np.array_equal(again.model[-1].coef_, result.model[-1].coef_)
    # a third run asking more than one silo has left is refused before any run or spend
    store.privacy.set_budget(refs[1], 2.5, 0.0)
    runs_before = len(list(keel.get_client().iter_runs()))
    with pytest.raises(BudgetExceeded, match=f"privacy budget of {refs[1]} exceeded"):
        federated_train(refs, **kw)
    assert len(list(keel.get_client().iter_runs())) == runs_before
    assert [len(store.privacy.spends(ref)) for ref in refs] == [2, 2, 2]
    with pytest.raises(InvalidArgument, match="bounds must be public"):
        federated_train(refs, target="label", epsilon=0.1, bounds={"f0": (0, 1)}, classes=[0, 1])
    with pytest.raises(InvalidArgument, match="classes must be the list of labels"):
        federated_train(refs, target="label", epsilon=0.1, bounds=bounds)
    with pytest.raises(InvalidArgument, match="learning_rate must be a positive number"):
        federated_train([ref], target="label", learning_rate=0.0)
    with pytest.raises(InvalidArgument, match="trim must be a fraction"):
        federated_train([ref], target="label", aggregation="trimmed_mean", trim=0.5)
