"""Registering, loading and promoting models.

>>> v = keel.registry.register(model, "churn", input_example=X[:5])          # doctest: +SKIP
>>> keel.registry.promote("churn", v.version, "production", rules=["auc >= 0.9"])  # doctest: +SKIP
>>> model = keel.registry.load("models:/churn@production")                     # doctest: +SKIP
>>> model.predict(records)                                                     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.entities import Run, RunKind, RunStatus
from keel.core.errors import IntegrityError, InvalidArgument, KeelError
from keel.core.errors import PromotionRefused as PromotionRefused  # defined in the one error tree
from keel.core.hooks import emit
from keel.core.models import AliasChange, ModelVersion
from keel.core.promotion import ANY_HOLDER, ExpectedFrom
from keel.core.validation import ALIAS_PATTERN, NAME_PATTERN
from keel.registry import flavors
from keel.registry.signature import infer_signature, validate_input

_URI = re.compile(rf"^models:/(?P<name>{NAME_PATTERN})(?:@(?P<alias>{ALIAS_PATTERN})|/(?P<version>\d+))?\Z")


@dataclass
class LoadedModel:
    """A registered model in memory: ``predict``/``predict_proba`` take pandas, polars, Arrow, numpy or records,
    checked against the version's signature first."""

    version: ModelVersion
    model: Any = field(repr=False)

    def _input(self, data: Any) -> Any:
        return validate_input(data, self.version.signature)

    def predict(self, data: Any) -> Any:
        """The model's predictions for ``data``, once it matches the signature (``InvalidArgument`` listing
        every violation otherwise)."""
        return self.model.predict(self._input(data))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities for ``data``, checked as in ``predict``; ``InvalidArgument`` when the model has none."""
        if not hasattr(self.model, "predict_proba"):
            raise InvalidArgument(f"model {self.version.uri} ({type(self.model).__name__}) has no predict_proba")
        return self.model.predict_proba(self._input(data))

    def __getattr__(self, name: str) -> Any:
        if name == "predict_proba" or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)


def register(
    model: Any,
    name: str,
    *,
    run: Any = None,
    input_example: Any = None,
    datasets: list[str] | None = None,
    holdout: str | None = None,
    description: str = "",
    ctx: Context | None = None,
) -> ModelVersion:
    """Store ``model`` and create its next immutable version, with flavor, signature, source run (default:
    the active run), that run's metrics, the training datasets (default: the run's inputs), and requirements.

    A step run of a finished pipeline stands for its pipeline: the version takes the pipeline run as its source,
    with the metrics of all its steps and the datasets its steps read (a fit step alone has neither). A pipeline
    run's training data is what its steps read. ``holdout``: a dataset reference (``"churn-test@1"``) of rows the
    model was not trained on, recorded exactly (``name@N``); ONNX export checks parity on them by default.
    ``ctx``: the stores (default: the current context), as for every function here."""
    ctx = _ctx(ctx)
    held_out = _holdout_ref(holdout, ctx)  # checked before anything is stored
    flavor = flavors.detect(model)
    data, fmt, reqs = flavors.save(model, flavor)
    output = None
    if input_example is not None:
        try:
            output = model.predict(input_example)
        except Exception as exc:  # noqa: BLE001 - the example must work with the model
            raise InvalidArgument(f"the model cannot predict its input_example: {type(exc).__name__}: {exc}") from None
    signature = {
        **infer_signature(input_example, output),
        "format": fmt,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
    }
    if held_out is not None:
        signature["holdout"] = held_out
    run_id = run if isinstance(run, str) else getattr(run, "id", None)
    if run is None:
        run_id = ctx.run_id  # the run active in this thread (or task), if any
    metrics: dict[str, float] = {}
    training = list(datasets or [])
    if run_id is not None:
        ctx.flush()  # the run's buffered metrics belong in the snapshot
        source = _source_run(ctx, ctx.store.get_run(run_id), explicit=run is not None)
        run_id = source.id
        metrics = {k: m.value for k, m in source.metrics.items()}
        if datasets is None:
            training = _inputs(ctx, source)
    blob = ctx.artifacts.put_bytes(data)
    version = ctx.store.models.create_version(
        name, flavor=flavor, artifact_sha256=blob.sha256, size=blob.size, signature=signature, source_run=run_id,
        metrics=metrics, datasets=training, requirements=reqs, description=description,
    )  # fmt: skip
    emit("model.version_created", {"model": name, "version": version.version, "uri": version.uri})
    return version


def _holdout_ref(holdout: Any, ctx: Context) -> str | None:
    """``holdout`` as the exact reference of an existing dataset version (a bare name: its latest version)."""
    if holdout is None:
        return None
    ref = getattr(holdout, "ref", holdout)  # a DatasetVersion stands for itself
    if not isinstance(ref, str):
        raise InvalidArgument.for_field("holdout", holdout, "a dataset reference such as 'churn-test@1'")
    from keel.core.datasets import parse_ref

    dataset, number = parse_ref(ref)
    return ctx.store.datasets.get_version(dataset, number).ref  # NotFound names a missing one


def _source_run(ctx: Context, run: Run, *, explicit: bool) -> Run:
    """The run a version records: a step run given explicitly stands for its finished pipeline run (its params,
    its steps' metrics, the data its steps read); the step a model is registered from inside stays itself."""
    if not explicit or run.kind is not RunKind.STEP or run.parent_run_id is None:
        return run
    parent = ctx.store.get_run(run.parent_run_id)
    return parent if parent.kind is RunKind.PIPELINE and parent.status is RunStatus.FINISHED else run


def _inputs(ctx: Context, run: Run) -> list[str]:
    """The dataset versions ``run`` read; for a pipeline run, those its steps read too (each once, in order)."""
    runs = [run.id]
    if run.kind is RunKind.PIPELINE:
        runs += [child.id for child in ctx.store.list_child_runs(run.id)]
    refs = [link.version.ref for r in runs for link in ctx.store.datasets.versions_of_run(r) if link.direction == "input"]
    return list(dict.fromkeys(refs))


def resolve(uri: str, ctx: Context | None = None) -> ModelVersion:
    """``models:/name@alias``, ``models:/name/3`` or ``models:/name`` (the latest version)."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    if not m:
        raise InvalidArgument.for_field("model URI", uri, "'models:/name@alias', 'models:/name/3' or 'models:/name'")
    store = _ctx(ctx).store.models
    if m.group("alias"):
        return store.resolve_alias(m.group("name"), m.group("alias"))
    if m.group("version"):
        return store.get_version(m.group("name"), int(m.group("version")))
    return store.list_versions(m.group("name"))[-1]


def load(uri: str, ctx: Context | None = None, *, trust_pickle: bool | None = None) -> LoadedModel:
    """Load a version: its bytes are verified against their hash before they are deserialised.

    The format is read from the bytes, not from the version's record. A pickle runs code when it is
    loaded, so a pickle served by a keel server (where any client with write access can register one)
    is loaded only with ``trust_pickle=True`` or ``KEEL_TRUST_PICKLE=1``; so is a skops file holding
    tree models (their node arrays are not bounds-checked: see ``keel.registry.flavors``).
    """
    ctx = _ctx(ctx)
    version = resolve(uri, ctx)
    data = ctx.artifacts.get_bytes(version.artifact_sha256)  # raises IntegrityError on tampering
    fmt = flavors.sniff(data)
    declared = version.signature.get("format")
    if declared is not None and declared != fmt:
        raise IntegrityError(f"{version.uri} is registered as a {declared!r} model but its file is {fmt!r}; not loaded")
    if fmt == "onnx":
        from keel.registry.onnx_export import OnnxModel

        return LoadedModel(version, OnnxModel(data))
    if fmt == "pickle":
        check_pickle_trust(ctx, f"{version.uri} is a pickle", trust_pickle, sha256=version.artifact_sha256)
    elif fmt == "skops" and (trees := flavors.tree_types(data)):
        check_pickle_trust(ctx, f"{version.uri} is a skops file with tree models ({', '.join(trees)})",
                           trust_pickle, why=flavors.TREE_RISK, sha256=version.artifact_sha256)  # fmt: skip
    return LoadedModel(version, flavors.load(data, fmt))


PICKLE_RISK = (
    "unpickling runs any code the file contains, and any client that can write to that server can register one, "
    "so keel does not unpickle it by default."
)


def check_pickle_trust(
    ctx: Context, what: str, trust_pickle: bool | None = None, *, why: str = PICKLE_RISK, sha256: str | None = None
) -> None:
    """Refuse to load bytes served by a keel server that could harm this process, unless their writer is trusted
    (``sha256`` given: the server says whether this caller wrote those bytes itself, or a principal with a role the
    project trusts did: ``store.identity.blob_trust``) or the caller opted in (argument, else the ``trust_pickle``
    setting). ``why`` says what loading them could do."""
    source = ctx.shared_source
    if source is None:
        return
    trusted = trust_pickle if trust_pickle is not None else ctx.settings.trust_pickle
    if trusted:
        return
    writers = ""
    if sha256 is not None:
        try:
            verdict = ctx.store.identity.blob_trust(sha256)
        except KeelError as exc:  # an older server, say: no verdict, so no trust
            writers = f" (its writers could not be checked: {exc.message})"
        else:
            if verdict.trusted:
                return
            writers = f" ({verdict.reason})"
    raise flavors.UntrustedModel(
        f"{what} from {source}{writers}; {why} If you trust everyone who can write to that server, pass "
        "trust_pickle=True (or set KEEL_TRUST_PICKLE=1), or have an admin trust its writers' role "
        "(keel roles trust ROLE)."
    )


def promote(
    name: str,
    version: int,
    alias: str,
    *,
    rules: list[str] | None = None,
    require_valid_data: bool = False,
    actor: str = "",
    reason: str = "",
    force: bool = False,
    expected_from: ExpectedFrom = ANY_HOLDER,
    ctx: Context | None = None,
) -> AliasChange:
    """Point ``alias`` at ``version`` if every gate holds: ``rules`` on the version's metrics (rules with
    ``baseline`` compare with the version the alias points to now, and are refused when no version holds it,
    as ``keel gate`` refuses them without a baseline run), and with ``require_valid_data`` a passing
    validation of each training dataset. A refusal (``PromotionRefused``) names the rule that failed.

    The store checks the gates, in the transaction that moves the alias (``ModelStore.move_alias``): nothing
    is decided here. ``expected_from`` (a version, or ``None`` for "not held yet") makes the move a
    compare-and-swap: ``Conflict`` if another move came first. A move without gates needs ``force=True``
    and is recorded as forced."""
    import getpass

    change = _ctx(ctx).store.models.move_alias(
        name, alias, version, rules=rules or (), require_valid_data=require_valid_data,
        expected_from=expected_from, force=force, actor=actor or getpass.getuser(), reason=reason,
    )  # fmt: skip
    emit("model.alias_moved", {"model": name, "alias": alias, "from": change.from_version, "to": change.to_version})
    return change


def history(name: str, alias: str | None = None, ctx: Context | None = None) -> list[AliasChange]:
    """Every move of the model's aliases (or of ``alias`` only), oldest first: from and to which version, by
    whom, when and why. ``history("churn", "production")``."""
    return _ctx(ctx).store.models.alias_history(name, alias)


def alias_at(name: str, alias: str, at: int | str | dt.date | dt.datetime, ctx: Context | None = None) -> int | None:
    """Which version ``alias`` pointed to at a moment: "what was production on 3 March?". ``at`` is ms since the
    epoch, a date or datetime, or an ISO string (``"2026-03-03"``, ``"2026-03-03T12:00"``); without a time zone, UTC.

    >>> alias_at("churn", "production", "2026-03-03")  # doctest: +SKIP
    """
    at_ms = moment_ms(at, "at")
    moves = [c for c in history(name, alias, ctx) if c.at <= at_ms]
    return moves[-1].to_version if moves else None


def moment_ms(at: Any, field: str) -> int:
    """``at`` (ms since the epoch, a date, a datetime or an ISO string; naive means UTC) as ms since the epoch."""
    expected = "ms since the epoch, a date/datetime or an ISO date string such as '2026-03-03' or '2026-03-03T12:00'"
    if isinstance(at, bool):
        raise InvalidArgument.for_field(field, at, expected)
    if isinstance(at, int):
        return at
    moment = at
    if isinstance(at, str):
        try:
            moment = dt.datetime.fromisoformat(at.strip())
        except ValueError:
            raise InvalidArgument.for_field(field, at, expected) from None
    if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day)
    if not isinstance(moment, dt.datetime):
        raise InvalidArgument.for_field(field, at, expected)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)
