"""``keel ui``: the web UI of this folder's store, on 127.0.0.1, opened in the browser."""

from __future__ import annotations

import threading
import webbrowser

import typer

from keel.cli import server as server_command
from keel.cli.lookup import require_store


def ui(
    port: int = typer.Option(5050, help="Port to listen on (127.0.0.1 only)."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open the UI in the default browser."),
    auth: str = typer.Option("auto", help="Tokens required: on, off, or auto (on once the store has users)."),
) -> None:
    """Serve the web UI of the nearest .keel store on http://127.0.0.1:PORT/ui/ and open it (keel server, loopback only).

    On a store without users it opens without signing in; with users, sign in with a token (keel tokens create)."""
    require_store()  # a reading command: never creates a store
    url = f"http://127.0.0.1:{port}/ui/"
    if browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()  # once uvicorn listens
    typer.echo(f"keel ui: {url}  (Ctrl-C to stop)")
    server_command.server(
        host="127.0.0.1", port=port, store=None, artifacts=None, log_level="warning", auth=auth, insecure=False, allowed_host=[]
    )
