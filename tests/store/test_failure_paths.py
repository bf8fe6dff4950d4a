"""Failure paths of the metadata stores, injected for real: a second SQLite connection holding the write lock,
constraints and dropped tables in the real database, concurrent writers, and HTTP peers that die or misbehave.

Every error must come out as keel's own (``StoreUnavailable``, ``Conflict``, ...), never a driver's or httpx's.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from keel.core.datasets import ColumnSchema
from keel.core.errors import Conflict, KeelError, StoreUnavailable
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest.client import RestStore
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore
from keel.testing.services import free_port, keel_server

T = TypeVar("T")


def _sql_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keel.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture(params=["sqlite", "postgres"])
def sql_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of its own on each SQL backend (tests here alter the schema)."""
    return _sql_uri(request, tmp_path)


def _execute_raw(uri: str, statement: str) -> None:
    """Run DDL behind keel's back, with the driver itself, as an operator or another program would."""
    if uri.startswith("sqlite:///"):
        conn = sqlite3.connect(uri.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute(statement)
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as pg:
        pg.execute(statement)  # type: ignore[call-overload]


# --- SQLite lock contention: BEGIN IMMEDIATE retried with backoff ----------------------------------------------


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer waits 1.5 s for the lock in all (not 60 s), in the steps ``_begin`` takes (issue 13: after the notice)."""
    monkeypatch.setattr(sql_engine, "SQLITE_BUSY_TIMEOUT_S", 1.5)


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """A second, plain sqlite3 connection that takes the database's write lock and keeps it."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE experiments SET name = name")  # a real pending write, not just the lock
    return holder


def test_a_write_waits_for_a_held_sqlite_lock_and_succeeds_once_it_is_released(tmp_path: Path, short_busy_timeout: None) -> None:
    path = tmp_path / "keel.db"
    store = SqlStore(f"sqlite:///{path}")
    experiment = store.get_or_create_experiment("locked")
    holder = _hold_write_lock(path)
    release = threading.Timer(0.6, holder.commit)
    started = time.monotonic()
    release.start()
    try:
        assert store.get_experiment(experiment.id).name == "locked"  # WAL: readers are not blocked by the writer
        run = store.create_run(experiment.id, "after-the-lock")
        waited = time.monotonic() - started
    finally:
        release.join()
        holder.close()
    assert waited >= 0.5  # it did wait for the other writer, well beyond SQLite's 50 ms busy timeout
    assert store.get_run(run.id).name == "after-the-lock"
    assert [r.name for r in store.search_runs([experiment.id]).runs] == ["after-the-lock"]
    store.close()


def test_a_sqlite_lock_that_is_never_released_ends_in_store_unavailable(tmp_path: Path, short_busy_timeout: None) -> None:
    path = tmp_path / "keel.db"
    store = SqlStore(f"sqlite:///{path}")
    experiment = store.get_or_create_experiment("stuck")
    holder = _hold_write_lock(path)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="locked") as raised:
            store.create_run(experiment.id, "never")
        gave_up_after = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no sqlalchemy chain to read through
    assert 1.0 < gave_up_after < 30  # it retried with backoff (not one 50 ms attempt), and gave up in bounded time
    assert store.search_runs([experiment.id]).runs == []  # nothing half-written
    assert store.create_run(experiment.id, "later").name == "later"  # the store works again once the lock is gone
    store.close()


# --- driver errors inside a transaction are translated ----------------------------------------------------------


def test_a_real_constraint_violation_is_a_conflict_and_writes_nothing(sql_uri: str) -> None:
    store = open_store(sql_uri)
    experiment = store.get_or_create_experiment("unique")
    _execute_raw(sql_uri, "CREATE UNIQUE INDEX one_run_per_name ON runs (experiment_id, name)")
    store.create_run(experiment.id, "same", params={"lr": "0.1"})
    with pytest.raises(Conflict, match="write refused by the database") as raised:
        store.create_run(experiment.id, "same", params={"lr": "0.2"}, tags={"t": "x"})
    assert raised.value.__cause__ is None
    runs = store.search_runs([experiment.id]).runs
    assert [(r.name, r.params) for r in runs] == [("same", {"lr": "0.1"})]  # the refused run left no params or tags
    store.close()


def test_a_dropped_table_is_store_unavailable_and_rolls_the_transaction_back(sql_uri: str) -> None:
    store = open_store(sql_uri)
    run = store.create_run(store.get_or_create_experiment("dropped").id)
    store.log_metrics([(run.id, "loss", 1.0, 0, 1)])
    _execute_raw(sql_uri, "DROP TABLE latest_metrics")
    with pytest.raises(StoreUnavailable, match="latest_metrics") as raised:
        store.log_metrics([(run.id, "loss", 2.0, 1, 2)])  # the blocks insert runs, then the upsert fails
    assert not isinstance(raised.value, Conflict) and raised.value.__cause__ is None
    assert [m.value for m in store.get_metric_history(run.id, "loss")] == [1.0]  # the second batch's block was rolled back
    store.close()


def test_writing_to_a_read_only_sqlite_database_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "keel.db"
    writable = SqlStore(f"sqlite:///{path}")
    experiment = writable.get_or_create_experiment("ro")
    writable.close()
    read_only = SqlStore(f"sqlite:///file:{path}?mode=ro&uri=true", migrate=False)
    assert read_only.get_experiment(experiment.id).name == "ro"
    with pytest.raises(StoreUnavailable, match="readonly") as raised:
        read_only.create_run(experiment.id, "refused")
    assert raised.value.__cause__ is None
    assert read_only.search_runs([experiment.id]).runs == []
    read_only.close()


def test_writing_to_a_read_only_postgres_database_is_store_unavailable(fresh_postgres_url: str) -> None:
    store = open_store(fresh_postgres_url)
    experiment = store.get_or_create_experiment("ro")
    store.close()
    name = fresh_postgres_url.rsplit("/", 1)[1]
    _execute_raw(fresh_postgres_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    read_only = open_store(fresh_postgres_url)  # new connections start read-only
    with pytest.raises(StoreUnavailable, match="read-only") as raised:
        read_only.create_run(experiment.id, "refused")
    assert raised.value.__cause__ is None
    assert read_only.search_runs([experiment.id]).runs == []
    read_only.close()


# --- concurrent creation: the loser of a race retries, nobody sees the race ------------------------------------


def _race(uri: str, work: Callable[[MetadataStore, int], T], writers: int = 2, rounds: int = 10) -> list[list[T]]:
    """``writers`` threads, each with its own store, run ``work(store, round)`` at the same instant, ``rounds`` times."""
    stores = [open_store(uri) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    results: list[list[T]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        for i in range(rounds):
            try:
                barrier.wait(timeout=60)
                results[n].append(work(stores[n], i))
            except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
                errors.append(exc)
                barrier.abort()
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for store in stores:
        store.close()
    assert errors == [], [f"{type(e).__module__}.{type(e).__name__}: {e}" for e in errors]
    return results


@pytest.fixture(params=["sqlite", "postgres"])
def race_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _sql_uri(request, tmp_path)


def test_two_writers_creating_the_same_experiment_get_the_same_one(race_uri: str) -> None:
    results = _race(race_uri, lambda store, i: store.get_or_create_experiment(f"exp-{i}", project=f"proj-{i}").id)
    assert results[0] == results[1]  # both got the one experiment of each round
    store = open_store(race_uri)
    assert sorted(e.name for e in store.list_experiments()) == sorted(f"exp-{i}" for i in range(10))  # no duplicate
    store.close()


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_two_writers_logging_the_next_dataset_version_get_distinct_numbers(race_uri: str) -> None:
    def log(store: MetadataStore, i: int) -> int:
        content = _sha(f"{uuid.uuid4()}")  # different data from each writer: two versions per round
        version, created = store.datasets.log_version(
            "raced",
            content_hash=content,
            artifact_sha256=content,
            size=1,
            row_count=1,
            schema=[ColumnSchema("x", "int64", False)],
        )
        assert created
        return version.version

    results = _race(race_uri, log)
    numbers = sorted(results[0] + results[1])
    assert numbers == list(range(1, 21))
    store = open_store(race_uri)
    assert sorted(v.version for v in store.datasets.list_versions("raced")) == list(range(1, 21))
    store.close()


def test_two_writers_registering_the_next_model_version_get_distinct_numbers(race_uri: str) -> None:
    def register(store: MetadataStore, i: int) -> int:
        return store.models.create_version(
            "raced", flavor="sklearn", artifact_sha256=_sha(str(uuid.uuid4())), size=1, signature={}
        ).version

    results = _race(race_uri, register)
    assert sorted(results[0] + results[1]) == list(range(1, 21))
    store = open_store(race_uri)
    assert sorted(v.version for v in store.models.list_versions("raced")) == list(range(1, 21))
    store.close()


# --- RestStore: a peer that is gone or misbehaves ----------------------------------------------------------------


def _assert_keel_error(call: Callable[[], Any], expected: type[KeelError]) -> KeelError:
    """``call`` raises ``expected`` with no httpx exception chained to it."""
    with pytest.raises(expected) as raised:
        call()
    assert "httpx" not in type(raised.value).__module__
    assert raised.value.__cause__ is None
    return raised.value


def test_a_port_with_nothing_listening_is_store_unavailable() -> None:
    store = RestStore(f"http://127.0.0.1:{free_port()}", timeout=5)
    error = _assert_keel_error(lambda: store.get_or_create_experiment("nobody"), StoreUnavailable)
    assert "cannot reach keel server" in str(error)
    store.close()


def test_a_server_killed_mid_session_is_store_unavailable(tmp_path: Path) -> None:
    with keel_server(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts")) as url:
        store = RestStore(url, timeout=5)
        run = store.create_run(store.get_or_create_experiment("killed").id)
    # the context manager has stopped the server: the same client, the same connection pool
    _assert_keel_error(lambda: store.get_run(run.id), StoreUnavailable)
    _assert_keel_error(lambda: store.log_metrics([(run.id, "loss", 1.0, 0, 1)]), StoreUnavailable)  # resent, then gives up
    store.close()


class _Peer:
    """A loopback TCP server that answers every connection with ``reply`` (bytes, or None to close at once)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            with conn:
                if self.reply is not None:
                    conn.settimeout(2)
                    try:
                        conn.recv(65536)  # the request (headers and a small body arrive together on loopback)
                        conn.sendall(self.reply)
                    except OSError:
                        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not on Linux
        self.sock.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[_Peer]:
    server = _Peer(request.param)
    yield server
    server.close()


def _http(status: str, body: bytes, content_type: str = "text/html") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


@pytest.mark.parametrize("peer", [None, b"this is not HTTP at all\r\n\r\n"], ids=["accepts-and-closes", "garbage"], indirect=True)
def test_a_peer_that_breaks_the_protocol_is_store_unavailable(peer: _Peer) -> None:
    store = RestStore(peer.url, timeout=5)
    error = _assert_keel_error(lambda: store.get_or_create_experiment("e"), StoreUnavailable)
    assert peer.url in str(error)
    before = peer.connections
    _assert_keel_error(lambda: store.log_metrics([("0" * 32, "loss", 1.0, 0, 1)]), StoreUnavailable)
    assert peer.connections - before == 4  # an idempotent write is sent 1 + RETRIES times before giving up
    store.close()


@pytest.mark.parametrize("peer", [_http("500 Internal Server Error", b"<html>upstream crashed</html>")], indirect=True)
def test_a_non_json_500_is_store_unavailable_carrying_the_body(peer: _Peer) -> None:
    store = RestStore(peer.url, timeout=5)
    error = _assert_keel_error(lambda: store.get_or_create_experiment("e"), StoreUnavailable)
    assert "upstream crashed" in str(error)
    store.close()


@pytest.mark.parametrize("peer", [_http("502 Bad Gateway", b"<html>bad gateway</html>")], indirect=True)
def test_a_proxy_502_on_a_write_is_resent_then_store_unavailable(peer: _Peer) -> None:
    store = RestStore(peer.url, timeout=5)
    error = _assert_keel_error(lambda: store.log_metrics([("0" * 32, "loss", 1.0, 0, 1)]), StoreUnavailable)
    assert "502" in str(error) and "bad gateway" in str(error)
    assert peer.connections == 4
    store.close()


@pytest.mark.parametrize("peer", [_http("200 OK", b"<html>a captive portal</html>")], indirect=True)
def test_a_200_that_is_not_json_is_a_keel_error(peer: _Peer) -> None:
    store = RestStore(peer.url, timeout=5)
    _assert_keel_error(lambda: store.get_or_create_experiment("e"), StoreUnavailable)
    store.close()
