"""Serving an app in this process, on a thread, for as long as a block runs (the quickstart, notebooks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keel.core.errors import StoreUnavailable


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", start_timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port of ``host`` (loopback by default); yield its base URL.

    >>> with serving(create_app("models:/churn@production")) as url:   # doctest: +SKIP
    ...     httpx.post(f"{url}/predict", json={"records": rows})
    """
    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="keel-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise StoreUnavailable(f"the inference server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
