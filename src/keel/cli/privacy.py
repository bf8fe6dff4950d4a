"""``keel privacy ...``: privacy budgets of dataset versions, what is spent and left, and differentially private training.

>>> keel privacy budget adult@1 --epsilon 3                                                    # doctest: +SKIP
>>> keel privacy train adult@1 --target income --epsilon 1 --bounds age=17:90 --bounds hours=0:99  # doctest: +SKIP
>>> keel privacy status adult@1                       # budget, spent, left, and every spend     # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.errors import InvalidArgument
from keel.core.numbers import plain

__all__ = ["app"]

app = typer.Typer(help="Differential privacy: budgets of dataset versions, their spends, and DP training.", no_args_is_help=True)


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument.for_field(option, text, "a number") from None
    if not math.isfinite(value):
        raise InvalidArgument.for_field(option, text, "a finite number")
    return value


def parse_bounds(specs: list[str]) -> dict[str, tuple[float, float]]:
    """``["age=17:90", ...]`` as ``{"age": (17.0, 90.0)}``; the last colon splits (a column name may hold one)."""
    bounds: dict[str, tuple[float, float]] = {}
    for spec in specs:
        column, eq, span = spec.rpartition("=")
        low, colon, high = span.rpartition(":")
        if not eq or not colon or not column:
            raise InvalidArgument.for_field("--bounds", spec, "COLUMN=LOW:HIGH, e.g. age=17:90")
        bounds[column] = (_number(low, "--bounds"), _number(high, "--bounds"))
    return bounds


def parse_params(specs: list[str]) -> dict[str, Any]:
    """``["C=10", "max_iter=500"]`` as numbers (``max_iter`` an int)."""
    params: dict[str, Any] = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        if not eq or not key:
            raise InvalidArgument.for_field("--param", spec, "KEY=VALUE, e.g. C=10")
        number = _number(value, "--param")
        params[key] = int(number) if key == "max_iter" and number.is_integer() else number
    return params


@app.command("budget")
def set_budget(
    dataset: str = typer.Argument(..., help="The dataset version (name@N; a bare name: its latest version)."),
    epsilon: float = typer.Option(..., "--epsilon", help="The total epsilon the version may spend."),
    delta: float = typer.Option(0.0, "--delta", help="The total delta the version may spend."),
    json_: bool = JSON_OPTION,
) -> None:
    """Set (or change) the privacy budget of a dataset version."""
    from keel.context import current
    from keel.privacy import set_budget as set_

    require_store()
    budget = set_(dataset, epsilon, delta, ctx=current())
    if json_:
        print_json(budget)
        return
    console.print(
        f"privacy budget of {esc(budget.dataset)}: epsilon {plain(budget.epsilon)}, delta {plain(budget.delta)} "
        f"(spent epsilon {plain(budget.spent_epsilon)}, delta {plain(budget.spent_delta)})"
    )


@app.command("status")
def status(
    dataset: str = typer.Argument(..., help="The dataset version (name@N; a bare name: its latest version)."),
    json_: bool = JSON_OPTION,
) -> None:
    """The budget of a dataset version, what is spent and left, and every spend with its run and mechanism."""
    from keel.context import current
    from keel.privacy import status as status_of

    require_store()
    s = status_of(dataset, ctx=current())
    if json_:
        print_json(s)
        return
    if s["budget"] is None:
        console.print(f"{esc(s['dataset'])} has no privacy budget (keel privacy budget {esc(s['dataset'])} --epsilon E)")
        if not s["spends"]:
            return
    else:
        b, spent, left = s["budget"], s["spent"], s["left"]
        console.print(
            f"{esc(s['dataset'])}: budget epsilon {plain(b['epsilon'])}, delta {plain(b['delta'])}; "
            f"spent epsilon {plain(spent['epsilon'])}, delta {plain(spent['delta'])}; "
            f"left epsilon {plain(left['epsilon'])}, delta {plain(left['delta'])}"
        )
        console.print(f"composition: {esc(s['composition'])}")
    if not s["spends"]:
        console.print("no spends yet")
        return
    table = Table(title=f"spends on {esc(s['dataset'])}", header_style="bold")
    for col in ("when", "epsilon", "delta", "mechanism", "run", "by"):
        table.add_column(col)
    for sp in s["spends"]:
        table.add_row(fmt_time(sp["created_at"]), plain(sp["epsilon"]), plain(sp["delta"]), esc(sp["mechanism"]),
                      esc(sp["run_id"] or "-"), esc(sp["created_by"]))  # fmt: skip
    console.print(table)


@app.command("train")
def train(
    dataset: str = typer.Argument(..., help="The dataset version (name@N; a bare name: its latest version)."),
    target: str = typer.Option(..., "--target", help="The label column."),
    epsilon: float = typer.Option(..., "--epsilon", help="The epsilon this training spends of the version's budget."),
    delta: float = typer.Option(0.0, "--delta", help="The delta it spends (0: both models are pure epsilon-DP)."),
    model: str = typer.Option("logistic_regression", "--model", help="logistic_regression or gaussian_nb."),
    features: str = typer.Option(None, "--features", help="Comma-separated feature columns (default: all but the target)."),
    bounds: list[str] = typer.Option(None, "--bounds", help="COLUMN=LOW:HIGH, a feature's public range (repeatable)."),
    bounds_from_data: bool = typer.Option(
        False, "--bounds-from-data", help="Take missing bounds from the rows (not private: recorded on the run)."
    ),
    param: list[str] = typer.Option(None, "--param", help="A learner param KEY=VALUE: C, max_iter; min_var (repeatable)."),
    name: str = typer.Option(None, "--name", help="The registered model (default: DATASET-dp)."),
    experiment: str = typer.Option("privacy", "--experiment", help="The run's experiment."),
    test_size: float = typer.Option(0.25, "--test-size", help="The share of rows held out for the metrics."),
    seed: int = typer.Option(
        None, "--seed", help="Fix the noise and the split (tests only: production noise must be unpredictable)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Train a differentially private model on a dataset version, paid from its privacy budget, and register it."""
    from keel.context import current
    from keel.privacy import train as train_

    require_store()
    given = parse_bounds(bounds or [])
    if bounds_from_data and given:
        raise InvalidArgument("--bounds and --bounds-from-data together: give every bound, or take all from the rows")
    chosen: Any = "data" if bounds_from_data else (given or None)
    columns = [c.strip() for c in features.split(",") if c.strip()] if features else None
    result = train_(
        dataset, target=target, model=model, epsilon=epsilon, delta=delta, features=columns, bounds=chosen, name=name,
        experiment=experiment, test_size=test_size, seed=seed, ctx=current(), **parse_params(param or []),
    )  # fmt: skip
    if json_:
        print_json({"model": result.version.uri, "run_id": result.run_id, "mechanism": result.mechanism,
                    "spend": result.spend, "budget": result.budget, "metrics": result.metrics,
                    "bounds_source": result.bounds_source})  # fmt: skip
        return
    left_eps, left_delta = result.budget.left
    console.print(f"registered {esc(result.version.uri)} (run {esc(result.run_id)})")
    spend = result.spend
    console.print(
        f"spent epsilon {plain(spend.epsilon)}, delta {plain(spend.delta)} of {esc(spend.dataset)}; "
        f"left epsilon {plain(left_eps)}, delta {plain(left_delta)}"
    )
    shown = {k: v for k, v in result.metrics.items() if not k.startswith("privacy.")}
    if shown:
        console.print("held-out: " + ", ".join(f"{esc(k)} {plain(round(v, 4))}" for k, v in sorted(shown.items())))
    if any(s.startswith("data") for s in result.bounds_source.values()):
        console.print("[yellow]bounds were read from the rows: the guarantee does not cover them[/]")
