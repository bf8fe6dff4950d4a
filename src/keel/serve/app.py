"""The inference app: Open Inference Protocol V2 over REST and a plain JSON ``POST /predict``.

It serves a deployment (its primary answers, canaries take their share, shadows see the same input off the
response path) or a single model URI. Models load after the server starts, in a thread: ``/v2/health/live``
answers at once, ``/v2/health/ready`` (and inference) once the first table of routes is in memory. A deployment
is followed (``keel.serve.follower``): a change is loaded and warmed, then swapped in whole. Every answer names the
version that answered (header ``keel-model-version`` and the body) and its route (header ``keel-route``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument, PermissionDenied, TooManyFailures, Unauthenticated
from keel.serve.batching import Batcher, Overloaded
from keel.serve.capacity import SpareCapacity
from keel.serve.follower import Follower
from keel.serve.inputs import InputRejected, Violation, from_predict_body, from_v2_body
from keel.serve.models import ServedModel
from keel.serve.openapi_docs import install_offline_docs
from keel.serve.predlog import logged_batch
from keel.serve.routing import ROUTE_KEY_HEADER, Route, RouteTable
from keel.serve.tensors import output_tensor
from keel.serve.tokens import ServingTokens

log = logging.getLogger(__name__)

MODEL_HEADER = "keel-model-version"
ROUTE_HEADER = "keel-route"
REQUEST_ID_HEADER = "x-request-id"
TARGET_ENV = "KEEL_SERVE_TARGET"  # what `keel serve --workers N` serves: each worker process builds its own app
SHADOWS_ENV = "KEEL_SERVE_SHADOWS"
REQUIRE_TOKEN_ENV = "KEEL_SERVE_REQUIRE_TOKEN"
SHADOW_DRAIN_SECONDS = 10.0
INLINE_ROWS = 256
SHADOW_POLICIES = ("spare", "all")
SHADOW_INLINE_SECONDS = 0.0002
SHADOW_WAIT_SECONDS = 0.005  # a shadow's batch call this cheap runs on the event loop, after the answer
SWITCH_INTERVAL = 0.0005
GC_YOUNG_THRESHOLD = 50_000
_OUTPUTS = ("predict", "predict_proba")


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def is_model_uri(target: str) -> bool:
    return target.startswith("models:/")


class _State:
    """What the app serves right now (``table``), or why it serves nothing yet."""

    def __init__(self, target: str, ctx: Context | None, options: dict[str, Any]) -> None:
        self.target, self.ctx, self.options = target, ctx, options
        self.deployment = None if is_model_uri(target) else target
        self.table: RouteTable | None = None
        self.follower: Follower | None = None
        self.metrics: Any = None
        self.predictions: Any = None  # a keel.serve.predlog.PredictionLog, or None: no prediction log
        self.replica = f"{socket.gethostname()}-{os.getpid()}"
        self.shadow_tasks: set[asyncio.Task[None]] = set()
        self.capacity = SpareCapacity()  # whether shadows may have a request (shadows="spare")

    @property
    def error(self) -> str | None:
        return self.follower.error if self.follower is not None else None

    @property
    def model(self) -> ServedModel | None:
        """The primary's served model (what ``/v2/models/...`` describes)."""
        return self.table.primary.served if self.table is not None else None

    def make_batcher(self, served: ServedModel, shadow: bool) -> Batcher:
        o = self.options
        on_batch = self.metrics.batch if self.metrics is not None and not shadow else None
        # an ONNX model answers a small batch in microseconds: on the event loop, no thread hop; a shadow's only while
        # its calls stay that cheap (a slow shadow in a thread, where it cannot hold the event loop)
        inline = INLINE_ROWS if served.is_onnx else 0
        budget = SHADOW_INLINE_SECONDS if shadow else None
        return Batcher(
            served.run,
            max_batch_rows=o["max_batch_rows"],
            max_queue_rows=o["max_queue_rows"],
            # a shadow is never waited for: its rows gather for a few milliseconds into fewer calls (a model run in a
            # thread takes the GIL from the event loop and gives it back once per call, not per row)
            max_wait=max(o["max_wait"], SHADOW_WAIT_SECONDS) if shadow else o["max_wait"],
            inline_rows=inline,
            inline_budget=budget,
            on_batch=on_batch,
            on_call=self.capacity.spent if shadow else None,
            on_answered=self.log_batch if self.predictions is not None else None,
        )

    def log_batch(self, tags: list[Any], data: list[Any], sizes: list[int], results: list[Any], seconds: float) -> None:
        """The batchers' hook: one ``LoggedBatch`` per model call, its rows made on the log's writer thread."""
        batch = logged_batch(self.deployment, self.replica, tags, data, sizes, results, seconds)
        if batch is not None:
            self.predictions.offer_batch(batch)

    def start(self) -> None:
        """Load the first table on the follower's thread (retried until it loads); the follower keeps it current."""
        model_uri = self.target if self.deployment is None else None
        self.follower = Follower(self.deployment, _ctx(self.ctx), self.make_batcher, self._install, model_uri=model_uri,
                                 poll_interval=self.options["poll_interval"])  # fmt: skip
        self.follower.start()

    def _install(self, table: RouteTable) -> None:
        self.table = table  # one assignment: a request holds the table it started with to the end
        # the models, numpy, pandas and ONNX Runtime are now in memory for good: keep the cyclic GC from scanning
        # them on every full collection (tens of milliseconds of pause, the tail of the latency distribution)
        gc.freeze()

    def start_logging(self, prediction_log: Any) -> None:
        if prediction_log == "auto":
            if self.deployment is None:
                return
            from keel.serve.predlog import PredictionLog, sink_for

            sink = sink_for(self.deployment, self.ctx)
            prediction_log = PredictionLog(sink) if sink is not None else None
        self.predictions = prediction_log
        if self.metrics is not None and prediction_log is not None:
            self.metrics.log_counters(
                lambda: {"written": prediction_log.written, "dropped": prediction_log.dropped, "failed": prediction_log.failed}
            )

    async def stop(self) -> None:
        if self.follower is not None:
            await asyncio.to_thread(self.follower.stop)
        if self.shadow_tasks:  # shadows of answered requests still belong in the log
            await asyncio.wait(list(self.shadow_tasks), timeout=SHADOW_DRAIN_SECONDS)
        if self.predictions is not None:
            await asyncio.to_thread(self.predictions.close)


def _request_id(request: Request) -> str:
    """The server's own id: the key of the prediction log and of the labels that come later, so never the client's
    (two clients, or one replayed request, would give two predictions one key)."""
    return uuid.uuid4().hex


def _rows(data: Any) -> int:
    return int(data.shape[0]) if hasattr(data, "shape") else len(data)


def create_app(
    target: str,
    *,
    ctx: Context | None = None,
    poll_interval: float = 1.0,
    max_batch_rows: int = 64,
    max_queue_rows: int = 2048,
    max_wait: float = 0.0,
    prediction_log: Any = "auto",
    metrics: bool = True,
    shadows: str = "spare",
    require_token: bool = False,
    token_ttl: float = 5.0,
) -> FastAPI:
    """An ASGI app serving ``target``: a deployment name (followed as it changes) or a model URI (``models:/name/3``,
    ``models:/name@alias``: resolved once, at load). ``prediction_log``: "auto" (the configured sink, for a
    deployment), None, or a ``PredictionLog``.

    ``shadows``: "spare" (the default) mirrors a request to the shadows while the server has capacity to spare
    (``keel.serve.capacity``), so that a shadow never takes the primary's: at saturation it sees a sample, counted in
    ``keel_serve_shadow_skipped_total`` and in the comparison's share. "all" mirrors every request, whatever it costs
    the primary.

    ``require_token``: predictions (``/predict``, ``/v2/.../infer``) need a token whose principal has the ``serve``
    permission (``keel.serve.tokens``; a verdict is kept ``token_ttl`` seconds); health, metadata and ``/metrics``
    stay open for load balancers and Prometheus."""
    if shadows not in SHADOW_POLICIES:
        raise InvalidArgument.for_field("shadows", shadows, " or ".join(SHADOW_POLICIES))
    every_request = shadows == "all"
    __version__ = _keel_version()
    options = {
        "poll_interval": poll_interval,
        "max_batch_rows": max_batch_rows,
        "max_queue_rows": max_queue_rows,
        "max_wait": max_wait,
    }
    state = _State(target, ctx, options)
    tokens = ServingTokens(ctx, ttl=token_ttl) if require_token else None
    if metrics:
        from keel.serve.metrics import ServeMetrics

        state.metrics = ServeMetrics(state.deployment or target)
        state.metrics.queue_depth(lambda: sum(r.batcher.queued_rows for r in state.table.routes()) if state.table else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # process-wide settings, set while the app serves and given back at shutdown (the quickstart and notebooks
        # run an app inside a process that goes on); the log writer and the follower are threads: let the event loop
        # take the GIL back sooner than every 5 ms
        switch_interval, threshold = sys.getswitchinterval(), gc.get_threshold()
        sys.setswitchinterval(SWITCH_INTERVAL)
        # every request allocates a few containers and the log keeps its rows for up to a second: at the default
        # threshold (700) the young generation is collected every few requests, ~8% of the serving time
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        state.start_logging(prediction_log)
        state.start()
        yield
        await state.stop()
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*threshold)
        gc.unfreeze()  # the models of this app may be collected once it is gone

    app = FastAPI(
        title="keel serve",
        version=__version__,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serving = state
    install_offline_docs(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown routes and methods answer ``{"error": ...}``, the protocol's error shape, not FastAPI's ``detail``."""
        return OrjsonResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    def answer(content: Any, status: int = 200, request_id: str | None = None, route: Route | None = None) -> OrjsonResponse:
        headers = {}
        if route is not None:
            headers[MODEL_HEADER], headers[ROUTE_HEADER] = route.model, route.kind
        elif state.model is not None:
            headers[MODEL_HEADER] = state.model.uri
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        return OrjsonResponse(content, status_code=status, headers=headers)

    def unavailable(why: str, request_id: str | None = None, route: Route | None = None) -> OrjsonResponse:
        response = answer({"error": why, "request_id": request_id}, 503, request_id, route)
        response.headers["Retry-After"] = "1"
        return response

    def not_ready(request_id: str | None = None) -> OrjsonResponse:
        return unavailable(f"not ready: {state.error or 'the model is loading'}", request_id)

    @app.get("/v2/health/live")
    async def live() -> Response:
        return answer({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return answer({"ready": True}) if state.table is not None else not_ready()

    @app.get("/v2")
    async def server_metadata() -> Response:
        return answer({"name": "keel", "version": __version__, "extensions": []})

    @app.get("/metrics")
    async def metrics_text() -> Response:
        if state.metrics is None:
            return answer({"error": "metrics are off for this server"}, 404)
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    def names(model: ServedModel) -> set[str]:
        return {model.loaded.version.name} | ({state.deployment} if state.deployment else set())

    def model_or_404(name: str) -> ServedModel | Response:
        model = state.model
        if model is None:
            return not_ready()
        if name not in names(model):
            return answer({"error": f"this server serves {' or '.join(sorted(map(repr, names(model))))}, not {name!r}"}, 404)
        return model

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        found = model_or_404(name)
        return found if isinstance(found, Response) else answer(found.metadata())

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        found = model_or_404(name)
        return found if isinstance(found, Response) else answer({"name": name, "ready": True})

    def version_or_404(name: str, version: str) -> Route | Response:
        """The route (primary or canary) serving ``version`` of the model: the version a route names or the ONNX
        version that answers for it."""
        found = model_or_404(name)
        if isinstance(found, Response):
            return found
        assert state.table is not None
        for route in (state.table.primary, *state.table.canaries):
            if version in (str(route.served.requested.version), str(route.served.loaded.version.version)):
                return route
        served = sorted({str(r.served.loaded.version.version) for r in (state.table.primary, *state.table.canaries)})
        return answer({"error": f"this server serves version(s) {', '.join(served)} of {name!r}, not {version!r}"}, 404)

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: str) -> Response:
        found = version_or_404(name, version)
        return found if isinstance(found, Response) else answer(found.served.metadata())

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> Response:
        found = version_or_404(name, version)
        return found if isinstance(found, Response) else answer({"name": name, "ready": True})

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def version_infer(name: str, version: str, request: Request) -> Response:
        found = version_or_404(name, version)
        if isinstance(found, Response):
            return found
        return await predict(request, from_v2_body, render_v2, pinned=found)

    async def predict(
        request: Request,
        parse: Callable[[Any, dict[str, Any]], Any],
        render: Callable[..., Any],
        pinned: Route | None = None,
    ) -> Response:
        started = time.perf_counter()
        request_id = _request_id(request)
        if tokens is not None:
            refused = await check_token(request, request_id)
            if refused is not None:
                return refused
        table = state.table
        if table is None:
            return not_ready(request_id)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            if request.headers.get("inference-header-content-length") is None:
                return rejected(table.primary, request_id, [Violation("body", str(exc)[:80], "a JSON object")])
            body = None  # a binary tensor request: refused below with what to send instead
        if request.headers.get("inference-header-content-length") is not None:
            expected = "JSON tensors: this server has no binary tensor extension (tritonclient: binary_data=False)"
            return rejected(table.primary, request_id, [Violation("Inference-Header-Content-Length", "binary data", expected)])
        # a request for a version goes to the route serving it, as the table it started with says
        route = pinned or table.choose(table.sticky_value(body, request.headers.get(ROUTE_KEY_HEADER)))
        model = route.served
        try:
            data = parse(body, model.input_spec)
            wanted = _wanted(body) if parse is from_v2_body else ("predict",)
        except InputRejected as exc:
            return rejected(route, request_id, exc.violations)
        logging_on = state.predictions is not None
        extra = ("predict_proba",) if logging_on and model.has_proba else ()
        computed = tuple(dict.fromkeys(("predict", *wanted, *extra)))  # the log and the shadows compare labels
        rows = _rows(data)
        state.capacity.enter()
        try:
            outputs, _ = await route.batcher.submit(data, rows, computed, (route, request_id, body))
        except Overloaded as exc:
            observe(route, 503, started)
            return unavailable(f"overloaded: {exc}", request_id, route)
        except InvalidArgument as exc:  # the model's own input check: still the client's input
            return rejected(route, request_id, [Violation("input", None, exc.message)])
        except Exception as exc:  # noqa: BLE001 - whatever the model raises is a 500 for this request only
            log.error("model %s failed on request %s: %s: %s", route.model, request_id, type(exc).__name__, exc)
            observe(route, 500, started, error=True)  # logged with status 500 by the batch hook
            error = f"model {route.model} raised {type(exc).__name__} on this request"
            return answer({"error": error, "model": route.model, "request_id": request_id}, 500, request_id, route)
        finally:
            state.capacity.leave()
        try:
            response = answer(render(route, {k: outputs[k] for k in wanted}, body, request_id), 200, request_id, route)
        except Exception as exc:  # noqa: BLE001 - an output the protocol cannot carry: the model's fault, this request's 500
            log.error("model %s answered request %s with an output that cannot be sent: %s", route.model, request_id, exc)
            observe(route, 500, started, error=True)
            error = f"model {route.model} returned an output that cannot be sent ({type(exc).__name__})"
            return answer({"error": error, "model": route.model, "request_id": request_id}, 500, request_id, route)
        observe(route, 200, started)
        if table.shadows:
            if every_request or state.capacity.spare():
                for shadow in table.shadows:
                    shadowing = run_shadow(shadow, route, body, data, rows, outputs, request_id)
                    task = asyncio.get_running_loop().create_task(shadowing)
                    state.shadow_tasks.add(task)
                    task.add_done_callback(state.shadow_tasks.discard)
            elif state.metrics is not None:
                for shadow in table.shadows:
                    state.metrics.shadow_skipped(shadow.model, rows)
        return response

    async def check_token(request: Request, request_id: str) -> Response | None:
        """None when the request's token may call the models (``keel.serve.tokens``), else the refusal."""
        assert tokens is not None
        client = request.client.host if request.client else "unknown"
        try:
            await tokens.check(request.headers.get("authorization"), client)
        except TooManyFailures as exc:
            response = answer({"error": exc.message, "request_id": request_id}, 429, request_id)
            response.headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        except (Unauthenticated, PermissionDenied) as exc:
            response = answer({"error": exc.message, "request_id": request_id}, exc.http_status, request_id)
            if isinstance(exc, Unauthenticated):
                response.headers["www-authenticate"] = 'Bearer realm="keel"'
            return response
        return None

    def observe(route: Route, status: int, started: float, *, error: bool = False) -> None:
        if state.metrics is not None:
            state.metrics.observe(route.kind, route.model, status, time.perf_counter() - started)
            if error:
                state.metrics.error(route.kind, route.model)

    async def run_shadow(
        shadow: Route, served: Route, body: Any, data: Any, rows: int, answered: dict[str, Any], request_id: str
    ) -> None:
        """A shadow on the input the served model answered: after the answer, never failing it."""
        try:
            if shadow.served.input_spec != served.served.input_spec:
                data = parse_for(shadow, body)
            computed = ("predict", "predict_proba") if shadow.served.has_proba else ("predict",)
            outputs, took = await shadow.batcher.submit(data, rows, computed, (shadow, request_id, body))
        except Overloaded:  # the shadow cannot keep up: it misses this request, visibly (a 503 in its metrics)
            if state.metrics is not None:
                state.metrics.observe(shadow.kind, shadow.model, 503, 0.0)
            return
        except Exception as exc:  # noqa: BLE001 - a shadow never fails the request: counted and logged
            log.warning("shadow %s failed on request %s: %s: %s", shadow.model, request_id, type(exc).__name__, exc)
            if state.metrics is not None:
                state.metrics.error(shadow.kind, shadow.model)
            return
        if state.metrics is not None:
            state.metrics.observe(shadow.kind, shadow.model, 200, took)
            mine, theirs = np.asarray(outputs["predict"]).ravel(), np.asarray(answered["predict"]).ravel()
            if len(mine) == len(theirs):  # (n, 1) against (n,) must compare rows, not broadcast to (n, n)
                for agreed in (mine == theirs).tolist():
                    state.metrics.shadow(shadow.model, bool(agreed))

    def parse_for(route: Route, body: Any) -> Any:
        spec = route.served.input_spec
        return from_v2_body(body, spec) if "inputs" in body else from_predict_body(body, spec)

    def rejected(route: Route, request_id: str, violations: list[Violation]) -> Response:
        message = f"the input does not match the signature of {route.model}: {len(violations)} violation(s)"
        body = {"error": message, "violations": [v.to_dict() for v in violations], "model": route.model, "request_id": request_id}
        return answer(body, 422, request_id, route)

    def render_predict(route: Route, outputs: dict[str, Any], body: Any, request_id: str) -> dict[str, Any]:
        return {"predictions": outputs["predict"].tolist(), "model": route.model, "request_id": request_id}

    def render_v2(route: Route, outputs: dict[str, Any], body: Any, request_id: str) -> dict[str, Any]:
        version = route.served.loaded.version
        result: dict[str, Any] = {
            "model_name": version.name,
            "model_version": str(version.version),
            "outputs": [output_tensor(name, values) for name, values in outputs.items()],
            "parameters": {"model": route.model, "route": route.kind, "request_id": request_id},
        }
        if isinstance(body.get("id"), str):
            result["id"] = body["id"]
        return result

    @app.post("/predict")
    async def predict_json(request: Request) -> Response:
        """``{"records": [...]}`` or ``{"columns": {...}}`` -> ``{"predictions", "model", "request_id"}``."""
        return await predict(request, from_predict_body, render_predict)

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        found = model_or_404(name)
        if isinstance(found, Response):
            return found
        return await predict(request, from_v2_body, render_v2)

    return app


def _wanted(body: Any) -> tuple[str, ...]:
    """The outputs a V2 request asks for (``predict`` when it names none)."""
    requested = body.get("outputs") if isinstance(body, dict) else None
    if requested is None:
        return ("predict",)
    listed = isinstance(requested, list) and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested)
    names = [o.get("name") for o in requested] if listed else None
    if names is None or not set(names) <= set(_OUTPUTS):
        raise InputRejected([Violation("outputs", names, 'a list of {"name": "predict" | "predict_proba"}')])
    return tuple(dict.fromkeys(names)) or ("predict",)


def _keel_version() -> str:
    """keel's version, from its installed metadata (importing ``keel`` itself would pull in every layer)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keel")
    except PackageNotFoundError:
        return "unknown"


def app_from_env() -> FastAPI:
    """The app of one ``keel serve --workers N`` worker (uvicorn's factory: it starts each worker from an import path)."""
    return create_app(
        os.environ[TARGET_ENV],
        shadows=os.environ.get(SHADOWS_ENV, "spare"),
        require_token=os.environ.get(REQUIRE_TOKEN_ENV) == "1",
    )
