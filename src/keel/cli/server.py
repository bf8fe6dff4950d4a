"""``keel server``: the platform REST API on uvicorn."""

from __future__ import annotations

import errno
import ipaddress
import os
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


AUTH_MODES = ("auto", "on", "off")


def server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(5050, help="Port to listen on."),
    store: str | None = typer.Option(None, help="Metadata store URI (default: KEEL_STORE or ./.keel/keel.db)."),
    artifacts: str | None = typer.Option(None, help="Artifact store URL (default: KEEL_ARTIFACTS or ./.keel/artifacts)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    auth: str = typer.Option("auto", help="Tokens required: on, off, or auto (on once the store has users)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow auth off on an address other than loopback."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="A host name clients may reach this server by (repeatable; '*' for any)."
    ),
) -> None:
    """Serve the platform REST API (OpenAPI schema at /docs and /openapi.json).

    With users in the store (keel users create, keel roles grant, keel tokens create) every route but health and
    docs needs a token. Without, it runs open for one user, and only on loopback unless told --insecure."""
    import uvicorn

    from keel.server.app import create_app
    from keel.store.artifacts import open_artifact_store
    from keel.store.metadata import open_store

    if not 0 < port < 65536:
        raise InvalidArgument.for_field("--port", port, "a port number from 1 to 65535")
    if auth not in AUTH_MODES:
        raise InvalidArgument.for_field("--auth", auth, " | ".join(AUTH_MODES))
    settings = load_settings()
    store_uri = store or settings.store
    if store_uri.startswith(("http://", "https://")):
        raise InvalidArgument.for_field("--store", store_uri, "a sqlite:// or postgresql:// URI (the server owns the database)")
    metadata = open_store(store_uri, heartbeat_timeout=settings.heartbeat_timeout)
    users = metadata.identity.count_principals()
    enforced = auth == "on" or (auth == "auto" and users > 0)
    if not enforced and not is_loopback(host) and not insecure:
        metadata.close()
        raise KeelError(
            f"refusing to serve {host} without authentication: anyone who reaches it could change anything. Create a "
            "user and a token first (keel users create NAME; keel roles grant NAME admin; keel tokens create NAME), "
            "or pass --insecure to run open anyway"
        )
    if auth == "on" and users == 0:
        metadata.close()
        raise KeelError("--auth on, but the store has no users: nobody could call it (keel users create NAME first)")
    _check_port_free(host, port)
    hosts = allowed_hosts(host, [*allowed_host, *_env_hosts()])
    app = create_app(
        metadata,
        open_artifact_store(artifacts or settings.artifacts or str(settings.home / "artifacts")),
        max_request_bytes=settings.max_request_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
        auth=enforced,
        allowed_hosts=hosts,
    )
    from keel.ui import install_ui

    install_ui(app)
    mode = f"tokens required ({users} users)" if enforced else "OPEN: no authentication"
    typer.echo(f"keel server on http://{host}:{port}  (store {store_uri}; {mode}; UI at /ui/, API docs at /docs)")
    if not enforced and not is_loopback(host):
        typer.echo("WARNING: --insecure: anyone who reaches this address may change anything", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _env_hosts() -> list[str]:
    return [h.strip() for h in os.environ.get("KEEL_ALLOWED_HOSTS", "").split(",") if h.strip()]


def allowed_hosts(host: str, extra: list[str]) -> frozenset[str]:
    """The names the ``Host`` header may carry: loopback, the bound address, and ``extra``; bound to every interface
    (0.0.0.0, ::), also this machine's name and addresses."""
    names = {"127.0.0.1", "localhost", "::1", host.lower(), *(h.lower() for h in extra)}
    if host in ("0.0.0.0", "::", ""):
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        try:
            names |= {str(info[4][0]).lower() for info in socket.getaddrinfo(hostname, None)}
        except OSError:
            pass
    return frozenset(names)
