"""The data benchmark's drift workload done with Evidently's data drift preset.

Runs inside Evidently's own virtual environment (it needs pandas < 3); reads the
reference and current frames from Parquet and prints one JSON object with the time of
``Report([DataDriftPreset()]).run(...)`` and the columns it flagged. Called by
``bench/data.py``:

    .bench-venv/evidently/bin/python bench/peers/evidently_drift.py REF.parquet CUR.parquet
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("DO_NOT_TRACK", "true")


def drifted_columns(snapshot_dict: dict) -> tuple[list[str], dict[str, dict], int | None]:
    """Per-column decisions from the snapshot's ValueDrift metrics, and the preset's own count.

    Evidently's rule: a p-value test ("... p_value") drifts below its threshold, a distance
    (Wasserstein, Jensen-Shannon, PSI) at or above it.
    """
    drifted, columns, count = [], {}, None
    for metric in snapshot_dict["metrics"]:
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


def main() -> None:
    reference_path, current_path = sys.argv[1:3]
    warnings.filterwarnings("ignore")
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)

    # warm-up on a slice (lazy imports, registries), not timed
    Report([DataDriftPreset()]).run(current_data=current.head(2000), reference_data=reference.head(2000))

    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    seconds = time.perf_counter() - t0

    drifted, columns, count = drifted_columns(snapshot.dict())
    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "pandas": pd.__version__,
                "seconds": seconds,
                "drifted": drifted,
                "preset_count": count,
                "columns": columns,
                "rows": [len(reference), len(current)],
            }
        )
    )


if __name__ == "__main__":
    main()
