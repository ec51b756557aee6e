"""Persistence: the store contract and its backends."""

from __future__ import annotations

from pathlib import Path

from perdure.errors import InvalidParameterError
from perdure.store.base import Store

DEFAULT_DB_URL = "sqlite:///.perdure/perdure.db"


def data_dir_for(url: str) -> Path:
    """The folder that keeps a store's local files (the snapshot key): the SQLite file's folder."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent
    return Path(".perdure")


def open_store(url: str, blob_dir: Path | None = None) -> Store:
    """Opens the store a URL names.

    ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` open a SQLite file;
    ``postgresql://user:password@host:5432/dbname`` (or ``postgres://…``) a PostgreSQL database,
    whose blob folder every process using it must share (default ``.perdure/blobs``).
    """
    if url.startswith("sqlite:///"):
        from perdure.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///")
        if not path:
            raise InvalidParameterError(f"Invalid database URL {url!r}: name a file, as in {DEFAULT_DB_URL}.")
        return SQLiteStore(Path(path), blob_dir=blob_dir)
    if url.startswith(("postgresql://", "postgres://")):
        from perdure.store.postgres import PostgresStore

        return PostgresStore(url, blob_dir=blob_dir)
    raise InvalidParameterError(
        f"Unsupported database URL {url!r}: use sqlite:///path/to/file.db (for example {DEFAULT_DB_URL}) "
        "or postgresql://user:password@host:5432/dbname."
    )
