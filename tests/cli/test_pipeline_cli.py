"""``keel pipeline`` and ``keel gate`` as a CI system calls them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from keel.testing.cli import keel_cmd

FLOW = """
import keel
from pathlib import Path

@keel.step
def numbers(n: int):
    return list(range(n))

@keel.step
def total(xs):
    if Path("broken").exists():
        raise RuntimeError("upstream file is corrupt")
    keel.log_metric("total", sum(xs))
    return sum(xs)

@keel.pipeline
def flow(n: int = 3):
    return total(numbers(n))
"""


def _run_id(text: str) -> str:
    match = re.search(r"run ([0-9a-f]{12})\)", text)
    assert match, text
    return match.group(1)


def test_pipeline_run_show_and_resume(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    first = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=5")
    assert first.returncode == 0, first.stderr
    assert "numbers" in first.stdout and "finished" in first.stdout
    again = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=5")
    assert again.stdout.count("cached") >= 2
    fresh = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=5", "--no-cache")
    assert "cached" not in fresh.stdout.split("pipeline flow")[0]
    (tmp_path / "broken").write_text("x")
    failed = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=6")
    assert failed.returncode == 1 and "upstream file is corrupt" in failed.stdout
    run_id = _run_id(failed.stdout)
    full_id = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", f"run_id like '{run_id}%'").stdout)[0]["id"]
    shown = keel_cmd(tmp_path, "pipeline", "show", full_id)
    assert shown.returncode == 0 and "failed" in shown.stdout and "numbers" in shown.stdout
    (tmp_path / "broken").unlink()
    resumed = keel_cmd(tmp_path, "pipeline", "resume", full_id)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished" in resumed.stdout and "cached" in resumed.stdout


def test_pipeline_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    for args, needle in (
        (["pipeline", "run", "flows"], "pipeline must be 'module:function'"),
        (["pipeline", "run", "nowhere:flow"], "cannot import pipeline 'nowhere:flow'"),
        (["pipeline", "run", "flows:numbers"], "a function decorated with @keel.pipeline"),
        (["pipeline", "run", "flows:flow", "-p", "n"], "--param must be 'name=value'"),
        (["pipeline", "run", "flows:flow", "--executor", "gpu"], "executor must be one of"),
    ):
        done = keel_cmd(tmp_path, *args)
        assert done.returncode == 2 and needle in done.stderr, (args, done.stderr)


def test_gate_exit_codes_and_json(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    base = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=4")
    cand = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=6")
    runs = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", "metrics.total >= 0", "-o", "metrics.total").stdout)
    low, high = runs[0]["id"], runs[-1]["id"]
    assert base.returncode == cand.returncode == 0 and runs[0]["metrics"]["total"]["value"] == 6.0
    ok = keel_cmd(tmp_path, "gate", high, "--baseline", low, "-r", "total >= baseline + 5", "--json-out", "out.json")
    assert ok.returncode == 0 and "gate passed" in ok.stdout
    assert json.loads((tmp_path / "out.json").read_text())["checks"][0]["threshold"] == 11.0
    bad = keel_cmd(tmp_path, "gate", low, "--baseline", high, "-r", "total >= baseline", "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["passed"] is False
    unknown = keel_cmd(tmp_path, "gate", high, "-r", "accuracy >= 0.9")
    assert unknown.returncode == 2 and "has no metric 'accuracy'" in unknown.stderr


def test_resume_names_the_module_it_imports_and_refuses_one_outside_the_project(tmp_path: Path) -> None:
    from keel.core.entities import RunKind, RunStatus
    from keel.tracking.client import Client

    (tmp_path / "flows.py").write_text(FLOW)
    (tmp_path / "broken").write_text("x")
    failed = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=4")
    listed = keel_cmd(tmp_path, "runs", "list", "--json", "-f", f"run_id like '{_run_id(failed.stdout)}%'")
    run_id = json.loads(listed.stdout)[0]["id"]
    (tmp_path / "broken").unlink()
    resumed = keel_cmd(tmp_path, "pipeline", "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert f"importing module flows from {(tmp_path / 'flows.py').resolve()}" in resumed.stdout.replace("\n", "")
    client = Client(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    forged = client.create_run(
        "flow", "flow", tags={"keel.kind": "pipeline", "keel.pipeline": "this:flow", "keel.params": "{}"}, kind=RunKind.PIPELINE
    )
    client.end_run(forged.id, RunStatus.FAILED)
    refused = keel_cmd(tmp_path, "pipeline", "resume", forged.id)
    assert refused.returncode == 2 and "refusing to import pipeline module 'this'" in refused.stderr, refused.stderr
    assert "Beautiful is better than ugly" not in refused.stdout  # `import this` never ran


def test_hinted_params_are_checked_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    done = keel_cmd(tmp_path, "pipeline", "run", "flows:flow", "-p", "n=abc")
    assert done.returncode == 2 and "pipeline 'flow' param 'n' must be of type int; got 'abc'" in done.stderr, done.stderr
    assert json.loads(keel_cmd(tmp_path, "runs", "list", "--json").stdout) == []


TYPED = """
import json
import keel
from pathlib import Path

@keel.step
def record(tag: str, flag: str, out: Path, n: int, when: str | None = None):
    assert isinstance(out, Path), type(out)
    if Path("broken").exists():
        raise RuntimeError("broken")
    return json.dumps({"tag": tag, "flag": flag, "out": str(out), "n": n, "when": when})

@keel.pipeline
def typed(tag: str, flag: str, out: Path, n: int = 1, when: str | None = None):
    return record(tag, flag, out, n, when)
"""


def test_cli_params_follow_the_hints_str_and_path_stay_text(tmp_path: Path) -> None:
    (tmp_path / "typed_flow.py").write_text(TYPED)
    done = keel_cmd(tmp_path, "pipeline", "run", "typed_flow:typed", "-p", "tag=2024", "-p", "flag=true",
                    "-p", "out=data/x.csv", "-p", "n=3", "-p", "when=null")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", "tags.`keel.kind` = 'pipeline'").stdout)
    assert runs[0]["params"] == {"tag": "2024", "flag": "true", "out": "data/x.csv", "n": "3", "when": "null"}
    bad = keel_cmd(tmp_path, "pipeline", "run", "typed_flow:typed", "-p", "tag=a", "-p", "flag=b", "-p", "out=o", "-p", "n=x")
    assert bad.returncode == 2 and "param 'n' must be of type int; got 'x'" in bad.stderr
    (tmp_path / "broken").write_text("x")
    failed = keel_cmd(tmp_path, "pipeline", "run", "typed_flow:typed", "-p", "tag=2025", "-p", "flag=1", "-p", "out=y")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (tmp_path / "broken").unlink()
    resumed = keel_cmd(tmp_path, "pipeline", "resume", _full_id(tmp_path, _run_id(failed.stdout)))
    assert resumed.returncode == 0 and "finished" in resumed.stdout, resumed.stdout + resumed.stderr  # out is a Path again


def _full_id(cwd: Path, prefix: str) -> str:
    return str(json.loads(keel_cmd(cwd, "runs", "list", "--json", "-f", f"run_id like '{prefix}%'").stdout)[0]["id"])


def test_pipeline_run_and_resume_take_trust_pickle(tmp_path: Path) -> None:
    for command in ("run", "resume"):
        shown = keel_cmd(tmp_path, "pipeline", command, "--help")
        assert "--trust-pickle" in shown.stdout, shown.stdout
