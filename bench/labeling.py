"""Labeling benchmark: keel's consensus (majority vote, Dawid-Skene, GLAD) and agreement against crowd-kit, run live
in crowd-kit's own venv on the same annotations.

    python bench/labeling.py               # everything; crowd-kit's venv (.bench-venv/crowdkit) is created on first use
    python bench/labeling.py --no-peer     # keel only
    python bench/labeling.py --json        # the figures as one JSON line too

Data (made here, fixed seed): --items items (1,000) of 5 classes (true class uniform), 10 annotators: 8 of accuracy
0.9 down to 0.55 whose wrong answers go mostly (70%) to the "next" class (a structured confusion Dawid-Skene can learn)
and 2 spammers answering uniformly at random; each item answered by k annotators drawn at random.

(1) Accuracy against the truth at k = 3 and k = 5: keel's majority vote, Dawid-Skene and GLAD, crowd-kit's MajorityVote,
    DawidSkene and GLAD. Targets: keel DS within 1 point of crowd-kit DS, and above the majority vote.
(2) Time for --timing-annotations annotations (100,000: 20,000 items x 5): keel's consensus (DS, GLAD, majority) and
    agreement (Krippendorff's alpha, Fleiss' kappa, Cohen's kappa of every pair), crowd-kit's DawidSkene, GLAD,
    MajorityVote and alpha_krippendorff (its only agreement measure); crowd-kit's GLAD only with --peer-glad (it
    takes about 30 s per 10,000 annotations here: minutes for 100,000). crowd-kit's venv: crowd-kit with --no-deps plus
    what its aggregation and metrics import (its declared transformers dependency is never used).
(3) The store's hot path (keel only: crowd-kit has no store): next_task + submit on SQLite until --store-items items
    (2,000) have 3 answers each, 6 annotators taking turns; milliseconds per round trip, median and p99.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "crowdkit_labeling.py"
VENV = ROOT / ".bench-venv" / "crowdkit"
PEER_PACKAGES = ["numpy", "pandas", "scikit-learn", "scipy", "attrs", "tqdm", "nltk"]  # what crowdkit.aggregation imports
SEED = 20261130
CLASSES = ["c0", "c1", "c2", "c3", "c4"]
ACCURACY = {"w0": 0.9, "w1": 0.85, "w2": 0.8, "w3": 0.75, "w4": 0.7, "w5": 0.65, "w6": 0.6, "w7": 0.55,
            "spam0": None, "spam1": None}  # fmt: skip


def make_task(n_items: int, k: int, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), n_items)
    names = sorted(ACCURACY)
    items, annotators, values = [], [], []
    for i, t in enumerate(truth):
        for w in rng.choice(names, size=k, replace=False):
            acc = ACCURACY[w]
            if acc is None:
                v = int(rng.integers(0, len(CLASSES)))
            elif rng.random() < acc:
                v = int(t)
            elif rng.random() < 0.7:
                v = (int(t) + 1) % len(CLASSES)
            else:
                v = int(rng.choice([c for c in range(len(CLASSES)) if c != t]))
            items.append(f"i{i:06d}")
            annotators.append(str(w))
            values.append(CLASSES[v])
    frame = pd.DataFrame({"item": items, "annotator": annotators, "value": values})
    return frame, {f"i{i:06d}": CLASSES[t] for i, t in enumerate(truth)}


def peer_python(install: bool) -> tuple[str | None, str]:
    """crowd-kit's venv python, created on first use; (None, why) when it cannot be had."""
    python = VENV / "bin" / "python"

    def imports() -> str:
        if not python.exists():
            return f"no {VENV}"
        done = subprocess.run([str(python), "-c", "import crowdkit.aggregation, crowdkit.metrics.data"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        return "" if done.returncode == 0 else "crowdkit does not import: " + done.stderr.strip().splitlines()[-1][-300:]

    why = imports()
    if not why or not install:
        return (str(python), "") if not why else (None, why)
    print(f"creating {VENV}: crowd-kit --no-deps + {' '.join(PEER_PACKAGES)} (its own venv, once)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
    pip = str(VENV / "bin" / "pip")
    for args in (["--no-deps", "crowd-kit==1.4.2"], PEER_PACKAGES):
        done = subprocess.run([pip, "install", "-q", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None, f"pip install {' '.join(args)} failed: " + done.stderr.strip()[-500:]
    why = imports()
    return (None, why) if why else (str(python), "")


def run_peer(python: str, frame: pd.DataFrame, methods: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "annotations.csv"
        frame.to_csv(path, index=False)
        done = subprocess.run([python, str(PEER_SCRIPT), str(path), "--methods", methods], capture_output=True, text=True,
                              check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError("crowd-kit failed: " + done.stderr.strip()[-2000:])
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def accuracy(labels: dict[str, str], truth: dict[str, str]) -> float:
    return sum(labels.get(i) == t for i, t in truth.items()) / len(truth)


def keel_labels(method: str, frame: pd.DataFrame) -> dict[str, str]:
    from keel.core.labeling import LabelSchema
    from keel.label.consensus import consensus

    out = consensus(frame, LabelSchema("classes", tuple(CLASSES)), method)
    return dict(zip(out["item"], out["label"], strict=True))


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accuracy_part(args: argparse.Namespace, python: str | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for k in (3, 5):
        frame, truth = make_task(args.items, k, SEED + k)
        row = {f"keel_{m}": accuracy(keel_labels(m, frame), truth) for m in ("majority", "dawid_skene", "glad")}
        if python:
            peer = run_peer(python, frame, "mv,ds,glad")
            row.update({f"crowdkit_{m}": accuracy(peer[m]["labels"], truth) for m in ("mv", "ds", "glad")})
        results[f"k{k}"] = row
    return results


def timing_part(args: argparse.Namespace, python: str | None) -> dict[str, Any]:
    from keel.core.labeling import LabelSchema
    from keel.label import agreement
    from keel.label.consensus import consensus

    frame, _ = make_task(args.timing_annotations // 5, 5, SEED)
    schema = LabelSchema("classes", tuple(CLASSES))
    keel = {
        "ds": timed(lambda: consensus(frame, schema, "dawid_skene")),
        "glad": timed(lambda: consensus(frame, schema, "glad")),
        "mv": timed(lambda: consensus(frame, schema, "majority")),
        "alpha": timed(lambda: agreement.krippendorff_alpha(frame, "nominal", schema)),
        "fleiss": timed(lambda: agreement.fleiss_kappa(frame, schema)),
        "cohen_pairs": timed(lambda: agreement.cohen_pairs(frame, schema)),
    }
    out: dict[str, Any] = {"annotations": len(frame), "keel": keel}
    if python:
        methods = ["ds", "mv", "alpha"] + (["glad"] if args.peer_glad else [])
        peer = run_peer(python, frame, ",".join(methods))
        out["crowdkit"] = {m: peer[m]["seconds"] for m in methods}
        out["alpha_values"] = {"keel": agreement.krippendorff_alpha(frame, "nominal", schema), "crowdkit": peer["alpha"]["alpha"]}
    return out


def report(acc: dict[str, Any], timing: dict[str, Any]) -> list[str]:
    lines = ["(1) accuracy vs truth (%)", f"{'':5}" + "".join(f"{c:>18}" for c in next(iter(acc.values())))]
    verdicts = []
    for k, row in acc.items():
        lines.append(f"{k:5}" + "".join(f"{100 * v:18.1f}" for v in row.values()))
        if "crowdkit_ds" in row:
            gap = 100 * (row["keel_dawid_skene"] - row["crowdkit_ds"])
            verdicts.append(f"{k}: keel DS - crowd-kit DS = {gap:+.1f} points: {'PASS' if abs(gap) <= 1 else 'FAIL'} (within 1)")
        above = 100 * (row["keel_dawid_skene"] - row["keel_majority"])
        verdicts.append(f"{k}: keel DS - majority = {above:+.1f} points: {'PASS' if above > 0 else 'FAIL'} (above)")
    lines += verdicts
    lines.append(f"(2) seconds for {timing['annotations']:,} annotations (keel: median of 3; crowd-kit: one run)")
    peer = timing.get("crowdkit", {})
    for name, seconds in timing["keel"].items():
        theirs = peer.get(name)
        ratio = f"   keel/crowd-kit {seconds / theirs:.3f} (crowd-kit {theirs:.2f} s)" if theirs else ""
        lines.append(f"  {name:12} keel {seconds:8.3f} s{ratio}")
    if peer:
        k_all = timing["keel"]["ds"] + timing["keel"]["alpha"]
        p_all = peer["ds"] + peer["alpha"]
        lines.append(
            f"  consensus (DS) + agreement (alpha): keel {k_all:.2f} s, crowd-kit {p_all:.2f} s,"
            f" keel/crowd-kit {k_all / p_all:.3f}"
        )
        lines.append(
            f"  alpha values: keel {timing['alpha_values']['keel']:.6f}, crowd-kit {timing['alpha_values']['crowdkit']:.6f}"
        )
    return lines


def store_part(items: int, overlap: int = 3, annotators: int = 6) -> dict[str, Any]:
    """(3) The annotator's hot path on the embedded store: ``next_task`` + ``submit`` (each one transaction, the
    hand-out holding the project's lock, the submit audited) until every item has ``overlap`` answers, annotators
    taking turns; per round trip, median and p99, and the whole project's wall time."""
    import keel.data
    import keel.label
    from keel.context import Context
    from keel.core.actor import acting_as

    with tempfile.TemporaryDirectory() as folder:
        ctx = Context(f"sqlite:///{folder}/keel.db", f"{folder}/artifacts")
        frame = pd.DataFrame({"text": [f"item {i}" for i in range(items)]})
        version = keel.data.log(frame, "bench-items", run=False, ctx=ctx)
        started = time.perf_counter()
        keel.label.create_project("bench", version.ref, classes=CLASSES, guideline="# bench", overlap=overlap,
                                  gold_rate=0.0, ctx=ctx)  # fmt: skip
        created = time.perf_counter() - started
        names = [f"a{i}" for i in range(annotators)]
        laps: list[float] = []
        active = list(names)
        started = time.perf_counter()
        while active:
            for name in list(active):
                with acting_as(name):
                    t0 = time.perf_counter()
                    task = ctx.store.labels.next_task("bench")
                    if task is None:
                        active.remove(name)
                        continue
                    ctx.store.labels.submit("bench", task.item, CLASSES[0], f"{name}-{task.item}")
                    laps.append(time.perf_counter() - t0)
        wall = time.perf_counter() - started
        ctx.close()
    laps.sort()
    return {"items": items, "overlap": overlap, "annotations": len(laps), "create_s": created, "wall_s": wall,
            "median_ms": 1000 * statistics.median(laps), "p99_ms": 1000 * laps[int(0.99 * (len(laps) - 1))]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--timing-annotations", type=int, default=100_000)
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--no-install", action="store_true", help="use crowd-kit's venv only if it exists")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    parser.add_argument("--store-items", type=int, default=2_000, help="(3): items of the store's hand-out run (0: skip)")
    parser.add_argument(
        "--peer-glad",
        action="store_true",
        help="time crowd-kit's GLAD on the timing data too (about 30 s per 10,000 annotations here)",
    )
    args = parser.parse_args()
    python, why = (None, "--no-peer") if args.no_peer else peer_python(not args.no_install)
    if python is None:
        print(f"crowd-kit: skipped ({why})")
    acc = accuracy_part(args, python)
    timing = timing_part(args, python)
    print("\n".join(report(acc, timing)))
    store = store_part(args.store_items) if args.store_items else {}
    if store:
        print(f"(3) store, SQLite: {store['annotations']:,} hand-outs + answers ({store['items']:,} items x {store['overlap']}, "
              f"6 annotators taking turns): median {store['median_ms']:.2f} ms, p99 {store['p99_ms']:.2f} ms per next_task + "
              f"submit; {store['wall_s']:.1f} s in all; project created with its items in {store['create_s']:.2f} s")  # fmt: skip
    if args.json:
        print(json.dumps({"accuracy": acc, "timing": timing, "store": store}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
