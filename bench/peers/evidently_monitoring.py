"""The monitoring benchmark's window done with Evidently: its data drift and classification presets.

Runs inside Evidently's own virtual environment (it needs pandas < 3); reads the reference and current frames
from Parquet (the features, the model's ``output`` and ``proba1``, the ``label``), and prints one JSON object with
the time of each preset, the columns the drift preset flagged and the classification metrics. Called by
``bench/monitoring.py``:

    .bench-venv/evidently/bin/python bench/peers/evidently_monitoring.py REF.parquet CUR.parquet SPEC_JSON

SPEC_JSON names the columns: {"numeric": [...], "categorical": [...], "target": ..., "prediction": ..., "proba": ...}.
Timings: building the two ``Dataset`` objects (Evidently's column typing) counts in the drift preset's time, as
``Report.run`` on two DataFrames would do it; the classification preset reuses them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("DO_NOT_TRACK", "true")

CLASSIFICATION = {"Accuracy": "accuracy", "F1Score": "f1", "RocAuc": "roc_auc", "Precision": "precision", "Recall": "recall"}


def drifted_columns(snapshot: dict) -> tuple[list[str], dict[str, dict], int | None]:
    """Per-column decisions from the snapshot's ValueDrift metrics, and the preset's own count.

    Evidently's rule: a p-value test ("... p_value") drifts below its threshold, a distance
    (Wasserstein, Jensen-Shannon, PSI) at or above it.
    """
    drifted, columns, count = [], {}, None
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            count = int(metric["value"]["count"])
        elif kind.endswith("ValueDrift"):
            method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
            flagged = value < threshold if "p_value" in method else value >= threshold
            columns[config["column"]] = {"method": method, "threshold": threshold, "score": value, "drifted": flagged}
            if flagged:
                drifted.append(config["column"])
    return drifted, columns, count


def classification_values(snapshot: dict) -> dict[str, float]:
    """The preset's overall metrics on the current data (the first of each kind: per-label metrics come later)."""
    out: dict[str, float] = {}
    for metric in snapshot["metrics"]:
        kind = metric.get("config", {}).get("type", "").rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        name = CLASSIFICATION.get(kind)
        value = metric.get("value")
        if name and name not in out and isinstance(value, int | float):
            out[name] = float(value)
    return out


def main() -> None:
    reference_path, current_path, spec_text = sys.argv[1:4]
    spec = json.loads(spec_text)
    warnings.filterwarnings("ignore")
    import evidently
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    features = spec["numeric"] + spec["categorical"]
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)

    def datasets(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[Dataset, Dataset]:
        task = BinaryClassification(target=spec["target"], prediction_labels=spec["prediction"], prediction_probas=spec["proba"])
        definition = DataDefinition(
            numerical_columns=spec["numeric"], categorical_columns=spec["categorical"], classification=[task]
        )
        return Dataset.from_pandas(ref, data_definition=definition), Dataset.from_pandas(cur, data_definition=definition)

    # warm-up on a slice (lazy imports, registries), not timed
    small_ref, small_cur = datasets(reference.head(2000), current.head(2000))
    Report([DataDriftPreset(columns=features)]).run(small_cur, small_ref)
    Report([ClassificationPreset()]).run(small_cur, small_ref)

    t0 = time.perf_counter()
    ref_ds, cur_ds = datasets(reference, current)
    dataset_s = time.perf_counter() - t0
    drift = Report([DataDriftPreset(columns=features)]).run(cur_ds, ref_ds)
    drift_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    quality = Report([ClassificationPreset()]).run(cur_ds, ref_ds)
    classification_s = time.perf_counter() - t0

    drifted, columns, count = drifted_columns(drift.dict())
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "pandas": pd.__version__,
                "dataset_s": dataset_s,
                "drift_s": drift_s,
                "classification_s": classification_s,
                "seconds_total": drift_s + classification_s,
                "drifted": drifted,
                "preset_count": count,
                "columns": columns,
                "classification": classification_values(quality.dict()),
                "rows": [len(reference), len(current)],
            }
        )
    )


if __name__ == "__main__":
    main()
