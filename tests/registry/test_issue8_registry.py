"""Issue 8: nothing a hostile file or client supplies runs at load time; bundles delete only what keel wrote;
model metrics are numbers; promotion and ``keel gate`` share one rule engine."""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import keel
import keel.data
import keel.registry as registry
from keel.core.errors import IntegrityError, InvalidArgument, NotFound, PermissionDenied
from keel.evaluation.gate import gate
from keel.registry import flavors
from keel.store.metadata.base import MetadataStore


class Thresholder:
    """A plain Python model: saved with pickle."""

    def __init__(self, column: str, cut: float) -> None:
        self.column, self.cut = column, cut

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame[self.column].to_numpy() > self.cut).astype(int)


class Evil:
    """Unpickling this writes ``marker``: stands for any code a forged pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "code ran"))


def _json_node(value: Any) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(value),
            "is_json": True}  # fmt: skip


def _list_node(items: list[Any]) -> dict[str, Any]:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": items}


def forged_skops(marker: Path) -> bytes:
    """A real LogisticRegression .skops file with one attribute built by calling
    ``numpy.testing._private.utils.runstring(code, {})``, where the code writes ``marker``."""
    import skops.io as sio

    model = LogisticRegression().fit(np.random.default_rng(0).random((20, 2)), [0, 1] * 10)
    source = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
    schema = json.loads(source.read("schema.json"))
    code = f"open({str(marker)!r}, 'w').write('code ran')"
    schema["content"]["content"]["pwned"] = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [_json_node(code), {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                                           "content": {}, "key_types": _list_node([])}],
        },
    }  # fmt: skip
    schema["content"]["key_types"]["content"].append({"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in source.namelist():
            zf.writestr(name, json.dumps(schema) if name == "schema.json" else source.read(name))
    return out.getvalue()


def _register_blob(blob: bytes, name: str, fmt: str) -> str:
    """Register ``blob`` as a version the way any client of the store can: no keel.registry.register."""
    client = keel.get_client()
    info = client.artifacts.put_bytes(blob)
    version = client.store.models.create_version(
        name, flavor="sklearn", artifact_sha256=info.sha256, size=info.size, signature={"format": fmt}
    )
    return version.uri


# -- 1. skops trusts types, never functions ---------------------------------------------------------------


def test_forged_skops_file_calling_a_numpy_function_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = forged_skops(marker)
    assert flavors.sniff(blob) == "skops"
    uri = _register_blob(blob, "forged", "skops")
    with pytest.raises(PermissionDenied) as caught:
        registry.load(uri)
    assert isinstance(caught.value, flavors.UntrustedModel)
    assert "numpy.testing._private.utils.runstring" in caught.value.message
    assert "not loaded" in caught.value.message
    assert not marker.exists()
    with pytest.raises(flavors.UntrustedModel):
        flavors.load(blob, "skops")
    assert not marker.exists()


def test_trust_is_for_estimator_classes_only_and_real_models_still_load(data) -> None:  # type: ignore[no-untyped-def]
    assert flavors.is_estimator_class("sklearn.linear_model._logistic.LogisticRegression")
    assert flavors.is_estimator_class("sklearn.pipeline.Pipeline")
    for name in (
        "numpy.testing._private.utils.runstring",  # a function under a formerly trusted prefix
        "sklearn.utils.estimator_checks.check_estimator",  # a function in sklearn
        "sklearn.base.clone",
        "sklearn.tree._tree.Tree",  # a class, but no estimator: trusted by name as a tree state (TREE_TYPES) only
        "collections.OrderedDict.fromkeys",
        "builtins.exec",
        "sklearn.linear_model._logistic.LogisticRegression.fit",
        "sklearnx.evil.Thing",
    ):
        assert not flavors.is_estimator_class(name), name
    X, y = data
    model = LogisticRegression(max_iter=5000).fit(X, y)
    version = registry.register(model, "plain", input_example=X.head(3))
    assert version.signature["format"] == "skops"
    np.testing.assert_array_equal(registry.load(version.uri).predict(X), model.predict(X))
    frame = pd.DataFrame({"x": [0.5, 2.0]})
    local = registry.register(Thresholder("x", 1.0), "local-plain", input_example=frame)
    assert registry.load(local.uri).predict(frame).tolist() == [0, 1]  # a pickle in your own store needs no opt-in


# -- 2. pickles from a keel server need an opt-in; the format is read from the bytes ---------------------------


@pytest.fixture
def remote(server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KEEL_STORE", server_url)
    keel.set_client(None)
    return server_url


def _hostile_version(server_url: str, blob: bytes, name: str, fmt: str) -> str:
    """What any client of the server can do with two requests: upload a blob, register it with any format."""
    sha = hashlib.sha256(blob).hexdigest()
    assert httpx.put(f"{server_url}/api/v1/artifacts/{sha}", content=blob).status_code == 200
    body = {"name": name, "flavor": "sklearn", "artifact_sha256": sha, "size": len(blob), "signature": {"format": fmt}}
    response = httpx.post(f"{server_url}/api/v1/models/versions", json=body)
    assert response.status_code == 200, response.text
    return f"models:/{name}/{response.json()['version']}"


def test_a_pickle_registered_over_rest_is_not_unpickled_without_opt_in(remote: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    uri = _hostile_version(remote, pickle.dumps(Evil(marker)), f"hostile-{tmp_path.name}", "pickle")
    with pytest.raises(PermissionDenied) as caught:
        registry.load(uri)
    message = caught.value.message
    assert remote in message and "trust_pickle=True" in message and "KEEL_TRUST_PICKLE=1" in message
    assert "runs any code" in message
    assert not marker.exists()


def test_the_format_comes_from_the_bytes_not_the_request(remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TRUST_PICKLE", "1")  # even a client that trusts pickles
    keel.set_client(None)
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Evil(marker))
    for fmt in ("skops", "onnx"):
        uri = _hostile_version(remote, evil, f"liar-{fmt}-{tmp_path.name}", fmt)
        with pytest.raises(IntegrityError, match=f"registered as a '{fmt}' model but its file is 'pickle'"):
            registry.load(uri)
    assert not marker.exists()
    code = f"open({str(marker)!r}, 'w').write('code ran')".encode()
    proto0 = b"c__builtin__\nexec\n(V" + code + b"\ntR."  # a protocol-0 pickle: not a model file keel writes
    junk = _hostile_version(remote, proto0, f"proto0-{tmp_path.name}", "pickle")
    with pytest.raises(IntegrityError, match="not a skops, pickle"):
        registry.load(junk)
    assert not marker.exists()


def test_trusted_pickles_load_by_argument_or_setting(remote: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    X = pd.DataFrame({"x": [0.5, 2.0]})
    version = registry.register(Thresholder("x", 1.0), f"plain-{tmp_path.name}", input_example=X)
    assert version.signature["format"] == "pickle"
    with pytest.raises(PermissionDenied, match="trust_pickle"):
        registry.load(version.uri)
    assert registry.load(version.uri, trust_pickle=True).predict(X).tolist() == [0, 1]
    monkeypatch.setenv("KEEL_TRUST_PICKLE", "1")
    keel.set_client(None)
    assert registry.load(version.uri).predict(X).tolist() == [0, 1]
    with pytest.raises(PermissionDenied):
        registry.load(version.uri, trust_pickle=False)  # the argument wins over the setting
    monkeypatch.setenv("KEEL_TRUST_PICKLE", "maybe")
    keel.set_client(None)
    with pytest.raises(InvalidArgument, match="KEEL_TRUST_PICKLE must be"):
        registry.load(version.uri)


# -- 3. edge bundles never delete what keel did not write ------------------------------------------------------


@pytest.fixture
def cancer_version(data) -> str:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.head(200), "holdout", run=False)
    return registry.register(LogisticRegression(max_iter=5000).fit(X, y), "edge", input_example=X.head(3)).uri


def test_bundle_into_a_project_folder_is_refused_and_deletes_nothing(cancer_version: str, tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    source.write_text("print('my code')\n")
    db = tmp_path / ".keel" / "keel.db"
    assert db.is_file()
    for dest in (".", tmp_path):
        with pytest.raises(InvalidArgument, match="not empty and holds no earlier keel bundle"):
            registry.edge_bundle(cancer_version, dest)
    assert source.read_text() == "print('my code')\n" and db.is_file()
    assert [v.version for v in keel.get_client().store.models.list_versions("edge")] == [1]  # nothing exported


def test_rebundling_replaces_only_the_files_keel_wrote(cancer_version: str, tmp_path: Path) -> None:

    rows = keel.data.get("holdout", run=False)
    folder = registry.edge_bundle(cancer_version, tmp_path / "edge", data=rows)
    manifest = json.loads((folder / ".keel-bundle.json").read_text())
    assert set(manifest["files"]) == {"model.onnx", "signature.json", "model_card.md", "predictor.py",
                                      "test_predictor.py", "samples.json"}  # fmt: skip
    (folder / "notes.txt").write_text("mine")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    manifest["files"].append("../precious.txt")  # a hand-edited manifest cannot point keel elsewhere
    (folder / ".keel-bundle.json").write_text(json.dumps(manifest))
    again = registry.edge_bundle("models:/edge/2", folder, data=rows)
    assert again == folder and (folder / "notes.txt").read_text() == "mine" and precious.read_text() == "keep"
    assert (folder / "model.onnx").is_file()
    assert json.loads((folder / ".keel-bundle.json").read_text())["model"] == "models:/edge/2"
    with zipfile.ZipFile(folder.with_suffix(".zip")) as zf:
        assert "notes.txt" not in zf.namelist() and "model.onnx" in zf.namelist()
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "other.zip").write_text("not keel's")
    with pytest.raises(InvalidArgument, match="was not written by keel"):
        registry.edge_bundle("models:/edge/2", other, data=rows)
    assert (tmp_path / "other.zip").read_text() == "not keel's"


# -- 5. a model metric is a number ---------------------------------------------------------------------------


@pytest.mark.parametrize("metrics", [{"auc": "high"}, {"auc": None}, {"auc": [1.0]}, {"bad key\n": 1.0}, ["auc"]])
def test_non_numeric_model_metrics_are_invalid_arguments(store: MetadataStore, metrics: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"metric|metrics"):
        store.models.create_version("metrics-model", flavor="python", artifact_sha256="a" * 64, size=1, signature={},
                                    metrics=metrics)  # fmt: skip
    version = store.models.create_version("metrics-model", flavor="python", artifact_sha256="a" * 64, size=1,
                                          signature={}, metrics={"auc": np.float64(0.9), "n": 3})  # fmt: skip
    assert version.metrics == {"auc": 0.9, "n": 3.0}


def test_a_signature_that_is_not_json_is_an_invalid_argument(tmp_path: Path) -> None:
    from keel.store.metadata import open_store

    store = open_store(f"sqlite:///{tmp_path / 'sig.db'}")
    try:
        with pytest.raises(InvalidArgument, match="signature must be"):
            store.models.create_version("sig", flavor="python", artifact_sha256="a" * 64, size=1,
                                        signature={"x": object()})  # fmt: skip
        with pytest.raises(InvalidArgument, match="requirements must be"):
            store.models.create_version("sig", flavor="python", artifact_sha256="a" * 64, size=1, signature={},
                                        requirements=[1])  # type: ignore[list-item]  # fmt: skip
    finally:
        store.close()


# -- 6. one rule engine ----------------------------------------------------------------------------------------


def _versions_with_auc(*aucs: float) -> None:
    for auc in aucs:
        with keel.start_run(experiment="gates") as run:
            run.log_metric("auc", auc)
            registry.register(Thresholder("x", 0.0), "gated")


def test_promotion_uses_keel_gates_engine_and_refuses_a_baseline_rule_without_a_holder() -> None:
    _versions_with_auc(0.9, 0.905, math.nan)
    with pytest.raises(InvalidArgument, match="'auc >= baseline' compares with a baseline; no version of 'gated' holds"):
        registry.promote("gated", 1, "production", rules=["auc >= baseline"])
    assert keel.get_client().store.models.get_version("gated", 1).aliases == ()  # nothing moved
    run = keel.search_runs("gates", output="list")[-1]
    with pytest.raises(InvalidArgument, match="'auc >= baseline' compares with a baseline; pass a baseline run"):
        gate(run.id, ["auc >= baseline"])
    registry.promote("gated", 1, "production", rules=["auc >= 0.5"])
    assert registry.resolve("models:/gated@production").version == 1
    # the same engine decides the rest: relative thresholds, NaN fails, a missing metric is bad input
    with pytest.raises(registry.PromotionRefused, match=r"'auc >= baseline \+ 1%': auc is 0.905, threshold 0.909"):
        registry.promote("gated", 2, "production", rules=["auc >= baseline + 1%"])
    with pytest.raises(registry.PromotionRefused, match="auc is nan"):
        registry.promote("gated", 3, "production", rules=["auc <= 1"])  # NaN fails, as in keel gate
    runs = {auc: r.id for r in keel.search_runs("gates", output="list") if (auc := r.metric("auc")) is not None}
    nan_run = next(run_id for auc, run_id in runs.items() if math.isnan(auc))
    assert not gate(nan_run, ["auc <= 1"]).passed
    with pytest.raises(InvalidArgument, match="has no metric 'loss'"):
        registry.promote("gated", 2, "production", rules=["loss <= 1"])


def test_keel_models_register_does_not_unpickle_a_served_artifact_without_opt_in(
    remote: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keel.cli.main import main

    marker = tmp_path / "pwned"
    client = keel.get_client()
    run = client.create_run("cli-trust")
    client.log_bytes(run.id, pickle.dumps(Evil(marker)), "output.pkl")
    client.end_run(run.id)
    assert main(["models", "register", "--run", run.id, "--name", f"cli-{tmp_path.name}"]) == 2
    assert "KEEL_TRUST_PICKLE=1" in capsys.readouterr().err
    assert not marker.exists()
    good = client.create_run("cli-trust")
    client.log_bytes(good.id, pickle.dumps(Thresholder("x", 1.0)), "output.pkl")
    client.end_run(good.id)
    assert main(["models", "register", "--run", good.id, "--name", f"cli-{tmp_path.name}", "--trust-pickle"]) == 0


# -- review: tree models are skops again; from a keel server they need the opt-in --------------------------------


def test_tree_models_save_as_skops_and_load_from_a_local_store(data: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    X, y = data
    assert set(flavors.TREE_TYPES) == {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
    for name, model in (("forest", RandomForestClassifier(n_estimators=5, random_state=0)),
                        ("hist", HistGradientBoostingClassifier(max_iter=5, random_state=0))):  # fmt: skip
        model.fit(X, y)
        version = registry.register(model, name, input_example=X.head(3))
        assert version.signature["format"] == "skops", name  # not a silent fallback to cloudpickle
        assert flavors.sniff(keel.get_client().artifacts.get_bytes(version.artifact_sha256)) == "skops"
        np.testing.assert_array_equal(registry.load(version.uri).predict_proba(X), model.predict_proba(X))


def test_a_tree_model_from_a_keel_server_needs_the_opt_in(
    remote: str, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    version = registry.register(forest, f"forest-{tmp_path.name}", input_example=X.head(3))
    assert version.signature["format"] == "skops"
    with pytest.raises(flavors.UntrustedModel) as caught:
        registry.load(version.uri)
    message = caught.value.message
    assert "sklearn.tree._tree.Tree" in message and "bounds-check" in message and "trust_pickle=True" in message
    np.testing.assert_array_equal(registry.load(version.uri, trust_pickle=True).predict(X), forest.predict(X))
    monkeypatch.setenv("KEEL_TRUST_PICKLE", "1")
    keel.set_client(None)
    np.testing.assert_array_equal(registry.load(version.uri).predict(X), forest.predict(X))
    logistic = registry.register(LogisticRegression(max_iter=5000).fit(X, y), f"plain-{tmp_path.name}", input_example=X.head(3))
    monkeypatch.setenv("KEEL_TRUST_PICKLE", "0")
    keel.set_client(None)
    assert registry.load(logistic.uri).predict(X.head(2)).shape == (2,)  # no tree, no opt-in needed


def test_keel_models_export_takes_trust_pickle(
    remote: str, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from keel.cli.main import main

    X, y = data
    name = f"edge-forest-{tmp_path.name}"
    registry.register(
        RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y), name, input_example=X.head(3)
    )
    keel.data.log(X.head(50), f"rows-{tmp_path.name}", run=False)
    assert main(["models", "export", f"{name}/1", "--data", f"rows-{tmp_path.name}"]) == 2
    assert "bounds-check" in capsys.readouterr().err
    assert main(["models", "export", f"{name}/1", "--data", f"rows-{tmp_path.name}", "--trust-pickle"]) == 0
    assert registry.resolve(f"models:/{name}/2").flavor == "onnx"


def test_a_failed_rebundle_leaves_the_earlier_bundle_as_it_was(cancer_version: str, tmp_path: Path) -> None:
    rows = keel.data.get("holdout", run=False)
    folder = registry.edge_bundle(cancer_version, tmp_path / "edge", data=rows)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    zipped = folder.with_suffix(".zip").read_bytes()
    assert set(before) >= {"model.onnx", "samples.json", ".keel-bundle.json"}
    for bad in ("models:/edge/99", "models:/no-such-model", "not a uri"):
        with pytest.raises((InvalidArgument, NotFound)):
            registry.edge_bundle(bad, folder, data=rows)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert folder.with_suffix(".zip").read_bytes() == zipped
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keel", "edge", "edge.zip"]  # no staging folder left behind
