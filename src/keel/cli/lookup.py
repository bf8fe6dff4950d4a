"""Finding what a command names: the store it reads, and a run from the 12-character prefix keel prints.

The store is found as git finds ``.git`` (``keel.core.config.find_project``). A command that only reads, or
that acts on records that must exist already, calls ``require_store`` first: opening a local SQLite store
creates it, and an empty store made in the wrong folder would hide the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import typer

from keel.cli.output import clean
from keel.core.config import Settings, load_settings
from keel.core.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from keel.core.entities import Run
    from keel.tracking.client import Client

NO_STORE = "no keel store here or in a parent folder (run keel quickstart, or set KEEL_STORE)"
_MIN_PREFIX = 4
_MAX_CANDIDATES = 10


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for in-memory SQLite and for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path).expanduser()


def require_store() -> Settings:
    """The settings, if the store they name exists; else say so and exit 1 (nothing read, nothing created).

    Exit 1, not 0: the command could not read what it was asked to, and a CI step run in the wrong folder must
    not pass as if the store were empty; not 2 either, as nothing the user typed is wrong.
    """
    settings = load_settings()
    path = _sqlite_file(settings.store)
    if path is not None and not path.is_file():
        derived = settings.store == f"sqlite:///{settings.home / 'keel.db'}"  # not a URI someone chose
        typer.echo(
            clean(f"keel: {NO_STORE}" if derived else f"keel: no keel store at {path} (KEEL_STORE or keel.toml)"), err=True
        )
        raise typer.Exit(1)
    return settings


def store_label(settings: Settings) -> str:
    """Which store was read, for a message: the ``.keel`` folder, a database file, or a URL without its password."""
    path = _sqlite_file(settings.store)
    if path is not None:
        path = path.absolute()
        return str(path.parent if path.name == "keel.db" else path)
    parts = urlsplit(settings.store)
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return settings.store


def resolve_run(client: Client, ref: str) -> Run:
    """A run from its full id or a unique prefix of it (keel prints 12 characters).

    An unknown id or prefix raises ``NotFound``; a prefix several runs share raises ``InvalidArgument`` naming them.
    """
    try:
        return client.get_run(ref)
    except NotFound:
        if len(ref) < _MIN_PREFIX or not ref.isalnum():  # isalnum: the prefix goes into a LIKE filter as it is
            raise NotFound(
                f"run {ref!r} does not exist (give a full run id or at least {_MIN_PREFIX} of its characters)"
            ) from None
    matches: list[Run] = []
    for run in client.iter_runs(filter=f"run_id like '{ref}%'", view="all"):  # an id finds a deleted run too
        matches.append(run)
        if len(matches) > _MAX_CANDIDATES:
            break
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no run id starts with {ref!r}")
    width = 12 if len({m.id[:12] for m in matches}) == len(matches) else len(matches[0].id)
    shown = ", ".join(f"{m.id[:width]} ({m.name})" for m in matches[:_MAX_CANDIDATES])
    count = f"more than {_MAX_CANDIDATES}" if len(matches) > _MAX_CANDIDATES else str(len(matches))
    raise InvalidArgument(f"run id prefix {ref!r} is ambiguous, {count} runs match: {shown}; give more characters")


def resolve_run_id(client: Client, ref: str) -> str:
    """The full id of the run ``ref`` names (see ``resolve_run``)."""
    return resolve_run(client, ref).id
