"""``compare_frame`` on synthetic prediction logs whose agreement, metrics and differences are known."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from keel.core.errors import InvalidArgument
from keel.serve.comparison import Comparison, compare_frame

PRIMARY, SHADOW, CANARY = "models:/churn/1", "models:/churn/2", "models:/churn/3"


def _row(rid: str, route: str, model: str, output: Any, *, label: Any = None, proba: Any = None, latency: float = 1.0,
         row: int = 0, t: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "request_id": rid, "row": row, "time": 1_700_000_000_000 + t, "deployment": "churn", "route": route, "model": model,
        "served": route != "shadow", "inputs": {"x": 1}, "output": output, "proba": proba, "latency_ms": latency,
        "replica": "r1", "label": label,
    }  # fmt: skip


def _correct(n: int, k: int, seed: int) -> np.ndarray:
    """n booleans, exactly k of them true, spread over the rows."""
    out = np.zeros(n, dtype=bool)
    out[np.random.default_rng(seed).permutation(n)[:k]] = True
    return out


def _shadowed(n: int, primary_right: int, shadow_right: int, *, labeled: bool = True) -> pd.DataFrame:
    """A binary classifier and its shadow on the same n requests: each right on exactly the given number of rows."""
    labels = np.random.default_rng(7).integers(0, 2, n)
    p_ok, s_ok = _correct(n, primary_right, seed=1), _correct(n, shadow_right, seed=2)  # errors on different rows
    rows = []
    for i in range(n):
        y = int(labels[i])
        for route, model, ok in (("primary", PRIMARY, p_ok[i]), ("shadow", SHADOW, s_ok[i])):
            rows.append(_row(f"r{i}", route, model, y if ok else 1 - y, label=y if labeled else None, t=i))
    return pd.DataFrame(rows)


def _challenger(c: Comparison, model: str) -> Any:
    return next(ch for ch in c.challengers if ch.model == model)


def test_agreement_rate_is_the_share_of_equal_labels_on_the_same_rows() -> None:
    rows = []
    for i in range(200):
        rows.append(_row(f"r{i}", "primary", PRIMARY, "yes" if i % 2 else "no"))
        shadow_out = ("yes" if i % 2 else "no") if i >= 30 else ("no" if i % 2 else "yes")  # the first 30 disagree
        rows.append(_row(f"r{i}", "shadow", SHADOW, shadow_out))
    rows.append(_row("only-shadow", "shadow", SHADOW, "yes"))  # no primary row to pair with: not counted
    c = compare_frame(pd.DataFrame(rows))
    ch = _challenger(c, SHADOW)
    assert c.task == "classification" and c.reference == PRIMARY
    assert ch.paired and ch.agreement is not None
    assert ch.agreement.pairs == 200 and ch.agreement.rate == pytest.approx(170 / 200)
    assert ch.verdict.startswith("no labels yet")


def test_regression_agreement_is_the_size_of_differences_and_their_correlation() -> None:
    xs = np.linspace(0.0, 10.0, 100)
    rows = [_row(f"r{i}", "primary", PRIMARY, float(x)) for i, x in enumerate(xs)]
    rows += [_row(f"r{i}", "shadow", SHADOW, float(x) + (0.5 if i % 2 else -0.5)) for i, x in enumerate(xs)]
    c = compare_frame(pd.DataFrame(rows))
    a = _challenger(c, SHADOW).agreement
    assert c.task == "regression"
    assert a.pairs == 100 and a.rate is None
    assert a.mean_abs_diff == pytest.approx(0.5) and a.max_abs_diff == pytest.approx(0.5)
    assert a.correlation == pytest.approx(np.corrcoef(xs, xs + np.where(np.arange(100) % 2, 0.5, -0.5))[0, 1])


def test_metrics_match_scikit_learn_on_each_models_labeled_rows() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p1 = np.round(np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.25, 300), 0.01, 0.99), 2)  # ties
    p2 = np.clip(0.5 + (y - 0.5) * 0.2 + rng.normal(0, 0.25, 300), 0.01, 0.99)  # log loss conventions differ at 0 and 1
    rows = []
    for i in range(300):
        lab = "churned" if y[i] else "stayed"
        for route, model, p in (("primary", PRIMARY, p1[i]), ("shadow", SHADOW, p2[i])):
            rows.append(_row(f"r{i}", route, model, "churned" if p >= 0.5 else "stayed", proba=[1 - p, p], label=lab))
    c = compare_frame(pd.DataFrame(rows))
    for model, p in ((PRIMARY, p1), (SHADOW, p2)):
        m = next(s for s in c.models if s.model == model).metrics
        assert m["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y == 1)))
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert m["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-12)
    names = [d.metric for d in _challenger(c, SHADOW).metrics]
    assert names == ["accuracy", "roc_auc", "log_loss"]


def test_a_clearly_worse_shadow_is_called_worse_with_a_ci_covering_the_true_difference() -> None:
    c = compare_frame(_shadowed(1000, primary_right=900, shadow_right=700))
    ch = _challenger(c, SHADOW)
    acc = ch.metrics[0]
    assert acc.metric == "accuracy" and acc.reference == pytest.approx(0.9) and acc.challenger == pytest.approx(0.7)
    assert acc.difference == pytest.approx(-0.2)
    assert acc.low is not None and acc.high is not None
    assert acc.low < -0.2 < acc.high < 0 and acc.high - acc.low < 0.12
    assert acc.verdict == "worse" and acc.n == 1000
    assert ch.verdict.startswith(f"challenger worse than {PRIMARY} on accuracy at 95% (-0.200, CI [")


def test_the_verdict_flips_for_a_better_and_an_equal_challenger() -> None:
    better = _challenger(compare_frame(_shadowed(1000, primary_right=700, shadow_right=900)), SHADOW)
    assert better.metrics[0].verdict == "better" and better.verdict.startswith("challenger better")
    same = _challenger(compare_frame(_shadowed(1000, primary_right=800, shadow_right=800)), SHADOW)
    assert same.metrics[0].difference == pytest.approx(0.0) and same.agreement.rate < 1
    assert same.metrics[0].low < 0 < same.metrics[0].high
    assert same.metrics[0].verdict == "no significant difference"
    assert same.verdict.startswith(f"no significant difference from {PRIMARY} on accuracy")


def test_lower_is_better_for_regression_errors() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(0, 1, 400)
    rows = []
    for i in range(400):
        rows.append(_row(f"r{i}", "primary", PRIMARY, float(y[i] + rng.normal(0, 1.0)), label=float(y[i])))
        rows.append(_row(f"r{i}", "shadow", SHADOW, float(y[i] + rng.normal(0, 0.1)), label=float(y[i])))
    ch = _challenger(compare_frame(pd.DataFrame(rows)), SHADOW)
    assert [d.metric for d in ch.metrics] == ["mae", "rmse"]
    assert all(d.difference is not None and d.difference < 0 and d.verdict == "better" for d in ch.metrics)


def test_a_canary_is_compared_unpaired_with_its_own_share_of_traffic() -> None:
    rows = []
    for i in range(800):  # 80% of requests on the primary, right on 720 of them (90%)
        rows.append(_row(f"p{i}", "primary", PRIMARY, 1, label=1 if i < 720 else 0, latency=float(i % 10)))
    for i in range(200):  # 20% on the canary, right on 100 of them (50%)
        rows.append(_row(f"c{i}", "canary", CANARY, 1, label=1 if i < 100 else 0, latency=100.0))
    c = compare_frame(pd.DataFrame(rows))
    by_model = {m.model: m for m in c.models}
    assert by_model[PRIMARY].share == pytest.approx(0.8) and by_model[CANARY].share == pytest.approx(0.2)
    assert by_model[PRIMARY].latency_ms.p50 == pytest.approx(4.5) and by_model[CANARY].latency_ms.p99 == pytest.approx(100.0)
    ch = _challenger(c, CANARY)
    assert not ch.paired and ch.agreement is None
    acc = ch.metrics[0]
    assert acc.n == 200 and acc.n_reference == 800 and acc.difference == pytest.approx(-0.4)
    assert acc.low is not None and acc.high is not None and acc.low < -0.4 < acc.high < 0 and acc.verdict == "worse"


def test_latency_counts_one_model_call_per_request_not_per_row() -> None:
    rows = [_row("big", "primary", PRIMARY, 1, row=r, latency=50.0) for r in range(99)]
    rows += [_row(f"s{i}", "primary", PRIMARY, 1, latency=1.0) for i in range(3)]
    m = compare_frame(pd.DataFrame(rows)).models[0]
    assert m.rows == 102 and m.requests == 4 and m.latency_ms.calls == 4 and m.latency_ms.p50 == pytest.approx(1.0)


def test_output_drift_uses_keels_drift_test_and_sees_a_shifted_shadow() -> None:
    rows = []
    for i in range(400):
        rows.append(_row(f"r{i}", "primary", PRIMARY, "a" if i % 2 else "b"))
        rows.append(_row(f"r{i}", "shadow", SHADOW, "a" if i % 10 else "b"))  # 90% "a" against 50%
        rows.append(_row(f"r{i}", "shadow", "models:/churn/4", "a" if i % 2 else "b"))  # the same outputs
    c = compare_frame(pd.DataFrame(rows))
    shifted, same = _challenger(c, SHADOW).drift[0], _challenger(c, "models:/churn/4").drift[0]
    assert shifted.column == "output" and shifted.test == "chi2" and shifted.drifted and shifted.p_value is not None
    assert shifted.p_value < 1e-10
    assert not same.drifted and same.p_value == pytest.approx(1.0)
    dist = {m.model: m.distributions["output"] for m in c.models}
    assert dist[SHADOW].bins == dist[PRIMARY].bins and dict(zip(dist[SHADOW].bins, dist[SHADOW].shares, strict=True))["a"] == 0.9


def test_too_little_data_says_how_much_there_is_and_how_much_is_needed() -> None:
    c = compare_frame(_shadowed(12, primary_right=10, shadow_right=2))
    ch = _challenger(c, SHADOW)
    assert ch.drift == () and ch.drift_note == "too little data for a drift test: 12 vs 12 rows, need 30 each"
    assert ch.metrics[0].verdict == "too little data" and ch.metrics[0].low is None
    assert ch.verdict == "too little labeled data to judge: n=12, need 30"


def test_the_comparison_is_reproducible_and_json_able() -> None:
    frame = _shadowed(300, primary_right=250, shadow_right=230)
    first, second = compare_frame(frame).to_dict(), compare_frame(frame).to_dict()
    assert first == second
    text = json.dumps(first, allow_nan=False)
    assert json.loads(text)["challengers"][0]["metrics"][0]["metric"] == "accuracy"


def test_an_unknown_reference_is_refused_and_a_named_one_is_used() -> None:
    frame = pd.concat([_shadowed(50, 40, 40), pd.DataFrame([_row("x", "primary", "models:/churn/9", 1, t=99)])])
    with pytest.raises(InvalidArgument, match="reference"):
        compare_frame(frame, reference="models:/nope/1")
    c = compare_frame(frame, reference="models:/churn/9")
    assert c.reference == "models:/churn/9" and {ch.model for ch in c.challengers} == {PRIMARY, SHADOW}
    assert compare_frame(frame).reference == PRIMARY  # the primary with most rows by default


def test_an_empty_frame_compares_to_nothing() -> None:
    c = compare_frame(pd.DataFrame(columns=list(_row("r", "primary", PRIMARY, 1))), deployment="churn")
    assert c.rows == 0 and c.models == () and c.challengers == () and c.reference is None and c.deployment == "churn"


def test_the_html_report_is_offline_and_escapes_what_the_log_holds() -> None:
    hostile = "models:/<script>alert(1)</script>/1"
    frame = _shadowed(100, 90, 60)
    frame.loc[frame["route"] == "shadow", "model"] = hostile
    html = compare_frame(frame).to_html()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    for section in ("Models", "Shadows and canaries", "Latency", "Output distributions", "Metrics on labeled rows"):
        assert f"<h2>{section}</h2>" in html
    assert "<svg" in html and "95% CI" in html and "worse" in html


def test_pairing_a_shadow_with_the_primary_row_by_row_sees_a_small_difference_two_samples_cannot() -> None:
    rows = []
    for i in range(1000):  # the primary is right on 800 rows; the shadow on the same rows but 25 of them
        y, right = i % 2, i % 5 != 0
        shadow_right = right and i % 33 != 1
        rows.append(_row(f"r{i}", "primary", PRIMARY, y if right else 1 - y, label=y))
        rows.append(_row(f"r{i}", "shadow", SHADOW, y if shadow_right else 1 - y, label=y))
    frame = pd.DataFrame(rows)
    paired = _challenger(compare_frame(frame), SHADOW).metrics[0]
    frame["route"] = frame["route"].replace("shadow", "canary")  # the same rows as two independent samples
    unpaired = _challenger(compare_frame(frame), SHADOW).metrics[0]
    assert paired.difference == pytest.approx(-0.025) and unpaired.difference == pytest.approx(-0.025)
    assert paired.verdict == "worse" and unpaired.verdict == "no significant difference"
    assert (paired.high - paired.low) < (unpaired.high - unpaired.low) / 2


def _clustered(seed: int, requests: int, rows_per_request: int):
    """Two equally good models (each right on 70% of requests); the rows of one request share input and outcome."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    out = []
    for r in range(requests):
        y = int(rng.integers(0, 2))
        right = {"primary": rng.random() < 0.7, "shadow": rng.random() < 0.7}
        for i in range(rows_per_request):
            for route, model in (("primary", "models:/c/1"), ("shadow", "models:/c/2")):
                out.append({"request_id": f"q{r}", "row": i, "time": 1, "deployment": "d", "route": route, "model": model,
                            "served": route == "primary", "inputs": None, "output": y if right[route] else 1 - y,
                            "proba": None, "latency_ms": 1.0, "replica": "x", "label": y})  # fmt: skip
    return pd.DataFrame(out)


def test_requests_not_rows_are_the_unit_of_the_confidence_interval() -> None:
    # 40 requests of 10 rows are 40 pieces of evidence, not 400: resampling rows called equal models different in
    # about half of such logs; resampling requests keeps the false verdicts near the 5% a 95% interval allows
    verdicts = [compare_frame(_clustered(seed, 40, 10)).challengers[0].metrics[0].verdict for seed in range(40)]
    assert sum(v in ("better", "worse") for v in verdicts) <= 5, verdicts
