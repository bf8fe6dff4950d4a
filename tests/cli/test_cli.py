"""The ``keel`` command, run as a user runs it: a real subprocess in a fresh folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from keel.core.entities import RunStatus
from keel.testing.cli import keel_cmd
from keel.tracking.client import Client


@pytest.fixture(scope="module")
def quickstarted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("empty")
    return folder, keel_cmd(folder, "quickstart")


def test_quickstart_tracks_every_model_in_an_empty_folder(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, done = quickstarted
    assert done.returncode == 0, done.stderr
    assert "best:" in done.stdout and "keel runs list" in done.stdout and "keel server" in done.stdout
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    runs = list(client.iter_runs("quickstart"))
    sweep = next(r for r in runs if r.name == "model-sweep")
    children = [r for r in runs if r.parent_run_id == sweep.id]
    assert len(children) == 6 and all(r.status is RunStatus.FINISHED for r in runs)
    best = client.get_run(sweep.tags["best_run"])
    assert best.metric("cv_roc_auc") == max(r.metric("cv_roc_auc") for r in children)
    assert best.name in done.stdout
    for child in children:
        assert len(client.get_metric_history(child.id, "fold_roc_auc")) == 5  # one value per fold
        assert 0.9 < child.metric("test_roc_auc") <= 1.0
        assert child.params["model"] in {"logistic_regression", "random_forest", "gradient_boosting"}
        assert [a.path for a in client.list_artifacts(child.id)] == ["model.pkl"]
        assert child.environment.packages_hash is not None
    boosted = next(r for r in children if r.params["model"] == "gradient_boosting")
    assert len(client.get_metric_history(boosted.id, "train_loss")) == 120  # a per-stage curve
    report = folder / ".keel" / "reports" / "quickstart.html"
    assert str(report) in done.stdout
    page = report.read_text()
    assert page.count("<svg") >= 4  # fold_accuracy, fold_f1, fold_roc_auc, train_loss
    assert "train_loss" in page and all(r.name in page for r in children)
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_quickstart_versions_validates_and_checks_drift_of_its_data(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, done = quickstarted
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    datasets = client.store.datasets
    version = datasets.get_version("breast-cancer")
    assert (version.ref, version.row_count, len(version.schema)) == ("breast-cancer@1", 569, 31)
    assert datasets.list_validations(version.id)[0].passed
    assert (folder / ".keel" / "suites" / "breast-cancer.yaml").is_file()
    sweep = next(r for r in client.iter_runs("quickstart") if r.name == "model-sweep")
    assert (sweep.id, "input") in datasets.runs_of_version(version.id)  # lineage: data -> sweep -> models
    assert datasets.get_version("breast-cancer-reference").parents == ("breast-cancer@1",)
    assert "0 of 31 columns drifted" in done.stdout.replace("\n", " ")
    assert "mean radius" in done.stdout and "mean texture" in done.stdout
    drift_page = (folder / ".keel" / "reports" / "drift.html").read_text()
    assert "mean radius (drifted)" in drift_page and drift_page.count("<svg") == 31


def test_runs_list_show_and_compare(quickstarted: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    folder, _ = quickstarted
    listed = keel_cmd(folder, "runs", "list", "--json", "-f", "metrics.cv_roc_auc > 0", "-o", "metrics.cv_roc_auc DESC")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 6
    scores = [r["metrics"]["cv_roc_auc"]["value"] for r in runs]
    assert scores == sorted(scores, reverse=True)
    table = keel_cmd(folder, "runs", "list", "-e", "quickstart")
    assert table.returncode == 0 and "model-sweep" in table.stdout and "7 runs" in table.stdout
    best, worst = runs[0]["id"], runs[-1]["id"]
    shown = keel_cmd(folder, "runs", "show", best[:10])
    assert shown.returncode == 0, shown.stderr
    assert best in shown.stdout and "fold_roc_auc" in shown.stdout and "model.pkl" in shown.stdout
    compared = keel_cmd(folder, "runs", "compare", best, worst[:12])
    assert compared.returncode == 0, compared.stderr
    assert runs[0]["name"] in compared.stdout and runs[-1]["name"] in compared.stdout and "cv_roc_auc" in compared.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["runs", "list", "--limit", "x"], "'--limit'"),
        (["runs", "list", "-f", "metrics.x >"], "filter 'metrics.x >' is not valid"),
        (["runs", "list", "-o", "metrics.x upward"], "order_by must be"),
        (["runs", "list", "--limit", "0"], "max_results must be an integer from 1"),
        (["runs", "show", "nope"], "no run id starts with 'nope'"),
        (["runs", "compare", "abcd"], "at least two run ids"),
        (["server", "--port", "70000"], "--port must be a port number"),
        (["sprint"], "No such command 'sprint'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = keel_cmd(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keel: error:"), done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


def test_bad_configuration_is_one_line_too(tmp_path: Path) -> None:
    (tmp_path / "keel.toml").write_text("[keel\nstore = ")
    done = keel_cmd(tmp_path, "runs", "list")
    assert done.returncode == 2 and done.stderr.startswith("keel: error:") and "keel.toml is not valid TOML" in done.stderr
