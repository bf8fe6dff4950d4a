"""``keel server``: the platform REST API on uvicorn."""

from __future__ import annotations

import typer

from keel.core.config import load_settings
from keel.core.errors import InvalidArgument


def server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(5050, help="Port to listen on."),
    store: str = typer.Option(None, help="Metadata store URI (default: KEEL_STORE or ./.keel/keel.db)."),
    artifacts: str = typer.Option(None, help="Artifact store URL (default: KEEL_ARTIFACTS or ./.keel/artifacts)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve the tracking REST API (OpenAPI schema at /docs and /openapi.json)."""
    import uvicorn

    from keel.server.app import create_app
    from keel.store.artifacts import open_artifact_store
    from keel.store.metadata import open_store

    if not 0 < port < 65536:
        raise InvalidArgument.for_field("--port", port, "a port number from 1 to 65535")
    settings = load_settings()
    store_uri = store or settings.store
    if store_uri.startswith(("http://", "https://")):
        raise InvalidArgument.for_field("--store", store_uri, "a sqlite:// or postgresql:// URI (the server owns the database)")
    app = create_app(
        open_store(store_uri, heartbeat_timeout=settings.heartbeat_timeout),
        open_artifact_store(artifacts or settings.artifacts or str(settings.home / "artifacts")),
    )
    typer.echo(f"keel server on http://{host}:{port}  (store {store_uri}; API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
