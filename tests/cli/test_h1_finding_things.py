"""Finding things from the CLI (issue 13): a run's artifacts listed, printed, written and opened; a failed step's
traceback in ``keel runs show``; columns chosen with ``-c`` and the gate's metric shown by default; output piped
to a file not wrapped; ``--json`` on every command that prints records; numbers as people write them; option
errors that name the option typed."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd, keel_env
from keel.tracking.client import Client

FLOW = """
import keel

@keel.step
def fit(n: int):
    from sklearn.linear_model import LinearRegression
    return LinearRegression().fit([[0.0], [1.0]], [0.0, float(n)])

@keel.step
def score(model, fail: bool):
    if fail:
        raise RuntimeError("column [bold]x[/] is corrupt \\x1b[2J")
    return float(model.coef_[0])

@keel.pipeline
def flow(n: int = 3, fail: bool = False):
    return score(fit(n), fail)
"""
BINARY = bytes(range(256)) * 4
NOTES = "first [bold]line[/]\nescape \x1b[31m here\n"
LONG = "v" * 300


def _client(folder: Path) -> Client:
    return Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("keel: error: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A run with params, metrics and artifacts of every kind; a gated pair; a pipeline whose second step failed."""
    folder = tmp_path_factory.mktemp("h1")
    client = _client(folder)
    experiment = client.store.get_or_create_experiment("h1")
    run = client.create_run(experiment="h1", name="arts")
    client.log_params(run.id, {"C": 0.1 + 0.2, "note": LONG, "model": "lr"})
    client.log_metric(run.id, "test_roc_auc", 30.563000000000002)
    client.log_text(run.id, NOTES, "notes.txt")
    client.log_dict(run.id, {"a": 1}, "cfg.json")
    client.log_text(run.id, "<html><body>study</body></html>", "study.html")
    client.log_bytes(run.id, BINARY, "blob.bin")
    client.log_bytes(run.id, b"\x80\x04K\x01.", "output.pkl", "application/x-python-pickle")
    client.end_run(run.id)
    gated = []
    for i in range(2):  # five shared metrics, and 'zeta' that only the gated run has: not among the four most common
        r = client.store.create_run(experiment.id, name=f"g{i}")
        client.log_metrics(r.id, {m: float(i) for m in ("alpha", "beta", "gamma", "delta", "eps")})
        if i == 0:
            client.log_metric(r.id, "zeta", 0.25)
        client.end_run(r.id)
        gated.append(r.id)
    client.close()
    (folder / "flows.py").write_text(textwrap.dedent(FLOW))
    failed = keel_cmd(folder, "pipeline", "run", "flows:flow", "-p", "n=4", "-p", "fail=true")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    client = _client(folder)
    try:
        step = next(client.iter_runs(filter="name = 'score'"))
        fit = next(client.iter_runs(filter="name = 'fit'"))
        pipeline = next(client.iter_runs(filter="name = 'flow'"))
    finally:
        client.close()
    return {"folder": folder, "run": run.id, "gated": gated, "step": step.id, "fit": fit.id, "pipeline": pipeline.id}


def _keel_tty(folder: Path, *args: str) -> tuple[int, str, str]:
    """``keel *args`` with stdout on a pseudo-terminal, as a person at a terminal runs it."""
    main, replica = pty.openpty()
    command = [sys.executable, "-m", "keel.cli.main", *args]
    done = subprocess.Popen(command, cwd=folder, stdout=replica, stderr=subprocess.PIPE, env=keel_env(folder), text=True)
    os.close(replica)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    _, err = done.communicate(timeout=120)
    return done.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), err


def test_artifacts_are_listed_printed_and_written(project: dict[str, object], tmp_path: Path) -> None:
    folder, run = project["folder"], str(project["run"])
    assert isinstance(folder, Path)
    prefix = run[:12]
    listed = _ok(keel_cmd(folder, "runs", "artifacts", prefix))
    for path, kind in (("notes.txt", "text"), ("cfg.json", "json"), ("study.html", "html"), ("blob.bin", "binary"),
                       ("output.pkl", "pickle")):  # fmt: skip
        line = next(ln for ln in listed.splitlines() if path in ln)
        assert kind in line, line
    assert "1,024" in listed  # the binary's size
    rows = json.loads(_ok(keel_cmd(folder, "runs", "artifacts", prefix, "--json")))
    assert {r["path"]: (r["size"], r["kind"]) for r in rows}["blob.bin"] == (1024, "binary")

    # piped, the bytes as they are: a JSON file for jq, the text with its escape sequence untouched
    assert json.loads(_ok(keel_cmd(folder, "runs", "get", prefix, "cfg.json"))) == {"a": 1}
    assert _ok(keel_cmd(folder, "runs", "get", prefix, "notes.txt")) == NOTES
    piped = subprocess.run([sys.executable, "-m", "keel.cli.main", "runs", "get", prefix, "blob.bin"], cwd=folder,
                           capture_output=True, env=keel_env(folder), timeout=120)  # fmt: skip
    assert piped.returncode == 0 and piped.stdout == BINARY

    done = keel_cmd(folder, "runs", "get", prefix, "blob.bin", "-o", str(tmp_path / "copy.bin"))
    assert done.returncode == 0 and (tmp_path / "copy.bin").read_bytes() == BINARY, done.stderr
    assert "wrote blob.bin (1,024 bytes)" in done.stderr
    _ok(keel_cmd(folder, "runs", "get", prefix, "output.pkl", "-o", str(tmp_path)))  # a folder: the artifact's name
    assert (tmp_path / "output.pkl").read_bytes() == b"\x80\x04K\x01."  # bytes only: nothing was unpickled

    missing = _one_line_error(keel_cmd(folder, "runs", "get", prefix, "nope.txt"))
    assert f"run {prefix} has no artifact 'nope.txt'" in missing and "notes.txt" in missing
    bad_dest = _one_line_error(keel_cmd(folder, "runs", "get", prefix, "cfg.json", "-o", str(tmp_path / "no" / "x.json")))
    assert "--output" in bad_dest


def test_at_a_terminal_binary_is_refused_and_text_is_shown_safely(project: dict[str, object]) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    code, out, err = _keel_tty(folder, "runs", "get", prefix, "blob.bin")
    assert code == 2 and out == "", (out, err)
    assert err.count("\n") == 1 and "not text" in err and "-o PATH" in err, err
    code, out, err = _keel_tty(folder, "runs", "get", prefix, "notes.txt")
    assert code == 0, err
    assert "first [bold]line[/]" in out  # printed as text, never read as markup
    assert "\x1b" not in out and "\\x1b[31m" in out  # the escape sequence is shown, not obeyed


def test_open_writes_the_artifact_prints_its_path_and_hands_it_to_the_browser(project: dict[str, object], tmp_path: Path) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    recorder = tmp_path / "browser.sh"
    recorder.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened.txt"}\n')
    recorder.chmod(0o755)
    env = {**keel_env(folder), "BROWSER": f"{recorder} %s"}
    command = [sys.executable, "-m", "keel.cli.main", "open", prefix, "study.html"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.name == "study.html" and path.read_text() == "<html><body>study</body></html>"
    assert (tmp_path / "opened.txt").read_text().strip() == path.resolve().as_uri()

    headless = _ok(keel_cmd(folder, "open", prefix, "study.html", "--no-browser"))
    assert Path(headless.strip()).read_text() == "<html><body>study</body></html>"
    refused = _one_line_error(keel_cmd(folder, "open", prefix, "output.pkl", "--no-browser"))
    assert "pickle" in refused and f"keel runs get {prefix} output.pkl -o PATH" in refused


def test_runs_show_prints_a_failed_steps_traceback_as_text(project: dict[str, object]) -> None:
    folder, step, pipeline = project["folder"], str(project["step"]), str(project["pipeline"])
    assert isinstance(folder, Path)
    for shown in (_ok(keel_cmd(folder, "runs", "show", step[:12])), _ok(keel_cmd(folder, "runs", "show", pipeline[:12]))):
        assert "Traceback (most recent call last)" in shown
        assert 'raise RuntimeError("column [bold]x[/] is corrupt \\x1b[2J")' in shown  # the source line, as text
        assert "RuntimeError: column [bold]x[/] is corrupt \\x1b[2J" in shown  # markup literal, escape visible
        assert "\x1b" not in shown
    assert f"traceback in score (run {step[:12]})" in _ok(keel_cmd(folder, "runs", "show", pipeline[:12]))
    record = json.loads(_ok(keel_cmd(folder, "runs", "show", pipeline[:12], "--json")))
    (failure,) = record["failures"]
    assert failure["run_id"] == step and failure["name"] == "score"
    assert failure["traceback"].rstrip().endswith("RuntimeError: column [bold]x[/] is corrupt \x1b[2J")
    assert record["run"]["id"] == pipeline and record["run"]["status"] == "failed"
    finished = json.loads(_ok(keel_cmd(folder, "runs", "show", str(project["fit"])[:12], "--json")))
    assert finished["failures"] == []


def test_numbers_print_as_people_write_them(project: dict[str, object]) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    shown = _ok(keel_cmd(folder, "runs", "show", prefix))
    assert "30.563" in shown and "30.563000000000002" not in shown
    assert "0.3 " in shown and "0.30000000000000004" not in shown
    listed = _ok(keel_cmd(folder, "runs", "list", "-c", "metrics.test_roc_auc", "-c", "params.C"))
    assert "30.56" in listed and "0.30000000000000004" not in listed


def test_columns_are_chosen_with_c(project: dict[str, object]) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    listed = _ok(keel_cmd(folder, "runs", "list", "-e", "h1", "-c", "metrics.test_roc_auc", "-c", "params.C"))
    header = next(line for line in listed.splitlines() if "run id" in line)
    assert header.index("test_roc_auc") < header.index(" C ") and "alpha" not in header and "model" not in header
    row = next(line for line in listed.splitlines() if prefix in line)
    assert row.index("30.56") < row.index("0.3")
    tags = _ok(keel_cmd(folder, "runs", "list", "-c", "tags.keel.step", "-f", "name = 'score'"))
    assert "keel.step" in tags and "score" in tags
    for bad in ("test_roc_auc", "metric.test_roc_auc", "foo.x"):
        error = _one_line_error(keel_cmd(folder, "runs", "list", "-c", bad))
        assert "-c/--column must be metrics.<key>, params.<key> or tags.<key>" in error and repr(bad) in error


def test_the_metric_that_decided_a_gate_is_shown_by_default(project: dict[str, object], tmp_path: Path) -> None:
    folder = project["folder"]
    assert isinstance(folder, Path)
    gated, other = (str(r) for r in project["gated"])  # type: ignore[attr-defined]
    filter_ = "name like 'g%'"

    def header() -> str:
        listed = _ok(keel_cmd(folder, "runs", "list", "-e", "h1", "-f", filter_))
        return next(line for line in listed.splitlines() if "run id" in line)

    assert "zeta" not in header() and "gate" not in header()  # the four most common metrics only
    assert keel_cmd(folder, "gate", gated[:12], "-r", "zeta >= 0.1", "--no-record").returncode == 0
    assert "zeta" not in header()
    assert keel_cmd(folder, "gate", gated[:12], "-r", "zeta >= 0.1", "-r", "alpha >= 0").returncode == 0
    shown = header()
    assert "zeta" in shown and "gate" in shown
    listed = _ok(keel_cmd(folder, "runs", "list", "-e", "h1", "-f", filter_))
    assert "passed" in next(line for line in listed.splitlines() if gated[:12] in line)
    assert keel_cmd(folder, "gate", other[:12], "-r", "beta >= 5", "-r", "alpha >= 0").returncode == 1
    client = _client(folder)
    try:
        assert client.get_run(other).tags["keel.gate"] == "failed"
        assert client.get_run(other).tags["keel.gate.metrics"] == "beta"  # the failed rule decided it
        assert client.get_run(gated).tags["keel.gate.metrics"] == "zeta,alpha"
    finally:
        client.close()


def test_piped_output_is_not_wrapped_at_80_columns(project: dict[str, object]) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    command = [sys.executable, "-m", "keel.cli.main", "runs", "list", "-e", "h1", "-c", "params.note", "-c", "params.model"]
    env = {**keel_env(folder), "COLUMNS": "80"}  # even where the environment says 80
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if prefix in line)
    assert LONG in row and "lr" in row and "…" not in done.stdout  # one line, whole
    assert len(row) > 300
    shown = subprocess.run([*command[:3], "runs", "show", prefix], cwd=folder, capture_output=True, text=True, env=env)
    assert any(LONG in line for line in shown.stdout.splitlines()), shown.stdout


def test_option_errors_name_the_option_typed(project: dict[str, object]) -> None:
    folder = project["folder"]
    assert isinstance(folder, Path)
    order = _one_line_error(keel_cmd(folder, "runs", "list", "-o", "nonsense"))
    assert "--order-by must be '<field> [ASC|DESC]'" in order and "'nonsense'" in order and "filter" not in order
    assert "metrics.<key>" in order
    direction = _one_line_error(keel_cmd(folder, "runs", "list", "-o", "metrics.acc sideways"))
    assert "--order-by" in direction
    limit = _one_line_error(keel_cmd(folder, "runs", "list", "-n", "0"))
    assert "--limit must be an integer from 1 to 10000; got 0" in limit and "max_results" not in limit


def test_json_goes_to_stdout_on_every_command_that_prints_records(project: dict[str, object]) -> None:
    folder, prefix = project["folder"], str(project["run"])[:12]
    assert isinstance(folder, Path)
    fit, pipeline = str(project["fit"])[:12], str(project["pipeline"])[:12]
    (folder / "rows.csv").write_text("x,y\n1,2\n3,4\n")
    _ok(keel_cmd(folder, "data", "log", "rows.csv", "--name", "rows"))
    _ok(keel_cmd(folder, "models", "register", "--run", fit, "--name", "line"))
    _ok(keel_cmd(folder, "deploy", "create", "line", "models:/line/1"))
    commands = {
        ("runs", "list"): lambda d: isinstance(d, list) and len(d) >= 3,
        ("runs", "show", prefix): lambda d: d["run"]["params"]["model"] == "lr",
        ("runs", "artifacts", prefix): lambda d: len(d) == 5,
        ("runs", "compare", prefix, fit): lambda d: "test_roc_auc" in d["metrics"],
        ("pipeline", "show", pipeline): lambda d: [s["name"] for s in d["steps"]] == ["fit", "score"],
        ("models", "list"): lambda d: d[0]["latest"]["name"] == "line",
        ("models", "show", "line/1"): lambda d: d["version"] == 1,
        ("models", "history", "line"): lambda d: d == [],
        ("data", "list"): lambda d: d[0]["name"] == "rows",
        ("data", "show", "rows"): lambda d: d["version"]["row_count"] == 2 and len(d["columns"]) == 2,
        ("deploy", "list"): lambda d: d[0]["name"] == "line",
        ("deploy", "show", "line"): lambda d: d["primary"] == "models:/line/1",
        ("deploy", "history", "line"): lambda d: d[0]["what"] == "create",
        ("audit", "log"): lambda d: len(d) == 20 and {"seq", "action"} <= set(d[0]),
        ("monitor", "status"): lambda d: d == [],
        ("monitor", "alerts"): lambda d: d == [],
        ("users", "list"): lambda d: d == [],
        ("roles", "list"): lambda d: d == [],
        ("roles", "trusted"): lambda d: d["project"] == "default" and isinstance(d["trusted_roles"], list),
        ("tokens", "list"): lambda d: d == [],
    }
    for args, check in commands.items():
        out = _ok(keel_cmd(folder, *args, "--json"))
        assert "\x1b" not in out, args
        assert check(json.loads(out)), (args, out[:500])
