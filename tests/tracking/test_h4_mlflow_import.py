"""``keel import mlflow``: stores written by MLflow itself (tests/fixtures/mlflow, see make_stores.py) imported
into SQLite, PostgreSQL and a real keel server, value by value; re-imports, deleted runs, half-imported runs,
moved stores and bad sources."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.cli.main import main
from keel.core.entities import Run, RunStatus
from keel.core.errors import InvalidArgument
from keel.testing import services
from keel.tracking.client import Client
from keel.tracking.mlflow_import import IMPORTED_FROM, NOTE_TAG, import_mlflow
from keel.tracking.mlflow_source import open_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow"
_spec = importlib.util.spec_from_file_location("make_stores", FIXTURES / "make_stores.py")
assert _spec is not None and _spec.loader is not None
make_stores = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_stores)  # the expected values, from the script that wrote the stores (no MLflow needed)
EXPECTED: dict[str, dict[str, Any]] = make_stores.EXPECTED
T0: int = make_stores.T0


def _copy(kind: str, dest: Path) -> str:
    """A copy of a fixture store elsewhere (as in a fresh clone: the artifact paths it holds do not point there)."""
    shutil.copytree(FIXTURES / kind, dest / kind)
    return str(dest / kind / "mlruns") if kind == "filestore" else f"sqlite:///{dest / kind / 'mlflow.db'}"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A keel server for this module only: imports are idempotent across a store, so no other test may share it."""
    base = tmp_path_factory.mktemp("mlflow-import-server")
    with services.keel_server(f"sqlite:///{base / 'keel.db'}", str(base / "artifacts")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def keel_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    if request.param == "sqlite":
        client = Client(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    elif request.param == "postgres":
        client = Client(str(request.getfixturevalue("fresh_postgres_url")), str(tmp_path / "artifacts"))
    else:
        client = Client(str(request.getfixturevalue("own_server")))
    yield client
    client.close()


def _runs(client: Client, ids: set[str]) -> dict[str, Run]:
    """This import's runs by name (the module's keel server holds both fixture stores' runs)."""
    runs = [r for r in client.iter_runs() if r.id in ids]
    assert len(runs) == len(ids)
    return {run.name: client.get_run(run.id) for run in runs}


@pytest.mark.parametrize("kind", ["filestore", "sqlite"])
def test_every_value_of_an_mlflow_store_arrives(kind: str, keel_client: Client, tmp_path: Path) -> None:
    source = _copy(kind, tmp_path)
    summary = import_mlflow(source, client=keel_client)
    assert (summary.runs, summary.metric_points, summary.artifacts, summary.artifact_bytes) == (4, 505, 2, 26)
    assert (summary.params, summary.tags) == (7, 6)  # tags: team + note + 4 x keel.imported_from
    assert sorted(summary.experiments) == ["churn", "fraud"]
    assert (summary.skipped_deleted_runs, summary.skipped_deleted_experiments, summary.skipped_existing) == (2, 1, 0)
    assert summary.failed == {}

    runs = _runs(keel_client, set(summary.run_ids.values()))
    assert sorted(runs) == ["baseline", "broken", "child-fold-1", "rf"]  # neither deleted run
    names = {e.name for e in keel_client.store.list_experiments()}
    assert {"churn", "fraud"} <= names and "scratch" not in names
    for name, spec in EXPECTED.items():
        run = runs[name]
        assert keel_client.store.get_experiment(run.experiment_id).name == spec["experiment"]
        assert run.status is RunStatus(spec["status"].lower())
        assert (run.start_time, run.end_time) == (spec["start"], spec["end"])
        mlflow_id = run.tags[IMPORTED_FROM].removeprefix("mlflow:")
        assert summary.run_ids[mlflow_id] == run.id

    base = runs["baseline"]
    assert base.params == EXPECTED["baseline"]["params"]
    assert base.tags == {"team": "growth", NOTE_TAG: EXPECTED["baseline"]["note"], IMPORTED_FROM: base.tags[IMPORTED_FROM]}
    assert base.code.git_commit == EXPECTED["baseline"]["tags"]["mlflow.source.git.commit"]
    loss = keel_client.get_metric_history(base.id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in loss] == [(s, 1.0 / (s + 1), T0 + 100 * s) for s in range(500)]
    acc = keel_client.get_metric_history(base.id, "val/acc")
    assert [(m.step, m.timestamp) for m in acc] == [(0, T0 + 1), (1, T0 + 2), (2, T0 + 3)]
    assert acc[0].value == 0.5 and math.isnan(acc[1].value) and acc[2].value == 0.75
    assert sorted(a.path for a in keel_client.list_artifacts(base.id)) == ["notes.txt", "plots/sub/data.csv"]
    for path, text in EXPECTED["baseline"]["artifacts"].items():
        assert keel_client.read_artifact(base.id, path) == text.encode()

    child = runs["child-fold-1"]
    assert child.parent_run_id == base.id and "mlflow.parentRunId" not in child.tags
    assert child.params == {"fold": "1"} and child.metric("auc") == 0.81
    assert [(m.step, m.timestamp) for m in keel_client.get_metric_history(child.id, "auc")] == [(0, T0 + 1_500)]
    assert runs["broken"].params == {"C": "-1"} and runs["broken"].parent_run_id is None
    assert runs["rf"].params == {"n_estimators": "200", "max_depth": "None"} and runs["rf"].metric("auc") == 0.93

    again = import_mlflow(source, client=keel_client)  # idempotent: nothing new
    assert (again.runs, again.metric_points, again.skipped_existing, again.run_ids) == (0, 0, 4, {})
    assert len([r for r in keel_client.iter_runs() if r.tags[IMPORTED_FROM].removeprefix("mlflow:") in summary.run_ids]) == 4
    assert len(keel_client.get_metric_history(base.id, "loss")) == 500


def test_moved_store_reads_its_own_artifacts(tmp_path: Path) -> None:
    """The fixtures hold the absolute paths MLflow wrote; a copy elsewhere must read the copy's folders."""
    for kind in ("filestore", "sqlite"):
        source = open_source(_copy(kind, tmp_path))
        try:
            churn = next(e for e in source.experiments() if e.name == "churn")
            baseline = next(r for r in source.runs(churn) if r.name == "baseline")
            assert baseline.artifact_uri is not None and str(tmp_path) not in baseline.artifact_uri
            folder = source.artifact_folder(baseline)
            assert folder is not None and folder.is_relative_to(tmp_path / kind)
            assert (folder / "plots" / "sub" / "data.csv").read_text() == "a,b\n1,2\n"
        finally:
            source.close()


def test_a_half_imported_run_is_completed_not_duplicated(tmp_path: Path) -> None:
    """An import stopped after creating a run (before its end, which carries the metrics) is finished by the next."""
    source = _copy("sqlite", tmp_path)
    client = Client(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    with sqlite3.connect(tmp_path / "sqlite" / "mlflow.db") as conn:
        (rf_id,) = conn.execute("SELECT run_uuid FROM runs WHERE name = 'rf'").fetchone()
    exp = client.store.get_or_create_experiment("fraud")
    half = client.store.create_run(exp.id, "rf", tags={IMPORTED_FROM: f"mlflow:{rf_id}"}, params={"n_estimators": "200"})
    summary = import_mlflow(source, client=client, experiments=["fraud"])
    assert (summary.runs, summary.skipped_existing, summary.run_ids) == (1, 0, {rf_id: half.id})
    runs = [r for r in client.iter_runs() if r.name == "rf"]
    assert [r.id for r in runs] == [half.id]
    done = client.get_run(half.id)
    assert done.status is RunStatus.FINISHED and done.end_time == T0 + 20_000 and done.metric("auc") == 0.93
    assert [m.value for m in client.get_metric_history(half.id, "auc")] == [0.93]
    client.close()


def test_a_run_keel_cannot_hold_fails_alone_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _copy("sqlite", tmp_path)
    with sqlite3.connect(tmp_path / "sqlite" / "mlflow.db") as conn:
        (broken_id,) = conn.execute("SELECT run_uuid FROM runs WHERE name = 'broken'").fetchone()
        conn.execute("UPDATE params SET value = ? WHERE run_uuid = ?", ("x" * 7000, broken_id))  # keel: 6000 at most
    code = main(["import", "mlflow", source])
    out = capsys.readouterr().out
    assert code == 1
    assert f"not imported MLflow run {broken_id}: param 'C' value must be at most 6000 characters" in out
    assert "imported 3 runs into 2 experiments" in out
    client = Client()
    assert sorted(r.name for r in client.iter_runs()) == ["baseline", "child-fold-1", "rf"]
    client.close()


def test_cli_imports_then_skips_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _copy("filestore", tmp_path)
    assert main(["import", "mlflow", source, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would import 4 runs into 2 experiments (churn, fraud): 505 metric points, 7 params, 6 tags, 2 artifacts" in out
    assert not (tmp_path / ".keel").exists()  # a dry run creates no store
    assert main(["import", "mlflow", source, "-e", "fraud"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 run into 1 experiment (fraud): 1 metric point, 2 params, 1 tag, 0 artifacts (0 bytes)" in out
    assert "skipped 0 runs imported before, 1 run deleted in MLflow (0 deleted experiments)" in out
    assert f"store {tmp_path / '.keel'}" in out
    assert main(["import", "mlflow", str(tmp_path / "filestore")]) == 0  # the folder holding mlruns/ will do
    out = capsys.readouterr().out
    assert "imported 3 runs into 1 experiment (churn): 504 metric points" in out
    assert "skipped 1 run imported before, 2 runs deleted in MLflow (1 deleted experiment)" in out
    assert main(["import", "mlflow", source, "--dry-run"]) == 0  # checked against the store: nothing left to import
    out = capsys.readouterr().out
    assert "would import 0 runs into 0 experiments" in out and "skipped 4 runs imported before" in out
    assert f"checked against {tmp_path / '.keel'}" in out


def _s3_store(tmp_path: Path) -> str:
    source = _copy("sqlite", tmp_path)
    with sqlite3.connect(tmp_path / "sqlite" / "mlflow.db") as conn:
        conn.execute("UPDATE runs SET artifact_uri = 's3://bucket/1/abc/artifacts' WHERE name = 'rf'")
    return source


def _not_mlflow_db(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    return str(tmp_path / "other.db")


def _corrupt_meta(tmp_path: Path) -> str:
    source = _copy("filestore", tmp_path)
    meta = next(p for p in Path(source).glob("*/*/meta.yaml"))
    meta.write_text("run_id: [unclosed\n")
    return source


def _bad_metric_line(tmp_path: Path) -> str:
    source = _copy("filestore", tmp_path)
    loss = next(Path(source).glob("*/*/metrics/loss"))
    loss.write_text(loss.read_text() + "not a metric line at all\n")
    return source


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: str(p / "missing"), "source must be an MLflow file store folder (mlruns/) or SQLite database"),
        (lambda p: (p / "junk.db").write_bytes(b"\x00garbage") and str(p / "junk.db"), "junk.db is not an SQLite database"),
        (lambda p: "http://127.0.0.1:5000", "cannot import from a tracking server (http://127.0.0.1:5000)"),
        (lambda p: "postgresql://u@h/db", "cannot import from postgresql:// stores"),
        (_not_mlflow_db, "is not an MLflow tracking database (no table experiments, metrics, params, runs, tags)"),
        (_s3_store, "artifacts are at s3://bucket/1/abc/artifacts: keel imports local artifact folders"),
        (_corrupt_meta, "cannot read MLflow metadata"),
        (_bad_metric_line, "line 501 is malformed: 'not a metric line at all'"),
    ],
)
def test_bad_sources_are_one_line_and_exit_2(make: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make(tmp_path)
    code = main(["import", "mlflow", source])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keel: error: ") and message in lines[0]
    if (tmp_path / ".keel" / "keel.db").exists():  # checked before any write: nothing imported
        client = Client()
        assert list(client.iter_runs()) == []
        client.close()


def test_unknown_experiment_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"it has: Default, churn, fraud, scratch\); got 'nope'"):
        import_mlflow(_copy("sqlite", tmp_path), experiments=["nope"], dry_run=True)


def test_long_histories_go_in_chunks_each_stored_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past METRIC_CHUNK points a run's history is sent in several batches (a server's request limit), each once."""
    from keel.tracking import mlflow_import

    monkeypatch.setattr(mlflow_import, "METRIC_CHUNK", 64)
    client = Client(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    summary = import_mlflow(_copy("sqlite", tmp_path), client=client, experiments=["churn"])
    assert (summary.runs, summary.metric_points) == (3, 504)
    base = next(r for r in client.iter_runs() if r.name == "baseline")
    loss = client.get_metric_history(base.id, "loss")
    assert [(m.step, m.value) for m in loss] == [(s, 1.0 / (s + 1)) for s in range(500)]
    assert base.status is RunStatus.FINISHED and base.end_time == T0 + 60_000
    client.close()


def test_cli_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _copy("sqlite", tmp_path)
    assert main(["import", "mlflow", source, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["runs"], first["metric_points"], first["skipped_deleted_runs"], first["dry_run"]) == (4, 505, 2, False)
    assert first["store"] == str(tmp_path / ".keel") and len(first["run_ids"]) == 4
    assert main(["import", "mlflow", source, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["runs"], again["skipped_existing"], again["run_ids"]) == (0, 4, {})
