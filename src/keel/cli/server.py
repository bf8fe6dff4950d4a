"""``keel server``: the platform REST API on uvicorn."""

from __future__ import annotations

import errno
import socket

import typer

from keel.core.config import load_settings
from keel.core.errors import InvalidArgument, KeelError


def _check_port_free(host: str, port: int) -> None:
    """Fail before printing anything if the port cannot be bound (uvicorn would say so only after our banner)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgument.for_field("--host", host, f"an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # as uvicorn binds: SO_REUSEADDR, so a port left in TIME_WAIT by a stopped server still counts as free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise KeelError(f"cannot listen on {host}:{port}: the port is in use (choose another with --port)") from None
            raise KeelError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


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
    _check_port_free(host, port)
    settings = load_settings()
    store_uri = store or settings.store
    if store_uri.startswith(("http://", "https://")):
        raise InvalidArgument.for_field("--store", store_uri, "a sqlite:// or postgresql:// URI (the server owns the database)")
    app = create_app(
        open_store(store_uri, heartbeat_timeout=settings.heartbeat_timeout),
        open_artifact_store(artifacts or settings.artifacts or str(settings.home / "artifacts")),
        max_request_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
    )
    typer.echo(f"keel server on http://{host}:{port}  (store {store_uri}; API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
