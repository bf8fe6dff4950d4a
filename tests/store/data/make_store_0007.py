"""Write the store of ``store_0007.json`` with keel at 6090ee4 (schema 0007): a finished and a failed pipeline run,
a study, a dataset and a model version. How it was made (for another old store, do the same with that keel)::

    git archive 6090ee4 src | tar -x -C /tmp/old
    # a project folder holding flows_issue9.py (the "pipeline_module" of the JSON), as the current folder:
    PYTHONPATH=/tmp/old/src:. python make_store_0007.py
    # then every table's rows (bytes as {"b64": ...}) and every blob under store/artifacts/sha256 went into the JSON
"""

import json
from pathlib import Path

import pandas as pd

import keel
import keel.data
import keel.tune as tune
from keel.core.errors import StepFailed
from keel.tracking.client import Client

root = Path.cwd()
client = Client(f"sqlite:///{root / 'store' / 'keel.db'}", str(root / "store" / "artifacts"))
keel.set_client(client)
import flows_issue9  # type: ignore[import-not-found]  # noqa: E402 - after the client is set; written by the test

ok = flows_issue9.flow.run(n=4)  # every step ran and is cached
Path("broken").write_text("x")
try:
    flows_issue9.flow.run(n=5)
except StepFailed:
    pass
Path("broken").unlink()
study = tune.optimize(
    lambda trial: (trial.params["x"] - 0.3) ** 2,
    {"x": tune.uniform(0.0, 1.0)},
    n_trials=3,
    metric="loss",
    direction="minimize",
    name="issue9-study",
    experiment="tuning",
    seed=1,
    pruner="none",
)
version = keel.data.log(pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 0.25, 0.125]}), "orders")
blob = client.artifacts.put_bytes(b"not really a model")
client.store.models.create_version(
    "churn", flavor="cloudpickle", artifact_sha256=blob.sha256, size=blob.size, signature={}, datasets=[version.ref, "gone@7"]
)
print(json.dumps({"ok": ok.run_id, "study": study.run_id, "trials": len(study.trials)}))
