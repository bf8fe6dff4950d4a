"""The tracking SDK: runs as context managers, validation at the call, batching, artifacts, capture."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import keel
from keel.core.entities import RunStatus
from keel.core.errors import Conflict, InvalidArgument, KeelError
from keel.store.metadata.sql.store import SqlStore
from keel.tracking.client import Client


def test_run_block_finishes_and_records_everything(tmp_path: Path) -> None:
    with keel.start_run(experiment="sdk", name="baseline", tags={"team": "risk"}) as run:
        keel.log_params({"lr": 0.01, "layers": 3})
        keel.log_param("optimizer", "adam")
        for epoch in range(3):
            keel.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        keel.log_metrics({"acc": 0.9, "f1": 0.8})
        keel.set_tag("stage", "dev")
    stored = keel.get_client().get_run(run.id)
    assert stored.name == "baseline" and stored.status is RunStatus.FINISHED and stored.end_time is not None
    assert stored.params == {"lr": "0.01", "layers": "3", "optimizer": "adam"}
    assert stored.tags == {"team": "risk", "stage": "dev"}
    assert stored.metrics["loss"].value == pytest.approx(1 / 3) and stored.metrics["loss"].step == 2
    assert stored.metrics["acc"].value == 0.9
    assert stored.environment.python_version == sys.version.split()[0]
    assert (tmp_path / ".keel" / "keel.db").is_file()  # the embedded default, in the working folder


def test_exception_marks_run_failed_and_propagates() -> None:
    with pytest.raises(ZeroDivisionError):
        with keel.start_run(experiment="sdk") as run:
            keel.log_metric("x", 1.0)
            1 / 0  # noqa: B018
    stored = keel.get_client().get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert stored.tags["keel.error"].startswith("ZeroDivisionError")
    assert stored.metrics["x"].value == 1.0  # values logged before the failure were flushed
    assert keel.active_run() is None


def test_keyboard_interrupt_marks_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt):
        with keel.start_run(experiment="sdk") as run:
            raise KeyboardInterrupt
    assert keel.get_client().get_run(run.id).status is RunStatus.KILLED


def test_nested_runs_become_children_in_the_same_experiment() -> None:
    with keel.start_run(experiment="sweep") as parent:
        with keel.start_run(name="trial-1") as child:
            keel.log_metric("score", 1.0)  # goes to the innermost run
        assert keel.active_run() is parent
    client = keel.get_client()
    got = client.get_run(child.id)
    assert got.parent_run_id == parent.id and got.experiment_id == client.get_run(parent.id).experiment_id
    assert "score" in got.metrics and "score" not in client.get_run(parent.id).metrics


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"key": "", "value": 1.0}, "metric key must be a non-empty string"),
        ({"key": "bad key!", "value": 1.0}, "got 'bad key!'"),
        ({"key": "loss", "value": 1.0, "step": math.nan}, "step must be a finite integer; got nan"),
        ({"key": "loss", "value": 1.0, "step": math.inf}, "step must be a finite integer; got inf"),
        ({"key": "loss", "value": 1.0, "step": 1.5}, "step must be a finite integer; got 1.5"),
        ({"key": "loss", "value": "high"}, "metric 'loss' value must be a number; got 'high'"),
    ],
)
def test_bad_metric_is_refused_at_the_call_and_nothing_is_written(kwargs: dict, needle: str) -> None:
    with keel.start_run(experiment="sdk") as run:
        with pytest.raises(InvalidArgument, match=needle.replace("(", r"\(")):
            run.log_metric(**kwargs)
    stored = keel.get_client().get_run(run.id)
    assert stored.metrics == {} and stored.status is RunStatus.FINISHED


def test_relogging_a_param_with_another_value_is_a_conflict() -> None:
    with keel.start_run(experiment="sdk") as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)
        with pytest.raises(Conflict, match=r"'lr' .* already '0.1'"):
            run.log_param("lr", 0.2)
    assert keel.get_client().get_run(run.id).params == {"lr": "0.1"}


def test_nan_and_inf_metrics_are_kept_and_steps_auto_increment() -> None:
    with keel.start_run(experiment="sdk") as run:
        for value in (0.5, math.nan, math.inf):
            run.log_metric("loss", value)
    history = keel.get_client().get_metric_history(run.id, "loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert history[0].value == 0.5 and math.isnan(history[1].value) and history[2].value == math.inf


class CountingStore(SqlStore):
    """A real SqlStore that counts how often metric batches reach it."""

    batches = 0

    def log_metrics(self, rows, batch_id=None):  # type: ignore[no-untyped-def]
        type(self).batches += 1
        super().log_metrics(rows, batch_id)


def test_metric_logging_is_batched_not_one_round_trip_per_value(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path / 'k.db'}")
    client = Client(store, str(tmp_path / "art"))
    run = client.create_run("batching")
    for i in range(10_000):
        client.log_metric(run.id, "loss", float(i), step=i)
    client.end_run(run.id)
    assert CountingStore.batches <= 3
    assert len(store.get_metric_history(run.id, "loss")) == 10_000


def test_artifacts_files_and_directories(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights")
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    (folder / "plots" / "roc.svg").write_text("<svg/>")
    with keel.start_run(experiment="sdk") as run:
        run.log_artifact(model)
        run.log_artifact(folder)
        run.log_artifact(model, name="copies/model-again.bin")
        run.log_text("notes", "notes.md")
        with pytest.raises(InvalidArgument, match="artifact path"):
            run.log_artifact(model, name="../outside.bin")
        with pytest.raises(InvalidArgument, match="an existing file or directory"):
            run.log_artifact(tmp_path / "missing.txt")
    client = keel.get_client()
    paths = {a.path: a for a in client.list_artifacts(run.id)}
    assert set(paths) == {
        "model.bin",
        "report/index.html",
        "report/plots/roc.svg",
        "copies/model-again.bin",
        "notes.md",
    }
    assert paths["model.bin"].sha256 == paths["copies/model-again.bin"].sha256  # same content, one blob
    assert paths["report/index.html"].media_type == "text/html"
    assert client.read_artifact(run.id, "report/plots/roc.svg") == b"<svg/>"
    out = client.download_artifact(run.id, "model.bin", tmp_path / "dl" / "m.bin")
    assert out.read_bytes() == b"\x00weights"


def test_code_version_and_environment_are_captured(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import keel
            with keel.start_run(experiment="capture") as run:
                keel.log_metric("m", 1.0)
            print(run.id)
            """
        )
    )

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "train")
    head = git("rev-parse", "HEAD")

    def run_script() -> keel.Run:
        out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, text=True)
        return Client().get_run(out.stdout.strip().splitlines()[-1])

    clean = run_script()
    assert clean.code.git_commit == head and clean.code.git_dirty_hash is None
    assert clean.code.entry_point == str(script)
    script.write_text(script.read_text() + "\n# tweak\n")
    dirty = run_script()
    assert dirty.code.git_commit == head and dirty.code.git_dirty_hash is not None
    assert dirty.code.entry_point_hash != clean.code.entry_point_hash
    env = dirty.environment
    assert env.packages_blob is not None
    packages = Client().artifacts.get_bytes(env.packages_blob).decode()
    assert "sqlalchemy==" in packages and env.packages_hash == clean.environment.packages_hash


def test_run_left_open_is_flushed_and_finished_at_interpreter_exit(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import keel
        run = keel.start_run(experiment="atexit")
        for i in range(5000):
            keel.log_metric("v", float(i))
        print(run.id)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True)
    client = Client()
    run = client.get_run(out.stdout.strip())
    assert run.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run.id, "v")) == 5000


def test_same_code_works_against_a_remote_server(server_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_STORE", server_url)
    keel.set_client(None)
    model = tmp_path / "model.bin"
    model.write_bytes(b"remote weights")
    with keel.start_run(experiment="remote", name="over-http") as run:
        run.log_params({"lr": 0.3})
        for i in range(2000):
            run.log_metric("loss", 1 / (i + 1), step=i)
        run.log_artifact(model)
    client = keel.get_client()
    assert type(client.store).__name__ == "RestStore"
    assert type(client.artifacts).__name__ == "HttpArtifactStore"
    got = client.get_run(run.id)
    assert got.status is RunStatus.FINISHED and got.params == {"lr": "0.3"}
    assert len(client.get_metric_history(run.id, "loss")) == 2000
    assert client.read_artifact(run.id, "model.bin") == b"remote weights"
    assert not (tmp_path / ".keel").exists()  # nothing was written locally


def test_search_and_compare_through_the_client() -> None:
    client = keel.get_client()
    ids = []
    for lr in (0.1, 0.2, 0.3):
        with keel.start_run(experiment="cmp", params={"lr": lr}) as run:
            run.log_metric("acc", lr * 2)
        ids.append(run.id)
    best = client.search_runs("cmp", order_by=["metrics.acc DESC"], max_results=1).runs[0]
    assert best.id == ids[2]
    table = client.compare(ids)
    assert table["params"]["lr"] == ["0.1", "0.2", "0.3"]
    assert table["metrics"]["acc"] == pytest.approx([0.2, 0.4, 0.6])
    found = client.iter_runs("cmp", filter="metrics.acc > 0.3", order_by=["metrics.acc DESC"])
    assert [r.id for r in found] == [ids[2], ids[1]]  # (start times can tie within a millisecond)


def test_no_active_run_is_a_clear_error() -> None:
    with pytest.raises(KeelError, match="no active run"):
        keel.log_metric("x", 1.0)


def test_bad_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_FLUSH_INTERVAL", "soon")
    with pytest.raises(InvalidArgument, match="KEEL_FLUSH_INTERVAL must be a number of seconds; got 'soon'"):
        Client()
    monkeypatch.setenv("KEEL_FLUSH_INTERVAL", "1")
    monkeypatch.setenv("KEEL_STORE", "mysql://nope")
    with pytest.raises(InvalidArgument, match="store URI must be a URI starting with sqlite://"):
        Client()


def test_html_report_marks_the_best_value_by_the_metric_direction(tmp_path: Path) -> None:
    from keel.tracking.report import lower_is_better, runs_report

    assert lower_is_better("val_loss") and lower_is_better("cv_roc_auc_std") and not lower_is_better("accuracy")
    ids = []
    for acc, loss in ((0.9, 0.3), (0.8, 0.1)):
        with keel.start_run(experiment="report") as run:
            for step in range(3):
                run.log_metric("loss", loss + step, step=step)
            run.log_metric("acc", acc)
        ids.append(run.id)
    page = runs_report(keel.get_client(), ids, title="two runs")
    assert "<td class=best>0.9</td>" in page  # highest accuracy
    assert "<td class=best>2.1</td>" in page  # lowest final loss (0.1 + 2)
    assert page.count("<polyline") == 2 and "<script" not in page


def test_one_bad_run_costs_no_other_run_its_values(tmp_path: Path) -> None:
    client = Client(f"sqlite:///{tmp_path / 'k.db'}", str(tmp_path / "art"))
    good = client.create_run("mixed")
    other = client.create_run("mixed")
    client.log_metric(good.id, "loss", 0.5, step=0)
    client.log_metric(other.id, "loss", 0.7, step=0)
    client.log_metric("deadbeef" * 4, "loss", 0.1, step=0)  # a run that does not exist
    client.end_run(good.id)  # stores its own values, untouched by the bad row
    assert client.get_run(good.id).status is RunStatus.FINISHED
    assert [m.value for m in client.store.get_metric_history(good.id, "loss")] == [0.5]
    with pytest.raises(KeelError, match="does not exist"):
        client.flush()  # the bad run's values are dropped, and said so
    assert [m.value for m in client.store.get_metric_history(other.id, "loss")] == [0.7]
    with pytest.raises(InvalidArgument, match="run_id must be a run id string"):
        client.log_metric(12345, "loss", 1.0)  # type: ignore[arg-type]


def test_the_writer_thread_survives_an_unexpected_error(tmp_path: Path) -> None:
    class Flaky(SqlStore):
        calls = 0

        def log_metrics(self, rows, batch_id=None):  # type: ignore[no-untyped-def]
            type(self).calls += 1
            if type(self).calls == 1:
                raise RuntimeError("driver hiccup")
            super().log_metrics(rows, batch_id)

    store = Flaky(f"sqlite:///{tmp_path / 'k.db'}")
    client = Client(store, str(tmp_path / "art"))
    client.writer.flush_interval = 0.05
    run = client.create_run("flaky")
    client.log_metric(run.id, "v", 1.0, step=0)
    import time

    deadline = time.monotonic() + 5
    while Flaky.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.writer._thread is not None and client.writer._thread.is_alive()
    client.end_run(run.id)
    assert [m.value for m in store.get_metric_history(run.id, "v")] == [1.0]
