"""Differentially private training paid from a dataset version's budget: the spend comes before training, a run past
the budget trains nothing, spends add up (basic sequential composition), accuracy falls with epsilon, the model
version carries the spend, and ``keel privacy`` as a user runs it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel
import keel.data
import keel.privacy
import keel.registry
from keel.context import Context
from keel.core.errors import BudgetExceeded, InvalidArgument, NotFound
from keel.privacy import learners
from keel.testing.cli import keel_env


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def _bounds(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Known ranges of the features (here the set's own: what a data owner would publish for it)."""
    return {c: (float(frame[c].min()), float(frame[c].max())) for c in frame.columns if c != "target"}


def _runs() -> int:
    return len(keel.search_runs(output="list"))


def _run(run_id: str) -> Any:
    return keel.context.current().store.get_run(run_id)


def _versions(ctx: Context, name: str) -> int:
    try:
        return len(ctx.store.models.list_versions(name))
    except NotFound:
        return 0


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The logistic learner, wrapped to count its calls and to note what the store held when training began."""
    seen: dict[str, Any] = {"calls": 0, "spends_at_fit": []}
    real = learners.LEARNERS["logistic_regression"]

    def fit(*args: Any, **kwargs: Any) -> Any:
        seen["calls"] += 1
        ctx = keel.context.current()
        seen["spends_at_fit"].append([(s.epsilon, s.run_id) for s in ctx.store.privacy.spends(seen["ref"])])
        return real.fit(*args, **kwargs)

    monkeypatch.setitem(learners.LEARNERS, "logistic_regression", learners.Learner(fit, real.mechanism, real.params))
    return seen


def test_the_spend_is_recorded_before_training_and_the_version_carries_it(cancer, counting) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    counting["ref"] = v.ref
    keel.privacy.set_budget("cancer", 3.0)
    r = keel.privacy.train("cancer", target="target", epsilon=1.25, bounds=_bounds(cancer), seed=1)
    assert counting["calls"] == 1
    assert counting["spends_at_fit"] == [[(1.25, r.run_id)]]  # the store held this run's spend when fit started
    assert r.spend.dataset == "cancer@1" and r.spend.run_id == r.run_id and r.spend.mechanism.startswith("objective")
    assert r.budget.spent_epsilon == 1.25 and r.budget.left == (1.75, 0.0)
    # the version: metrics, lineage (source run, training data) and a description naming the budget
    version = r.version
    assert version.metrics["privacy.epsilon"] == 1.25 and version.metrics["privacy.delta"] == 0.0
    assert version.source_run == r.run_id and version.datasets == ("cancer@1",)
    assert "Spent epsilon=1.25, delta=0 of the dataset's privacy budget (epsilon=3, delta=0;" in version.description
    run = _run(r.run_id)
    assert run.params["privacy.epsilon"] == "1.25" and run.params["privacy.mechanism"] == r.mechanism
    assert run.params["privacy.composition"].startswith("basic sequential composition")
    assert run.params["privacy.bounds_source"] == "given: 30 columns" and run.status.value == "finished"
    assert 0 < run.metrics["accuracy"].value <= 1 and run.metrics["test_rows"].value == 142
    lineage = keel.data.lineage("cancer@1")
    assert (r.run_id, "input") in [(x[0], x[1]) for x in lineage["runs"]]
    card = keel.registry.card_markdown(version.name, version.version)
    assert "- privacy.epsilon: 1.25" in card and "- privacy.mechanism: objective-perturbation" in card


def test_a_training_past_the_budget_is_refused_and_leaves_no_run_no_version_no_spend(cancer, counting) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    counting["ref"] = v.ref
    keel.privacy.set_budget(v.ref, 1.0)
    ctx = keel.context.current()
    keel.privacy.train(v.ref, target="target", epsilon=0.75, bounds=_bounds(cancer), seed=0, name="capped")
    runs, versions = _runs(), _versions(ctx, "capped")
    with pytest.raises(BudgetExceeded, match=r"budget epsilon=1, delta=0; spent epsilon=0.75, delta=0; asked epsilon=0.5"):
        keel.privacy.train(v.ref, target="target", epsilon=0.5, bounds=_bounds(cancer), seed=0, name="capped")
    assert counting["calls"] == 1 and _runs() == runs == 1 and _versions(ctx, "capped") == versions == 1
    assert [s.epsilon for s in keel.privacy.spends(v.ref)] == [0.75]
    # the store refuses on its own too (two runs racing past the early check)
    from keel.core.privacy import PrivacySpend

    with pytest.raises(BudgetExceeded):
        ctx.store.privacy.spend(PrivacySpend(dataset=v.ref, epsilon=0.5, delta=0.0, mechanism="m"))


def test_no_budget_bad_bounds_and_a_delta_are_refused_before_anything_is_spent(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    with pytest.raises(NotFound, match="no privacy budget"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds="data")
    keel.privacy.set_budget(v.ref, 5.0)
    with pytest.raises(InvalidArgument, match="no bounds for mean radius"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0)
    with pytest.raises(InvalidArgument, match="delta"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, delta=1e-6, bounds="data")
    with pytest.raises(InvalidArgument, match="model"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, model="svm", bounds="data")
    with pytest.raises(InvalidArgument, match="params"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds="data", alpha=3)
    with pytest.raises(InvalidArgument, match="low < high"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds={**_bounds(cancer), "mean radius": (5, 1)})
    with pytest.raises(InvalidArgument, match="target"):
        keel.privacy.train(v.ref, target="nope", epsilon=1.0, bounds="data")
    assert keel.privacy.spends(v.ref) == [] and _runs() == 0


def test_spends_add_up_by_sequential_composition_until_the_budget_is_gone(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    keel.privacy.set_budget(v.ref, 1.0)
    ids = [
        keel.privacy.train(v.ref, target="target", epsilon=e, bounds="data", seed=i).run_id
        for i, e in enumerate((0.25, 0.25, 0.5))
    ]
    status = keel.privacy.status(v.ref)
    assert status["spent"] == {"epsilon": 1.0, "delta": 0.0} and status["left"] == {"epsilon": 0.0, "delta": 0.0}
    assert [(s["epsilon"], s["run_id"]) for s in status["spends"]] == [(0.25, ids[0]), (0.25, ids[1]), (0.5, ids[2])]
    assert all(s["mechanism"].startswith("objective-perturbation") for s in status["spends"])
    with pytest.raises(BudgetExceeded):
        keel.privacy.train(v.ref, target="target", epsilon=0.01, bounds="data")
    # data bounds are said to be so on the run
    assert _run(ids[0]).params["privacy.bounds_source"] == "data (not private: read from the rows): 30 columns"
    with pytest.raises(InvalidArgument):  # a budget below what is spent
        keel.privacy.set_budget(v.ref, 0.5)
    assert keel.privacy.set_budget(v.ref, 2.0).left == (1.0, 0.0)


def _mean_accuracy(ref: str, epsilon: float, bounds: dict[str, tuple[float, float]], model: str = "logistic_regression") -> float:
    runs = [keel.privacy.train(ref, target="target", epsilon=epsilon, bounds=bounds, seed=s, model=model) for s in range(4)]
    return float(np.mean([r.metrics["accuracy"] for r in runs]))


@pytest.mark.slow
def test_accuracy_is_reasonable_at_epsilon_10_and_falls_at_0_1(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    keel.privacy.set_budget(v.ref, 100.0)
    bounds = _bounds(cancer)
    high, low = _mean_accuracy(v.ref, 10.0, bounds), _mean_accuracy(v.ref, 0.1, bounds)
    x, y = cancer.drop(columns="target"), cancer["target"]
    plain = LogisticRegression(max_iter=5000).fit(x.iloc[:400], y.iloc[:400]).score(x.iloc[400:], y.iloc[400:])
    assert high >= 0.85 and plain >= 0.9, (high, plain)
    assert low <= 0.75 and high - low >= 0.15, (high, low)
    nb_high = _mean_accuracy(v.ref, 10.0, bounds, model="gaussian_nb")
    assert nb_high >= 0.75, nb_high
    assert math.isclose(keel.privacy.budget(v.ref).spent_epsilon, 4 * 10 + 4 * 0.1 + 4 * 10)  # type: ignore[union-attr]


def test_the_registered_model_loads_back_and_predicts_like_the_trained_one(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    keel.privacy.set_budget(v.ref, 20.0)
    x = cancer.drop(columns="target").head(50)
    for model in ("logistic_regression", "gaussian_nb"):
        r = keel.privacy.train(v.ref, target="target", epsilon=5.0, bounds=_bounds(cancer), seed=3, model=model)
        assert r.version.signature["format"] == "skops"  # plain scikit-learn estimators: no pickle
        loaded = keel.registry.load(r.version.uri)
        assert (loaded.predict(x) == r.model.predict(x)).all()
        # the bounds clip: far out-of-range inputs predict like the bounds themselves
        far = x.head(1) * 1000
        edge = pd.DataFrame([[hi for _, hi in _bounds(cancer).values()]], columns=x.columns)
        assert (r.model.predict(far) == r.model.predict(edge)).all()


def test_a_seed_fixes_the_noise_and_none_leaves_it_unpredictable(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    keel.privacy.set_budget(v.ref, 10.0)
    a, b, c = (keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds="data", seed=s) for s in (7, 7, None))
    assert np.array_equal(a.model[-1].coef_, b.model[-1].coef_)
    assert not np.array_equal(a.model[-1].coef_, c.model[-1].coef_)
    seeded, fresh = _run(a.run_id).params, _run(c.run_id).params
    assert "seed" not in seeded and seeded["privacy.noise"] == "seeded: reproducible, NOT private"  # never the value
    assert fresh["privacy.noise"] == "fresh from the OS"


def test_objective_perturbation_that_does_not_converge_releases_nothing(cancer) -> None:  # type: ignore[no-untyped-def]
    v = keel.data.log(cancer, "cancer")
    keel.privacy.set_budget(v.ref, 10.0)
    ctx = keel.context.current()
    before = _versions(ctx, "cancer-dp")
    with pytest.raises(InvalidArgument, match="max_iter must be enough iterations for objective perturbation to converge"):
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds=_bounds(cancer), max_iter=1)
    assert _versions(ctx, "cancer-dp") == before  # the guarantee is for the minimiser: a point short of it is not released


def test_objective_perturbation_noise_has_the_stated_norm_distribution() -> None:
    """||b|| ~ Gamma(d, 2 / epsilon'): its mean is 2d / epsilon' (the scale of Algorithm 2)."""
    rng = np.random.default_rng(0)
    norms = [np.linalg.norm(learners._noise_vector(rng, 8, 0.5)) for _ in range(4000)]
    assert abs(np.mean(norms) - 2 * 8 / 0.5) < 0.03 * 32


def _privacy_cmd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``keel privacy ...`` through keel's entry point (registered here if the CLI does not have it yet)."""
    code = (
        "import sys; from keel.cli import main as m, privacy; "
        "'privacy' in {g.name for g in m.app.registered_groups} or m.app.add_typer(privacy.app, name='privacy'); "
        "sys.exit(m.main())"
    )
    return subprocess.run([sys.executable, "-c", code, "privacy", *args], cwd=cwd, capture_output=True, text=True,
                          env=keel_env(cwd), timeout=300)  # fmt: skip


def test_the_cli_sets_a_budget_trains_and_shows_the_spends(cancer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".keel").mkdir()
    ctx = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    keel.data.log(cancer.head(300), "cancer", run=False, ctx=ctx)
    ctx.close()
    assert _privacy_cmd(tmp_path, "budget", "cancer@1", "--epsilon", "2").returncode == 0
    bounds = [a for c, (lo, hi) in _bounds(cancer).items() for a in ("--bounds", f"{c}={lo}:{hi}")]
    trained = _privacy_cmd(tmp_path, "train", "cancer@1", "--target", "target", "--epsilon", "0.5", "--seed", "1",
                           "--param", "C=50", *bounds)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "registered models:/cancer-dp/1" in trained.stdout and "left epsilon 1.5, delta 0" in trained.stdout
    shown = _privacy_cmd(tmp_path, "status", "cancer@1")
    assert shown.returncode == 0 and "spent epsilon 0.5, delta 0; left epsilon 1.5, delta 0" in shown.stdout
    assert "objective-perturbation" in shown.stdout
    data = json.loads(_privacy_cmd(tmp_path, "status", "cancer@1", "--json").stdout)
    assert data["budget"] == {"epsilon": 2.0, "delta": 0.0} and len(data["spends"]) == 1 and data["spends"][0]["run_id"]
    refused = _privacy_cmd(tmp_path, "train", "cancer@1", "--target", "target", "--epsilon", "5", "--bounds-from-data")
    assert refused.returncode == 2 and refused.stderr.startswith("keel: error: privacy budget of cancer@1 exceeded")
    assert len(refused.stderr.strip().splitlines()) == 1
    bad = _privacy_cmd(tmp_path, "train", "cancer@1", "--target", "target", "--epsilon", "1", "--bounds", "x=1")
    assert bad.returncode == 2 and "COLUMN=LOW:HIGH" in bad.stderr


def test_the_privacy_store_flow_on_every_backend(store_uri: str, tmp_path: Path, cancer) -> None:  # type: ignore[no-untyped-def]
    ctx = Context(store_uri, str(tmp_path / "artifacts"))
    try:
        name = f"c{np.random.default_rng().integers(1 << 30)}"
        v = keel.data.log(cancer.head(200), name, run=False, ctx=ctx)
        keel.privacy.set_budget(v.ref, 1.0, ctx=ctx)
        r = keel.privacy.train(v.ref, target="target", epsilon=0.6, bounds="data", seed=0, ctx=ctx, model="gaussian_nb")
        assert r.version.metrics["privacy.epsilon"] == 0.6 and ctx.store.get_run(r.run_id).status.value == "finished"
        with pytest.raises(BudgetExceeded):
            keel.privacy.train(v.ref, target="target", epsilon=0.6, bounds="data", ctx=ctx, name=f"{name}-x")
        assert [s.run_id for s in keel.privacy.spends(v.ref, ctx=ctx)] == [r.run_id]
        assert _versions(ctx, f"{name}-x") == 0
    finally:
        ctx.close()


def test_with_negligible_noise_the_learners_are_scikit_learns_own(cancer) -> None:  # type: ignore[no-untyped-def]
    """At epsilon 1e6 the noise vanishes: the weights are scikit-learn's on the same scaled rows and regulariser, and
    the naive Bayes statistics are GaussianNB's (population variance, no smoothing)."""
    from sklearn.naive_bayes import GaussianNB

    x, y = cancer.drop(columns="target").to_numpy(), cancer["target"].to_numpy()
    lo, hi = x.min(axis=0), x.max(axis=0)
    features = [f"f{i}" for i in range(x.shape[1])]
    rng = np.random.default_rng(0)
    dp = learners.logistic_regression(x, y, classes=[0, 1], lo=lo, hi=hi, features=features, epsilon=1e6, rng=rng, C=100.0)
    z = learners.unit(x, lo, hi)
    z1 = np.hstack([z, np.ones((len(z), 1))]) / np.sqrt(z.shape[1] + 1)
    # ours: mean loss + (1/C)/2 ||w||^2; scikit-learn's: C' * summed loss + 1/2 ||w||^2, so C' = C / n
    ref = LogisticRegression(C=100.0 / len(z), fit_intercept=False, tol=1e-10, max_iter=10_000).fit(z1, y)
    w = ref.coef_[0] / np.sqrt(z.shape[1] + 1)
    clf = dp.model[-1]
    assert np.allclose(clf.coef_[0], w[:-1], atol=2e-3) and np.isclose(clf.intercept_[0], w[-1], atol=2e-3)
    nb = learners.gaussian_nb(x, y, classes=[0, 1], lo=lo, hi=hi, features=features, epsilon=1e6, rng=rng, min_var=1e-9)
    ref_nb = GaussianNB(var_smoothing=0.0).fit(z, y)
    assert np.allclose(nb.model[-1].theta_, ref_nb.theta_, atol=1e-3)
    assert np.allclose(nb.model[-1].var_, ref_nb.var_, atol=1e-3)
    assert np.allclose(nb.model[-1].class_prior_, ref_nb.class_prior_, atol=1e-3)


def test_three_classes_split_epsilon_over_one_vs_rest_models() -> None:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    v = keel.data.log(iris, "iris")
    keel.privacy.set_budget(v.ref, 900.0)
    bounds = {c: (0.0, 8.0) for c in iris.columns if c != "target"}
    r = keel.privacy.train(v.ref, target="target", epsilon=300.0, bounds=bounds, seed=0)
    assert list(r.model[-1].classes_) == [0, 1, 2] and r.model[-1].coef_.shape == (3, 4)
    assert r.metrics["accuracy"] >= 0.8 and "roc_auc" not in r.metrics
    assert _run(r.run_id).params["privacy.epsilon_per_model"] == "100.0"
    assert r.spend.epsilon == 300.0  # the whole epsilon is spent once: the three models share it
