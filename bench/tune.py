"""HPO benchmark: keel.tune's overhead per trial against Optuna alone (same machine, same invocation).

    python bench/tune.py
    python bench/tune.py --trials 200 --repeat 1

Workload (issue text): a trivially cheap objective, -(x - 2)**2 over x in [-5, 5], maximised
with Optuna's TPE sampler (seed 0), 200 trials, run three ways:
  keel           keel.tune.optimize(..., sampler="tpe", pruner="none", executor="inline"):
                 an in-memory Optuna study, every trial a child run in keel's store (SQLite
                 in ./.keel of a fresh temporary folder), the study run with its report
  Optuna         optuna.create_study(sampler=TPESampler(seed=0)), study.optimize: in memory
  Optuna+SQLite  the same with storage="sqlite:///<tmp>/optuna.db"

keel's overhead per trial = keel's ms/trial - Optuna in-memory ms/trial: both ask the same
TPE sampler for the same suggestions (same seed), so the sampler's own cost cancels out.
TPE's cost per trial grows with the number of trials, so the figures hold for this count.
A second pair with Optuna's RandomSampler (near-free sampling) shows the overhead alone.

Two figures per row: "all-in" is the whole call / trials (keel's includes creating the
study run, and its end-of-study report: parameter importances and an HTML page); "loop"
is the time from the first to the last objective call / (trials - 1), the steady cost of
one trial (ask, record, run, tell) without the one-off start and end.
Target: keel's overhead <= 3 ms per trial (Optuna with SQLite: about 19 ms per trial here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ["DO_NOT_TRACK"] = "true"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"

from rich.console import Console
from rich.table import Table

console = Console(width=None if os.isatty(1) else 130)  # wide enough for the tables when piped
OVERHEAD_TARGET_MS = 3.0
SEED = 0
LOW, HIGH = -5.0, 5.0


class Clock:
    """Timestamps of the objective's calls: the loop time excludes what comes before the first and after the last."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def tick(self) -> None:
        self.calls.append(time.perf_counter())

    def loop_ms(self) -> float:
        return (self.calls[-1] - self.calls[0]) * 1000 / max(1, len(self.calls) - 1)


def keel_study(trials: int, sampler: str, name: str) -> dict[str, Any]:
    import keel.tune as tune

    clock = Clock()

    def objective(trial: Any) -> float:
        clock.tick()
        return -((trial["x"] - 2) ** 2)

    t0 = time.perf_counter()
    result = tune.optimize(
        objective, {"x": tune.uniform(LOW, HIGH)}, n_trials=trials, name=name, sampler=sampler, pruner="none",
        executor="inline", seed=SEED, direction="maximize",
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert len(result.trials) == trials and all(t.state == "complete" for t in result.trials)
    return {
        "seconds": seconds,
        "ms_per_trial": seconds * 1000 / trials,
        "loop_ms_per_trial": clock.loop_ms(),
        "best_value": result.best_value,
        "best_x": result.best_params["x"],
    }


def optuna_study(trials: int, sampler: str, storage: str | None, name: str) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = Clock()

    def objective(trial: Any) -> float:
        clock.tick()
        x = trial.suggest_float("x", LOW, HIGH)
        return -((x - 2) ** 2)

    make: Callable[[], Any] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=SEED),
        "random": lambda: optuna.samplers.RandomSampler(seed=SEED),
    }[sampler]
    t0 = time.perf_counter()
    study = optuna.create_study(study_name=name, direction="maximize", sampler=make(), storage=storage)
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - t0
    assert len(study.trials) == trials
    return {
        "seconds": seconds,
        "ms_per_trial": seconds * 1000 / trials,
        "loop_ms_per_trial": clock.loop_ms(),
        "best_value": study.best_value,
        "best_x": study.best_params["x"],
        "version": optuna.__version__,
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median all-in time (its figures stay consistent with each other)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    out = dict(ordered[len(ordered) // 2])
    out["all_seconds"] = [r["seconds"] for r in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="each study this many times (fresh store each); median")
    parser.add_argument("--no-random", action="store_true", help="skip the RandomSampler pair")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    start = time.perf_counter()
    home = os.getcwd()
    folder = tempfile.mkdtemp(prefix="keel-bench-tune-")
    os.chdir(folder)
    results: dict[str, Any] = {"trials": args.trials, "repeat": args.repeat, "load_average": os.getloadavg()[0]}
    try:
        import optuna

        import keel.tune as tune

        # warm-up, not timed: imports, keel's store and its migrations, the first SQLite connection
        tune.optimize(lambda t: t["x"], {"x": tune.uniform(0, 1)}, n_trials=3, name="warmup", pruner="none", seed=SEED)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(storage=f"sqlite:///{folder}/warmup.db").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

        samplers = ["tpe"] if args.no_random else ["tpe", "random"]
        console.print(f"[bold]keel.tune[/] vs Optuna {optuna.__version__}: {args.trials} trials, x{args.repeat}, in {folder}")
        for sampler in samplers:
            runs: dict[str, list[dict[str, Any]]] = {"keel": [], "optuna": [], "optuna_sqlite": []}
            for i in range(args.repeat):
                runs["optuna"].append(optuna_study(args.trials, sampler, None, f"{sampler}-{i}"))
                runs["keel"].append(keel_study(args.trials, sampler, f"{sampler}-{i}"))
                if sampler == "tpe":
                    db = f"sqlite:///{folder}/optuna-{sampler}-{i}.db"
                    runs["optuna_sqlite"].append(optuna_study(args.trials, sampler, db, f"{sampler}-{i}"))
            results[sampler] = {tool: median_of(r) for tool, r in runs.items() if r}
    finally:
        os.chdir(home)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    results["total_s"] = time.perf_counter() - start

    table = Table(title=f"HPO, {args.trials} trials of a trivial objective (median of {args.repeat}), ms per trial")
    table.add_column("sampler")
    table.add_column("tool")
    table.add_column("all-in", justify="right")
    table.add_column("loop", justify="right")
    table.add_column("keel overhead", justify="right", style="bold")
    table.add_column("keel / tool", justify="right", style="bold green")
    for sampler in [s for s in ("tpe", "random") if s in results]:
        r = results[sampler]
        keel_, alone = r["keel"], r["optuna"]
        r["overhead_ms"] = keel_["ms_per_trial"] - alone["ms_per_trial"]
        r["overhead_loop_ms"] = keel_["loop_ms_per_trial"] - alone["loop_ms_per_trial"]
        labels = {"keel": "keel (its store, child runs)", "optuna": "Optuna in memory", "optuna_sqlite": "Optuna + SQLite"}
        for tool, label in labels.items():
            if tool not in r:
                continue
            t = r[tool]
            over = f"{r['overhead_ms']:.2f} / {r['overhead_loop_ms']:.2f}" if tool == "keel" else ""
            ratio = "" if tool == "keel" else f"{keel_['ms_per_trial'] / t['ms_per_trial']:.2f}x"
            if tool != "keel" and keel_["ms_per_trial"] < t["ms_per_trial"]:
                ratio += f" (keel {t['ms_per_trial'] / keel_['ms_per_trial']:.1f}x faster)"
            table.add_row(sampler.upper() if sampler == "tpe" else sampler, label, f"{t['ms_per_trial']:.2f}",
                          f"{t['loop_ms_per_trial']:.2f}", over, ratio)  # fmt: skip
    console.print(table)
    tpe = results["tpe"]
    met = tpe["overhead_ms"] <= OVERHEAD_TARGET_MS
    console.print(
        f"keel's overhead per trial (TPE, {args.trials} trials): {tpe['overhead_ms']:.2f} ms all-in, "
        f"{tpe['overhead_loop_ms']:.2f} ms in the loop (target <= {OVERHEAD_TARGET_MS:g} ms: "
        + ("[green]met[/]" if met else "[red]missed[/]")
        + f"); keel / Optuna+SQLite = {tpe['keel']['ms_per_trial'] / tpe['optuna_sqlite']['ms_per_trial']:.2f}x "
        f"({tpe['keel']['ms_per_trial']:.2f} vs {tpe['optuna_sqlite']['ms_per_trial']:.2f} ms per trial)."
    )
    if "random" in results:
        rnd = results["random"]
        console.print(
            f"With RandomSampler (sampling near free): keel {rnd['keel']['ms_per_trial']:.2f} ms per trial all-in, "
            f"{rnd['keel']['loop_ms_per_trial']:.2f} ms in the loop; overhead {rnd['overhead_ms']:.2f} / "
            f"{rnd['overhead_loop_ms']:.2f} ms."
        )
    console.print(
        f"Same suggestions: best x keel {tpe['keel']['best_x']:.6f}, Optuna {tpe['optuna']['best_x']:.6f}. "
        f"TPE's own cost grows with the trial count: these figures are for {args.trials} trials. "
        f"Whole benchmark: {results['total_s']:.0f} s (load average at start: {results['load_average']:.2f})."
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
