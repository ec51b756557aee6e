"""The fixture of what only the PostgreSQL store does; ``store`` on both backends is in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_backends import INLINE_LIMIT

from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> Iterator[PostgresStore]:
    """A PostgreSQL store, for the tests of what only PostgreSQL does."""
    store = PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=INLINE_LIMIT)
    yield store
    store.close()
