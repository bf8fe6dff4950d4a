"""``keel serve MODEL_URI``: one registered model behind the inference API (keel.serve) on uvicorn."""

from __future__ import annotations

import os

import typer

from keel.cli.server import _check_port_free
from keel.core.errors import InvalidArgument


def serve(
    model_uri: str = typer.Argument(..., help="models:/name/3, models:/name@alias or models:/name (the latest)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (each loads the model)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve a model: Open Inference Protocol V2 under /v2 and JSON POST /predict."""
    import uvicorn

    from keel.registry import resolve
    from keel.serve.app import MODEL_ENV, app_from_env, create_app

    if not 0 < port < 65536:
        raise InvalidArgument.for_field("--port", port, "a port number from 1 to 65535")
    if workers < 1:
        raise InvalidArgument.for_field("--workers", workers, "at least 1")
    _check_port_free(host, port)
    version = resolve(model_uri)  # an unknown model or alias fails here, before the server starts
    typer.echo(f"keel serve {version.uri} on http://{host}:{port}  (V2 under /v2, JSON at /predict)")
    if workers == 1:
        uvicorn.run(create_app(model_uri), host=host, port=port, log_level=log_level)
        return
    os.environ[MODEL_ENV] = model_uri  # uvicorn starts workers from an import path: they read the URI from here
    uvicorn.run(f"{app_from_env.__module__}:{app_from_env.__name__}", factory=True, host=host, port=port,
                workers=workers, log_level=log_level)  # fmt: skip
