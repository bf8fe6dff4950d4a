"""The quickstart's fairness and privacy chapter, on the breast-cancer data and three hospital sites.

The data has no demographics, so the chapter adds two it can be honest about: the ``site`` each sample came from
(three hospitals, assigned by a seeded draw) and a synthetic ``age_band`` whose malignancy rate differs, as it does
with age. Then:

- fairness: production's per-group metrics by age band (fairlearn's MetricFrame), recorded with the version, a
  promotion-style gate on ``fairness.equalized_odds_difference``, and a mitigation (threshold optimizer for
  equalized odds) registered as ``breast-cancer-fair`` with a before/after table;
- differential privacy: the data gets a privacy budget; two DP logistic regressions spend it; a third is refused
  before it trains (basic sequential composition);
- federated learning: each site keeps its rows in its own dataset version and trains in its own process; only model
  parameters travel; the coordinator averages them over rounds (FedAvg) and the result is compared with training on
  all rows at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.cli.output import console, esc, fmt_num
from keel.core.errors import BudgetExceeded

SITES = ("north", "south", "east")
SENSITIVE = "age_band"
BUDGET = 2.0  # epsilon for the whole dataset version
GATE = "fairness.equalized_odds_difference <= 0.2"


def with_groups(frame: Any) -> Any:
    """``frame`` with a ``site`` and a synthetic ``age_band`` (older bands more often malignant), seeded."""
    import numpy as np

    rng = np.random.default_rng(7)
    out = frame.copy()
    malignant = out["target"].to_numpy() == 0
    older = rng.random(len(out)) < np.where(malignant, 0.7, 0.35)
    out[SENSITIVE] = np.where(older, "50+", "under 50")
    out["site"] = rng.choice(SITES, len(out))
    return out


def fairness_and_privacy(frame: Any, dataset_ref: str, home: Path) -> Path:
    """Run the chapter; returns the fairness report (HTML)."""
    data = with_groups(frame)
    report, central = _fairness(data, home)
    _privacy(dataset_ref)
    _federated(data, dataset_ref, central)
    return report


def _fairness(data: Any, home: Path) -> tuple[Path, float]:
    import keel.data
    import keel.fairness
    from keel.evaluation import gate

    test = keel.data.get("breast-cancer-test", run=False)
    test = test.join(data[[SENSITIVE]], how="left")  # the test rows keep their index: the same samples' bands
    assessed = keel.fairness.assess("models:/breast-cancer@production", test, sensitive=SENSITIVE, y_true="target",
                                    name="production-by-age")  # fmt: skip
    m = assessed.metrics
    console.print(
        f"fairness of production by age band (synthetic) on the test split: equalized odds difference "
        f"{fmt_num(m['equalized_odds_difference'])}, demographic parity difference {fmt_num(m['demographic_parity_difference'])} "
        f"(malignancy is more frequent in the older band, so selection rates differ by design); recorded with the version"
    )
    verdict = gate("models:/breast-cancer@production", [GATE])
    console.print(f"gate {esc(GATE)} on production: " + ("[green]pass[/]" if verdict.passed else "[red]FAIL[/]"))
    train = data.drop(index=test.index).drop(columns=["site"])  # the thresholds are fitted on rows the test never saw
    fair = keel.fairness.mitigate(
        "models:/breast-cancer@production", test, sensitive=SENSITIVE, y_true="target", method="threshold_optimizer",
        constraint="equalized_odds", name="breast-cancer-fair", train_data=train,
    )  # fmt: skip
    before, after = fair.before, fair.after
    console.print(
        f"mitigated (threshold optimizer, equalized odds) -> {esc(fair.version.uri)}: equalized odds difference "
        f"{fmt_num(before['equalized_odds_difference'])} -> {fmt_num(after['equalized_odds_difference'])}, accuracy "
        f"{fmt_num(before['accuracy'])} -> {fmt_num(after['accuracy'])}"
    )
    path = home / "reports" / "fairness.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(keel.fairness.fairness_html(assessed.to_dict()), encoding="utf-8")
    console.print(f"per-group metrics and disparities: [bold]{esc(path)}[/]")
    return path, before["accuracy"]


def _privacy(dataset_ref: str) -> None:
    import keel.privacy

    keel.privacy.set_budget(dataset_ref, epsilon=BUDGET)
    for i, epsilon in enumerate((1.0, 1.0, 0.5)):
        try:
            result = keel.privacy.train(dataset_ref, target="target", epsilon=epsilon, bounds="data", seed=i)
        except BudgetExceeded as exc:
            console.print(f"[yellow]refused before training[/]: {esc(exc.message)}")
            continue
        left = result.budget.left[0]
        console.print(
            f"DP logistic regression at epsilon {fmt_num(epsilon)}: held-out accuracy {fmt_num(result.metrics.get('accuracy'))} "
            f"-> {esc(result.version.uri)}; budget of {esc(dataset_ref)}: {fmt_num(left)} of {fmt_num(BUDGET)} left"
        )
    console.print("[dim](bounds read from the rows and seeded noise, so this demo repeats itself; each run records "
                  "both as not private: give public bounds and no seed in real use)[/]")  # fmt: skip


def _federated(data: Any, dataset_ref: str, central: float) -> None:
    import keel.data
    from keel.privacy import federated_train

    features = [c for c in data.columns if c not in ("target", "site", SENSITIVE)]
    silos = []
    for site in SITES:
        rows = data[data["site"] == site][[*features, "target"]]
        silos.append(keel.data.log(rows, f"breast-cancer.site-{site}", parents=[dataset_ref], run=False).ref)
    result = federated_train(silos, target="target", rounds=5, aggregation="fedavg", executor="process",
                             holdout="breast-cancer-test", name="breast-cancer-federated", seed=0)  # fmt: skip
    history = result.history
    console.print(
        f"federated: {len(silos)} sites, each training on its own rows in its own process, only parameters sent; "
        f"{len(history)} rounds of FedAvg, holdout accuracy {' -> '.join(fmt_num(h) for h in history)} (production, "
        f"trained on all rows in one place: {fmt_num(central)}); "
        f"registered {esc(result.version.uri if result.version else '-')} with lineage to the sites' data"
    )
