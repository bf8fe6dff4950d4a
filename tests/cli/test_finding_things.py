"""Finding things from the CLI (issue 13): run prefixes on every command, ``--version``, the store found as git finds
``.git``, read-only commands that create nothing, and empty results that say which store was read."""

from __future__ import annotations

import re
import subprocess
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd
from keel.tracking.client import Client

FLOW = """
import keel
from pathlib import Path
from sklearn.linear_model import LinearRegression

@keel.step
def fit(n: int):
    return LinearRegression().fit([[0.0], [1.0]], [0.0, float(n)])

@keel.step
def score(model):
    if Path("broken").exists():
        raise RuntimeError("upstream file is corrupt")
    keel.log_metric("slope", float(model.coef_[0]))
    return float(model.coef_[0])

@keel.pipeline
def flow(n: int = 3):
    return score(fit(n))
"""


def _client(folder: Path) -> Client:
    return Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))


def _ids(folder: Path, name: str) -> list[str]:
    client = _client(folder)
    try:
        return [r.id for r in sorted(client.iter_runs(filter=f"name = '{name}'"), key=lambda r: r.start_time)]
    finally:
        client.close()


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with two pipeline runs: one finished (slope 4), one failed in its second step."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "flows.py").write_text(textwrap.dedent(FLOW))
    _ok(keel_cmd(folder, "pipeline", "run", "flows:flow", "-p", "n=4"))
    (folder / "broken").write_text("x")
    failed = keel_cmd(folder, "pipeline", "run", "flows:flow", "-p", "n=6")
    assert failed.returncode == 1 and "upstream file is corrupt" in failed.stdout, failed.stdout
    (folder / "broken").unlink()
    return folder


def test_version_prints_the_installed_version() -> None:
    done = keel_cmd(Path.cwd(), "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"keel {version('keel')}"
    assert not (Path.cwd() / ".keel").exists()


def test_every_command_taking_a_run_accepts_the_printed_prefix(project: Path) -> None:
    pipelines = _ids(project, "flow")
    finished, failed = (p[:12] for p in pipelines)
    fit_run, _ = (r[:12] for r in _ids(project, "fit"))
    score_run = _ids(project, "score")[0][:12]

    shown = _ok(keel_cmd(project, "pipeline", "show", failed))
    assert "failed" in shown and "fit" in shown and "score" in shown
    assert pipelines[1][:12] in _ok(keel_cmd(project, "runs", "show", failed))
    gated = keel_cmd(project, "gate", score_run, "--baseline", score_run, "-r", "slope >= 3.5", "-r", "slope >= baseline")
    assert gated.returncode == 0 and "gate passed" in gated.stdout and f"gate on run {score_run}" in gated.stdout, gated.stderr
    assert keel_cmd(project, "gate", score_run, "-r", "slope >= 5").returncode == 1  # the rule is checked, on that run
    registered = _ok(keel_cmd(project, "models", "register", "--run", fit_run, "--name", "line"))
    assert f"registered models:/line/1 (sklearn) from run {fit_run}" in registered
    model = _ok(keel_cmd(project, "models", "show", "line/1"))
    # the full id was resolved; a step of a finished pipeline stands for its pipeline run, recorded as the source
    pipeline_run = re.search(r"parent\s+([0-9a-f]{32})", _ok(keel_cmd(project, "runs", "show", fit_run)))
    assert pipeline_run and pipeline_run.group(1) in pipelines and f"source run {pipeline_run.group(1)}" in model, model
    resumed = keel_cmd(project, "pipeline", "resume", failed)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {failed}" in resumed.stdout and "finished" in resumed.stdout and "cached" in resumed.stdout
    assert finished != failed


def test_ambiguous_and_unknown_prefixes_are_one_line_errors(tmp_path: Path) -> None:
    client = _client(tmp_path)
    experiment = client.store.get_or_create_experiment("prefixes")
    by_prefix: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in by_prefix.values()):  # ~320 runs until two share 4 characters
        run = client.store.create_run(experiment.id, name="r")
        by_prefix.setdefault(run.id[:4], []).append(run.id)
    client.close()
    shared, pair = next((p, ids) for p, ids in by_prefix.items() if len(ids) > 1)
    unused = next(f"{i:04x}" for i in range(1 << 16) if f"{i:04x}" not in by_prefix)

    for args in (["runs", "show", shared], ["pipeline", "show", shared], ["gate", shared, "-r", "x >= 1"],
                 ["models", "register", "--run", shared, "--name", "m"]):  # fmt: skip
        done = keel_cmd(tmp_path, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and f"run id prefix '{shared}' is ambiguous, 2 runs match" in done.stderr
        assert all(f"{run_id[:12]} (r)" in done.stderr for run_id in pair)
        unknown = keel_cmd(tmp_path, *[unused if a == shared else a for a in args])
        assert unknown.returncode == 2 and unknown.stderr == f"keel: error: no run id starts with '{unused}'\n", args
    full = pair[0]
    assert full in _ok(keel_cmd(tmp_path, "runs", "show", full[:12]))


def test_the_store_is_found_in_a_parent_folder(project: Path) -> None:
    deep = project / "src" / "deeper"
    deep.mkdir(parents=True, exist_ok=True)
    listed = _ok(keel_cmd(deep, "runs", "list", "-f", "name = 'flow'"))
    assert all(run_id[:12] in listed for run_id in _ids(project, "flow"))
    assert _ok(keel_cmd(deep, "runs", "show", _ids(project, "flow")[0][:12])).count("flow") >= 1
    shown = _ok(keel_cmd(deep, "pipeline", "show", _ids(project, "flow")[0][:12]))
    assert "finished" in shown
    assert not (deep / ".keel").exists() and not (project / "src" / ".keel").exists()


def test_a_keel_toml_in_a_parent_folder_names_the_store(tmp_path: Path) -> None:
    (tmp_path / "keel.toml").write_text('[keel]\nhome = "state"\n')
    client = Client(f"sqlite:///{tmp_path / 'state' / 'keel.db'}", str(tmp_path / "state" / "artifacts"))
    client.store.create_run(client.store.get_or_create_experiment("default").id, name="configured")
    client.close()
    sub = tmp_path / "notebooks"
    sub.mkdir()
    listed = _ok(keel_cmd(sub, "runs", "list"))
    assert "configured" in listed and not (sub / ".keel").exists() and not (sub / "state").exists()


@pytest.mark.parametrize(
    "args",
    [["runs", "list"], ["runs", "show", "abcdef123456"], ["models", "list"], ["data", "list"], ["pipeline", "show", "abcd"],
     ["gate", "abcd", "-r", "x >= 1"], ["models", "show", "m/1"], ["data", "show", "orders"]],
)  # fmt: skip
def test_read_only_commands_create_no_store(tmp_path: Path, args: list[str]) -> None:
    done = keel_cmd(tmp_path, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr == "keel: no keel store here or in a parent folder (run keel quickstart, or set KEEL_STORE)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_empty_result_says_which_store_it_read(tmp_path: Path) -> None:
    _client(tmp_path).close()  # an empty store
    sub = tmp_path / "sub"
    sub.mkdir()
    empty = _ok(keel_cmd(sub, "runs", "list"))
    assert re.sub(r"\s+", " ", empty).strip() == f"no runs in {tmp_path / '.keel'} (try keel quickstart)"
    assert _ok(keel_cmd(sub, "runs", "list", "-f", "metrics.auc > 0.9")).strip() == "no runs match this filter"
    assert f"no models in {tmp_path / '.keel'}" in _ok(keel_cmd(sub, "models", "list"))
    assert f"no datasets in {tmp_path / '.keel'}" in _ok(keel_cmd(sub, "data", "list"))


def test_a_chosen_store_that_is_missing_is_named_and_not_created(tmp_path: Path) -> None:
    (tmp_path / "keel.toml").write_text('[keel]\nstore = "sqlite:///elsewhere/x.db"\n')
    done = keel_cmd(tmp_path, "runs", "list")
    assert done.returncode == 1 and done.stderr == "keel: no keel store at elsewhere/x.db (KEEL_STORE or keel.toml)\n"
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / ".keel").exists()


def test_the_store_named_in_a_message_hides_its_password() -> None:
    from keel.cli.lookup import store_label
    from keel.core.config import Settings

    remote = Settings(home=Path("/x/.keel"), store="postgresql+psycopg://ml:s3cret@db.local:5432/keel", artifacts=None)
    assert store_label(remote) == "postgresql+psycopg://ml:***@db.local:5432/keel"
    assert store_label(Settings(home=Path("/x/.keel"), store="sqlite:////x/.keel/keel.db", artifacts=None)) == "/x/.keel"
