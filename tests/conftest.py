"""Real services for the whole suite: PostgreSQL and a keel server start once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "true")

from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing import services


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own folder with no KEEL_* configuration leaking in."""
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    import keel

    keel.set_client(None)
    yield
    keel.set_client(None)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One real local Ray for the whole session (starting one takes seconds)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session (or KEEL_TEST_POSTGRES_URL to use an existing one)."""
    external = os.environ.get("KEEL_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    with services.postgres_server() as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return services.create_database(postgres_url, f"keel_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def pg_store_url(postgres_url: str) -> str:
    return services.create_database(postgres_url, "keel_shared")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``keel server`` on 127.0.0.1 over its own SQLite store, for the whole session."""
    base = tmp_path_factory.mktemp("server")
    with services.keel_server(f"sqlite:///{base / 'keel.db'}", str(base / "artifacts")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_store_url"))
    return str(request.getfixturevalue("server_url"))


@pytest.fixture
def store(store_uri: str) -> Iterator[MetadataStore]:
    opened = open_store(store_uri)
    yield opened
    opened.close()
