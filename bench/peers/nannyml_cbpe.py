"""The monitoring benchmark's performance estimation done with NannyML's CBPE.

Runs inside NannyML's own virtual environment; reads the labelled reference and the analysis (shifted test) set
from Parquet (``proba1``, ``output``, ``label``), fits CBPE on the reference (isotonic calibration, as keel's
Estimator), estimates accuracy, F1 and ROC AUC on the analysis set as one chunk, and prints one JSON object.
Called by ``bench/monitoring.py``:

    .bench-venv/nannyml/bin/python bench/peers/nannyml_cbpe.py REFERENCE.parquet ANALYSIS.parquet
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

METRICS = ("accuracy", "f1", "roc_auc")


def main() -> None:
    reference_path, analysis_path = sys.argv[1:3]
    warnings.filterwarnings("ignore")
    import nannyml
    import pandas as pd

    reference = pd.read_parquet(reference_path)
    analysis = pd.read_parquet(analysis_path)
    t0 = time.perf_counter()
    estimator = nannyml.CBPE(
        metrics=list(METRICS), y_pred_proba="proba1", y_pred="output", y_true="label",
        problem_type="classification_binary", chunk_number=1,
    )  # fmt: skip
    estimator.fit(reference)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = estimator.estimate(analysis)
    estimate_s = time.perf_counter() - t0
    frame = result.filter(period="analysis").to_df()
    estimated = {metric: float(frame[(metric, "value")].iloc[0]) for metric in METRICS}
    print(
        json.dumps(
            {
                "version": nannyml.__version__,
                "pandas": pd.__version__,
                "fit_s": fit_s,
                "estimate_s": estimate_s,
                "estimated": estimated,
                "rows": [len(reference), len(analysis)],
            }
        )
    )


if __name__ == "__main__":
    main()
