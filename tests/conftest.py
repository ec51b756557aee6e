"""Fixtures every test folder may use: the session's PostgreSQL server and its emptied test
database, stores and services on SQLite and on PostgreSQL, a clock moved by hand, and real
`perdure serve` processes.

``store`` and ``service`` are parametrized through ``open_test_store``, so every test that asks
for one runs once per backend. A module whose service needs other options (its functions, a
smaller inline limit) overrides ``service`` with ``open_service(...)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import TEST_DB, PostgresServer, find_pg_bindir, start_server
from s3_server import s3, s3_server  # noqa: F401  (fixtures for every test folder)
from servers import Server
from store_backends import INLINE_LIMIT, StoreFactory

from perdure.service.executions import DurableService, ServiceConfig
from perdure.service.functions import FunctionLookup
from perdure.store.base import Store
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore
from perdure.store.rows import DEFAULT_INLINE_LIMIT
from perdure.store.sqlite import SQLiteStore
from perdure.testing import SkippableClock

ServiceFactory = Callable[..., DurableService]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, with an empty database ``perdure_test``."""
    bindir = find_pg_bindir()
    if bindir is None:
        where = os.environ.get("PERDURE_PG_BINDIR")
        message = (
            f"PERDURE_PG_BINDIR={where} has no initdb and pg_ctl: point it at PostgreSQL's bin folder."
            if where
            else "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them "
            "(apt-get install postgresql) or set PERDURE_PG_BINDIR to their folder."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = start_server(bindir)
    try:
        server.create_database(TEST_DB)
        yield server
    finally:
        server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "immediate", "-w")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's test database, emptied of executions, function versions, schedules,
    event invoke configurations and limits before the test."""
    url = postgres_server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('executions') IS NOT NULL").fetchone()
        if exists and exists[0]:
            # Deleting executions cascades to everything under them; with the few rows a test
            # leaves, DELETE is faster than TRUNCATE (which rewrites each table's files).
            conn.execute("DELETE FROM executions")
            conn.execute("DELETE FROM function_aliases")
            conn.execute("DELETE FROM function_versions")
            conn.execute("DELETE FROM schedules")
            conn.execute("DELETE FROM event_invoke_configs")
            conn.execute("DELETE FROM function_limits")
            conn.execute("DELETE FROM tenant_starts")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def open_test_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one database of the parametrized backend; closes them all at the end.

    Blobs go to ``tmp_path / "blobs"`` on both backends, and payloads over ``INLINE_LIMIT`` (1 KiB)
    go to blobs unless the caller passes another ``inline_limit``.
    """
    opened: list[Store] = []
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""

    def open_store(**options: Any) -> Store:
        options.setdefault("blobs", FileBlobStore(tmp_path / "blobs"))
        options.setdefault("inline_limit", INLINE_LIMIT)
        store: Store
        if request.param == "sqlite":
            store = SQLiteStore(tmp_path / "perdure.db", **options)
        else:
            store = PostgresStore(url, **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(open_test_store: StoreFactory) -> Store:
    """A store on a fresh database: SQLite, then PostgreSQL."""
    return open_test_store()


@pytest.fixture
def clock() -> SkippableClock:
    """A clock that stands still until the test moves it (``clock.advance(seconds)``)."""
    return SkippableClock()


@pytest.fixture
def open_service(open_test_store: StoreFactory, clock: SkippableClock) -> ServiceFactory:
    """Opens a service on a new store of the test's database, with ``ServiceConfig(**config)``.

    A second call opens another store on the same database, as a restarted server would; the
    stores are closed at the end of the test. Payloads over 64 KiB go to ``tmp_path / "blobs"``,
    as they do in a server, unless ``inline_limit`` says otherwise.
    """

    def open_(
        *, inline_limit: int = DEFAULT_INLINE_LIMIT, functions: FunctionLookup | None = None, **config: Any
    ) -> DurableService:
        store = open_test_store(inline_limit=inline_limit)
        return DurableService(store, ServiceConfig(**config), clock=clock, functions=functions)

    return open_


@pytest.fixture
def service(open_service: ServiceFactory) -> DurableService:
    """A service with the default configuration, on SQLite, then on PostgreSQL."""
    return open_service()


@pytest.fixture
def side_effects(tmp_path: Path) -> Path:
    """A file the test handlers append a line to for every step body they run."""
    return tmp_path / "side-effects.log"


@pytest.fixture
def serve(tmp_path: Path, side_effects: Path) -> Iterator[Callable[..., Server]]:
    """Starts `perdure serve ARGS...` in a temporary folder; stops every server at the end."""
    servers: list[Server] = []
    env = {**os.environ, "PERDURE_TEST_LOG": str(side_effects)}

    def start(*args: str, **extra_env: str) -> Server:
        server = Server(list(args), tmp_path, {**env, **extra_env})
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
