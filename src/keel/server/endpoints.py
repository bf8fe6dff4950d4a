"""Routes made from the endpoint table (``keel.store.metadata.rest.endpoints``): one per entry.

A route validates its body with the entry's schema, converts the arguments (``Arg.from_wire``),
runs the entry's hook when the server has one (policy: ``keel.server.routes.models`` sets the
actor to the authenticated caller), calls the store method and encodes the result (``Result.to_json``).
Every route depends on ``keel.server.auth.authorize``: the permission ``keel.server.policy`` names for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request

from keel.server.auth import authorize
from keel.server.deps import store_of
from keel.server.responses import OrjsonResponse
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest.endpoints import GROUPS, Endpoint, Endpoints

Hook = Callable[[Request, dict[str, Any]], Callable[[Any], Any] | None]
"""Runs before the store call with the request and the method's arguments, which it may change; what it returns, when
not None, is applied to the store's answer before it is sent (a filter: what the caller may not read)."""

_KW = inspect.Parameter.KEYWORD_ONLY


def routers(hooks: Mapping[str, Hook], groups: Sequence[type[Endpoints]] = GROUPS) -> list[APIRouter]:
    """A read router and a write router per group of the table, each route behind ``authorize``."""
    out: list[APIRouter] = []
    for group in groups:
        read = APIRouter(prefix="/api/v1", tags=[group.tag], dependencies=[Depends(authorize)])
        write = APIRouter(prefix="/api/v1", tags=[group.tag], dependencies=[Depends(authorize)])
        for ep in group.endpoints():
            if ep.mount:
                router = read if ep.verb == "GET" else write
                handler = _handler(ep, hooks.get(ep.key))
                router.add_api_route(ep.path, handler, methods=[ep.verb], response_model=ep.result.wire_type, name=ep.operation)
        out += [read, write]
    unknown = set(hooks) - {ep.key for group in groups for ep in group.endpoints()}
    if unknown:
        raise TypeError(f"hooks for no endpoint: {sorted(unknown)}")
    return out


def _handler(ep: Endpoint, hook: Hook | None) -> Callable[..., Any]:
    attribute = ep.attribute

    def handle(request: Request, store: MetadataStore, body: Any = None, **wire_args: Any) -> Any:
        kwargs = ep.request_args(wire_args, body)
        after = None if hook is None else hook(request, kwargs)
        target = store if attribute is None else getattr(store, attribute)
        answer = ep.call_store(target, kwargs)
        # rendered here by orjson: FastAPI would otherwise walk the whole answer again through pydantic
        # (a page of 100 runs: ~0.2 ms); ``response_model`` still documents the shape in OpenAPI
        return OrjsonResponse(ep.result.to_json(answer if after is None else after(answer)))

    # what FastAPI reads: the path and query parameters, the body's schema, the store dependency
    params = [
        inspect.Parameter("request", _KW, annotation=Request),
        inspect.Parameter("store", _KW, annotation=MetadataStore, default=Depends(store_of)),
    ]
    for p, w in ep.path_params:
        params.append(inspect.Parameter(w, _KW, annotation=ep.arg(p).wire_type))
    for p, w in ep.query_params:
        arg, typ = ep.arg(p), ep.arg(p).wire_type
        if ep.signature.parameters[p].default is inspect.Parameter.empty:  # required
            params.append(inspect.Parameter(w, _KW, annotation=typ))
        elif arg.wire_default is not None:
            params.append(inspect.Parameter(w, _KW, annotation=typ, default=arg.wire_default))
        else:
            params.append(inspect.Parameter(w, _KW, annotation=typ | None, default=None))
    if ep.body is not None:
        params.append(inspect.Parameter("body", _KW, annotation=ep.body))
    handle.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handle.__name__ = handle.__qualname__ = ep.operation
    handle.__doc__ = inspect.getdoc(getattr(ep.store_class, ep.name))
    return handle
