"""keel.fairness.mitigate: fairlearn's mitigators over a registered version, registered as a new version with lineage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.linear_model import LogisticRegression

import keel
import keel.context
import keel.data
import keel.registry as registry
from keel.context import Context
from keel.core.errors import InvalidArgument
from keel.fairness.mitigate import before_after, mitigate
from keel.fairness.mitigated import MitigatedModel

FEATURES = ["x1", "x2"]


def synthetic(n: int, seed: int, groups: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """Group ``a`` has a higher x1, and x1 drives the label: a model on x1, x2 selects ``a`` far more often."""
    rng = np.random.default_rng(seed)
    g = rng.choice(list(groups), n, p=[0.6, 0.4])
    x1 = rng.normal(size=n) + np.where(g == groups[0], 0.8, -0.8)
    x2 = rng.normal(size=n)
    y = (x1 + 0.5 * x2 + rng.normal(scale=0.8, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": g, "label": y})


@pytest.fixture
def source(tmp_path) -> tuple[LogisticRegression, pd.DataFrame]:  # type: ignore[no-untyped-def]
    """Version 1 of ``credit``, trained on ``credit-train@1`` (recorded as its training data); the test frame."""
    train = synthetic(1500, 0)
    with keel.start_run(experiment="fair"):
        keel.data.log(train, "credit-train")
        model = LogisticRegression().fit(train[FEATURES], train["label"])
        v = registry.register(model, "credit", input_example=train[FEATURES].head(5), datasets=["credit-train@1"])
    assert (v.version, list(v.datasets)) == (1, ["credit-train@1"])
    return model, synthetic(2000, 1)


def _selection(pred: np.ndarray, groups: pd.Series, group: str) -> float:
    return float(pred[(groups == group).to_numpy()].mean())


def test_threshold_optimizer_lowers_demographic_parity_and_registers_a_new_version(source) -> None:  # type: ignore[no-untyped-def]
    model, test = source
    m = mitigate("models:/credit/1", test, sensitive="group", target="label")
    assert (m.source.version, m.version.name, m.version.version) == (1, "credit", 2)

    before_pred = model.predict(test[FEATURES])
    after_pred = registry.load(m.version.uri).predict(test)  # the registered version, loaded back from the store
    sf, y = test["group"], test["label"].to_numpy()
    dp_before = demographic_parity_difference(y, before_pred, sensitive_features=sf)
    dp_after = demographic_parity_difference(y, after_pred, sensitive_features=sf)
    assert dp_before > 0.4 and dp_after < 0.05  # the built-in disparity, then (nearly) none
    assert m.before["demographic_parity_difference"] == pytest.approx(dp_before, abs=1e-12)
    assert m.after["demographic_parity_difference"] == pytest.approx(dp_after, abs=1e-12)
    assert m.after["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, after_pred, sensitive_features=sf), abs=1e-12
    )
    assert m.before["accuracy"] == pytest.approx((before_pred == y).mean(), abs=1e-12)
    assert m.after["accuracy"] == pytest.approx((after_pred == y).mean(), abs=1e-12)
    rows = m.table.set_index(["metric", "group"])
    for g in ("a", "b"):
        assert rows.loc[("selection_rate", g), "before"] == pytest.approx(_selection(before_pred, sf, g), abs=1e-12)
        assert rows.loc[("selection_rate", g), "after"] == pytest.approx(_selection(after_pred, sf, g), abs=1e-12)
    assert rows.loc[("selection_rate", "a"), "after"] - rows.loc[("selection_rate", "b"), "after"] == pytest.approx(
        dp_after, abs=1e-12
    )
    np.testing.assert_allclose(m.table["change"], m.table["after"] - m.table["before"])

    # lineage: the source version named, the training data, a finished run with the before/after numbers
    v = m.version
    assert "models:/credit/1" in v.description and "threshold_optimizer" in v.description
    assert list(v.datasets) == ["credit-train@1"]
    assert v.metrics["mitigation.source_version"] == 1
    assert v.metrics["after.demographic_parity_difference"] == pytest.approx(dp_after, abs=1e-12)
    assert v.source_run == m.run_id
    run = keel.get_client().get_run(m.run_id)
    assert run.status.value == "finished"
    assert (run.params["method"], run.params["constraint"], run.params["source_version"]) == (
        "threshold_optimizer", "demographic_parity", "1",
    )  # fmt: skip
    assert run.tags["keel.mitigated_from"] == "models:/credit/1"
    assert run.tags["keel.mitigation.in_sample"].startswith("true")  # fitted on what it was assessed on: said so
    assert "in-sample before/after" in v.description
    assert "mitigation.html" in {a.path for a in keel.get_client().list_artifacts(m.run_id)}
    # its fairness assessment is recorded with the version, with the same numbers
    (assessment,) = keel.context.current().store.models.assessments("credit", 2, kind="fairness")
    assert assessment.metrics["demographic_parity_difference"] == pytest.approx(dp_after, abs=1e-12)
    assert assessment.run_id == m.run_id and m.assessment.recorded == assessment
    assert keel.get_client().get_run(m.run_id).metrics["fairness.demographic_parity_difference"].value == pytest.approx(
        dp_after, abs=1e-12
    )


def test_the_mitigated_version_takes_the_sensitive_column_from_its_one_input_frame(source) -> None:  # type: ignore[no-untyped-def]
    _, test = source
    m = mitigate("models:/credit/1", test, sensitive=["group"], y_true="label")
    loaded = registry.load(m.version.uri)
    assert isinstance(loaded.model, MitigatedModel)
    assert [c["name"] for c in loaded.version.signature["inputs"]["columns"]] == ["x1", "x2", "group"]
    with pytest.raises(InvalidArgument, match="missing column 'group'"):
        loaded.predict(test[FEATURES])
    # the same batch, the same predictions (the randomized draws are seeded); records work as frames do
    first = loaded.predict(test)
    np.testing.assert_array_equal(first, loaded.predict(test.to_dict("records")))
    proba = loaded.predict_proba(test)
    assert proba.shape == (len(test), 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_equalized_odds_threshold_optimizer_lowers_equalized_odds(source) -> None:  # type: ignore[no-untyped-def]
    model, test = source
    m = mitigate("models:/credit/1", test, sensitive="group", target="label", constraint="equalized_odds")
    y, sf = test["label"].to_numpy(), test["group"]
    after = registry.load(m.version.uri).predict(test)
    eo_before = equalized_odds_difference(y, model.predict(test[FEATURES]), sensitive_features=sf)
    eo_after = equalized_odds_difference(y, after, sensitive_features=sf)
    assert eo_after < eo_before / 3
    assert m.before["equalized_odds_difference"] == pytest.approx(eo_before, abs=1e-12)
    assert m.after["equalized_odds_difference"] == pytest.approx(eo_after, abs=1e-12)


def test_exponentiated_gradient_refits_on_the_recorded_training_data(source) -> None:  # type: ignore[no-untyped-def]
    model, test = source
    m = mitigate("models:/credit/1", test, sensitive="group", target="label", method="exponentiated_gradient")
    ctx = keel.context.current()
    inputs = [link.version.ref for link in ctx.store.datasets.versions_of_run(m.run_id) if link.direction == "input"]
    assert inputs == ["credit-train@1"]  # read through keel.data.get as the run's input
    assert list(m.version.datasets) == ["credit-train@1"]
    loaded = registry.load(m.version.uri)
    assert [c["name"] for c in loaded.version.signature["inputs"]["columns"]] == FEATURES  # no sensitive column needed
    after = loaded.predict(test[FEATURES])
    y, sf = test["label"].to_numpy(), test["group"]
    dp_before = demographic_parity_difference(y, model.predict(test[FEATURES]), sensitive_features=sf)
    dp_after = demographic_parity_difference(y, after, sensitive_features=sf)
    assert dp_after < dp_before / 3
    assert m.after["demographic_parity_difference"] == pytest.approx(dp_after, abs=1e-12)


def test_dataset_reference_and_another_name(source) -> None:  # type: ignore[no-untyped-def]
    _, test = source
    keel.data.log(test, "credit-test")
    m = mitigate("models:/credit/1", "credit-test@1", sensitive="group", target="label", name="credit-fair")
    assert (m.version.name, m.version.version) == ("credit-fair", 1)
    # the thresholds were fitted on the test data: it is training data of the new version too
    assert list(m.version.datasets) == ["credit-train@1", "credit-test@1"]


def test_bad_input_is_refused_before_anything_is_registered(source) -> None:  # type: ignore[no-untyped-def]
    _, test = source
    with pytest.raises(InvalidArgument, match="method"):
        mitigate("models:/credit/1", test, sensitive="group", target="label", method="reweigh")
    with pytest.raises(InvalidArgument, match="constraint"):
        mitigate("models:/credit/1", test, sensitive="group", target="label", constraint="parity")
    with pytest.raises(InvalidArgument, match="'sex'"):
        mitigate("models:/credit/1", test, sensitive="sex", target="label")
    with pytest.raises(InvalidArgument, match="labels are missing"):
        mitigate("models:/credit/1", test, sensitive="group")
    plain = LogisticRegression().fit(test[FEATURES], test["label"])
    registry.register(plain, "untracked", input_example=test[FEATURES].head(3))
    with pytest.raises(InvalidArgument, match="no training data"):
        mitigate("models:/untracked/1", test, sensitive="group", target="label", method="exponentiated_gradient")
    assert [v.version for v in keel.context.current().store.models.list_versions("credit")] == [1]


def test_before_after_table_with_two_sensitive_features_matches_fairlearn() -> None:
    rng = np.random.default_rng(3)
    n = 400
    sf = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.choice(["old", "young"], n)})
    y = rng.integers(0, 2, n)
    before, after = rng.integers(0, 2, n), rng.integers(0, 2, n)
    table = before_after(y, before, after, sf).set_index(["metric", "group"])
    assert table.loc[("demographic_parity_difference", ""), "before"] == pytest.approx(
        demographic_parity_difference(y, before, sensitive_features=sf), abs=1e-12
    )
    mask = ((sf["sex"] == "F") & (sf["age"] == "young")).to_numpy()
    assert table.loc[("selection_rate", "sex=F, age=young"), "after"] == pytest.approx(after[mask].mean(), abs=1e-12)
    assert table.loc[("accuracy", "sex=F, age=young"), "before"] == pytest.approx((before[mask] == y[mask]).mean())


def test_report_escapes_group_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hostile = ("<script>alert(1)</script>", "b&'\"")
    train = synthetic(1200, 4, hostile)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    registry.register(model, "hostile", input_example=train[FEATURES].head(3))
    m = mitigate("models:/hostile/1", synthetic(800, 5, hostile), sensitive="group", target="label")
    html = m.report()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "b&amp;&#x27;&quot;" in html
    assert json.loads(json.dumps(m.to_dict()))["version"] == "models:/hostile/2"


@pytest.mark.parametrize("backend", ["sqlite", "rest"])
def test_the_mitigated_model_saves_and_loads_on_every_store(backend: str, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    # sqlite: a context passed explicitly; rest: the session's keel server made the current store (keel.set_store)
    if backend == "sqlite":
        ctx: Context | None = Context(f"sqlite:///{tmp_path / 'other.db'}", str(tmp_path / "artifacts"))
    else:
        keel.set_store(request.getfixturevalue("server_url"))
        ctx = None
    name = f"remote{tmp_path.name[-8:]}".replace("_", "")  # the session's server is shared by tests
    train, test = synthetic(1200, 6), synthetic(800, 7)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    registry.register(model, name, input_example=train[FEATURES].head(3), ctx=ctx)
    m = mitigate(f"models:/{name}/1", test, sensitive="group", target="label", ctx=ctx)
    assert m.version.signature["format"] == "pickle"
    # a pickle from a server: the client opts in, as for any pickle (keel.registry.load)
    loaded = registry.load(m.version.uri, ctx, trust_pickle=backend == "rest" or None)
    after = loaded.predict(test)
    assert m.after["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(test["label"], after, sensitive_features=test["group"]), abs=1e-12
    )
    store = (ctx or keel.context.current()).store
    assert store.get_run(m.run_id).metrics["after.demographic_parity_difference"].value == pytest.approx(
        m.after["demographic_parity_difference"]
    )
    (assessment,) = store.models.assessments(name, 2, kind="fairness")
    assert assessment.metrics["demographic_parity_difference"] == pytest.approx(m.after["demographic_parity_difference"])


def test_cli_mitigates_a_file_and_prints_json(source, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import typer
    from typer.testing import CliRunner

    from keel.cli.fairness_mitigate import mitigate as command

    _, test = source
    test.to_parquet(tmp_path / "test.parquet")
    app = typer.Typer()
    app.command()(command)
    report = tmp_path / "m.html"
    args = ["models:/credit/1", "--data", str(tmp_path / "test.parquet"), "--sensitive", "group", "--target", "label",
            "--constraint", "equalized_odds", "--json", "--html", str(report)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["version"], out["constraint"]) == ("models:/credit/2", "equalized_odds")
    after = registry.load("models:/credit/2").predict(test)
    assert out["after"]["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(test["label"], after, sensitive_features=test["group"]), abs=1e-12
    )
    assert "selection rate per group" in report.read_text()
    plain = CliRunner().invoke(app, args[:-3])
    assert plain.exit_code == 0, plain.output
    assert "models:/credit/3" in plain.stdout and "demographic_parity_difference" in plain.stdout


def test_labels_other_than_zero_and_one_are_refused(source) -> None:  # type: ignore[no-untyped-def]
    _, test = source
    named = test.assign(label=np.where(test["label"] == 1, "yes", "no"))
    with pytest.raises(InvalidArgument, match="binary labels 0/1"):
        mitigate("models:/credit/1", named, sensitive="group", target="label")


def test_serving_takes_the_sensitive_column_from_the_request(source, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    import httpx

    from keel.serve import create_app
    from keel.testing.services import serve_app

    _, test = source
    m = mitigate("models:/credit/1", test, sensitive="group", target="label")
    rows = test.head(50)
    expected = registry.load(m.version.uri).predict(rows).tolist()
    with serve_app(create_app(m.version.uri, ctx=keel.context.current())) as url:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model never became ready"
            time.sleep(0.05)
        meta = httpx.get(f"{url}/v2/models/credit").json()
        assert [i["name"] for i in meta["inputs"]] == ["x1", "x2", "group"]
        records = rows[["x1", "x2", "group"]].to_dict("records")
        ok = httpx.post(f"{url}/predict", json={"records": records})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == expected and ok.json()["model"] == "models:/credit/2"
        refused = httpx.post(f"{url}/predict", json={"records": rows[["x1", "x2"]].to_dict("records")})
        assert refused.status_code == 422 and "group" in refused.text
