"""Keep the server's filesystem paths and store URLs out of what it tells clients.

Store errors name where they happened (``artifact ... at /srv/keel/artifacts/sha256/...``),
which helps a local user and tells a remote client how the server's disk is laid out. The
server replaces its own locations (store URL and file, artifact root, temp, working and home
folders) in every message. Any other absolute path is replaced only in messages built from
what a filesystem or a driver said (``StoreUnavailable``: an ``OSError``, a database error),
where it can only be the server's. Other errors (bad input, conflicts, missing entities)
echo the client's own values, which must come back as sent: a param-immutability conflict
between ``/data/train.csv`` and ``/data/v2/train.csv`` has to show both.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVER_PATH = "<server path>"
STORE = "<store>"
# what may follow a known location: the rest of a path, up to a blank, a quote or punctuation ending a clause
_REST = r"[^\s'\"),;]*"
# an absolute path of at least two segments, not part of a URL or of a relative path
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"/),;]+/" + _REST)


def _store_urls(store: Any) -> list[str]:
    url = getattr(getattr(store, "engine", None), "url", None)
    return [] if url is None else [url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)]


def _folders(store: Any, artifacts: Any) -> list[str]:
    found = [str(getattr(artifacts, "url", "") or ""), str(getattr(artifacts, "root", "") or "")]
    url = getattr(getattr(store, "engine", None), "url", None)
    if url is not None and url.database and url.get_backend_name() == "sqlite":
        found.append(str(Path(url.database).resolve().parent))
    return [*found, tempfile.gettempdir(), os.getcwd(), str(Path.home())]


def redactor(store: Any, artifacts: Any) -> Callable[[str, bool], str]:
    """A function ``(message, from_drivers) -> message`` with the server's locations replaced, and with
    every absolute path replaced too when ``from_drivers`` (the message reports a filesystem or driver error)."""
    pairs = [(s, STORE) for s in _store_urls(store)] + [(s, SERVER_PATH) for s in _folders(store, artifacts)]
    # longest first, so that a folder inside another is replaced whole
    known = sorted({(s, p) for s, p in pairs if len(s) > 1}, key=lambda kv: -len(kv[0]))
    pattern = re.compile("|".join(re.escape(s) + _REST for s, _ in known)) if known else None

    def replace(m: re.Match[str]) -> str:
        return next(p for s, p in known if m.group(0).startswith(s))

    def redact(message: str, from_drivers: bool = False) -> str:
        if pattern is not None:
            message = pattern.sub(replace, message)
        if from_drivers:  # an OS or driver error names only the server's paths; anything else may echo the client's
            message = _ABSOLUTE_PATH.sub(SERVER_PATH, message)
        return message

    return redact
