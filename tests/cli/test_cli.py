"""The ``keel`` command, run as a user runs it: a real subprocess in a fresh folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keel.context import Context
from keel.core.entities import RunStatus
from keel.testing.cli import keel_cmd
from keel.tracking.client import Client


@pytest.fixture(scope="module")
def quickstarted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("empty")
    return folder, keel_cmd(folder, "quickstart")


def test_quickstart_runs_the_lifecycle_in_an_empty_folder(quickstarted: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    folder, done = quickstarted
    assert done.returncode == 0, done.stderr
    for text in (
        "1. data",
        "2. labels",
        "3. experiments",
        "4. models",
        "5. drift",
        "baseline pipeline",
        "HPO: 8 trials",
        "gate",
        "keel server",
        "9. governance",
        "chain verified",
    ):
        assert text in done.stdout
    audited = re.search(r"audit log: (\d+) events", done.stdout)
    assert audited is not None and int(audited.group(1)) > 50  # every run, version, alias move and deployment change
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    runs = list(client.iter_runs("quickstart"))
    assert all(r.status is RunStatus.FINISHED or (r.trial is not None and r.trial.state == "pruned") for r in runs)
    pipelines = sorted((r for r in runs if r.tags.get("keel.kind") == "pipeline"), key=lambda r: r.start_time)
    assert len(pipelines) == 2
    steps = {p.id: {r.name: r for r in runs if r.parent_run_id == p.id} for p in pipelines}
    baseline_steps, tuned_steps = steps[pipelines[0].id], steps[pipelines[1].id]
    assert set(baseline_steps) == {"load", "split", "fit", "evaluate"}
    assert tuned_steps["load"].tags["keel.cached"] == "true" and tuned_steps["split"].tags["keel.cached"] == "true"
    assert tuned_steps["fit"].tags["keel.cached"] == "false"  # other params: trained again
    evaluate = tuned_steps["evaluate"]
    assert 0.9 < evaluate.metrics["test_roc_auc"].value <= 1.0 and "test_f1" in evaluate.metrics
    assert "test_evaluation.html" in [a.path for a in client.list_artifacts(evaluate.id)]
    assert client.list_artifacts(tuned_steps["fit"].id)  # the fitted model, stored as the step's output
    study = next(r for r in runs if r.tags.get("keel.kind") == "study")
    trials = [r for r in runs if r.parent_run_id == study.id]
    assert len(trials) == 8 and {t.params["model"] for t in trials} <= {
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
    }
    assert study.tags["best_trial"] in {t.id for t in trials}
    best = client.get_run(study.tags["best_trial"])
    assert best.metric("value") == max(t.metrics["value"].value for t in trials)
    assert [m.step for m in client.get_metric_history(best.id, "value")] == [0, 1, 2, 3, 4, 5]  # 5 folds, then the mean
    assert "optimisation history" in client.read_artifact(study.id, "study.html").decode()
    from keel.evaluation import gate

    rules = ["test_roc_auc >= 0.95", "test_roc_auc >= baseline - 0.01"]
    verdict = gate(evaluate.id, rules, baseline=baseline_steps["evaluate"].id, ctx=client.context)
    assert ("gate passed" in done.stdout) == verdict.passed and ("gate failed" in done.stdout) != verdict.passed
    report = folder / ".keel" / "reports" / "quickstart.html"
    assert str(report) in done.stdout.replace("\n", "")
    page = report.read_text()
    assert page.count("<polyline") >= 8 and "<script" not in page  # a fold curve per trial


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
    load_steps = [r for r in client.iter_runs("quickstart") if r.name == "load" and r.tags.get("keel.cached") == "false"]
    assert (load_steps[0].id, "input") in datasets.runs_of_version(version.id)  # lineage: data -> pipeline -> model
    assert datasets.get_version("breast-cancer-reference").parents == ("breast-cancer@1",)
    assert "0 of 31 columns drifted" in done.stdout.replace("\n", " ")
    assert "mean radius" in done.stdout and "mean texture" in done.stdout
    drift_page = (folder / ".keel" / "reports" / "drift.html").read_text()
    assert "mean radius (drifted)" in drift_page and drift_page.count("<svg") == 31


def test_quickstart_labels_a_sample_under_controls_and_exports_the_labels_with_lineage(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, done = quickstarted
    ctx = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    try:
        import keel.data
        import keel.label
        from keel.govern.lineage import dataset_impact

        project = keel.label.get_project("breast-cancer-diagnosis", ctx=ctx)
        assert (project.items, project.overlap, project.qualification_items) == (150, 3, 5)
        excluded = {e.annotator: e.reason for e in keel.label.exclusions("breast-cancer-diagnosis", ctx=ctx)}
        assert list(excluded) == ["spam"] and "gold accuracy" in excluded["spam"]  # qualified, then caught by gold
        annotators = {a.annotator for a in keel.label.annotations_of("breast-cancer-diagnosis", ctx=ctx)}
        assert annotators == {"ana", "ben", "chen", "dev", "spam"}
        labels = keel.data.get("breast-cancer-diagnosis.labels", ctx=ctx, run=False)
        assert len(labels) == 150 and set(labels["label"]) == {"malignant", "benign"}
        truth = keel.data.get("breast-cancer", ctx=ctx, run=False)["target"].head(150)
        agree = sum(lab == ("malignant", "benign")[int(t)] for lab, t in zip(labels["label"], truth, strict=True))
        assert agree >= 145  # the controls make a 5-person crowd with a spammer right on 97%+ of the rows
        version = ctx.store.datasets.get_version("breast-cancer-diagnosis.labels")
        assert version.parents == ("breast-cancer.to-label@1",)
        assert version.transform is not None and version.transform["project"] == project.name
        graph = dataset_impact("breast-cancer", 1, ctx=ctx)
        assert "dataset_version:breast-cancer-diagnosis.labels@1" in graph.nodes  # the labels derive from the data
        assert "agree with the diagnoses" in done.stdout and "excluded spam" in done.stdout
        page = (folder / ".keel" / "reports" / "labels.html").read_text()
        assert "Cohen" in page and "Fleiss" in page and "<script" not in page.lower()
        status = keel_cmd(folder, "label", "status", "breast-cancer-diagnosis", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["project"] == "breast-cancer-diagnosis"
    finally:
        ctx.close()


def test_quickstart_assesses_fairness_spends_a_privacy_budget_and_trains_across_sites(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    folder, done = quickstarted
    ctx = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    try:
        models = ctx.store.models
        production = models.resolve_alias("breast-cancer", "production")
        fairness = models.assessments("breast-cancer", production.version, kind="fairness")
        assert fairness and fairness[-1].metrics["equalized_odds_difference"] >= 0.0 and fairness[-1].artifact_sha256
        fair = models.get_version("breast-cancer-fair", 1)
        assert "breast-cancer" in fair.description and models.assessments("breast-cancer-fair", 1, kind="fairness")
        spends = ctx.store.privacy.spends("breast-cancer@1")
        assert [s.epsilon for s in spends] == [1.0, 1.0]  # the third run was refused before it trained
        budget = ctx.store.privacy.get_budget("breast-cancer@1")
        assert budget is not None and budget.left == (0.0, 0.0)
        assert "refused before training" in done.stdout and "privacy budget of breast-cancer@1 exceeded" in done.stdout
        dp = models.get_version("breast-cancer-dp", 1)
        assert dp.metrics["privacy.epsilon"] == 1.0 and dp.datasets == ("breast-cancer@1",)
        federated = models.get_version("breast-cancer-federated", 1)
        assert sorted(federated.datasets) == [f"breast-cancer.site-{s}@1" for s in ("east", "north", "south")]
        assert "8. fairness and privacy" in done.stdout and "rounds of FedAvg" in done.stdout
        card = keel_cmd(folder, "models", "card", "breast-cancer-dp/1")
        assert card.returncode == 0, card.stderr
        text = (folder / ".keel" / "cards" / "breast-cancer-dp-v1.md").read_text()
        assert "## Privacy" in text and "breast-cancer@1: epsilon 1, delta 0 spent by" in text
    finally:
        ctx.close()


def test_runs_list_show_compare_and_report(quickstarted: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    folder, _ = quickstarted
    listed = keel_cmd(folder, "runs", "list", "-e", "quickstart", "--json", "-f", "metrics.value > 0", "-o", "metrics.value DESC")
    assert listed.returncode == 0, listed.stderr
    trials = json.loads(listed.stdout)
    assert len(trials) == 8  # the model search's trials (the retraining study of step 6 is another experiment)
    scores = [r["metrics"]["value"]["value"] for r in trials]
    assert scores == sorted(scores, reverse=True)
    table = keel_cmd(folder, "runs", "list", "-e", "quickstart", "-n", "50")
    assert table.returncode == 0 and "model-search" in table.stdout and "evaluate" in table.stdout
    best, worst = trials[0]["id"], trials[-1]["id"]
    shown = keel_cmd(folder, "runs", "show", best[:10])
    assert shown.returncode == 0, shown.stderr
    assert best in shown.stdout and "value" in shown.stdout and "model" in shown.stdout
    compared = keel_cmd(folder, "runs", "compare", best, worst[:12])
    assert compared.returncode == 0, compared.stderr
    assert trials[0]["name"] in compared.stdout and trials[-1]["name"] in compared.stdout
    out = folder / "two.html"
    reported = keel_cmd(folder, "runs", "report", best, worst, "-o", str(out))
    assert reported.returncode == 0, reported.stderr
    assert trials[0]["name"] in out.read_text() and out.read_text().count("<polyline") == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["runs", "list", "--limit", "x"], "'--limit'"),
        (["runs", "list", "-f", "metrics.x >"], "filter 'metrics.x >' is not valid"),
        (["runs", "list", "-o", "metrics.x upward"], "--order-by must be"),
        (["runs", "list", "--limit", "0"], "--limit must be an integer from 1"),
        (["runs", "show", "nope"], "no run id starts with 'nope'"),
        (["runs", "compare", "abcd"], "at least two run ids"),
        (["server", "--port", "70000"], "--port must be a port number"),
        (["sprint"], "No such command 'sprint'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(tmp_path: Path, args: list[str], needle: str) -> None:
    Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}").close()  # an empty store: with none, a read says so and exits 1
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


def test_quickstart_registers_promotes_exports_and_documents(quickstarted: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    folder, done = quickstarted
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    versions = client.store.models.list_versions("breast-cancer")
    assert [v.flavor for v in versions] == ["sklearn", "sklearn", "onnx"]
    production = client.store.models.resolve_alias("breast-cancer", "production")
    assert production.datasets == ("breast-cancer@1",) and "test_roc_auc" in production.metrics
    moves = client.store.models.alias_history("breast-cancer")
    assert moves[0].alias == "production" and moves[0].to_version == 1
    if "promotion of v2 refused" in done.stdout:
        assert production.version == 1 and client.store.models.resolve_alias("breast-cancer", "challenger").version == 2
    assert versions[2].signature["exported_from"] == production.version and versions[2].metrics["onnx_label_agreement"] == 1.0
    bundle = folder / ".keel" / "bundles" / "breast-cancer"
    ran = subprocess.run([sys.executable, "test_predictor.py"], cwd=bundle, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr
    card = (folder / ".keel" / "cards" / f"breast-cancer-v{production.version}.md").read_text()
    assert "## Training data" in card and "breast-cancer@1" in card and "validation passed" in card


def test_keel_cmd_runs_this_tree_in_an_environment_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.testing.cli import KEEL_SOURCE, keel_env

    monkeypatch.setenv("KEEL_STORE", "sqlite:////nowhere/leaked.db")  # the caller's settings must not reach the command
    code = "import json, os, keel; print(json.dumps([keel.__file__, os.environ.get('KEEL_STORE')]))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=keel_env(tmp_path), capture_output=True, text=True)
    imported, leaked = json.loads(done.stdout)
    tree = Path(__file__).resolve().parents[2] / "src"  # the checkout these tests belong to
    assert Path(KEEL_SOURCE) == tree and Path(imported) == tree / "keel" / "__init__.py"
    assert leaked is None


def test_quickstart_serves_the_deployment_shadows_the_other_model_and_compares_them_live(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    import re

    from keel.serve import compare, read_predictions

    folder, done = quickstarted
    assert "6. deployment" in done.stdout
    client = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    served = re.search(r"100 single-row requests, p50\s+([\d.]+) ms, answered by (models:/breast-cancer/\d+)", done.stdout)
    assert served is not None, done.stdout
    answering = client.store.models.get_version("breast-cancer", int(served.group(2).rsplit("/", 1)[1]))
    production = client.store.models.resolve_alias("breast-cancer", "production")
    # the ONNX form of production answered: exported from it, with its parity recorded
    assert answering.flavor == "onnx" and answering.signature["exported_from"] == production.version
    deployment = client.store.deployments.get("breast-cancer")
    changes = [c.what for c in client.store.deployments.history("breast-cancer")]
    assert changes[:2] == ["create", "shadow"]
    other = 2 if production.version == 1 else 1  # the model that is not production went in as the shadow
    log = read_predictions("breast-cancer", ctx=client)
    shadow_rows = log[~log["served"]]
    assert set(shadow_rows["model"]) == {f"models:/breast-cancer/{other}"}
    assert len(shadow_rows) == 569 and shadow_rows["label"].notna().all()  # every row sent, each one labelled
    assert set(log[log["served"]]["model"]) == {answering.uri}
    comparison = compare("breast-cancer", ctx=client)
    (challenger,) = comparison.challengers
    agreement = challenger.agreement
    assert agreement is not None and agreement.pairs == 569 and agreement.rate is not None and agreement.rate > 0.9
    verdict = challenger.metrics[0].verdict
    if verdict == "better":
        assert deployment.primary == f"models:/breast-cancer/{other}" and "promoted" in done.stdout
    else:
        assert deployment.primary == "models:/breast-cancer@production" and "not promoted" in done.stdout
    assert (folder / ".keel" / "reports" / "deployment-breast-cancer.html").is_file()
    assert "prediction log: 1,138 rows" in done.stdout.replace("\n", " ")


def test_quickstart_closes_the_monitoring_loop_drift_alert_retrain_shadow_promote(
    quickstarted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    from keel.core.html import is_keel_report

    folder, done = quickstarted
    assert "7. monitoring" in done.stdout
    client = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    monitors = client.store.monitors
    windows = [w for w in monitors.windows("breast-cancer-live") if w.rows]
    shares = [w.values["drift.share"] for w in windows]
    assert shares[0] == 0.0 and max(shares) > 0.15  # normal traffic, then the recalibrated instrument
    drifted = next(w for w in windows if w.values["drift.share"] > 0.15)
    assert drifted.values["performance.realised.accuracy"] < windows[0].values["performance.realised.accuracy"] - 0.1
    (alert,) = [a for a in monitors.alerts(monitor="breast-cancer-live") if a.first_window_ms == drifted.start_ms]
    actions = {r.action: r for r in monitors.actions(alert.id)}
    assert actions["log"].status == "ok" and actions["retrain:quickstart"].status == "ok"
    retrained = client.store.models.get_version("breast-cancer-retrained", 1)
    assert retrained.datasets == ("breast-cancer-live@1",) and retrained.source_run is not None
    history = client.store.deployments.history("breast-cancer-live")
    shadowed = next(c for c in history if c.what == "shadow")
    assert f"alert {alert.id}" in shadowed.reason and retrained.uri in shadowed.to_routes["shadows"]
    deployment = client.store.deployments.get("breast-cancer-live")
    if "promoted models:/breast-cancer-retrained/1" in done.stdout.replace("\n", " "):
        assert deployment.primary == retrained.uri and "significantly better" in history[-1].reason
    else:
        assert deployment.primary == "models:/breast-cancer@production" and "not promoted" in done.stdout
    report = folder / ".keel" / "reports" / "monitor-breast-cancer-live.html"
    assert is_keel_report(report) and "drift.share" in report.read_text()
