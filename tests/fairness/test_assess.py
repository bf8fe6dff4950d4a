"""keel.fairness.assess / measure: fairlearn's own numbers per group and for the disparities, for each sensitive feature
and their intersection; recorded with the version and on a run that ``keel gate`` reads; hostile text escaped."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.svm import LinearSVC

import keel
import keel.context
import keel.data
import keel.registry as registry
from keel.core.errors import InvalidArgument
from keel.fairness import FairnessAssessment, assess, fairness_html, measure
from keel.fairness.metrics import MAX_GROUPS
from keel.testing.cli import keel_cmd

FEATURES = ["x1", "x2"]
DISPARITIES = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
}
FAIRLEARN = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
             "false_positive_rate": false_positive_rate, "accuracy": accuracy_score, "count": count}  # fmt: skip


def people(n: int, seed: int, races: tuple[str, ...] = ("a", "b", "c")) -> pd.DataFrame:
    """x1 depends on sex and race, and drives the label: a model on x1, x2 selects the groups at different rates."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.45, 0.55])
    race = rng.choice(list(races), n, p=[0.5, 0.3, 0.2][: len(races)] if len(races) == 3 else None)
    shift = np.where(sex == "M", 0.6, -0.4) + np.select([race == races[0], race == races[1]], [0.3, -0.2], -0.5)
    x1 = rng.normal(size=n) + shift
    x2 = rng.normal(size=n)
    label = (x1 + 0.5 * x2 + rng.normal(scale=0.9, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "sex": sex, "race": race, "label": label})


def fairlearn_frame(y, pred, sf, score=None) -> pd.DataFrame:
    """fairlearn's MetricFrame by group, with AUC computed group by group from the scores."""
    frame = MetricFrame(metrics=FAIRLEARN, y_true=y, y_pred=pred, sensitive_features=sf).by_group
    if score is not None:
        keys = sf if isinstance(sf, pd.Series) else list(sf.columns)
        data = pd.DataFrame({"y": y, "s": score}).join(sf.reset_index(drop=True))
        frame["auc"] = data.groupby(keys).apply(lambda g: roc_auc_score(g["y"], g["s"]) if g["y"].nunique() > 1 else np.nan)
    return frame


# the numbers ------------------------------------------------------------------------------------------------------------


def test_per_group_metrics_and_disparities_are_fairlearns_own_for_each_feature_and_the_intersection() -> None:
    df = people(6000, 0)
    model = LogisticRegression().fit(df[FEATURES], df["label"])
    pred, score = model.predict(df[FEATURES]), model.predict_proba(df[FEATURES])[:, 1]
    y = df["label"].to_numpy()
    a = measure(y, pred, df[["sex", "race"]], y_score=score)

    assert [s.features for s in a.sets] == [("sex",), ("race",), ("sex", "race")]
    for features in (("sex",), ("race",), ("sex", "race")):
        sf = df[features[0]] if len(features) == 1 else df[list(features)]
        ours, theirs = a.frame(*features), fairlearn_frame(y, pred, sf, score)
        assert list(ours.index) == list(theirs.index)
        for column in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "count", "auc"):
            np.testing.assert_allclose(ours[column].to_numpy(float), theirs[column].to_numpy(float), rtol=1e-12, atol=0)
        s = next(s for s in a.sets if s.features == features)
        for name, fn in DISPARITIES.items():
            assert getattr(s, name) == pytest.approx(fn(y, pred, sensitive_features=sf), rel=1e-12, abs=0), (features, name)

    # the headline numbers are over the intersection, as fairlearn computes them given both columns
    both = df[["sex", "race"]]
    for name, fn in DISPARITIES.items():
        assert a.metrics[name] == pytest.approx(fn(y, pred, sensitive_features=both), rel=1e-12, abs=0)
        assert a.metrics[f"sex.{name}"] == pytest.approx(fn(y, pred, sensitive_features=df["sex"]), rel=1e-12, abs=0)
        assert a.metrics[f"race.{name}"] == pytest.approx(fn(y, pred, sensitive_features=df["race"]), rel=1e-12, abs=0)
    theirs = fairlearn_frame(y, pred, both, score)
    assert a.metrics["accuracy_min"] == pytest.approx(theirs["accuracy"].min(), rel=1e-12)
    assert a.metrics["accuracy_difference"] == pytest.approx(theirs["accuracy"].max() - theirs["accuracy"].min(), rel=1e-12)
    assert a.metrics["selection_rate_difference"] == a.metrics["demographic_parity_difference"]
    assert a.metrics["auc_min"] == pytest.approx(theirs["auc"].min(), rel=1e-12)
    assert a.metrics["auc_overall"] == pytest.approx(roc_auc_score(y, score), rel=1e-12)
    assert a.metrics["accuracy_overall"] == pytest.approx(accuracy_score(y, pred), rel=1e-12)
    assert a.metrics["groups"] == 6 and a.metrics["group_size_min"] == theirs["count"].min()
    # the model treats the groups differently: the disparities are real, and the intersection's are the largest
    assert a.metrics["demographic_parity_difference"] > 0.3
    assert a.metrics["demographic_parity_difference"] >= a.metrics["sex.demographic_parity_difference"]
    assert a.metrics["demographic_parity_difference"] >= a.metrics["race.demographic_parity_difference"]
    assert a.metrics["equalized_odds_ratio"] <= a.metrics["race.equalized_odds_ratio"]


def test_intersection_groups_are_the_combinations_seen_with_their_own_rows() -> None:
    df = people(3000, 1)
    df = df[~((df["sex"] == "F") & (df["race"] == "c"))].reset_index(drop=True)  # a combination nobody has
    pred = (df["x1"] > 0).astype(int).to_numpy()
    a = measure(df["label"], pred, df[["sex", "race"]])
    frame = a.frame("sex", "race")
    assert set(frame.index) == {("F", "a"), ("F", "b"), ("M", "a"), ("M", "b"), ("M", "c")}
    assert frame["count"].sum() == len(df)
    rows = (df["sex"] == "M") & (df["race"] == "c")
    assert frame.loc[("M", "c"), "selection_rate"] == pytest.approx(pred[rows].mean())
    assert frame.loc[("M", "c"), "count"] == rows.sum()
    # the worst group by accuracy is the intersection group with the lowest accuracy
    accuracy = {k: float(((pred == df["label"]) & m).sum() / m.sum())
                for k, m in {(s, r): (df["sex"] == s) & (df["race"] == r) for s, r in frame.index}.items()}  # fmt: skip
    worst = min(accuracy, key=accuracy.__getitem__)
    assert a.worst_group is not None and a.worst_group["group"] == {"sex": worst[0], "race": worst[1]}
    assert a.worst_group["accuracy"] == pytest.approx(accuracy[worst])
    assert a.frame("race", "sex") is frame  # an intersection named in any order
    assert set(a.frames) == {"sex", "race", "sex & race"}
    with pytest.raises(InvalidArgument, match="age"):
        a.frame("age")


def test_text_labels_with_a_positive_label_and_missing_sensitive_values() -> None:
    df = people(2000, 2)
    df.loc[::7, "race"] = None  # missing values form a group of their own
    y = np.where(df["label"] == 1, "approved", "denied")
    pred = np.where(df["x1"] > 0, "approved", "denied")
    a = measure(y, pred, df[["race"]], pos_label="approved")
    race = df["race"].fillna("(missing)")
    y01, pred01 = (y == "approved").astype(int), (pred == "approved").astype(int)
    assert "(missing)" in a.frame("race").index
    assert a.metrics["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y01, pred01, sensitive_features=race), rel=1e-12
    )
    assert a.metrics["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y01, pred01, sensitive_features=race), rel=1e-12
    )
    assert "auc_min" not in a.metrics and "auc" not in a.frame("race").columns  # no scores, no AUC
    assert not any(k.startswith("race.") for k in a.metrics)  # one feature: its numbers are the headline ones
    typed = measure(y01, pred01, df[["race"]], pos_label="1")  # "1" as a command line gives it, for the label 1
    assert typed.pos_label == 1 and typed.metrics == measure(y01, pred01, df[["race"]]).metrics
    flipped = measure(y01, pred01, df[["race"]], pos_label=0)  # the other class as the positive outcome
    assert flipped.metrics["selection_rate_overall"] == pytest.approx(1 - a.metrics["selection_rate_overall"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda df: measure(df["x1"], df["label"], df[["sex"]]),
            r"y_true must be two labels \(a binary target\); got .2,000 distinct values \(-",
        ),
        (lambda df: measure(np.where(df["label"] == 1, "yes", "no"), df["label"], df[["sex"]]), r"pos_label.*'no', 'yes'"),
        (
            lambda df: measure(df["label"], df["label"], df[["sex"]], pos_label=2),
            r"pos_label must be one of the target's labels: 0, 1; got 2",
        ),
        (lambda df: measure(df["label"], np.full(len(df), 7), df[["sex"]]), r"model predicts 7"),
        (lambda df: measure(df["label"], df["label"][:10], df[["sex"]]), r"y_pred.*10 predictions"),
        (lambda df: measure(df["label"], df["label"], df[["sex"]][:5]), r"sensitive_features.*5 rows"),
        (
            lambda df: measure(df["label"], df["label"], pd.DataFrame({"id": np.arange(len(df))})),
            rf"sensitive must be a feature with at most {MAX_GROUPS:,} groups \(this forms 2,000.*got .id",
        ),
        (lambda df: measure(df["label"].astype(float).where(df.index > 3), df["label"], df[["sex"]]), r"4 missing labels"),
    ],
)
def test_bad_input_is_named(call, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call(people(2000, 3))


# assess: a registered model, recorded --------------------------------------------------------------------------------


@pytest.fixture
def credit() -> pd.DataFrame:
    """``credit`` version 1: a logistic regression on x1, x2 (sex and race are not features); ``credit-test@1``."""
    train, test = people(3000, 10), people(2500, 11)
    with keel.start_run(experiment="train"):
        model = LogisticRegression().fit(train[FEATURES], train["label"])
        registry.register(model, "credit", input_example=train[FEATURES].head(5))
    keel.data.log(test, "credit-test")
    return test


def test_assess_records_the_assessment_with_the_version_and_on_a_run_keel_gate_reads(credit: pd.DataFrame, tmp_path) -> None:
    ctx = keel.context.current()
    a = assess("models:/credit/1", "credit-test@1", sensitive=["sex", "race"], y_true="label")
    assert a.run_id is not None and a.worst_group is not None

    model = registry.load("models:/credit/1")
    expected = measure(credit["label"], model.predict(credit[FEATURES]), credit[["sex", "race"]],
                       y_score=model.predict_proba(credit[FEATURES])[:, 1])  # fmt: skip
    assert a.metrics == expected.metrics and a.metrics["auc_min"] > 0.5
    assert (a.model, a.data, a.target, a.rows) == ("models:/credit/1", "credit-test@1", "label", len(credit))

    [stored] = ctx.store.models.assessments("credit", 1)
    assert (stored.kind, stored.run_id, stored.artifact_sha256) == ("fairness", a.run_id, a.report_sha256)
    assert stored.artifact_sha256 is not None
    assert stored.metrics == pytest.approx(a.metrics)
    assert [s["features"] for s in stored.details["sets"]] == [["sex"], ["race"], ["sex", "race"]]
    assert stored.details["worst_group"]["group"] == a.worst_group["group"]
    report = ctx.artifacts.get_bytes(stored.artifact_sha256).decode()
    assert report == a.html(f"fairness of {a.model}") and "DP difference" in report

    run = ctx.store.get_run(a.run_id)
    assert run.status == "finished" and run.tags["model"] == "models:/credit/1" and run.tags["dataset"] == "credit-test@1"
    assert run.metrics["fairness.demographic_parity_difference"].value == pytest.approx(
        a.metrics["demographic_parity_difference"]
    )
    assert run.metrics["fairness.sex.equalized_odds_ratio"].value == pytest.approx(a.metrics["sex.equalized_odds_ratio"])
    experiment = next(e for e in ctx.store.list_experiments() if e.id == run.experiment_id)
    assert experiment.name == "fairness"
    links = ctx.store.datasets.versions_of_run(a.run_id)
    assert [(link.version.ref, link.direction) for link in links] == [("credit-test@1", "input")]

    dp = a.metrics["demographic_parity_difference"]
    passed = keel_cmd(tmp_path, "gate", a.run_id, "--rule", f"fairness.demographic_parity_difference <= {dp + 0.01:.4f}")
    failed = keel_cmd(tmp_path, "gate", a.run_id, "--rule", f"fairness.demographic_parity_difference <= {dp - 0.01:.4f}")
    assert (passed.returncode, failed.returncode) == (0, 1), (passed.stderr, failed.stderr)
    on_version = keel_cmd(
        tmp_path, "gate", "models:/credit/1", "--rule", f"fairness.demographic_parity_difference <= {dp - 0.01:.4f}"
    )
    assert on_version.returncode == 1, on_version.stderr


def test_assess_inside_a_run_logs_on_that_run_and_run_false_on_none(credit: pd.DataFrame) -> None:
    ctx = keel.context.current()
    with keel.start_run(experiment="evaluation") as run:
        a = assess("models:/credit/1", credit, sensitive="sex", y_true="label")
    assert a.run_id == run.id and a.data is None
    logged = ctx.store.get_run(run.id).metrics
    assert logged["fairness.demographic_parity_difference"].value == pytest.approx(a.metrics["demographic_parity_difference"])
    assert not any(e.name == "fairness" for e in ctx.store.list_experiments())  # no run of its own

    b = assess("models:/credit/1", credit, sensitive="sex", y_true=credit["label"].to_numpy(), run=False)
    assert b.run_id is None and b.metrics == a.metrics
    assert [s.run_id for s in ctx.store.models.assessments("credit", 1)] == [run.id, None]


def test_a_model_without_predict_proba_is_assessed_without_auc() -> None:
    df = people(2000, 12)
    registry.register(LinearSVC().fit(df[FEATURES], df["label"]), "svm", input_example=df[FEATURES].head(3))
    a = assess("models:/svm/1", df, sensitive=["sex"], y_true="label", record=False)
    assert "auc" not in a.frame("sex").columns and not any(k.startswith("auc") for k in a.metrics)
    assert a.recorded is None and keel.context.current().store.models.assessments("svm", 1) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sensitive": ["sex", "religion"], "y_true": "label"}, r"sensitive must be a column of the data \(.*\); got .religion"),
        (
            {"sensitive": "sex", "y_true": "outcome"},
            r"target must be a column of the data \(label, race, sex, x1, x2\); got .outcome",
        ),
        ({"sensitive": "sex", "y_true": "x1"}, r"target must be two labels.*2,500 distinct values"),
        ({"sensitive": ["label"], "y_true": "label"}, r"target.*not also a sensitive"),
        ({"sensitive": [], "y_true": "label"}, r"sensitive"),
        ({"sensitive": "sex"}, r"labels are missing"),
        ({"sensitive": "sex", "y_true": "label", "features": ["x1", "income"]}, r"features.*income"),
    ],
)
def test_bad_input_to_assess_is_named_and_records_nothing(credit: pd.DataFrame, kwargs, message) -> None:
    ctx = keel.context.current()
    runs_before = len(ctx.store.search_runs().runs)
    with pytest.raises(InvalidArgument, match=message):
        assess("models:/credit/1", credit, **kwargs)
    assert ctx.store.models.assessments("credit", 1) == []
    assert len(ctx.store.search_runs().runs) == runs_before


# the report ---------------------------------------------------------------------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", "\"'><img src=x onerror=alert(2)>", "</table><svg onload=alert(3)>"]


def test_hostile_group_and_feature_names_are_escaped_in_the_report() -> None:
    rng = np.random.default_rng(4)
    n = 900
    sf = pd.DataFrame({"<b onmouseover=alert(4)>sex": rng.choice(HOSTILE, n), "race": rng.choice(["a", "<i>b</i>"], n)})
    y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    html = measure(y, pred, sf, y_score=rng.random(n)).html()
    for bad in ("<script", "<img", "<svg onload", "<b onmouseover", "<i>b</i>", "</table><svg"):
        assert bad not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b onmouseover=alert(4)&gt;sex" in html
    assert html.count("<svg") == 3 * 5  # a chart per metric per set (two features and their intersection)


def test_a_stored_assessment_with_hostile_values_renders_as_text() -> None:
    details = {
        "model": "<script>m</script>", "data": "<img src=x>", "target": "<u>t</u>", "pos_label": "<p>", "rows": "<x>",
        "sensitive": ["<s>"], "worst_group": {"group": {"<s>": "<script>w</script>"}, "count": "<b>", "accuracy": "<i>"},
        "sets": [{"features": ["<s>"], "groups": [{"group": {"<s>": "<script>g</script>"}, "count": "<c>", "accuracy": "<a>"},
                                                  "not a group"],
                  "overall": "<o>", "difference": {"accuracy": "<d>"}, "demographic_parity_difference": "<dp>"}, "junk"],
        "metrics": {"<k>": "<v>"},
    }  # fmt: skip
    html = fairness_html(details)
    for raw in ("<script>", "<img", "<u>t</u>", "<c>", "<dp>", "<k>", "<v>"):
        assert raw not in html
    assert "&lt;script&gt;g&lt;/script&gt;" in html and "&lt;dp&gt;" in html


def test_to_dict_is_json_and_reads_back_into_the_report() -> None:
    df = people(1500, 5)
    a = measure(df["label"], (df["x1"] > 0).astype(int), df[["sex", "race"]])
    data = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert data["metrics"] == a.metrics and data["sensitive"] == ["sex", "race"]
    assert a.worst_group is not None and data["extremes"]["accuracy"]["min"]["group"] == a.worst_group["group"]
    assert fairness_html(data) == a.html()
    assert isinstance(a, FairnessAssessment)


# the CLI module -------------------------------------------------------------------------------------------------------------


def test_cli_assess_prints_json_and_writes_the_report(credit: pd.DataFrame, tmp_path) -> None:
    from typer.testing import CliRunner

    from keel.cli.fairness import app

    out = tmp_path / "fair.html"
    args = ["assess", "models:/credit/1", "--data", "credit-test@1", "--sensitive", "sex", "--sensitive", "race",
            "--target", "label", "--html", str(out), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sensitive"] == ["sex", "race"] and data["data"] == "credit-test@1"
    assert data["metrics"]["demographic_parity_difference"] > 0.1
    assert "By sex &amp; race" in out.read_text()
    [stored] = keel.context.current().store.models.assessments("credit", 1)
    assert stored.run_id == data["run_id"]

    (tmp_path / "mine.html").write_text("<p>my notes</p>")
    refused = CliRunner().invoke(app, [*args[:-3], "--html", str(tmp_path / "mine.html")])
    assert isinstance(refused.exception, InvalidArgument) and "--html" in str(refused.exception)
    assert (tmp_path / "mine.html").read_text() == "<p>my notes</p>"
    table = CliRunner().invoke(app, [*args[:-3], "--no-record"])
    assert table.exit_code == 0 and "sex & race" in table.stdout and "worst group by accuracy" in table.stdout
    assert len(keel.context.current().store.models.assessments("credit", 1)) == 1


# every store ---------------------------------------------------------------------------------------------------------------


def test_recorded_on_every_store_and_read_by_a_promotion_gate(store_uri: str, tmp_path) -> None:
    from keel.context import Context
    from keel.core.errors import PromotionRefused

    ctx = Context(store_uri, str(tmp_path / "artifacts"))  # an http store uses the server's artifacts instead
    name = f"fair{uuid.uuid4().hex[:8]}"  # the REST server is shared by the whole session
    train, test = people(1500, 20), people(1200, 21)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    registry.register(model, name, input_example=train[FEATURES].head(3), ctx=ctx)
    keel.data.log(test, f"{name}-test", ctx=ctx)

    a = assess(f"models:/{name}/1", f"{name}-test@1", sensitive=["sex", "race"], y_true="label", ctx=ctx)
    assert a.run_id is not None
    expected = measure(test["label"], model.predict(test[FEATURES]), test[["sex", "race"]],
                       y_score=model.predict_proba(test[FEATURES])[:, 1])  # fmt: skip
    assert a.metrics == expected.metrics
    [stored] = ctx.store.models.assessments(name, 1, kind="fairness")
    assert stored.metrics == pytest.approx(a.metrics) and stored.run_id == a.run_id and stored.artifact_sha256 is not None
    assert stored.details["sets"] == json.loads(json.dumps(a.to_dict()["sets"]))  # the per-group tables, as JSON
    assert ctx.artifacts.get_bytes(stored.artifact_sha256) == a.html(f"fairness of {a.model}").encode()
    run = ctx.store.get_run(a.run_id)
    assert run.status == "finished" and run.metrics["fairness.groups"].value == 6

    dp = a.metrics["demographic_parity_difference"]
    with pytest.raises(PromotionRefused, match=r"fairness\.demographic_parity_difference"):
        registry.promote(name, 1, "production", rules=[f"fairness.demographic_parity_difference <= {dp - 0.01}"], ctx=ctx)
    change = registry.promote(name, 1, "production", rules=[f"fairness.demographic_parity_difference <= {dp + 0.01}"], ctx=ctx)
    assert change.to_version == 1 and change.gated
