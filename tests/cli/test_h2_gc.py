"""``keel runs delete|restore``, ``keel experiments``, and ``keel gc`` on a quickstart-like store (issue 13): gc
purges what was deleted, removes only the blobs no record names, and every record left still loads."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import keel
from keel.core.errors import InvalidArgument, NotFound
from keel.store.gc import collect_garbage
from keel.testing.cli import keel_cmd

FLOW = """
import keel

@keel.step
def prepare(n: int):
    return [i * 1.5 for i in range(n)]

@keel.step
def total(xs):
    keel.log_metric("total", sum(xs))
    return {"total": sum(xs)}

@keel.pipeline
def flow(n: int = 4):
    return total(prepare(n))
"""


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def _blobs(root: Path) -> set[str]:
    return {p.name for p in (root / "sha256").glob("*/*")}


@pytest.fixture
def flow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    (tmp_path / "h2_gc_flow.py").write_text(textwrap.dedent(FLOW))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    module = importlib.import_module("h2_gc_flow")
    yield module
    sys.modules.pop("h2_gc_flow", None)


def test_gc_removes_only_what_no_record_names_and_every_record_left_loads(tmp_path: Path, flow_module: object) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
    with keel.start_run(experiment="quickstart", name="train") as train:
        dataset = keel.data.log(frame, "orders")
        model = LogisticRegression().fit(frame[["x"]], frame["y"])
        version = keel.registry.register(model, "scorer", input_example=frame[["x"]].head(2))
        keel.log_text("shared notes", "notes.txt")
        keel.log_text("kept only", "kept.txt")
    onnx = keel.registry.export_onnx(version.uri, frame[["x"]])
    first = flow_module.flow.run(n=4)  # type: ignore[attr-defined]
    with keel.start_run(experiment="quickstart", name="doomed") as doomed:
        keel.log_text("shared notes", "notes.txt")  # the same bytes as a live run's: the blob must stay
        keel.log_text("only the doomed run has this", "doomed.txt")
    with keel.start_run(experiment="scratch", name="in-deleted-experiment") as scratch:
        keel.log_text("scratch only", "scratch.txt")
    client = keel.get_client()
    root = tmp_path / ".keel" / "artifacts"
    doomed_only = client._artifact(doomed.id, "doomed.txt").sha256
    scratch_only = client._artifact(scratch.id, "scratch.txt").sha256
    shared = client._artifact(doomed.id, "notes.txt").sha256
    foreign = [root / "README.txt", root / "sha256" / "ab" / "not-a-blob", root / "corrupt" / ("e" * 64)]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not keel's")
    unreferenced = client.artifacts.put_bytes(b"written, never recorded").sha256

    out = _ok(keel_cmd(tmp_path, "runs", "delete", doomed.id[:12]))
    assert f"deleted run {doomed.id[:12]} (doomed)" in out
    _ok(keel_cmd(tmp_path, "experiments", "delete", "scratch"))
    listed = _ok(keel_cmd(tmp_path, "experiments", "list", "--deleted"))
    assert "scratch" in listed and "quickstart" not in listed
    assert doomed.id[:12] not in _ok(keel_cmd(tmp_path, "runs", "list"))
    assert "deleted" in _ok(keel_cmd(tmp_path, "runs", "show", doomed.id[:12]))  # by id it still shows

    before = _blobs(root)
    dry = _ok(keel_cmd(tmp_path, "gc", "--dry-run", "--grace-minutes", "0"))
    assert f"would purge run {doomed.id[:12]} (doomed)" in dry and "would purge experiment scratch" in dry
    assert f"would remove blob {doomed_only[:16]}" in dry and f"would remove blob {unreferenced[:16]}" in dry
    assert shared[:16] not in dry
    assert _blobs(root) == before and client.get_run(doomed.id).deleted  # a dry run changes nothing

    kept = _ok(keel_cmd(tmp_path, "gc", "--older-than", "1", "--grace-minutes", "0"))  # deleted today: too recent
    assert "0 runs and 0 experiments purged; 1 blobs, 23 bytes freed" in kept  # the blob no record ever named
    assert client.get_run(doomed.id).deleted and not client.artifacts.exists(unreferenced)

    out = _ok(keel_cmd(tmp_path, "gc", "--grace-minutes", "0"))
    assert f"purged run {doomed.id[:12]}" in out and f"purged run {scratch.id[:12]}" in out
    assert "2 runs and 1 experiments purged; 2 blobs, 40 bytes freed" in out  # doomed.txt and scratch.txt
    removed = before - _blobs(root)
    assert {doomed_only, scratch_only, unreferenced} <= removed and shared not in removed
    with pytest.raises(NotFound):
        client.get_run(doomed.id)
    with pytest.raises(NotFound):
        client.store.get_experiment_by_name("scratch")
    for path in foreign:
        assert path.read_text() == "not keel's"

    # every record left loads, its bytes verified against their hashes
    for run in client.iter_runs(view="all"):
        for ref in client.list_artifacts(run.id):
            assert client.read_artifact(run.id, ref.path)
        if run.environment.packages_blob:
            assert client.artifacts.get_bytes(run.environment.packages_blob)
    assert client.read_artifact(train.id, "notes.txt") == b"shared notes"
    assert keel.data.get(dataset.ref).equals(frame)
    assert keel.registry.load(version.uri).model.predict(frame[["x"]]).tolist() == [0, 0, 0, 1, 1, 1]
    assert keel.registry.load(onnx.uri).version.flavor == "onnx"
    again = flow_module.flow.run(n=4)  # type: ignore[attr-defined]
    assert [s.status for s in again.steps] == ["cached", "cached"] and again.output == first.output
    assert client.store.audit.verify() is None  # the chain is intact, the purges in it
    assert [e.action for e in client.store.audit.events(entity="run", entity_id=doomed.id)][-2:] == ["runs.delete", "runs.purge"]


def test_a_blob_put_again_while_gc_runs_survives_and_a_stale_one_goes(tmp_path: Path) -> None:
    client = keel.get_client()
    renewed = client.artifacts.put_bytes(b"about to be referenced again").sha256
    stale = client.artifacts.put_bytes(b"nobody wants this").sha256
    time.sleep(0.6)
    client.artifacts.put_bytes(b"about to be referenced again")  # a dedup'd put renews the blob (ctime)
    report = collect_garbage(client.store, client.artifacts, blob_grace_ms=300)
    assert [sha for sha, _ in report.blobs] == [stale]
    assert client.artifacts.exists(renewed) and not client.artifacts.exists(stale)
    fresh = client.artifacts.put_bytes(b"written just now").sha256
    assert collect_garbage(client.store, client.artifacts).blobs == []  # the default grace spares it
    assert client.artifacts.exists(fresh)


def test_a_deleted_run_a_model_version_names_is_kept(tmp_path: Path) -> None:
    with keel.start_run(experiment="models") as run:
        version = keel.registry.register(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "kept-model")
    keel.delete_run(run.id)
    client = keel.get_client()
    report = collect_garbage(client.store, client.artifacts, blob_grace_ms=0)
    assert report.runs == [] and report.kept == [f"run {run.id}: model kept-model version 1 was trained by it"]
    assert keel.registry.load(version.uri).model.predict([[1.0]]).tolist() == [1]
    assert client.get_run(run.id).deleted  # still there, still restorable
    keel.restore_run(run.id)


def test_gc_refuses_what_it_cannot_sweep_safely(tmp_path: Path, server_url: str) -> None:
    remote = keel.tracking.client.Client(server_url)
    with pytest.raises(InvalidArgument, match="not over HTTP"):
        collect_garbage(remote.store, keel.get_client().artifacts)
    with pytest.raises(InvalidArgument, match="older_than_ms"):
        collect_garbage(keel.get_client().store, keel.get_client().artifacts, older_than_ms=-1)
    remote.close()


def test_cli_restore_and_one_line_errors(tmp_path: Path) -> None:
    with keel.start_run(experiment="cli") as a:
        pass
    with keel.start_run(experiment="cli") as b:
        pass
    _ok(keel_cmd(tmp_path, "runs", "delete", a.id[:12], b.id))
    out = _ok(keel_cmd(tmp_path, "runs", "restore", a.id[:12], b.id[:12]))
    assert out.count("restored run") == 2 and not keel.get_client().get_run(a.id).deleted
    again = keel_cmd(tmp_path, "runs", "restore", a.id[:12])
    assert again.returncode == 2 and again.stderr == f"keel: error: run {a.id} is not deleted: there is nothing to restore\n"
    missing = keel_cmd(tmp_path, "runs", "delete", a.id[:12], "ffffffffffff")
    assert missing.returncode == 2 and "ffffffffffff" in missing.stderr
    assert not keel.get_client().get_run(a.id).deleted  # every id is checked before anything changes
    _ok(keel_cmd(tmp_path, "experiments", "delete", "cli"))
    _ok(keel_cmd(tmp_path, "experiments", "restore", "cli"))
    assert "cli" in _ok(keel_cmd(tmp_path, "experiments", "list"))
    bad = keel_cmd(tmp_path, "gc", "--older-than", "-1")
    assert bad.returncode == 2 and "--older-than" in bad.stderr
