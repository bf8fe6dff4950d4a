"""Issue 8, pipelines and tune: cached steps read like the runs they reuse, failures raise, hinted params
are checked first, full params for resume, inherited code and environment, an unforgeable step cache,
and resume imports only the project's code."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import keel
from keel.core.entities import ArtifactRef, RunKind, RunStatus, StepInfo
from keel.core.errors import Conflict, InvalidArgument
from keel.evaluation import gate
from keel.pipelines import StepFailed, resume
from keel.tracking.client import Client

FLOW = """
import keel
from pathlib import Path

@keel.step
def load(n: int):
    return list(range(n))

@keel.step
def total(xs, scale: float = 1.0):
    keel.log_metric("count", len(xs))
    keel.set_tag("owner", "data-team")
    return sum(xs) * scale

@keel.step
def score(a, b):
    if Path("broken").exists():
        raise KeyError("fit")
    keel.log_metric("score", (a + b) / 100)
    return {"a": a, "b": b}

@keel.pipeline
def flow(n: int = 10, scale: float = 2.0, options: dict | None = None):
    xs = load(n)
    return score(total(xs, scale=scale), total(xs))
"""


def test_a_cached_step_reads_like_the_run_it_reuses(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_cache", FLOW)
    first = mod.flow.run(n=10)
    again = mod.flow.run(n=10)
    assert [s.status for s in again.steps] == ["cached"] * 4
    client = keel.get_client()
    source, cached = client.get_run(first.step("total").run_id), client.get_run(again.step("total").run_id)
    assert cached.tags["keel.cached_from"] == source.id and cached.tags["owner"] == "data-team"
    assert cached.params == source.params == {"scale": "2.0"}
    assert cached.metrics["count"].value == source.metrics["count"].value == 10
    assert cached.tags["keel.output"] == source.tags["keel.output"]
    assert [a.path for a in client.list_artifacts(cached.id)] == [a.path for a in client.list_artifacts(source.id)]
    scored = again.step("score").run_id
    assert gate(scored, ["score >= 1.3"], baseline=first.step("score").run_id).passed  # a gate on a cached step
    found = {r.id for r in client.iter_runs(filter="metrics.count = 10")}
    assert {source.id, cached.id} <= found  # search sees the cached copy too


def test_a_pipeline_run_has_its_params_and_its_steps_metrics(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_rollup", FLOW)
    result = mod.flow.run(n=10, options={"C": 0.5, "penalty": "l2"})
    run = keel.get_client().get_run(result.run_id)
    assert json.loads(run.params["options"]) == {"C": 0.5, "penalty": "l2"}  # non-scalar params are params (JSON text)
    assert run.params["n"] == "10" and run.metrics["score"].value == pytest.approx(1.35)
    # two steps logged "count": each is named, neither silently wins
    assert run.metrics["total.count"].value == 10 and run.metrics["total_2.count"].value == 10 and "count" not in run.metrics
    assert gate(result.run_id, ["score >= 1.3"]).passed  # keel gate PIPELINE_RUN


def test_a_failed_step_raises_step_failed_with_the_result(make_module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_fail", FLOW)
    (tmp_path / "broken").write_text("x")
    with pytest.raises(StepFailed) as failure:
        mod.flow.run(n=4)
    exc = failure.value
    assert exc.step == "score" and exc.error == "KeyError: 'fit'"
    assert "step 'score'" in exc.message and exc.run_id in exc.message and "KeyError: 'fit'" in exc.message
    assert exc.result.run_id == exc.run_id and exc.result.status is RunStatus.FAILED
    assert exc.result.step("score").status == "failed" and exc.result.step("load").status == "ran"
    assert keel.get_client().get_run(exc.run_id).status is RunStatus.FAILED


HINTED = """
import keel

@keel.step
def fit(xs, C: float, classes: list[int] | None = None):
    return C

@keel.step
def load(n: int):
    return list(range(n))

@keel.pipeline
def train(C: float = 1.0, n: int = 3, tags: dict[str, str] | None = None):
    return fit(load(n), C=C)

@keel.pipeline
def loose(C="1.0"):
    return fit(load(3), C=C, classes=[0, 1])
"""


def test_hinted_params_are_checked_before_anything_runs(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_hints", HINTED)
    client = keel.get_client()
    with pytest.raises(InvalidArgument, match=r"pipeline 'train' param 'C' must be of type float; got 'abc'"):
        mod.train.run(C="abc")
    with pytest.raises(InvalidArgument, match=r"param 'n' must be of type int; got True"):
        mod.train.run(n=True)
    with pytest.raises(InvalidArgument, match=r"param 'tags' must be of type dict\[str, str\] \| None; got \{'a': 1\}"):
        mod.train.run(tags={"a": 1})
    with pytest.raises(InvalidArgument, match=r"step 'fit' param 'C' must be of type float; got '1.0'"):
        mod.loose.run()  # the pipeline has no hints, the step has
    assert list(client.iter_runs()) == []  # nothing recorded
    assert mod.train.run(C=2, tags={"a": "b"}).output == 2  # an int is a float, as in Python


def test_resume_reads_params_of_any_size(make_module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_big", FLOW)
    big = {f"feature_{i}": i for i in range(2000)}  # ~30 KB of JSON: more than a tag holds
    (tmp_path / "broken").write_text("x")
    with pytest.raises(StepFailed) as failure:
        mod.flow.run(n=5, options=big)
    (tmp_path / "broken").unlink()
    resumed = resume(failure.value.run_id)
    assert resumed.status is RunStatus.FINISHED and resumed.output == {"a": 20.0, "b": 10}
    client = keel.get_client()
    assert json.loads(client.read_artifact(resumed.run_id, "params.json"))["params"]["options"] == big
    assert {s.node: s.status for s in resumed.steps} == {"load": "cached", "total": "cached", "total_2": "cached", "score": "ran"}


def test_resume_of_cut_params_says_so(make_module) -> None:  # type: ignore[no-untyped-def]
    make_module("issue8_cut", FLOW)
    client = keel.get_client()
    run = client.create_run("old", "flow", tags={"keel.kind": "pipeline", "keel.pipeline": "issue8_cut:flow",
                                                 "keel.params": '{"n": 5, "options": {"feature_1": 1, "feat'},
                            kind=RunKind.PIPELINE)  # fmt: skip
    client.end_run(run.id, RunStatus.FAILED)
    with pytest.raises(InvalidArgument, match=r"params of pipeline run .* cannot be read .* cut or corrupt"):
        resume(run.id)


def test_step_and_trial_runs_inherit_code_and_environment(make_module) -> None:  # type: ignore[no-untyped-def]
    import keel.tune as tune

    mod = make_module("issue8_env", FLOW)
    client = keel.get_client()
    result = mod.flow.run(n=3)
    again = mod.flow.run(n=3)  # cached step runs too
    for pipeline_run, step in ((result.run_id, "load"), (again.run_id, "load")):
        parent = client.get_run(pipeline_run)
        child = client.get_run((result if pipeline_run == result.run_id else again).step(step).run_id)
        assert parent.environment.python_version and parent.environment.packages_hash
        assert child.code == parent.code and child.environment == parent.environment
    swept = tune.sweep(lambda trial: trial.params["x"], [{"x": 1}, {"x": 2}], metric="x")
    parent = client.get_run(swept.run_id)
    for trial in swept.trials:
        run = client.get_run(trial.run_id)
        assert run.environment == parent.environment and run.environment.python_version
        assert run.code == parent.code


def _forge_step_run(client: Client, key: str, payload: bytes) -> tuple[str, dict]:  # type: ignore[type-arg]
    """What a hostile client can do over REST: a run dressed as a step run, with its own pickle as output."""
    info = client.artifacts.put_bytes(payload)
    run = client.create_run("attack", "fit", tags={"keel.output": info.sha256}, kind=RunKind.STEP,
                            step=StepInfo("total", key))  # fmt: skip
    client.store.log_artifacts(run.id, [ArtifactRef("output.pkl", info.sha256, info.size, "application/x-python-pickle")])
    return run.id, {"output": {"kind": "pickle", "sha256": info.sha256, "size": info.size, "dataset": ""}}


class _Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (eval, ("__import__('pathlib').Path('pwned').write_text('x')",))


def test_a_cache_entry_cannot_be_repointed_over_rest(make_module, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    client = Client(server_url)
    keel.set_client(client)
    mod = make_module("issue8_rest", FLOW)
    first = mod.flow.run(n=6)
    key = first.step("total").cache_key
    run_id, outputs = _forge_step_run(client, key, pickle.dumps(_Boom()))
    answer = httpx.put(f"{server_url}/api/v1/step-cache/{key}", json={"run_id": run_id, "step": "total", "outputs": outputs})
    assert answer.status_code == 409 and "never replaced" in answer.text
    fresh = "f" * 64  # a key nobody used: the run is still not the one that produced an output for it
    answer = httpx.put(f"{server_url}/api/v1/step-cache/{fresh}", json={"run_id": run_id, "step": "total", "outputs": outputs})
    assert answer.status_code == 409 and "its cache key" in answer.text
    with pytest.raises(Conflict):
        client.store.pipelines.save_step(key, run_id, "total", outputs)
    client.end_run(run_id, RunStatus.FAILED)
    again = mod.flow.run(n=6)
    assert again.step("total").status == "cached" and again.output == first.output
    assert not (tmp_path / "pwned").exists()


EVIL = """
from pathlib import Path
Path(__file__).with_name("imported.txt").write_text("module code ran")
"""


def test_resume_imports_only_modules_of_the_project(make_module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (outside / "issue8_evil.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(outside))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    client = keel.get_client()
    for ref in ("issue8_evil:flow", "antigravity:flow"):
        run = client.create_run("x", "flow", tags={"keel.pipeline": ref, "keel.params": "{}"}, kind=RunKind.PIPELINE)
        client.end_run(run.id, RunStatus.FAILED)
        module = ref.partition(":")[0]
        with pytest.raises(InvalidArgument, match=rf"refusing to import pipeline module '{module}': it resolves to .*{module}"):
            resume(run.id)
    assert not (outside / "imported.txt").exists()  # nothing of it ran
    run = client.create_run("x", "flow", tags={"keel.kind": "pipeline", "keel.pipeline": "os;rm:flow"}, kind=RunKind.PIPELINE)
    with pytest.raises(InvalidArgument, match="a dotted Python module name"):
        resume(run.id)


def test_quickstart_pipeline_twice_in_one_folder_gates_and_shows_params() -> None:
    from sklearn.datasets import load_breast_cancer

    import keel.data
    from keel.cli import quickstart_pipeline as qp
    from keel.registry import register
    from keel.registry.export import card_markdown

    keel.data.log(load_breast_cancer(as_frame=True).frame, qp.DATASET, run=False)
    base = qp.train.run(experiment="quickstart", model="logistic_regression", params={"C": 1.0})
    again = qp.train.run(experiment="quickstart", model="logistic_regression", params={"C": 1.0})
    assert again.step("evaluate").status == "cached"
    rules = ["test_roc_auc >= 0.95", "test_roc_auc >= baseline - 0.01"]
    assert gate(again.step("evaluate").run_id, rules, baseline=base.step("evaluate").run_id).passed
    assert gate(again.run_id, rules, baseline=base.run_id).passed  # the pipeline runs carry the test metrics
    version = register(again.output_of("fit"), "bc", run=again.run_id, input_example=again.output_of("split")[1].head(2))
    card = card_markdown("bc", version.version)
    assert '- params: {"C": 1.0}' in card and "- model: logistic_regression" in card


# -- review: hints check what the caller passed; forged cache entries over REST need the opt-in --------------------

OPTIONAL = """
import keel
from pathlib import Path

@keel.step
def fit(xs, C: float = None, classes: list[int] = None):
    return [C, classes]

@keel.step
def load(n: int):
    return list(range(n))

@keel.pipeline
def train(C: float = None, n: int = 3, out: Path = None):
    return fit(load(n), C=C)
"""


def test_defaults_are_not_checked_and_a_none_default_is_optional(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("issue8_optional", OPTIONAL)
    assert mod.train.run().output == [None, None]  # the step gets C=None explicitly: its default is None too
    assert mod.train.run(C=None, out=None).output == [None, None]
    assert mod.train.run(C=0.5).output == [0.5, None]
    with pytest.raises(InvalidArgument, match=r"pipeline 'train' param 'C' must be of type float; got 'x'"):
        mod.train.run(C="x")  # a value that is given is still checked


def test_a_forged_cache_entry_over_rest_is_not_unpickled_without_opt_in(make_module, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from keel.registry.flavors import UntrustedModel

    mod = make_module("issue8_forged", FLOW)
    local = mod.flow.run(n=7)  # cache keys are content hashes: the same on any store
    keys = {s.node: s.cache_key for s in local.steps}
    client = Client(server_url)
    keel.set_client(client)

    def plant(node: str, payload: bytes) -> None:
        """Before the real step ever ran there: a running run with the right tags, its own pickle, a cache entry."""
        run_id, outputs = _forge_step_run(client, keys[node], payload)
        answer = httpx.put(
            f"{server_url}/api/v1/step-cache/{keys[node]}", json={"run_id": run_id, "step": "total", "outputs": outputs}
        )
        assert answer.status_code == 200, answer.text
        client.end_run(run_id, RunStatus.FAILED)  # the entry stays

    plant("total", pickle.dumps(_Boom()))
    with pytest.raises(UntrustedModel) as refused:
        mod.flow.run(n=7)
    message = refused.value.message
    assert (
        "step 'total'" in message and server_url in message and "not authentication" in message and "trust_pickle=True" in message
    )
    assert not (tmp_path / "pwned").exists()
    pipeline_runs = list(client.iter_runs(filter="tags.`keel.pipeline` = 'issue8_forged:flow'"))
    assert [r.status for r in pipeline_runs] == [RunStatus.FAILED]  # the pipeline run is closed, not left running


def test_trust_pickle_opts_in_and_own_outputs_never_need_it(make_module, server_url: str) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from keel.registry.flavors import UntrustedModel

    mod = make_module("issue8_trusted", FLOW)
    keys = {s.node: s.cache_key for s in mod.flow.run(n=9).steps}
    client = Client(server_url)
    keel.set_client(client)
    run_id, outputs = _forge_step_run(client, keys["total"], pickle.dumps(1000.0))
    assert httpx.put(f"{server_url}/api/v1/step-cache/{keys['total']}",
                     json={"run_id": run_id, "step": "total", "outputs": outputs}).status_code == 200  # fmt: skip
    client.end_run(run_id, RunStatus.FAILED)
    with pytest.raises(UntrustedModel):
        mod.flow.run(n=9)
    assert mod.flow.run(n=9, trust_pickle=True).output == {"a": 1000.0, "b": 36.0}
    again = mod.flow.run(n=4)  # all its outputs stored by this process over REST: no opt-in
    assert again.output == {"a": 12.0, "b": 6} and mod.flow.run(n=4).step("total").status == "cached"


def test_the_standard_library_is_never_project_code(tmp_path: Path) -> None:
    import sys

    from keel.pipelines.imports import check_project_module

    assert "antigravity" not in sys.modules and "this" not in sys.modules
    for module in ("antigravity", "this"):  # stdlib modules whose import has side effects; never imported here
        for project in (Path(sys.base_prefix), Path(sys.prefix), Path("/")):  # a project folder holding the Python install
            with pytest.raises(InvalidArgument, match=rf"refusing to import pipeline module '{module}'"):
                check_project_module(module, project)
    (tmp_path / "issue8_mine.py").write_text("X = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert check_project_module("issue8_mine", tmp_path) == str((tmp_path / "issue8_mine.py").resolve())
    finally:
        sys.path.remove(str(tmp_path))
