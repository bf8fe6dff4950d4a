"""The one error tree: every KeelError subclass lives in keel.core.errors with a code of its own, and
each crosses REST (a real keel server's error handler -> RestStore) as the same class with its message."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

import keel
from keel.core import errors
from keel.core.entities import RunStatus
from keel.core.errors import ERRORS_BY_CODE, KeelError, error_from_dict
from keel.server.app import create_app
from keel.server.auth import authorize
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.rest.client import RestStore
from keel.testing.services import serve_app


def _all_keel_modules() -> list[str]:
    imported = []
    for info in pkgutil.walk_packages(keel.__path__, "keel."):
        if ".migrations." in info.name:  # alembic's scripts run only under alembic, and define no errors
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed: its module cannot define errors we would miss
            continue
        imported.append(info.name)
    return imported


def _subclasses(cls: type[KeelError]) -> set[type[KeelError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_every_keel_error_is_in_the_tree_with_a_unique_code() -> None:
    assert len(_all_keel_modules()) > 50
    every = {c for c in _subclasses(KeelError) if c.__module__.startswith("keel.")}
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in every if c.__module__ != "keel.core.errors")
    assert outside == [], "define every error in keel.core.errors"
    assert set(ERRORS_BY_CODE.values()) == every
    assert len({c.code for c in every}) == len(every)
    assert {code for code, cls in ERRORS_BY_CODE.items() if cls.code != code} == set()
    for name in ("ValidationFailed", "PromotionRefused", "StepFailed", "TrialPruned", "PipelineCycle", "ParityFailed"):
        assert getattr(errors, name).code in ERRORS_BY_CODE


def test_a_subclass_without_a_code_of_its_own_is_refused() -> None:
    class Quiet(errors.Conflict):
        pass

    with pytest.raises(TypeError, match="Quiet needs a code of its own; 'conflict' is taken"):
        errors._by_code([errors.Conflict, Quiet])


def test_the_tree_in_the_docstring_names_every_class_its_code_and_status() -> None:
    doc = errors.__doc__ or ""
    for code, cls in ERRORS_BY_CODE.items():
        lines = [line for line in doc.splitlines() if f" {cls.__name__} " in line]
        assert len(lines) == 1, f"{cls.__name__} is not drawn once in the tree"
        assert f" {code} " in lines[0] and f"{cls.http_status})" in lines[0], lines[0]


def test_old_import_locations_and_names_still_work() -> None:
    from keel.data import ValidationFailed
    from keel.data.dataset_versions import ValidationFailed as from_versions
    from keel.pipelines import PipelineCycle, StepFailed
    from keel.pipelines.dag import PipelineCycle as from_dag
    from keel.pipelines.runner import StepFailed as from_runner
    from keel.registry import PromotionRefused, UntrustedModel
    from keel.registry.flavors import UntrustedModel as from_flavors
    from keel.registry.onnx_export import ParityFailed
    from keel.tune import TrialPruned

    assert ValidationFailed is from_versions is errors.ValidationFailed
    assert StepFailed is from_runner is errors.StepFailed and PipelineCycle is from_dag is errors.PipelineCycle
    assert PromotionRefused is errors.PromotionRefused and UntrustedModel is from_flavors is errors.UntrustedModel
    assert ParityFailed is errors.ParityFailed and TrialPruned is errors.TrialPruned
    # keel's hash mismatch has a name that says so; the old name (not SQLAlchemy's constraint error) still works
    assert keel.IntegrityError is errors.IntegrityError is errors.CorruptedContent


def _samples(tmp: Path) -> dict[str, KeelError]:
    """One instance of every class, built the way its callers build it."""
    from keel.data.checks import CheckResult
    from keel.data.validation import ValidationResult
    from keel.pipelines.runner import PipelineResult, StepRecord

    failed = CheckResult("allowed_values", "city", False, "error", failed_count=2, failed_share=0.5, examples=["Pariss"])
    validation = ValidationResult("orders", 4, [failed], whole_data=[failed])
    pipeline = PipelineResult("etl", "a" * 32, RunStatus.FAILED)
    record = StepRecord("clean", "clean", "b" * 32, "failed", "", error="ValueError: bad batch")
    # the server's own temp folder is redacted in the details as it is in the message
    leaky = StepRecord("clean", "clean", "b" * 32, "failed", "", error=f"ValueError: bad batch in {tmp / 'x.csv'}")
    special: dict[type[KeelError], KeelError] = {
        errors.ValidationFailed: errors.ValidationFailed(validation, "every row failed"),
        errors.StepFailed: errors.StepFailed(pipeline, record),
        errors.MissingExtra: errors.MissingExtra("onnxruntime", "onnx"),
        errors.PromotionRefused: errors.PromotionRefused(
            "promotion of churn version 2 to 'production' refused: 'auc >= 0.9': auc is 0.8",
            checks=[{"rule": "auc >= 0.9", "value": 0.8, "passed": False}],
        ),
    }
    samples = {code: special.get(cls) or cls(f"{cls.__name__} raised by a route") for code, cls in ERRORS_BY_CODE.items()}
    return {**samples, "leaky": errors.StepFailed(pipeline, leaky)}


@pytest.fixture(scope="module")
def raising_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, KeelError]]]:
    """The real server app (its error handler and redaction) with one more route raising each error."""
    tmp = tmp_path_factory.mktemp("errors")
    samples = _samples(tmp)
    app = create_app(open_store(f"sqlite:///{tmp / 'k.db'}"), open_artifact_store(str(tmp / "a")))

    @app.post("/api/v1/test-errors/{code}")
    def raise_it(code: str) -> None:
        raise samples[code]

    app.dependency_overrides[authorize] = lambda: None  # a test route: no line in keel.server.policy

    with serve_app(app) as url:
        yield url, samples


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_each_error_crosses_rest_as_the_same_class(raising_server: tuple[str, dict[str, KeelError]], code: str) -> None:
    url, samples = raising_server
    sent = samples[code]
    answer = httpx.post(f"{url}/api/v1/test-errors/{code}", json={})
    assert answer.status_code == sent.http_status
    assert answer.json()["error"]["code"] == code

    store = RestStore(url)
    try:
        with pytest.raises(KeelError) as caught:
            store._call("POST", f"/test-errors/{code}")
    finally:
        store.transport.close()
    got = caught.value
    assert type(got) is type(sent)
    assert (got.code, got.message, str(got)) == (code, sent.message, sent.message)
    for name in type(sent).details_fields:
        sent_value = orjson.loads(orjson.dumps(errors._json_ready(getattr(sent, name))))
        assert getattr(got, name) == sent_value, name


def test_extra_data_crosses_rest(raising_server: tuple[str, dict[str, KeelError]]) -> None:
    url, _ = raising_server
    store = RestStore(url)
    try:
        with pytest.raises(errors.StepFailed) as step:
            store._call("POST", "/test-errors/step_failed")
        with pytest.raises(errors.StepFailed) as leaky:
            store._call("POST", "/test-errors/leaky")
        with pytest.raises(errors.ValidationFailed) as refused:
            store._call("POST", "/test-errors/validation_failed")
        with pytest.raises(errors.MissingExtra) as missing:
            store._call("POST", "/test-errors/missing_extra")
        with pytest.raises(errors.PromotionRefused) as promotion:
            store._call("POST", "/test-errors/promotion_refused")
    finally:
        store.transport.close()
    assert (step.value.step, step.value.run_id, step.value.result) == ("clean", "a" * 32, None)
    assert step.value.error == "ValueError: bad batch"
    assert leaky.value.error == "ValueError: bad batch in <server path>"  # the server's temp folder is not shown
    assert "x.csv" not in leaky.value.message
    assert refused.value.validation is not None and refused.value.validation["suite"] == "orders"
    assert refused.value.validation["checks"][0]["examples"] == ["Pariss"]
    assert (missing.value.module, missing.value.extra) == ("onnxruntime", "onnx")
    assert promotion.value.checks == [{"rule": "auc >= 0.9", "value": 0.8, "passed": False}]


def test_error_from_dict_rebuilds_the_class_and_its_details() -> None:
    err = error_from_dict({"code": "step_failed", "message": "m", "details": {"step": "train", "error": "E"}}, 422)
    assert isinstance(err, errors.StepFailed) and (err.step, err.error, err.run_id, err.result) == ("train", "E", "", None)
    assert error_from_dict({"code": "integrity_error", "message": "m"}, 409).__class__ is errors.CorruptedContent
    plain = error_from_dict({"code": "conflict", "message": "m", "details": "not a mapping"}, 409)
    assert type(plain) is errors.Conflict and plain.details == {}


@pytest.mark.parametrize(
    "status, cls",
    [(400, errors.InvalidArgument), (403, errors.PermissionDenied), (404, errors.NotFound), (409, errors.Conflict),
     (503, errors.StoreUnavailable), (500, KeelError), (413, KeelError)],
)  # fmt: skip
def test_an_unknown_code_comes_back_as_the_branch_its_status_names(status: int, cls: type[KeelError]) -> None:
    """A newer server's error class is still caught as its branch (a Conflict subclass as Conflict) by an older client."""
    err = error_from_dict({"code": "alias_moved_meanwhile", "message": "someone moved it"}, status)
    assert type(err) is cls and err.message == "someone moved it"


def test_to_dict_sends_details_only_when_there_are_some() -> None:
    assert errors.NotFound("x").to_dict() == {"code": "not_found", "message": "x"}
    assert errors.MissingExtra("ray", "ray").to_dict() == {
        "code": "missing_extra",
        "message": "ray is not installed; run: pip install 'keel[ray]'",
        "details": {"module": "ray", "extra": "ray"},
    }
