"""Fixtures: the test database on the session's PostgreSQL server, and ``store`` on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer
from store_backends import INLINE_LIMIT, StoreFactory

from perdure.store.base import Store
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore
from perdure.store.sqlite import SQLiteStore


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's test database, emptied of executions before the test."""
    url = postgres_server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('executions') IS NOT NULL").fetchone()
        if exists and exists[0]:
            # Deleting executions cascades to everything under them; with the few rows a test
            # leaves, DELETE is faster than TRUNCATE (which rewrites each table's files).
            conn.execute("DELETE FROM executions")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def open_test_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one database of the parametrized backend; closes them all at the end."""
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
def pg_store(postgres_url: str, tmp_path: Path) -> Iterator[PostgresStore]:
    """A PostgreSQL store, for the tests of what only PostgreSQL does."""
    store = PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=INLINE_LIMIT)
    yield store
    store.close()
