"""The REST API of the metadata stores, declared once: one entry per store method.

Each entry says how a store method travels over HTTP: its verb and path, which parameters go in
the path or the query string, the request body's schema (``keel.store.metadata.rest.schemas``),
how an argument is checked and converted (``Arg``) and how the answer is encoded and decoded
(``Result``, over the converter pairs of ``wire``). Both sides are made from this table:

- the REST client (``keel.store.metadata.rest.client``): the entries are the methods of its
  classes (``RestStore(MetadataEndpoints, MetadataStore)``); a call binds the ABC method's
  signature, builds the path, query and body, sends them through ``HttpTransport`` and decodes
  the answer;
- the server (``keel.server.endpoints``) mounts one route per entry: validate the body with
  its schema, convert the arguments, call the store method, encode the result. A route whose
  verb is not GET depends on ``require_writer``.

So a new store method is its ABC method, its SQL implementation, one entry here and (when it
takes a body) one schema. The names of a schema's fields are the method's parameter names; a
JSON name that differs is the field's alias.

Written by hand, on purpose (the table lists them so that nothing is missed):

- ``log_metrics`` (``POST /api/v1/metrics``): the metric flush, parsed with orjson instead of
  pydantic (batches of tens of thousands of rows), with its batch id in the ``Idempotency-Key``
  header and a resend (``Keel-Resend``) looked up before the body is parsed.
- ``end_run`` (``POST /api/v1/runs/{run_id}/end``): its batch id travels in the
  ``Idempotency-Key`` header, which makes the request safe to resend.
- ``GET /api/v1/experiments`` (``list_experiments`` and ``get_experiment_by_name``, whose
  client side is generated, ``mount=False``): one route with a ``name`` filter that no single
  store method has, kept as it was so that older clients keep working.
- ``move_alias`` is generated on both sides, but the server runs a hook before the call
  (``keel.server.routes.models``): the actor a client declares is recorded with a mark, because
  the server cannot verify it (server policy, not wire format).
- ``labels.annotations`` likewise: for a caller without ``read`` (an annotator) the server's hook
  (``keel.server.routes.labels``) replaces ``annotator`` with the caller, whoever the query names.

"latest" dataset versions are not a special case: ``get_version``'s ``version`` argument travels
as ``"latest"`` or a number (an ``Arg``).
"""

from __future__ import annotations

import inspect
import json
import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec
from urllib.parse import quote

from pydantic import BaseModel

from keel.core.audit import AuditEvent
from keel.core.dataset_records import plain_json
from keel.core.datasets import ColumnSchema
from keel.core.deployment_records import check_canaries
from keel.core.entities import (
    CodeVersion,
    Environment,
    Metric,
    RunKind,
    RunPage,
    RunStatus,
    StepInfo,
    TrialInfo,
    TrialState,
    ViewType,
)
from keel.core.errors import InvalidArgument, NotFound
from keel.core.identity import check_principal_name, check_role
from keel.core.identity_records import (
    check_expires_at,
    check_kind,
    check_model,
    check_project,
    check_scope_list,
    check_token_id,
    check_token_name,
)
from keel.core.labeling import check_guideline
from keel.core.model_records import check_version_metrics
from keel.core.monitoring import check_lease
from keel.core.predictions import PredictionLogFile, check_labels, check_log_file, check_request_ids, check_time_bound
from keel.core.promotion import check_move
from keel.core.validation import check_name, check_sha256, param_to_str
from keel.store.metadata.audit import AuditStore, check_page
from keel.store.metadata.base import MetadataStore, check_batch_id, check_run_kind, check_trial_result
from keel.store.metadata.datasets import DatasetStore
from keel.store.metadata.deployments import DeploymentStore
from keel.store.metadata.identity import IdentityStore
from keel.store.metadata.labels import LabelStore
from keel.store.metadata.models import ModelStore
from keel.store.metadata.monitors import MonitorStore
from keel.store.metadata.pipelines import PipelineStore
from keel.store.metadata.predictions import PredictionStore
from keel.store.metadata.privacy import PrivacyStore, check_dataset_version
from keel.store.metadata.rest import assessment_wire as aw
from keel.store.metadata.rest import label_wire as lw
from keel.store.metadata.rest import monitor_wire as mw
from keel.store.metadata.rest import privacy_wire as pw
from keel.store.metadata.rest import schemas as s
from keel.store.metadata.rest import wire
from keel.store.metadata.search import check_view

Json = Any
Args = dict[str, Any]
"""A call's arguments by parameter name (the ABC method's signature, defaults applied)."""


def _same(value: Any) -> Any:
    return value


def _plain(value: Any) -> Any:
    """The default client conversion: tuples and other sequences as lists, mappings as dicts."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def opt(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, with None passed through."""
    return lambda value: None if value is None else convert(value)


@dataclass(frozen=True, slots=True)
class Arg:
    """How one parameter travels. ``to_wire`` runs on the client (check, then JSON), ``from_wire`` on the
    server (JSON as the schema validated it -> what the store method takes). ``wire`` is its name in the
    path or query string when that differs; ``wire_type`` what the server parses there (str or int), and
    ``wire_default`` what an optional query value defaults to there."""

    to_wire: Callable[[Any], Any] = _plain
    from_wire: Callable[[Any], Any] = _same
    wire: str | None = None
    wire_type: type = str
    wire_default: str | None = None  # the server's default for an optional query value, else None (not given)


@dataclass(frozen=True, slots=True)
class Result:
    """How a method's return value travels: ``to_json`` on the server, ``from_json`` on the client (it also
    gets the call's arguments, for results that do not repeat them); ``wire_type`` is the response model."""

    to_json: Callable[[Any], Json]
    from_json: Callable[[Json, Args], Any]
    wire_type: Any = dict[str, Any]


def one(to_json: Callable[[Any], Json], from_json: Callable[[Any], Any]) -> Result:
    return Result(to_json, lambda data, _: from_json(data))


def many(to_json: Callable[[Any], Json], from_json: Callable[[Any], Any]) -> Result:
    return Result(lambda items: [to_json(i) for i in items], lambda data, _: [from_json(d) for d in data], list[dict[str, Any]])


def keyed(key: str, to_json: Callable[[Any], Json] = _same, from_json: Callable[[Any], Any] = _same) -> Result:
    """``{key: value}``, the value None or converted (a lookup that may find nothing)."""

    def decode(data: Json, _: Args) -> Any:
        value = data.get(key) if isinstance(data, dict) else None
        return None if value is None else from_json(value)

    return Result(lambda value: {key: None if value is None else to_json(value)}, decode)


NOTHING = Result(lambda _: {}, lambda _data, _args: None)

# path and query arguments -------------------------------------------------------------------------------------------


def _run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id or not run_id.isalnum():
        raise InvalidArgument.for_field("run_id", run_id, "a run id (letters and digits)")
    return run_id


def _version_id(version_id: Any) -> int:
    if isinstance(version_id, bool) or not isinstance(version_id, int):
        raise InvalidArgument.for_field("version_id", version_id, "an integer")
    return version_id


def _enum(kind: type[RunKind] | type[RunStatus], field: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise InvalidArgument.for_field(field, value, f"one of {', '.join(k.value for k in kind)}") from None

    return parse


def _dataset_version(text: str) -> int | None:
    if text == "latest":
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument.for_field("version", text, "a positive integer or 'latest'") from None


RUN_ID = Arg(to_wire=_run_id)
INT = Arg(to_wire=int, wire_type=int)
VERSION_ID = Arg(to_wire=_version_id, wire_type=int)
VIEW = Arg(to_wire=lambda view: check_view(view).value, from_wire=check_view, wire_default=ViewType.ACTIVE.value)
KIND = Arg(to_wire=opt(lambda k: check_run_kind(k, None, None)[0].value), from_wire=opt(_enum(RunKind, "kind")))

# body arguments -----------------------------------------------------------------------------------------------------


def _param_texts(params: Any) -> dict[str, str]:
    """Param values as the server's store keeps them (the one conversion: ``core.validation.param_to_str``)."""
    if not isinstance(params, Mapping):
        raise InvalidArgument.for_field("params", params, "a mapping of key to value")
    return {k: param_to_str(k, val) for k, val in params.items()}


def _tag_texts(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (tags or {}).items()}


def _transform(transform: Any) -> Any:
    if not isinstance(transform, Mapping):
        raise InvalidArgument.for_field("transform", transform, "a mapping (name, code hash, params)")
    # checked here too: the JSON encoder would raise a bare TypeError on anything else
    return plain_json(transform, "transform") if transform else None


def _schema_to_json(schema: Sequence[ColumnSchema]) -> list[list[Any]]:
    return [[c.name, c.type, c.nullable] for c in schema]


def _check_run(args: Args) -> None:
    args["kind"], args["step"], args["trial"] = check_run_kind(args["kind"], args["step"], args["trial"])


def _check_trial_result(args: Args) -> None:
    args["state"], args["value"] = check_trial_result(args["state"], args["value"])


def _check_move(args: Args) -> None:
    """The client refuses what needs no store before a request is made; the server checks the gates and the holder
    in its own transaction."""
    move = check_move(
        args["alias"], args["version"], rules=args["rules"], require_valid_data=args["require_valid_data"],
        expected_from=args["expected_from"], force=args["force"], actor=args["actor"], reason=args["reason"],
    )  # fmt: skip
    args.update(
        version=move.version, rules=[r.text for r in move.rules], require_valid_data=move.require_valid_data,
        expected_from=move.expected_from, force=move.force, reason=move.reason,
    )  # fmt: skip


RUN = (wire.run_to_json, wire.run_from_json)
EXPERIMENT = (wire.experiment_to_json, wire.experiment_from_json)
DATASET_VERSION = (wire.version_to_json, wire.version_from_json)
MODEL_VERSION = (wire.model_version_to_json, wire.model_version_from_json)
ALIAS_CHANGE = (wire.alias_change_to_json, wire.alias_change_from_json)
DEPLOYMENT = (wire.deployment_to_json, wire.deployment_from_json)
DEPLOYMENT_CHANGE = (wire.deployment_change_to_json, wire.deployment_change_from_json)


def _first_experiment(data: Json, args: Args) -> Any:
    if not data:
        raise NotFound(f"experiment {args['name']!r} does not exist in project {args['project']!r}")
    return wire.experiment_from_json(data[0])


# the table's machinery ----------------------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"{(\w+)}")


class Endpoint:
    """One store method over HTTP. A descriptor: on a REST store instance it is the bound client method."""

    def __init__(
        self,
        verb: str,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        query: Sequence[str] = (),
        args: Mapping[str, Arg] | None = None,
        result: Result = NOTHING,
        check: Callable[[Args], None] | None = None,
        skip_if_empty: str | None = None,
        operation: str | None = None,
        mount: bool = True,
    ) -> None:
        self.verb, self.path, self.body, self.query = verb, path, body, tuple(query)
        self.args = dict(args or {})
        self.result, self.check, self.skip_if_empty, self.mount = result, check, skip_if_empty, mount
        self._operation = operation
        self.name = ""
        self.attribute: str | None = None  # the store's attribute holding the sub-store ("models"), None for the root
        self.tag = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def operation(self) -> str:
        """The route's name (and so its OpenAPI operation id), as it was when routes were written by hand."""
        return self._operation or self.name

    @property
    def key(self) -> str:
        return f"{self.attribute}.{self.name}" if self.attribute else self.name

    def bind(self, abc_class: type, attribute: str | None, tag: str) -> None:
        """Tie the entry to its ABC method; every parameter must travel in the path, the query or the body."""
        self.attribute, self.tag, self.store_class = attribute, tag, abc_class
        self.signature = inspect.signature(getattr(abc_class, self.name))
        params = list(self.signature.parameters)[1:]  # without self
        wire_name = {p: self.arg(p).wire or p for p in params}
        by_wire = {w: p for p, w in wire_name.items()}
        path_wires = _PATH_PARAM.findall(self.path)
        self.path_params = [(by_wire[w], w) for w in path_wires]
        self.query_params = [(p, wire_name[p]) for p in self.query]
        # body fields: (parameter, field name, JSON name)
        self.body_fields: list[tuple[str, str, str]] = []
        if self.body is not None:
            for field, info in self.body.model_fields.items():
                self.body_fields.append((field.rstrip("_"), field, info.alias or field))
        placed = [p for p, _ in self.path_params] + list(self.query) + [p for p, _, _ in self.body_fields]
        if sorted(placed) != sorted(params):
            raise TypeError(f"endpoint {self.key}: parameters {params} travel as {placed} (path, query, body)")
        self.function = self._client_function()

    def arg(self, param: str) -> Arg:
        return self.args.get(param) or _DEFAULT_ARG

    # client -----------------------------------------------------------------------------------------------------
    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        method = types.MethodType(self.function, instance)
        instance.__dict__[self.name] = method  # found directly from now on (a non-data descriptor)
        return method

    def _client_function(self) -> Callable[..., Any]:
        signature, check, skip, result = self.signature, self.check, self.skip_if_empty, self.result
        path_params = [(p, w, self.arg(p).to_wire) for p, w in self.path_params]
        query_params = [(p, w, self.arg(p).to_wire) for p, w in self.query_params]
        body_fields = [(p, j, self.arg(p).to_wire) for p, _, j in self.body_fields]
        verb, path, has_body = self.verb, self.path, self.body is not None

        def call(store: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(store, *args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            if check is not None:
                check(a)
            if skip is not None and not a[skip]:
                return None
            url = path.format_map({w: quote(str(to(a[p])), safe="") for p, w, to in path_params}) if path_params else path
            query = {w: v for p, w, to in query_params if (v := to(a[p])) is not None} or None
            body = {j: to(a[p]) for p, j, to in body_fields} if has_body else None
            return result.from_json(store.transport.call(verb, url, body, params=query), a)

        call.__name__ = call.__qualname__ = self.name
        call.__signature__ = signature  # type: ignore[attr-defined]
        return call

    # server -----------------------------------------------------------------------------------------------------
    def request_args(self, wire_args: Mapping[str, Any], body: BaseModel | None) -> Args:
        """The store method's arguments from a request: path and query values by their wire names (None: not given,
        so the method's default applies) and the validated body."""
        kwargs: Args = {}
        for p, w in (*self.path_params, *self.query_params):
            if (value := wire_args.get(w)) is not None:
                kwargs[p] = self.arg(p).from_wire(value)
        if body is not None:
            data = body.model_dump()
            for p, field, _ in self.body_fields:
                kwargs[p] = self.arg(p).from_wire(data[field])
        return kwargs

    def call_store(self, target: Any, kwargs: Args) -> Any:
        """``target.<method>(**kwargs)``, positional where the ABC says so (an implementation may rename those)."""
        bound = self.signature.bind(target, **kwargs)
        return getattr(target, self.name)(*bound.args[1:], **bound.kwargs)


_DEFAULT_ARG = Arg()
_P = ParamSpec("_P")


def _typed_any(make: Callable[_P, Endpoint]) -> Callable[_P, Any]:
    """The same constructor, its result typed ``Any``: the class attribute stands for the ABC method it implements."""
    return make


endpoint = _typed_any(Endpoint)
"""An ``Endpoint`` (same arguments, checked by mypy), typed ``Any`` where it is assigned in a group."""


class Endpoints:
    """A group of entries, one class per store ABC: ``class X(Endpoints, store=ModelStore, attribute="models")``.

    Every abstract method of the ABC has an entry or is named in ``hand_written`` (checked when the class is made).
    """

    store: type = object
    attribute: str | None = None
    tag: str = ""
    hand_written: frozenset[str] = frozenset()

    def __init_subclass__(
        cls,
        *,
        store: type | None = None,
        attribute: str | None = None,
        tag: str = "",
        hand_written: Sequence[str] = (),
        **kw: Any,
    ) -> None:
        super().__init_subclass__(**kw)
        if store is None:  # a store implemented by a group (the REST classes), not a group
            return
        cls.store, cls.attribute, cls.tag, cls.hand_written = store, attribute, tag, frozenset(hand_written)
        for ep in cls.endpoints():
            ep.bind(store, attribute, tag)
        missing = set(getattr(store, "__abstractmethods__", ())) - {e.name for e in cls.endpoints()} - cls.hand_written
        # sub-stores: their own groups
        missing -= {
            "audit", "datasets", "deployments", "identity", "labels", "models", "monitors", "pipelines", "predictions", "privacy",
        }  # fmt: skip
        if missing:
            raise TypeError(f"{cls.__name__}: no endpoint for {sorted(missing)}")

    @classmethod
    def endpoints(cls) -> Iterator[Endpoint]:
        return (v for v in vars(cls).values() if isinstance(v, Endpoint))


# the table ----------------------------------------------------------------------------------------------------------

GET, POST, PUT, DELETE = "GET", "POST", "PUT", "DELETE"


class MetadataEndpoints(Endpoints, store=MetadataStore, attribute=None, tag="tracking", hand_written=("log_metrics", "end_run")):
    get_or_create_experiment = endpoint(
        POST, "/experiments", body=s.ExperimentIn, result=one(*EXPERIMENT), operation="create_experiment"
    )
    get_experiment = endpoint(GET, "/experiments/{experiment_id}", args={"experiment_id": INT}, result=one(*EXPERIMENT))
    get_experiment_by_name = endpoint(
        GET, "/experiments", query=("name", "project"), result=Result(wire.experiment_to_json, _first_experiment), mount=False
    )
    list_experiments = endpoint(
        GET, "/experiments", query=("project", "view"), args={"view": VIEW}, result=many(*EXPERIMENT), mount=False
    )
    delete_experiment = endpoint(DELETE, "/experiments/{experiment_id}", args={"experiment_id": INT})
    restore_experiment = endpoint(POST, "/experiments/{experiment_id}/restore", body=s.EmptyIn, args={"experiment_id": INT})
    create_run = endpoint(
        POST,
        "/runs",
        body=s.RunIn,
        check=_check_run,
        args={
            "tags": Arg(_tag_texts),
            "params": Arg(lambda params: _param_texts(params or {})),
            "code": Arg(opt(wire.code_to_json), opt(lambda d: CodeVersion(**d))),
            "environment": Arg(opt(wire.environment_to_json), opt(lambda d: Environment(**d))),
            "kind": Arg(lambda k: k.value, _enum(RunKind, "kind")),
            "step": Arg(opt(wire.step_to_json), opt(lambda d: StepInfo(**d))),
            "trial": Arg(
                opt(lambda t: {"number": t.number, "params": dict(t.params)}), opt(lambda d: TrialInfo(d["number"], d["params"]))
            ),
        },
        result=one(*RUN),
    )  # fmt: skip
    set_trial_result = endpoint(
        POST,
        "/runs/{run_id}/trial-result",
        body=s.TrialResultIn,
        check=_check_trial_result,
        args={
            "run_id": RUN_ID,
            "state": Arg(lambda st: TrialState(st).value),  # the server's store checks the state
            "value": Arg(opt(wire.encode_float), opt(lambda v: wire.decode_float(v, "trial value"))),
        },
    )
    list_child_runs = endpoint(
        GET,
        "/runs/{run_id}/children",
        query=("status", "kind"),
        args={
            "parent_run_id": Arg(_run_id, wire="run_id"),
            "status": Arg(opt(str), opt(_enum(RunStatus, "status"))),  # a StrEnum reads as its value; the server checks it
            "kind": KIND,
        },
        result=many(*RUN),
    )
    find_latest_run = endpoint(
        GET, "/experiments/{experiment_id}/latest-run", query=("kind", "name"), args={"experiment_id": INT, "kind": KIND},
        result=keyed("run", *RUN),
    )  # fmt: skip
    get_run = endpoint(GET, "/runs/{run_id}", args={"run_id": RUN_ID}, result=one(*RUN))
    delete_run = endpoint(DELETE, "/runs/{run_id}", args={"run_id": RUN_ID})
    restore_run = endpoint(POST, "/runs/{run_id}/restore", body=s.EmptyIn, args={"run_id": RUN_ID})
    heartbeat = endpoint(POST, "/runs/heartbeat", body=s.HeartbeatIn, skip_if_empty="run_ids")
    log_params = endpoint(POST, "/runs/{run_id}/params", body=s.ParamsIn, args={"run_id": RUN_ID, "params": Arg(_param_texts)})
    set_tags = endpoint(POST, "/runs/{run_id}/tags", body=s.TagsIn, args={"run_id": RUN_ID, "tags": Arg(_tag_texts)})
    metric_batch_applied = endpoint(
        GET, "/metric-batches/{batch_id}", args={"batch_id": Arg(check_batch_id)},
        result=Result(lambda applied: {"applied": applied}, lambda data, _: bool(data["applied"])), operation="metric_batch",
    )  # fmt: skip
    get_metric_history = endpoint(
        GET, "/runs/{run_id}/metrics", query=("key",), args={"run_id": RUN_ID},
        result=Result(
            lambda metrics: [wire.metric_to_json(m) for m in metrics],
            lambda data, a: [Metric(a["run_id"], a["key"], wire.decode_float(v), st, t) for v, st, t in data],
            list[list[Any]],
        ),
        operation="metric_history",
    )  # fmt: skip
    log_artifacts = endpoint(
        POST, "/runs/{run_id}/artifacts", body=s.ArtifactsIn, skip_if_empty="refs",
        args={"run_id": RUN_ID, "refs": Arg(lambda refs: [wire.artifact_to_json(r) for r in refs],
                                            lambda items: [wire.artifact_from_json(d) for d in items])},
    )  # fmt: skip
    list_artifacts = endpoint(
        GET, "/runs/{run_id}/artifacts", args={"run_id": RUN_ID}, result=many(wire.artifact_to_json, wire.artifact_from_json)
    )
    search_runs = endpoint(
        POST,  # a POST because filters and order lists are awkward in a query string; it writes nothing
        "/runs/search",
        body=s.SearchIn,
        args={"view": VIEW},
        result=Result(
            lambda page: {"runs": [wire.run_to_json(r) for r in page.runs], "next_page_token": page.next_page_token},
            lambda data, _: RunPage([wire.run_from_json(r) for r in data["runs"]], data.get("next_page_token")),
        ),
    )


class DatasetEndpoints(Endpoints, store=DatasetStore, attribute="datasets", tag="datasets"):
    log_version = endpoint(
        POST, "/datasets/versions", body=s.DatasetVersionIn,
        args={"schema": Arg(_schema_to_json, wire.schema_from_json), "transform": Arg(opt(_transform))},
        result=Result(
            lambda vc: {"version": wire.version_to_json(vc[0]), "created": vc[1]},
            lambda data, _: (wire.version_from_json(data["version"]), bool(data["created"])),
        ),
    )  # fmt: skip
    get_version = endpoint(
        GET, "/datasets/by-name/versions", query=("name", "version"),
        result=one(*DATASET_VERSION),
        args={"version": Arg(lambda v: "latest" if v is None else str(v), _dataset_version, wire_default="latest")},
    )  # fmt: skip
    get_version_by_id = endpoint(
        GET, "/datasets/versions/{version_id}", args={"version_id": VERSION_ID}, result=one(*DATASET_VERSION)
    )
    list_versions = endpoint(GET, "/datasets/by-name/all", query=("name",), result=many(*DATASET_VERSION))
    list_datasets = endpoint(GET, "/datasets", result=many(*DATASET_VERSION))
    get_profile = endpoint(
        GET, "/datasets/versions/{version_id}/profile", args={"version_id": VERSION_ID}, result=keyed("profile")
    )
    children = endpoint(
        GET, "/datasets/versions/{version_id}/children", args={"version_id": VERSION_ID}, result=many(*DATASET_VERSION)
    )
    link_run = endpoint(POST, "/datasets/versions/{version_id}/runs", body=s.RunLinkIn, args={"version_id": VERSION_ID})
    runs_of_version = endpoint(
        GET, "/datasets/versions/{version_id}/runs", args={"version_id": VERSION_ID},
        result=Result(lambda links: [[r, d] for r, d in links], lambda data, _: [(r, d) for r, d in data], list[list[str]]),
    )  # fmt: skip
    versions_of_run = endpoint(
        GET, "/runs/{run_id}/datasets",
        result=Result(
            lambda links: [wire.run_dataset_link_to_json(link) for link in links],
            lambda data, a: [wire.run_dataset_link_from_json(a["run_id"], d) for d in data],
            list[dict[str, Any]],
        ),
    )  # fmt: skip
    save_validation = endpoint(
        POST, "/datasets/versions/{version_id}/validations", body=s.ValidationIn, args={"version_id": VERSION_ID},
        result=one(wire.validation_to_json, wire.validation_from_json),
    )  # fmt: skip
    list_validations = endpoint(
        GET, "/datasets/versions/{version_id}/validations", args={"version_id": VERSION_ID},
        result=many(wire.validation_to_json, wire.validation_from_json),
    )  # fmt: skip


class PipelineEndpoints(Endpoints, store=PipelineStore, attribute="pipelines", tag="pipelines"):
    save_step = endpoint(PUT, "/step-cache/{cache_key}", body=s.StepCacheIn)
    find_step = endpoint(
        GET, "/step-cache/{cache_key}", args={"cache_key": Arg(from_wire=check_sha256)},
        result=keyed("entry", wire.cached_step_to_json, wire.cached_step_from_json),
    )  # fmt: skip


ASSESSMENT = (aw.assessment_to_json, aw.assessment_from_json)


class ModelEndpoints(Endpoints, store=ModelStore, attribute="models", tag="models"):
    create_version = endpoint(
        POST, "/models/versions", body=s.ModelVersionIn, args={"metrics": Arg(check_version_metrics)}, result=one(*MODEL_VERSION)
    )
    list_models = endpoint(GET, "/models", result=many(*MODEL_VERSION))
    list_versions = endpoint(GET, "/models/{name}/versions", result=many(*MODEL_VERSION))
    get_version = endpoint(GET, "/models/{name}/versions/{version}", args={"version": INT}, result=one(*MODEL_VERSION))
    resolve_alias = endpoint(GET, "/models/{name}/aliases/{alias}", result=one(*MODEL_VERSION))
    move_alias = endpoint(PUT, "/models/{name}/aliases/{alias}", body=s.AliasIn, check=_check_move, result=one(*ALIAS_CHANGE))
    alias_history = endpoint(GET, "/models/{name}/history", query=("alias",), result=many(*ALIAS_CHANGE))
    add_assessment = endpoint(
        POST, "/model-assessments", body=aw.AssessmentIn,
        args={"assessment": Arg(aw.checked_assessment_to_json, aw.assessment_from_json)}, result=one(*ASSESSMENT),
        operation="add_model_assessment",
    )  # fmt: skip
    assessments = endpoint(
        GET, "/models/{name}/versions/{version}/assessments", query=("kind",), args={"version": INT},
        result=many(*ASSESSMENT), operation="model_assessments",
    )  # fmt: skip


CANARIES = Arg(to_wire=opt(lambda canaries: [list(c) for c in check_canaries(canaries)]))  # the server's store checks again


class DeploymentEndpoints(Endpoints, store=DeploymentStore, attribute="deployments", tag="deployments"):
    create = endpoint(
        POST, "/deployments", body=s.DeploymentIn, args={"canaries": CANARIES}, result=one(*DEPLOYMENT),
        operation="create_deployment",
    )  # fmt: skip
    get = endpoint(GET, "/deployments/{name}", result=one(*DEPLOYMENT), operation="get_deployment")
    list_deployments = endpoint(GET, "/deployments", result=many(*DEPLOYMENT))
    set_routes = endpoint(
        PUT, "/deployments/{name}/routes", body=s.RoutesIn, args={"canaries": CANARIES}, result=one(*DEPLOYMENT_CHANGE),
        operation="set_deployment_routes",
    )  # fmt: skip
    history = endpoint(GET, "/deployments/{name}/history", result=many(*DEPLOYMENT_CHANGE), operation="deployment_history")
    rollback = endpoint(
        POST, "/deployments/{name}/rollback", body=s.RollbackIn, result=one(*DEPLOYMENT_CHANGE), operation="rollback_deployment"
    )


def _labels_to_wire(labels: Any) -> list[list[Any]]:
    """Checked before the request (the JSON encoder would raise a bare TypeError on a label that is not JSON);
    a repeated ``(request_id, row)`` travels once, with its last label, as the store would keep it."""
    return [[r, n, json.loads(text)] for (r, n), text in check_labels(labels).items()]


def _time_bound(field: str) -> Arg:
    return Arg(to_wire=lambda value: check_time_bound(value, field), wire_type=int)


class PredictionEndpoints(Endpoints, store=PredictionStore, attribute="predictions", tag="predictions"):
    add_log_file = endpoint(
        POST, "/prediction-files", body=s.PredictionFileIn,
        args={"file": Arg(lambda f: wire.prediction_log_file_to_json(check_log_file(f)), lambda d: PredictionLogFile(**d))},
        result=one(wire.prediction_log_file_to_json, wire.prediction_log_file_from_json), operation="add_prediction_file",
    )  # fmt: skip
    log_files = endpoint(
        GET, "/deployments/{deployment}/prediction-files", query=("since_ms", "until_ms"),
        args={"since_ms": _time_bound("since_ms"), "until_ms": _time_bound("until_ms")},
        result=many(wire.prediction_log_file_to_json, wire.prediction_log_file_from_json), operation="prediction_files",
    )  # fmt: skip
    log_labels = endpoint(
        POST, "/deployments/{deployment}/labels", body=s.LabelsIn, args={"labels": Arg(_labels_to_wire)},
        result=Result(lambda count: {"count": count}, lambda _data, a: len(a["labels"])), operation="log_prediction_labels",
    )  # fmt: skip
    labels = endpoint(
        POST,  # a POST because a list of 100,000 request ids does not fit a query string; it writes nothing
        "/deployments/{deployment}/labels/search", body=s.LabelSearchIn,
        args={"request_ids": Arg(check_request_ids), "since_ms": Arg(lambda value: check_time_bound(value, "since_ms"))},
        result=Result(
            wire.prediction_labels_to_json,
            lambda data, a: wire.prediction_labels_from_json(a["deployment"], data),
            list[list[Any]],
        ),
        operation="prediction_labels",
    )  # fmt: skip


def _named(field: str) -> Arg:
    return Arg(to_wire=opt(lambda name: check_name(name, field)))


def _alert_id(alert_id: Any) -> int:
    if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
        raise InvalidArgument.for_field("alert_id", alert_id, "a positive integer")
    return alert_id


def _check_lease(args: Args) -> None:
    args["job"], args["owner"], args["ttl_ms"] = check_lease(args["job"], args["owner"], args["ttl_ms"])


def _check_release(args: Args) -> None:
    args["job"], args["owner"], _ = check_lease(args["job"], args["owner"], 1)


MONITOR = (mw.monitor_to_json, mw.monitor_from_json)
WINDOW = (mw.window_to_json, mw.window_from_json)
ALERT = (mw.alert_to_json, mw.alert_from_json)
ACTION = (mw.action_to_json, mw.action_from_json)


class MonitorEndpoints(Endpoints, store=MonitorStore, attribute="monitors", tag="monitors"):
    """Entities travel whole in bodies (their names inside them), checked by the client before sending and built
    from the validated body on the server, whose store checks them again."""

    create_monitor = endpoint(
        POST, "/monitors", body=mw.MonitorIn, args={"monitor": Arg(mw.checked_monitor_to_json, mw.monitor_from_json)},
        result=one(*MONITOR),
    )  # fmt: skip
    get_monitor = endpoint(GET, "/monitors/{name}", args={"name": _named("monitor")}, result=one(*MONITOR))
    list_monitors = endpoint(
        GET, "/monitors", query=("deployment",), args={"deployment": _named("deployment")}, result=many(*MONITOR)
    )
    update_monitor = endpoint(
        PUT, "/monitors", body=mw.MonitorIn, args={"monitor": Arg(mw.checked_monitor_to_json, mw.monitor_from_json)},
        result=one(*MONITOR),
    )  # fmt: skip
    put_window = endpoint(
        PUT, "/monitor-windows", body=mw.MonitorWindowIn,
        args={"window": Arg(mw.checked_window_to_json, mw.window_from_json)}, result=one(*WINDOW),
    )  # fmt: skip
    windows = endpoint(
        GET, "/monitors/{monitor}/windows", query=("since_ms", "until_ms"),
        args={"monitor": _named("monitor"), "since_ms": _time_bound("since_ms"), "until_ms": _time_bound("until_ms")},
        result=many(*WINDOW), operation="monitor_windows",
    )  # fmt: skip
    open_alert = endpoint(
        POST, "/monitor-alerts", body=mw.AlertIn, args={"alert": Arg(mw.checked_alert_to_json, mw.alert_from_json)},
        result=one(mw.opened_to_json, mw.opened_from_json),
    )  # fmt: skip
    resolve_alert = endpoint(
        POST, "/monitors/{monitor}/alerts/{rule}/resolve",
        args={"monitor": _named("monitor"), "rule": _named("rule")}, result=keyed("alert", *ALERT),
    )  # fmt: skip
    alerts = endpoint(
        GET, "/monitor-alerts", query=("monitor", "state", "since_ms"),
        args={"monitor": _named("monitor"), "since_ms": _time_bound("since_ms")}, result=many(*ALERT),
        operation="monitor_alerts",
    )  # fmt: skip
    record_action = endpoint(
        POST, "/monitor-actions", body=mw.ActionRecordIn,
        args={"record": Arg(mw.checked_action_to_json, mw.action_from_json)}, result=one(*ACTION),
    )  # fmt: skip
    actions = endpoint(
        GET, "/monitor-alerts/{alert_id}/actions", args={"alert_id": Arg(to_wire=_alert_id, wire_type=int)}, result=many(*ACTION),
        operation="monitor_actions",
    )  # fmt: skip
    acquire_lease = endpoint(
        POST, "/scheduler-leases/acquire", body=mw.LeaseIn, check=_check_lease,
        result=Result(lambda taken: {"acquired": taken}, lambda data, _: bool(data["acquired"])),
    )  # fmt: skip
    release_lease = endpoint(POST, "/scheduler-leases/release", body=mw.LeaseReleaseIn, check=_check_release)


LABEL_PROJECT = (lw.project_to_json, lw.project_from_json)
GUIDELINE = (lw.guideline_to_json, lw.guideline_from_json)
LABEL_ITEM = (lw.item_to_json, lw.item_from_json)
ANNOTATION = (lw.annotation_to_json, lw.annotation_from_json)
REVIEW = (lw.review_to_json, lw.review_from_json)
EXCLUSION = (lw.exclusion_to_json, lw.exclusion_from_json)
LABEL_PROJECT_NAME = Arg(to_wire=lambda name: check_name(name, "project"), wire="name")


class LabelEndpoints(Endpoints, store=LabelStore, attribute="labels", tag="labels"):
    """Label projects under ``/label-projects/{name}``. Nobody answers in another's name: no body names an
    annotator who answers or a reviewer (the server's store records the caller), and a caller without ``read`` lists
    only their own annotations (``keel.server.routes.labels``). Items carry the known answers of gold items: reading
    them needs ``read``, which annotators have not; a task never says whether it is gold."""

    create_project = endpoint(
        POST, "/label-projects", body=lw.LabelProjectIn, check=lw.check_new_project,
        args={"project": Arg(lw.checked_project_to_json, lw.project_from_json),
              "items": Arg(lw.items_to_wire, lambda items: [lw.item_from_json(d) for d in items])},
        result=one(*LABEL_PROJECT), operation="create_label_project",
    )  # fmt: skip
    get_project = endpoint(
        GET, "/label-projects/{name}", args={"name": Arg(to_wire=lambda n: check_name(n, "project"))},
        result=one(*LABEL_PROJECT), operation="get_label_project",
    )  # fmt: skip
    list_projects = endpoint(GET, "/label-projects", result=many(*LABEL_PROJECT), operation="list_label_projects")
    add_guideline = endpoint(
        POST, "/label-projects/{name}/guidelines", body=lw.GuidelineIn,
        args={"project": LABEL_PROJECT_NAME, "text": Arg(to_wire=check_guideline)}, result=one(*GUIDELINE),
        operation="add_label_guideline",
    )  # fmt: skip
    guidelines = endpoint(
        GET, "/label-projects/{name}/guidelines", args={"project": LABEL_PROJECT_NAME}, result=many(*GUIDELINE),
        operation="label_guidelines",
    )  # fmt: skip
    get_items = endpoint(
        GET, "/label-projects/{name}/items", query=("role",), args={"project": LABEL_PROJECT_NAME},
        result=many(*LABEL_ITEM), operation="label_items",
    )  # fmt: skip
    next_task = endpoint(
        POST, "/label-projects/{name}/next", body=s.EmptyIn, args={"project": LABEL_PROJECT_NAME},
        result=keyed("task", lw.task_to_json, lw.task_from_json), operation="next_label_task",
    )  # fmt: skip
    submit = endpoint(
        POST, "/label-projects/{name}/annotations", body=lw.SubmitIn,
        args={"project": LABEL_PROJECT_NAME, "value": Arg(to_wire=lw.value_to_wire)},
        result=one(lw.submitted_to_json, lw.submitted_from_json), operation="submit_annotation",
    )  # fmt: skip
    annotations = endpoint(
        GET, "/label-projects/{name}/annotations", query=("annotator", "since_ms"),
        args={"project": LABEL_PROJECT_NAME, "since_ms": _time_bound("since_ms")}, result=many(*ANNOTATION),
        operation="label_annotations",
    )  # fmt: skip
    import_annotations = endpoint(
        POST, "/label-projects/{name}/imports", body=lw.ImportIn,
        args={"project": LABEL_PROJECT_NAME,
              "annotations": Arg(lw.annotations_to_wire, lambda items: [lw.annotation_from_json(d) for d in items])},
        result=Result(lambda count: {"count": count}, lambda data, _: int(data["count"])), operation="import_label_annotations",
    )  # fmt: skip
    add_review = endpoint(
        POST, "/label-reviews", body=lw.ReviewIn, args={"review": Arg(lw.checked_review_to_json, lw.review_from_json)},
        result=one(*REVIEW), operation="add_label_review",
    )  # fmt: skip
    reviews = endpoint(
        GET, "/label-projects/{name}/reviews", query=("kind",), args={"project": LABEL_PROJECT_NAME}, result=many(*REVIEW),
        operation="label_reviews",
    )  # fmt: skip
    exclude_annotator = endpoint(
        POST, "/label-projects/{name}/exclusions", body=lw.ExclusionIn, args={"project": LABEL_PROJECT_NAME},
        result=one(*EXCLUSION),
    )  # fmt: skip
    include_annotator = endpoint(
        DELETE, "/label-projects/{name}/exclusions", query=("annotator",), args={"project": LABEL_PROJECT_NAME}
    )
    exclusions = endpoint(
        GET, "/label-projects/{name}/exclusions", args={"project": LABEL_PROJECT_NAME}, result=many(*EXCLUSION),
        operation="label_exclusions",
    )  # fmt: skip
    record_consensus = endpoint(
        POST, "/label-projects/{name}/consensus", body=lw.ConsensusIn,
        args={"project": LABEL_PROJECT_NAME, "details": Arg(to_wire=lambda d: plain_json(d, "details"))},
        operation="record_label_consensus",
    )  # fmt: skip
    consensus_versions = endpoint(
        GET, "/label-projects/{name}/consensus", args={"project": LABEL_PROJECT_NAME},
        result=Result(lw.consensus_to_json, lambda data, _: lw.consensus_from_json(data), list[list[Any]]),
        operation="label_consensus_versions",
    )  # fmt: skip


PRIVACY_BUDGET = (pw.budget_to_json, pw.budget_from_json)
PRIVACY_SPEND = (pw.spend_to_json, pw.spend_from_json)
DATASET_VERSION_REF = Arg(to_wire=lambda ref: "{}@{}".format(*check_dataset_version(ref)), wire="name")


class PrivacyEndpoints(Endpoints, store=PrivacyStore, attribute="privacy", tag="privacy"):
    """Privacy budgets under ``/privacy-budgets/{name@N}``. The budget check and the spend are the server's store's, in
    one transaction holding the budget's lock; who spent is the caller."""

    set_budget = endpoint(
        PUT, "/privacy-budgets/{name}", body=pw.BudgetIn, args={"dataset": DATASET_VERSION_REF}, check=pw.check_new_budget,
        result=one(*PRIVACY_BUDGET), operation="set_privacy_budget",
    )  # fmt: skip
    get_budget = endpoint(
        GET, "/privacy-budgets/{name}", args={"dataset": DATASET_VERSION_REF},
        result=keyed("budget", *PRIVACY_BUDGET), operation="get_privacy_budget",
    )  # fmt: skip
    spend = endpoint(
        POST, "/privacy-spends", body=pw.SpendIn, args={"spend": Arg(pw.checked_spend_to_json, pw.spend_from_json)},
        result=one(*PRIVACY_SPEND), operation="record_privacy_spend",
    )  # fmt: skip
    spends = endpoint(
        GET, "/privacy-budgets/{name}/spends", args={"dataset": DATASET_VERSION_REF}, result=many(*PRIVACY_SPEND),
        operation="privacy_spends",
    )  # fmt: skip


AUDIT_EVENT = (AuditEvent.to_json, AuditEvent.from_json)


class AuditEndpoints(Endpoints, store=AuditStore, attribute="audit", tag="audit"):
    """Read-only: events are appended by the server's store, in the transaction of each change."""

    events = endpoint(
        GET, "/audit/events", query=("after_seq", "limit", "entity", "entity_id"),
        args={"after_seq": INT, "limit": INT},
        check=lambda a: check_page(a["after_seq"], a["limit"], a["entity"], a["entity_id"]),
        result=many(*AUDIT_EVENT), operation="audit_events",
    )  # fmt: skip
    head = endpoint(GET, "/audit/head", result=keyed("event", *AUDIT_EVENT), operation="audit_head")


PRINCIPAL = (wire.principal_to_json, wire.principal_from_json)
BINDING = (wire.role_binding_to_json, wire.role_binding_from_json)
TOKEN = (wire.api_token_to_json, wire.api_token_from_json)
PRINCIPAL_NAME = Arg(to_wire=check_principal_name)
SOME_PRINCIPAL = Arg(to_wire=opt(check_principal_name))  # a filter: None is everyone


def _check_principal(args: Args) -> None:
    check_principal_name(args["name"])
    check_kind(args["kind"])


def _check_binding(args: Args) -> None:
    check_principal_name(args["principal"])
    check_role(args["role"])
    args["project"], args["model"] = check_project(args["project"]), check_model(args["model"])


def _check_new_token(args: Args) -> None:
    check_principal_name(args["principal"])
    check_token_name(args["name"])
    args["scopes"], args["expires_at"] = list(check_scope_list(args["scopes"])), check_expires_at(args["expires_at"])


class IdentityEndpoints(
    Endpoints, store=IdentityStore, attribute="identity", tag="identity", hand_written=("record_blob_writer",)
):
    """Principals, role bindings and tokens. A token travels only in bodies (never in a URL, which logs keep), and the
    secret only in the answer of ``create_token``."""

    create_principal = endpoint(POST, "/identity/principals", body=s.PrincipalIn, check=_check_principal, result=one(*PRINCIPAL))
    get_principal = endpoint(GET, "/identity/principals/{name}", args={"name": PRINCIPAL_NAME}, result=one(*PRINCIPAL))
    list_principals = endpoint(GET, "/identity/principals", result=many(*PRINCIPAL))
    set_disabled = endpoint(
        POST, "/identity/principals/{name}/disabled", body=s.DisabledIn, args={"name": PRINCIPAL_NAME}, result=one(*PRINCIPAL),
        operation="set_principal_disabled",
    )  # fmt: skip
    count_principals = endpoint(
        GET, "/identity/principal-count", result=Result(lambda n: {"count": n}, lambda data, _: int(data["count"]))
    )
    grant = endpoint(
        POST, "/identity/bindings", body=s.BindingIn, check=_check_binding, result=one(*BINDING), operation="grant_role"
    )
    revoke_role = endpoint(DELETE, "/identity/bindings", query=("principal", "role", "project", "model"), check=_check_binding)
    bindings = endpoint(
        GET, "/identity/bindings", query=("principal", "model"), args={"principal": SOME_PRINCIPAL, "model": Arg(check_model)},
        result=many(*BINDING), operation="role_bindings",
    )  # fmt: skip
    create_token = endpoint(
        POST, "/identity/tokens", body=s.TokenIn, check=_check_new_token,
        result=one(wire.new_token_to_json, wire.new_token_from_json),
    )  # fmt: skip
    list_tokens = endpoint(GET, "/identity/tokens", query=("principal",), args={"principal": SOME_PRINCIPAL}, result=many(*TOKEN))
    revoke_token = endpoint(
        POST, "/identity/tokens/{token_id}/revoke", args={"token_id": Arg(to_wire=check_token_id)}, result=one(*TOKEN)
    )
    authenticate = endpoint(
        POST, "/identity/authenticate", body=s.AuthenticateIn,
        result=one(wire.authenticated_to_json, wire.authenticated_from_json),
    )  # fmt: skip
    # the server answers for its caller: the principal in the query is replaced by the authenticated one
    blob_trust = endpoint(
        GET, "/identity/blob-trust/{sha256}", query=("principal",), args={"sha256": Arg(from_wire=check_sha256)},
        result=one(wire.blob_trust_to_json, wire.blob_trust_from_json),
    )  # fmt: skip
    trusted_roles = endpoint(GET, "/identity/trusted-roles", query=("project",), result=keyed("roles", list, tuple))
    set_trusted_roles = endpoint(PUT, "/identity/trusted-roles", body=s.TrustedRolesIn, result=keyed("roles", list, tuple))


GROUPS: tuple[type[Endpoints], ...] = (
    MetadataEndpoints, DatasetEndpoints, PipelineEndpoints, ModelEndpoints, DeploymentEndpoints, PredictionEndpoints,
    MonitorEndpoints, AuditEndpoints, IdentityEndpoints, LabelEndpoints, PrivacyEndpoints,
)  # fmt: skip
"""Every group, in the order the server mounts them."""
