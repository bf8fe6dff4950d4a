"""The one exception tree of keel: every error keel raises on purpose is defined here.

::

    KeelError              keel_error          every error keel raises on purpose          (HTTP 400)
    ├── InvalidArgument    invalid_argument    bad input: names the field, the value, what was expected  (400)
    │   ├── PipelineCycle  pipeline_cycle      a pipeline's steps do not form a DAG        (400)
    │   └── ParityFailed   parity_failed       an ONNX export disagrees with its model     (400)
    ├── Unauthenticated    unauthenticated     no valid token: missing, unknown, expired, revoked  (401)
    ├── PermissionDenied   permission_denied   the caller may not do this                  (403)
    │   └── UntrustedModel untrusted_model     loading these bytes could run untrusted code  (403)
    ├── NotFound           not_found           an entity that does not exist               (404)
    ├── Conflict           conflict            a write that contradicts what is stored     (409)
    │   ├── PromotionRefused promotion_refused a gate refused to move an alias             (409)
    │   ├── BudgetExceeded privacy_budget_exceeded  a DP run past its data's privacy budget  (409)
    │   └── AlreadyExists  already_exists      a create whose name is taken                (409)
    ├── CorruptedContent   integrity_error     stored bytes that no longer match their hash  (409)
    ├── ValidationFailed   validation_failed   data refused at ingestion by its checks     (422)
    ├── StepFailed         step_failed         a pipeline step failed after its retries    (422)
    ├── TrialPruned        trial_pruned        an objective stopped an unpromising trial   (400)
    ├── StudyFailed        study_failed        every trial of a study or sweep failed      (422)
    ├── FederatedError     federated_failed    a silo of a federated training failed       (422)
    ├── TooManyFailures    too_many_failures   a client that failed too often, refused a while  (429)
    ├── MissingExtra       missing_extra       an optional dependency is not installed     (501)
    └── StoreUnavailable   store_unavailable   the backend cannot be reached or keeps failing  (503)

``IntegrityError`` is the old name of ``CorruptedContent`` (a hash mismatch, not SQLAlchemy's
constraint violation); its wire code stays ``integrity_error`` so old clients still map it.

Every class has its own ``code``; the server sends ``{"code", "message"}`` plus, for errors
that carry JSON data (``details_fields``), ``"details"``, and ``error_from_dict`` rebuilds the
same class on the client. ``ERRORS_BY_CODE`` is built by walking this tree, so a new class is
on the wire as soon as it is defined here (tests/test_errors.py checks that every KeelError
subclass in keel is). Stores translate driver errors (sqlalchemy, httpx, fsspec) into this
tree, so no driver exception reaches a user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, Self


class KeelError(Exception):
    """Root of every error keel raises on purpose."""

    code: ClassVar[str] = "keel_error"
    http_status: ClassVar[int] = 400
    # attributes holding JSON data that travel in the error's "details" and are restored on the client
    details_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> dict[str, Any]:
        """The ``details_fields`` that are set, as plain JSON values."""
        found = {name: getattr(self, name, None) for name in self.details_fields}
        return {name: _json_ready(value) for name, value in found.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data: ``{"code": ..., "message": ...}``, plus ``"details"`` when set."""
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if details := self.details:
            payload["details"] = details
        return payload

    @classmethod
    def from_wire(cls, message: str, details: Mapping[str, Any] | None = None) -> Self:
        """This error as a server sent it. A subclass's ``__init__`` is not run: its arguments (a
        ``PipelineResult``, a ``ValidationResult``) do not cross the wire; the JSON ``details`` do."""
        err = cls.__new__(cls)
        KeelError.__init__(err, message)
        for name in cls.details_fields:
            if details and name in details:
                setattr(err, name, details[name])
        return err


class InvalidArgument(KeelError):
    """Bad input. The message names the field, the value and what was expected."""

    code = "invalid_argument"
    http_status = 400

    @classmethod
    def for_field(cls, field: str, value: Any, expected: str) -> InvalidArgument:
        """The error for one bad value: ``for_field("step", -1.5, "a finite integer")`` reads
        "step must be a finite integer; got -1.5" (the value's repr, cut at 80 characters)."""
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return cls(f"{field} must be {expected}; got {shown}")


class PipelineCycle(InvalidArgument):
    """A pipeline whose steps depend on each other in a cycle; the message names it."""

    code = "pipeline_cycle"


class ParityFailed(InvalidArgument):
    """An ONNX export that does not agree with the original model on held-out rows."""

    code = "parity_failed"


class Unauthenticated(KeelError):
    """No credentials, or credentials that do not name a principal (unknown, expired or revoked token). The message
    never contains the token."""

    code = "unauthenticated"
    http_status = 401


class TooManyFailures(KeelError):
    """A client that failed authentication too often, refused for ``retry_after`` seconds."""

    code = "too_many_failures"
    http_status = 429

    def __init__(self, message: str = "too many failed authentications: try again later", retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDenied(KeelError):
    code = "permission_denied"
    http_status = 403


class UntrustedModel(PermissionDenied):
    """Loading these bytes could run code keel has no reason to trust."""

    code = "untrusted_model"


class NotFound(KeelError):
    """What was asked for does not exist (a run, experiment, model version, artifact...); HTTP 404."""

    code = "not_found"
    http_status = 404


class Conflict(KeelError):
    """The request clashes with the stored state: a param logged again with another value, a run ended
    twice, a name already taken; HTTP 409."""

    code = "conflict"
    http_status = 409


class PromotionRefused(Conflict):
    """A gate refused to move an alias; ``checks`` are the failed checks (JSON), when the caller gave them."""

    code = "promotion_refused"
    details_fields = ("checks",)
    checks: list[Any] | None = None

    def __init__(self, message: str, checks: Sequence[Any] | None = None) -> None:
        super().__init__(message)
        if checks is not None:
            self.checks = list(checks)


class BudgetExceeded(Conflict):
    """A differentially private run that would spend more of a dataset version's privacy budget than is left; refused
    before it trains. The message names the dataset, the budget, what is spent and what was asked."""

    code = "privacy_budget_exceeded"


class AlreadyExists(Conflict):
    """A create whose name is taken (a ``Conflict``: older clients catch it as one)."""

    code = "already_exists"


class CorruptedContent(KeelError):
    """Stored bytes whose hash no longer matches their name: corrupted or tampered."""

    code = "integrity_error"  # the name on the wire since the first release
    http_status = 409


IntegrityError = CorruptedContent  # the old name; SQLAlchemy's IntegrityError is a constraint violation


class _ValidationResult(Protocol):
    """What ``ValidationFailed`` reads of a ``keel.data.validation.ValidationResult``."""

    @property
    def whole_data(self) -> Sequence[Any]: ...

    def summary(self) -> str: ...

    def unsplittable(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class ValidationFailed(KeelError):
    """Data refused at ingestion: an error-severity check failed. Nothing was stored.

    ``result`` is the ``ValidationResult`` (``None`` on an error rebuilt from a server's answer);
    ``validation`` is its JSON form, which crosses the wire."""

    code = "validation_failed"
    http_status = 422
    details_fields = ("validation",)
    result: Any = None
    validation: dict[str, Any] | None = None

    def __init__(self, result: _ValidationResult, note: str = "") -> None:
        message = f"refused, nothing stored: {result.summary()}"
        if result.whole_data:
            # say which failures quarantine could never split off, so nobody retries with on_fail="quarantine"
            message += (
                f"; quarantine cannot split off rows for {result.unsplittable()}: "
                "these checks judge the whole table or column, not single rows"
            )
        super().__init__(message + (f"; {note}" if note else ""))
        self.result = result
        self.validation = result.to_dict()


class _PipelineResult(Protocol):
    @property
    def pipeline(self) -> str: ...

    @property
    def run_id(self) -> str: ...


class _StepRecord(Protocol):
    @property
    def node(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    @property
    def error(self) -> str: ...


class StepFailed(KeelError):
    """A pipeline step failed (after its retries). ``result`` is the ``PipelineResult``: what ran,
    what was skipped (``None`` on an error rebuilt from a server's answer); ``step``, ``error`` and
    ``run_id`` (the pipeline run) say what failed where, and cross the wire."""

    code = "step_failed"
    http_status = 422
    details_fields = ("step", "error", "run_id")
    result: Any = None
    step: str = ""
    error: str = ""
    run_id: str = ""

    def __init__(self, result: _PipelineResult, record: _StepRecord) -> None:
        super().__init__(
            f"step {record.node!r} of pipeline {result.pipeline!r} failed: {record.error} "
            f"(pipeline run {result.run_id}, step run {record.run_id})"
        )
        self.result = result
        self.step = record.node
        self.error = record.error
        self.run_id = result.run_id


class TrialPruned(KeelError):
    """Raised inside an objective to stop a trial that is not promising (``trial.prune()``)."""

    code = "trial_pruned"


class FederatedError(KeelError):
    """A silo of a federated training failed: its error, never its data, is in the message; HTTP 422."""

    code = "federated_failed"
    http_status = 422


class StudyFailed(KeelError):
    """Every trial of a study (or sweep) failed: the message quotes the first trial's error. ``run_id`` is the study
    run, ``error`` that first error; ``result`` the ``StudyResult``/``SweepResult`` (``None`` when rebuilt from a
    server's answer)."""

    code = "study_failed"
    http_status = 422
    details_fields = ("run_id", "error")
    result: Any = None
    run_id: str = ""
    error: str = ""

    def __init__(self, message: str, *, run_id: str = "", error: str = "", result: Any = None) -> None:
        super().__init__(message)
        self.run_id, self.error, self.result = run_id, error, result


class MissingExtra(KeelError):
    """An optional dependency is not installed; ``module`` and ``extra`` say which and how to get it."""

    code = "missing_extra"
    http_status = 501
    details_fields = ("module", "extra")
    module: str = ""
    extra: str = ""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed; run: pip install 'keel[{extra}]'")
        self.module = module
        self.extra = extra


class StoreUnavailable(KeelError):
    code = "store_unavailable"
    http_status = 503


def _json_ready(value: Any) -> Any:
    """``value`` as plain JSON: dataclasses as dicts, anything else unknown as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_ready(dataclasses.asdict(value))
    return str(value)


def _tree(root: type[KeelError]) -> list[type[KeelError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _tree(sub)
    return found


def _by_code(classes: list[type[KeelError]]) -> dict[str, type[KeelError]]:
    by_code: dict[str, type[KeelError]] = {}
    for cls in classes:
        # a subclass that does not set its own code would share its parent's and come back as the parent
        if "code" not in vars(cls) or cls.code in by_code:
            raise TypeError(f"{cls.__qualname__} needs a code of its own; {cls.code!r} is taken")
        by_code[cls.code] = cls
    return by_code


ERRORS_BY_CODE: dict[str, type[KeelError]] = _by_code(_tree(KeelError))
# an unknown code (from a newer server) comes back as the branch of the tree its HTTP status names
_BY_STATUS: dict[int, type[KeelError]] = {
    cls.http_status: cls for cls in (InvalidArgument, PermissionDenied, NotFound, Conflict, StoreUnavailable)
}


def error_from_dict(payload: Mapping[str, Any], status: int) -> KeelError:
    """Rebuild the error a server sent (used by the REST clients): the class its code names, the message,
    and the JSON ``details`` it carries."""
    code = str(payload.get("code"))
    cls = ERRORS_BY_CODE.get(code) or _BY_STATUS.get(status, KeelError)
    message = str(payload.get("message", f"server answered HTTP {status}"))
    details = payload.get("details")
    return cls.from_wire(message, details if isinstance(details, Mapping) else None)
