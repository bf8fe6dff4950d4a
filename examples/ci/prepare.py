"""Version and validate the training data (the CI workflow's first step)."""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer

import keel.data

frame = load_breast_cancer(as_frame=True).frame
suite = keel.data.infer_suite(frame, "breast-cancer")
version = keel.data.log(frame, "breast-cancer", source="sklearn.datasets.load_breast_cancer", suite=suite, run=False)
print(f"{version.ref}: {version.row_count} rows validated and stored")
