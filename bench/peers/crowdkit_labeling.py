"""crowd-kit's side of bench/labeling.py, run by crowd-kit's own venv (.bench-venv/crowdkit).

    .bench-venv/crowdkit/bin/python bench/peers/crowdkit_labeling.py ANNOTATIONS.csv [--methods ds,glad,mv,alpha]

Reads ``item,annotator,value`` rows, runs each method on them (reading the file is not timed) and prints one JSON
line: per method its seconds and, for the aggregations, its label per item.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import pandas as pd
    from crowdkit.aggregation import GLAD, DawidSkene, MajorityVote
    from crowdkit.metrics.data import alpha_krippendorff

    path = sys.argv[1]
    methods = sys.argv[sys.argv.index("--methods") + 1].split(",") if "--methods" in sys.argv else ["mv", "ds", "glad"]
    df = pd.read_csv(path, dtype=str).rename(columns={"item": "task", "annotator": "worker", "value": "label"})
    out: dict[str, object] = {}
    makers = {"mv": MajorityVote, "ds": lambda: DawidSkene(n_iter=100, tol=1e-5), "glad": lambda: GLAD(n_iter=100, tol=1e-5)}
    for name in methods:
        start = time.perf_counter()
        if name == "alpha":
            value = float(alpha_krippendorff(df))
            out[name] = {"seconds": time.perf_counter() - start, "alpha": value}
            continue
        labels = makers[name]().fit_predict(df)
        out[name] = {"seconds": time.perf_counter() - start, "labels": {str(k): str(v) for k, v in labels.items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
