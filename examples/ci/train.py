"""What the CI workflow runs: a baseline through the pipeline, a small HPO, the tuned model through the
same pipeline. Writes the run ids to compare to ``runs.env`` (``KEY=value`` lines, GitHub-output style).

    python examples/ci/train.py --trials 6 --out runs.env
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keel.tune as tune
from keel.cli import quickstart_pipeline as qp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--executor", default="process")
    parser.add_argument("--out", default="runs.env")
    args = parser.parse_args()

    baseline = qp.train.run(experiment="ci", model="logistic_regression", params={"C": 1.0})
    space = {
        "model": tune.choice(list(qp.MODELS)),
        "C": tune.loguniform(0.01, 100.0),
        "n_estimators": tune.intrange(30, 120),
        "max_depth": tune.intrange(2, 6),
    }
    study = tune.optimize(qp.cv_objective, space, n_trials=args.trials, name="ci-search", experiment="ci", executor=args.executor)
    tuned = qp.train.run(experiment="ci", model=study.best_params["model"], params=study.best_params)
    lines = [
        f"BASELINE={baseline.step('evaluate').run_id}",
        f"CANDIDATE={tuned.step('evaluate').run_id}",
        f"STUDY={study.run_id}",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
