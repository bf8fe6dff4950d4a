"""``keel serve DEPLOYMENT|MODEL_URI``: a deployment (followed as it changes) or one registered model on uvicorn."""

from __future__ import annotations

import os

import typer

from keel.cli.server import _check_port_free
from keel.core.errors import InvalidArgument

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


def serve(
    target: str = typer.Argument(
        ...,
        metavar="DEPLOYMENT|MODEL_URI",
        help="A deployment name (keel deploy create), or models:/name/3, models:/name@alias, models:/name.",
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (each loads the models and follows the deployment)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    shadows: str = typer.Option(
        "spare", help="spare: shadows see requests while the server has capacity to spare (a sample at saturation); all: all."
    ),
    require_token: bool = typer.Option(
        False, "--require-token", help="Predictions need a token with the 'serve' permission (keel tokens create)."
    ),
) -> None:
    """Serve a deployment or a model: Open Inference Protocol V2 under /v2, JSON POST /predict, /metrics, /docs."""
    import uvicorn

    from keel.registry import resolve
    from keel.serve.app import (
        REQUIRE_TOKEN_ENV,
        SHADOW_POLICIES,
        SHADOWS_ENV,
        TARGET_ENV,
        app_from_env,
        create_app,
        is_model_uri,
    )  # fmt: skip
    from keel.serve.metrics import MULTIPROC_ENV, fresh_multiprocess_dir, remove_multiprocess_dir
    from keel.tracking.fluent import get_client

    if not 0 < port < 65536:
        raise InvalidArgument.for_field("--port", port, "a port number from 1 to 65535")
    if workers < 1:
        raise InvalidArgument.for_field("--workers", workers, "at least 1")
    if shadows not in SHADOW_POLICIES:
        raise InvalidArgument.for_field("--shadows", shadows, " or ".join(SHADOW_POLICIES))
    if log_level not in LOG_LEVELS:
        raise InvalidArgument.for_field("--log-level", log_level, f"one of {', '.join(LOG_LEVELS)}")
    _check_port_free(host, port)
    # an unknown model, alias or deployment fails here, before the server starts
    if is_model_uri(target):
        what = resolve(target).uri
    else:
        deployment = get_client().store.deployments.get(target)
        what = f"deployment {deployment.name} (primary {deployment.primary}"
        what += f", {len(deployment.shadows)} shadow(s)" if deployment.shadows else ""
        canaries = len(deployment.canaries)
        what += f", {canaries} canar{'y' if canaries == 1 else 'ies'})" if canaries else ")"
    guarded = "; predictions need a token" if require_token else ""
    typer.echo(f"keel serve {what} on http://{host}:{port}  (V2 under /v2, JSON at /predict, /metrics, /docs{guarded})")
    if workers == 1:
        app = create_app(target, shadows=shadows, require_token=require_token)
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
        return
    os.environ[TARGET_ENV] = target  # uvicorn starts workers from an import path: they read the target from here
    os.environ[SHADOWS_ENV] = shadows
    os.environ[REQUIRE_TOKEN_ENV] = "1" if require_token else "0"
    # several workers share their metrics through files, so that any worker's /metrics counts them all; a folder
    # the user named is theirs to empty, one keel makes is removed at exit
    made = None
    if not os.environ.get(MULTIPROC_ENV):
        made = os.environ[MULTIPROC_ENV] = fresh_multiprocess_dir()
    try:
        uvicorn.run(f"{app_from_env.__module__}:{app_from_env.__name__}", factory=True, host=host, port=port,
                    workers=workers, log_level=log_level, timeout_graceful_shutdown=30)  # fmt: skip
    finally:
        if made is not None:
            remove_multiprocess_dir(made)
