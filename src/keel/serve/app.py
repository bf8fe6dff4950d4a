"""The inference app: Open Inference Protocol V2 over REST and a plain JSON ``POST /predict``.

The model loads once, in a thread, after the server starts: ``/v2/health/live`` answers at once,
``/v2/health/ready`` (and inference) only once the model is in memory. Every answer names the version
that answered (header ``keel-model-version`` and, for predictions, the body).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from keel.context import Context
from keel.core.errors import InvalidArgument, KeelError
from keel.serve.inputs import InputRejected, Violation, from_predict_body, from_v2_body
from keel.serve.models import ServedModel, load_served
from keel.serve.tensors import output_tensor

log = logging.getLogger(__name__)

MODEL_HEADER = "keel-model-version"
REQUEST_ID_HEADER = "x-request-id"
MODEL_ENV = "KEEL_SERVE_MODEL"  # the model URI of `keel serve --workers N`: each worker process builds its own app
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class _State:
    """The model once loaded, or why it could not be."""

    def __init__(self, uri: str, ctx: Context | None) -> None:
        self.uri, self.ctx = uri, ctx
        self.model: ServedModel | None = None
        self.error: str | None = None

    def load(self) -> None:
        try:
            self.model = load_served(self.uri, self.ctx)
        except KeelError as exc:
            self.error = exc.message
            log.error("cannot serve %s: %s", self.uri, exc.message)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("cannot serve %s", self.uri)

    def headers(self, request_id: str | None = None) -> dict[str, str]:
        headers = {MODEL_HEADER: self.model.uri} if self.model is not None else {}
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        return headers


def _request_id(request: Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER)
    return given if given is not None and _REQUEST_ID.match(given) else uuid.uuid4().hex


def create_app(model_uri: str, *, ctx: Context | None = None) -> FastAPI:
    """An ASGI app serving ``model_uri`` (``models:/name/3``, ``models:/name@alias``: resolved once, at load)."""
    __version__ = _keel_version()
    state = _State(model_uri, ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(asyncio.to_thread(state.load))
        yield
        if not loading.done():
            loading.cancel()

    app = FastAPI(title="keel serve", version=__version__, default_response_class=OrjsonResponse, lifespan=lifespan)
    app.state.serving = state

    def answer(content: Any, status: int = 200, request_id: str | None = None) -> OrjsonResponse:
        return OrjsonResponse(content, status_code=status, headers=state.headers(request_id))

    def not_ready(request_id: str | None = None) -> OrjsonResponse:
        why = state.error or "the model is loading"
        response = answer({"error": f"not ready: {why}", "request_id": request_id}, 503, request_id)
        response.headers["Retry-After"] = "1"
        return response

    @app.get("/v2/health/live")
    async def live() -> Response:
        return answer({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return answer({"ready": True}) if state.model is not None else not_ready()

    @app.get("/v2")
    async def server_metadata() -> Response:
        return answer({"name": "keel", "version": __version__, "extensions": []})

    def model_or_404(name: str) -> ServedModel | Response:
        if state.model is None:
            return not_ready()
        if name != state.model.loaded.version.name:
            return answer({"error": f"this server serves model {state.model.loaded.version.name!r}, not {name!r}"}, 404)
        return state.model

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        found = model_or_404(name)
        return found if isinstance(found, Response) else answer(found.metadata())

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        found = model_or_404(name)
        return found if isinstance(found, Response) else answer({"name": name, "ready": True})

    async def predict(request: Request, parse: Callable[[Any, dict[str, Any]], Any], render: Callable[..., Any]) -> Response:
        request_id = _request_id(request)
        model = state.model
        if model is None:
            return not_ready(request_id)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return rejected(model, request_id, [Violation("body", str(exc)[:80], "a JSON object")])
        try:
            data = parse(body, model.input_spec)
            outputs = await run_in_threadpool(_run, model, data, body)
        except InputRejected as exc:
            return rejected(model, request_id, exc.violations)
        except InvalidArgument as exc:  # the registry's own signature check: still the client's input
            return rejected(model, request_id, [Violation("input", None, exc.message)])
        except Exception as exc:
            log.exception("model %s failed on request %s", model.uri, request_id)
            error = f"model {model.uri} raised {type(exc).__name__} on this request"
            return answer({"error": error, "model": model.uri, "request_id": request_id}, 500, request_id)
        return answer(render(model, outputs, body, request_id), 200, request_id)

    def rejected(model: ServedModel, request_id: str, violations: list[Violation]) -> Response:
        message = f"the input does not match the signature of {model.uri}: {len(violations)} violation(s)"
        body = {"error": message, "violations": [v.to_dict() for v in violations], "model": model.uri, "request_id": request_id}
        return answer(body, 422, request_id)

    def render_predict(model: ServedModel, outputs: dict[str, Any], body: Any, request_id: str) -> dict[str, Any]:
        return {"predictions": outputs["predict"].tolist(), "model": model.uri, "request_id": request_id}

    def render_v2(model: ServedModel, outputs: dict[str, Any], body: Any, request_id: str) -> dict[str, Any]:
        version = model.loaded.version
        result: dict[str, Any] = {
            "model_name": version.name,
            "model_version": str(version.version),
            "outputs": [output_tensor(name, values) for name, values in outputs.items()],
            "parameters": {"model": model.uri, "request_id": request_id},
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
        return await predict(request, _v2_parse, render_v2)

    return app


def _v2_parse(body: Any, spec: dict[str, Any]) -> Any:
    data = from_v2_body(body, spec)
    requested = body.get("outputs")
    if requested is not None:
        names = (
            [o.get("name") for o in requested]
            if isinstance(requested, list) and all(isinstance(o, dict) for o in requested)
            else None
        )
        if names is None or not set(names) <= {"predict", "predict_proba"}:
            raise InputRejected([Violation("outputs", names, 'a list of {"name": "predict" | "predict_proba"}')])
    return data


def _run(model: ServedModel, data: Any, body: Any) -> dict[str, Any]:
    """The model on one request's input (in a worker thread: it holds the GIL only as long as numpy does)."""
    wanted = ["predict"]
    if isinstance(body, dict) and isinstance(body.get("outputs"), list):
        wanted = [o["name"] for o in body["outputs"]] or wanted
    return {name: getattr(model.loaded, name)(data) for name in wanted}


def _keel_version() -> str:
    """keel's version, from its installed metadata (importing ``keel`` itself would pull in every layer)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keel")
    except PackageNotFoundError:
        return "unknown"


def app_from_env() -> FastAPI:
    """The app of one ``keel serve --workers N`` worker (uvicorn's factory: it starts each worker from an import path)."""
    return create_app(os.environ[MODEL_ENV])
