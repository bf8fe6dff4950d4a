"""ONNX versions, edge bundles and model cards, all generated from what the registry already knows."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument
from keel.core.html import as_number, esc, fmt, page
from keel.core.models import ModelVersion
from keel.core.numbers import plain
from keel.registry import flavors
from keel.registry.models import load, resolve
from keel.registry.onnx_export import OnnxModel, ParityFailed, parity, to_onnx

HOLDOUT_ROWS = 1000
MANIFEST = ".keel-bundle.json"  # what keel wrote into a bundle folder: the only files a new bundle may replace
BUNDLE_FILES = ("model.onnx", "signature.json", "model_card.md", "predictor.py", "test_predictor.py", "samples.json")


def _feature_columns(version: ModelVersion) -> list[str] | None:
    inputs = version.signature.get("inputs", {})
    return [c["name"] for c in inputs["columns"]] if inputs.get("type") == "dataframe" else None


def _model_columns(version: ModelVersion, model: Any) -> list[str] | None:
    """The model's input columns: from the signature, else from what the model was fitted on."""
    names = _feature_columns(version) or list(getattr(model, "feature_names_in_", []))
    return [str(n) for n in names] or None


def holdout_rows(
    version: ModelVersion, data: Any = None, ctx: Context | None = None, columns: list[str] | None = None
) -> np.ndarray:
    """Rows to check parity on: ``data`` if given, else the held-out dataset recorded with the version
    (``register(..., holdout="churn-test@1")``). The training data is never the default: a check on rows the
    model was fitted on says little about rows it has not seen. ``ParityFailed`` when there are none."""
    if data is None:
        ref = recorded_holdout(version)
        if ref is None:
            raise ParityFailed(
                f"{version.uri} records no held-out rows to check ONNX parity on: pass them (data=..., or "
                f"keel models export --data DATASET), or register the model with holdout='dataset@N'"
            )
        data = _dataset_table(ref, _ctx(ctx))
    return _matrix(version, data, columns)


def recorded_holdout(version: ModelVersion) -> str | None:
    """The held-out dataset recorded with ``version`` (or with the version an ONNX one was exported from)."""
    ref = version.signature.get("holdout")
    return ref if isinstance(ref, str) else None


def sample_rows(version: ModelVersion, data: Any, ctx: Context, columns: list[str] | None) -> np.ndarray:
    """Example rows for a bundle's samples: held-out rows when known, else the training data (examples, not a check)."""
    if data is not None or recorded_holdout(version) is not None:
        return holdout_rows(version, data, ctx, columns)
    if not version.dataset_version_ids:
        raise ParityFailed(f"{version.uri} records neither held-out rows nor training data; pass data=... for the samples")
    return _matrix(version, _training_table(version.dataset_version_ids[0], ctx), columns)


def _matrix(version: ModelVersion, data: Any, columns: list[str] | None) -> np.ndarray:
    columns = columns or _feature_columns(version)
    from keel.registry.signature import to_frame_or_array

    converted = to_frame_or_array(data)
    if columns is not None and hasattr(converted, "columns"):
        missing = [c for c in columns if c not in converted.columns]
        if missing:
            raise InvalidArgument(f"held-out rows must have the model's input columns; missing: {', '.join(missing[:5])}")
        converted = converted[columns]
    return np.asarray(converted, dtype=np.float64)[:HOLDOUT_ROWS]


def _dataset_table(ref: str, ctx: Context) -> Any:
    from keel.core.datasets import parse_ref

    name, number = parse_ref(ref)
    return _training_table(ctx.store.datasets.get_version(name, number).id, ctx)


def _training_table(version_id: int, ctx: Context) -> Any:
    """A dataset version's rows as pandas, read from the store as ``keel.data.get`` would (verified against
    their hash) without linking them to a run: the registry reads datasets through the store, not ``keel.data``."""
    import io

    import pyarrow.parquet as pq

    stored = ctx.store.datasets.get_version_by_id(version_id)  # the model version's link, by key
    return pq.read_table(io.BytesIO(ctx.artifacts.get_bytes(stored.artifact_sha256))).to_pandas()


def export_onnx(uri: str, data: Any = None, ctx: Context | None = None, *, trust_pickle: bool | None = None) -> ModelVersion:
    """Convert a version to ONNX, check parity on held-out rows, and register the ONNX model as the next
    version (flavor ``onnx``) with the parity recorded in its metrics. A failed parity refuses the export.
    ``trust_pickle`` as for ``keel.registry.load``."""
    ctx = _ctx(ctx)
    version = resolve(uri, ctx)
    if version.flavor == "onnx":
        exported_from = version.signature.get("exported_from")
        origin = f" (exported from version {exported_from})" if exported_from else ""
        raise InvalidArgument.for_field("model", version.uri, f"a version that is not ONNX already{origin}")
    loaded = load(version.uri, ctx, trust_pickle=trust_pickle)
    source = loaded.version
    columns = _model_columns(source, loaded.model)
    X = holdout_rows(source, data, ctx, columns)
    onnx_bytes = to_onnx(loaded.model, X.shape[1])
    result = parity(loaded.model, OnnxModel(onnx_bytes), X, columns)
    if not result.ok:
        raise ParityFailed(
            f"ONNX export of {source.uri} refused: label agreement {result.label_agreement:.4%}, "
            f"max probability difference {result.max_proba_diff} on {result.rows} rows"
        )
    blob = ctx.artifacts.put_bytes(onnx_bytes)
    parity_metrics = {"onnx_label_agreement": result.label_agreement, "onnx_parity_rows": float(result.rows)}
    if result.max_proba_diff is not None:
        parity_metrics["onnx_max_proba_diff"] = result.max_proba_diff
    signature = {**source.signature, "format": "onnx", "exported_from": source.version, "parity": parity_metrics,
                 "parity_rows": "given rows" if data is not None else recorded_holdout(source)}  # fmt: skip
    return ctx.store.models.create_version(
        source.name, flavor="onnx", artifact_sha256=blob.sha256, size=blob.size, signature=signature,
        source_run=source.source_run, metrics={**source.metrics, **parity_metrics}, datasets=source.datasets,
        requirements=flavors.requirements(("onnxruntime", "numpy")), description=f"ONNX export of version {source.version}",
    )  # fmt: skip


PREDICTOR = '''"""A self-contained predictor for this bundle: needs only numpy and onnxruntime.

    from predictor import Predictor
    p = Predictor()                      # the folder this file is in
    p.predict([{"feature": 1.0, ...}])   # records, or a 2-D array in signature order
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent


class Predictor:
    def __init__(self, folder=HERE):
        folder = Path(folder)
        self.signature = json.loads((folder / "signature.json").read_text())
        inputs = self.signature.get("inputs", {})
        self.columns = [c["name"] for c in inputs.get("columns", [])]
        self.session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def _matrix(self, rows):
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            missing = [c for c in self.columns if c not in rows[0]]
            if missing:
                raise ValueError(f"missing inputs: {missing}")
            rows = [[row[c] for c in self.columns] for row in rows]
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2 or (self.columns and matrix.shape[1] != len(self.columns)):
            raise ValueError(f"expected rows of {len(self.columns)} values, got shape {matrix.shape}")
        return matrix

    def predict(self, rows):
        return np.asarray(self.session.run(None, {self.input: self._matrix(rows)})[0]).ravel()

    def predict_proba(self, rows):
        return np.asarray(self.session.run(None, {self.input: self._matrix(rows)})[1])
'''

BUNDLE_TEST = '''"""The bundle's own test: python test_predictor.py (or pytest). Needs only numpy and onnxruntime."""

import json
import os
import shutil
import tempfile
import sys
from pathlib import Path

import numpy as np

from predictor import Predictor

HERE = Path(__file__).resolve().parent


def test_predictor_reproduces_the_registered_model():
    samples = json.loads((HERE / "samples.json").read_text())
    p = Predictor(HERE)
    assert p.predict(samples["rows"]).tolist() == samples["labels"]
    if "proba" in samples:
        assert np.max(np.abs(p.predict_proba(samples["rows"]) - np.asarray(samples["proba"]))) < 1e-3
    assert not {"sklearn", "keel", "pandas"} & set(sys.modules), "the bundle must not need them"


if __name__ == "__main__":
    test_predictor_reproduces_the_registered_model()
    print("ok")
'''


def _bundle_zip(folder: Path) -> Path:
    return folder.resolve().with_suffix(".zip")  # resolved: "." has no name to put a suffix on


def _check_bundle_folder(folder: Path, zip_it: bool) -> dict[str, Any] | None:
    """Refuse a destination keel may not write to, deleting nothing; the earlier bundle's manifest, if any.

    A missing or empty folder is fine, and so is a folder holding an earlier bundle (its manifest). Any
    other non-empty folder, or a zip keel did not write, is refused.
    """
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument.for_field("bundle destination", str(folder), "a folder (this is a file)")
    manifest = folder / MANIFEST
    earlier: dict[str, Any] | None = None
    if manifest.is_file():
        try:
            loaded = json.loads(manifest.read_text())
            earlier = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError):
            earlier = None
    if folder.is_dir() and any(folder.iterdir()) and earlier is None:
        raise InvalidArgument(
            f"bundle destination {folder} is not empty and holds no earlier keel bundle ({MANIFEST}); keel only "
            "replaces files it wrote, so choose a new or empty folder"
        )
    zip_path = _bundle_zip(folder)
    if zip_it and zip_path.exists() and not _zip_ours(earlier, zip_path):
        raise InvalidArgument(f"{zip_path} exists and was not written by keel for this bundle; move it or choose another folder")
    return earlier


def _zip_ours(earlier: dict[str, Any] | None, zip_path: Path) -> bool:
    return earlier is not None and earlier.get("zip") == zip_path.name


def _replace_bundle(folder: Path, staged: Path, earlier: dict[str, Any] | None, zip_it: bool) -> None:
    """Swap the bundle built in ``staged`` in for the earlier one: remove only the files a bundle has (those
    the earlier manifest lists, never a path a hand-edited manifest could point elsewhere), then move in."""
    zip_path = _bundle_zip(folder)
    if earlier is not None:
        for name in (n for n in earlier.get("files", []) if isinstance(n, str) and n in BUNDLE_FILES):
            (folder / name).unlink(missing_ok=True)
        if _zip_ours(earlier, zip_path):
            zip_path.unlink(missing_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        os.replace(staged / name, folder / name)
    if zip_it:
        os.replace(staged / zip_path.name, zip_path)
    os.replace(staged / MANIFEST, folder / MANIFEST)  # last: a folder with a manifest holds a whole bundle


def edge_bundle(
    uri: str,
    dest: str | Path,
    *,
    data: Any = None,
    zip_it: bool = True,
    ctx: Context | None = None,
    trust_pickle: bool | None = None,
) -> Path:
    """A folder (and zip) with model.onnx, signature.json, model_card.md, predictor.py, samples and a test.

    ``uri`` may name an ONNX version or any version (exported first, parity checked). ``dest`` must be a new
    or empty folder, or an earlier bundle (recognised by its ``.keel-bundle.json`` manifest), whose files
    are replaced: keel never deletes files it did not write. The bundle is built in a temporary folder next
    to ``dest`` and replaces the earlier one only once it is complete: a failed export leaves it as it was."""
    ctx = _ctx(ctx)
    folder = Path(dest)
    earlier = _check_bundle_folder(folder, zip_it)  # before anything is exported or registered
    parent = folder.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{folder.resolve().name}.keel-", dir=parent))
    try:
        _write_bundle(uri, folder, staged, data, zip_it, ctx, trust_pickle)
        _replace_bundle(folder, staged, earlier, zip_it)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return folder


def _write_bundle(
    uri: str, folder: Path, staged: Path, data: Any, zip_it: bool, ctx: Context, trust_pickle: bool | None
) -> None:  # fmt: skip
    """Export ``uri`` and write the bundle for ``folder`` into ``staged`` (with its zip, when ``zip_it``)."""
    version = resolve(uri, ctx)
    onnx_version = version if version.flavor == "onnx" else export_onnx(uri, data, ctx, trust_pickle=trust_pickle)
    source = ctx.store.models.get_version(onnx_version.name, onnx_version.signature.get("exported_from", onnx_version.version))
    (staged / MANIFEST).write_text(json.dumps({"keel_bundle": 1, "model": onnx_version.uri, "files": list(BUNDLE_FILES),
                                               "zip": _bundle_zip(folder).name if zip_it else None}, indent=2))  # fmt: skip
    (staged / "model.onnx").write_bytes(ctx.artifacts.get_bytes(onnx_version.artifact_sha256))
    (staged / "signature.json").write_text(json.dumps(onnx_version.signature, indent=2))
    (staged / "model_card.md").write_text(card_markdown(onnx_version.name, onnx_version.version, ctx))
    (staged / "predictor.py").write_text(PREDICTOR)
    (staged / "test_predictor.py").write_text(BUNDLE_TEST)
    original = load(source.uri, ctx, trust_pickle=trust_pickle).model
    columns = _model_columns(source, original)
    X = sample_rows(source, data, ctx, columns)[:20]
    rows = [dict(zip(columns, map(float, r), strict=True)) for r in X] if columns else X.tolist()
    native: Any = X
    if columns:
        import pandas as pd

        native = pd.DataFrame(X, columns=columns)
    samples: dict[str, Any] = {"rows": rows, "labels": np.asarray(original.predict(native)).ravel().tolist()}
    if hasattr(original, "predict_proba"):
        samples["proba"] = np.asarray(original.predict_proba(native)).tolist()
    (staged / "samples.json").write_text(json.dumps(samples))
    if zip_it:
        with zipfile.ZipFile(staged / _bundle_zip(folder).name, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in BUNDLE_FILES:
                zf.write(staged / name, name)


def card_data(name: str, version: int, ctx: Context | None = None, **fields: str) -> dict[str, Any]:
    """Everything a model card says, from lineage: the version, its run, its data, its aliases."""
    ctx = _ctx(ctx)
    v = ctx.store.models.get_version(name, version)
    run = ctx.store.get_run(v.source_run) if v.source_run else None
    data = []
    for version_id in v.dataset_version_ids:  # linked by key (model_version_datasets)
        ds = ctx.store.datasets.get_version_by_id(version_id)
        profile = ctx.store.datasets.get_profile(ds.id) or {"columns": {}}
        records = ctx.store.datasets.list_validations(ds.id)
        missing = sum(c.get("missing", 0) for c in profile["columns"].values())
        status = "no validation" if not records else ("passed" if records[0].passed else f"failed ({records[0].errors} errors)")
        data.append({"ref": ds.ref, "rows": ds.row_count, "columns": len(ds.schema), "missing": missing, "validation": status})
    return {
        "name": name, "version": version, "flavor": v.flavor, "aliases": list(v.aliases), "uri": v.uri,
        "purpose": fields.get("purpose", ""), "intended_use": fields.get("intended_use", ""),
        "limitations": fields.get("limitations", ""), "data": data, "params": dict(run.params) if run else {},
        "metrics": v.metrics, "history": [c for c in ctx.store.models.alias_history(name)],
        "requirements": list(v.requirements), "signature": v.signature,
        "assessments": _latest_assessments(ctx, name, version), "privacy": _privacy_spent(ctx, v),
    }  # fmt: skip


def _latest_assessments(ctx: Context, name: str, version: int) -> list[dict[str, Any]]:
    """The latest assessment of each kind (fairness, ...): its numbers, when and by whom."""
    latest: dict[str, Any] = {}
    for a in ctx.store.models.assessments(name, version):
        latest[a.kind] = a
    return [{"kind": a.kind, "metrics": dict(a.metrics), "created_at": a.created_at, "created_by": a.created_by,
             "sensitive": list(a.details.get("sensitive", []))} for a in latest.values()]  # fmt: skip


def _privacy_spent(ctx: Context, v: Any) -> list[dict[str, Any]]:
    """The differential privacy spent on the version's training data by the run that made it (the spends recorded
    with that run id), with each dataset's budget and what is left of it."""
    privacy = getattr(ctx.store, "privacy", None)
    if privacy is None or not v.source_run:
        return []
    out = []
    for ref in v.datasets:
        spends = [s for s in privacy.spends(ref) if s.run_id == v.source_run]
        if not spends:
            continue
        budget = privacy.get_budget(ref)
        out.append({"dataset": ref, "epsilon": sum(s.epsilon for s in spends), "delta": sum(s.delta for s in spends),
                    "mechanism": ", ".join(sorted({s.mechanism for s in spends})),
                    "budget": None if budget is None else [budget.epsilon, budget.delta],
                    "left": None if budget is None else list(budget.left)})  # fmt: skip
    return out


def card_markdown(name: str, version: int, ctx: Context | None = None, **fields: str) -> str:
    """The model card of a version as Markdown, from its lineage: training data, params, metrics, alias history,
    requirements. ``fields`` (``purpose``, ``intended_use``, ``limitations``) fill the parts only people can write."""
    d = card_data(name, version, ctx, **fields)
    lines = [
        f"# Model card: {d['name']} v{d['version']}",
        "",
        f"Flavor {d['flavor']}; aliases: {', '.join(d['aliases']) or 'none'}.",
        "",
    ]
    lines += ["## Purpose", d["purpose"] or "_Not written yet: say what this model is for._", ""]
    lines += ["## Intended use", d["intended_use"] or "_Not written yet: who may use it, for what, and for what not._", ""]
    lines += ["## Training data", ""]
    lines += [
        f"- {x['ref']}: {x['rows']:,} rows x {x['columns']} columns, {x['missing']} missing values, validation {x['validation']}"
        for x in d["data"]
    ] or ["- none recorded"]
    lines += ["", "## Parameters", ""] + (
        [f"- {k}: {_param_text(val)}" for k, val in sorted(d["params"].items())] or ["- none recorded"]
    )
    lines += ["", "## Evaluation", ""] + (
        [f"- {k}: {fmt(val)}" for k, val in sorted(d["metrics"].items())] or ["- none recorded"]
    )
    for a in d["assessments"]:
        on = f" (sensitive: {', '.join(a['sensitive'])})" if a["sensitive"] else ""
        lines += ["", f"## Assessment: {a['kind']}{on}", ""]
        lines += [f"- {k}: {fmt(val)}" for k, val in sorted(a["metrics"].items())] or ["- no numbers"]
    if d["privacy"]:
        lines += ["", "## Privacy", ""]
        for p in d["privacy"]:
            budget = (
                f"; budget ({fmt(p['budget'][0])}, {fmt(p['budget'][1])}), left ({fmt(p['left'][0])}, {fmt(p['left'][1])})"
                if p["budget"]
                else ""
            )
            lines.append(
                f"- {p['dataset']}: epsilon {fmt(p['epsilon'])}, delta {fmt(p['delta'])} spent by {p['mechanism']}{budget}"
            )
    lines += ["", "## Known limitations", d["limitations"] or "_Not written yet._", "", "## Alias history", ""]
    lines += [f"- {c.alias}: {_alias_move(c.from_version, c.to_version)} by {c.actor} ({c.reason or 'no reason given'})"
              for c in d["history"]] or ["- never promoted"]  # fmt: skip
    lines += ["", "## Requirements", ""] + [f"- {r}" for r in d["requirements"]]
    return "\n".join(lines) + "\n"


def _alias_move(before: int | None, after: int | None) -> str:
    """One alias change in words: "set to v1", "v1 -> v2", "removed (was v2)"."""
    if before is None:
        return f"set to v{after}" if after is not None else "unchanged"
    return f"v{before} -> v{after}" if after is not None else f"removed (was v{before})"


def _param_text(value: str) -> str:
    """A logged parameter in full but without float noise (``0.30000000000000004`` -> ``0.3``)."""
    number = as_number(value)
    return plain(number) if isinstance(number, float) else str(value)


def card_html(name: str, version: int, ctx: Context | None = None, **fields: str) -> str:
    md = card_markdown(name, version, ctx, **fields)
    body = []
    for line in md.splitlines():
        if line.startswith("# "):
            continue
        if line.startswith("## "):
            body.append(f"<h2>{esc(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{esc(line[2:])}</li>")
        elif line:
            body.append(f"<p>{esc(line.strip('_'))}</p>")
    return page(f"Model card: {name} v{version}", "".join(body))


def write_card(name: str, version: int, dest: str | Path, ctx: Context | None = None, **fields: str) -> tuple[Path, Path]:
    """Write the card as Markdown and offline HTML into ``dest``, and attach both to the version's run."""
    ctx = _ctx(ctx)
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    md, html = card_markdown(name, version, ctx, **fields), card_html(name, version, ctx, **fields)
    md_path, html_path = folder / f"{name}-v{version}.md", folder / f"{name}-v{version}.html"
    md_path.write_text(md)
    html_path.write_text(html)
    v = ctx.store.models.get_version(name, version)
    if v.source_run:
        ctx.log_text(v.source_run, md, f"model_card/{name}-v{version}.md")
        ctx.log_text(v.source_run, html, f"model_card/{name}-v{version}.html")
    return md_path, html_path
