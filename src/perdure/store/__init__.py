"""Persistence: the store contract and its backends."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from perdure.errors import InvalidParameterError
from perdure.store.base import Store
from perdure.store.blobs import BlobConfig

DEFAULT_DB_URL = "sqlite:///.perdure/perdure.db"


def data_dir_for(url: str) -> Path:
    """The folder that keeps a store's local files (the snapshot key): the SQLite file's folder."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent
    return Path(".perdure")


def make_data_dir(folder: Path) -> None:
    """Creates ``folder`` (and any missing parents) for its owner alone; one that exists keeps its mode.

    It holds the database, the blobs and the snapshot key, which no other local user may read
    (issue 11, finding 9). A folder the user made is theirs to share as they chose.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def display_url(url: str) -> str:
    """The URL with its password (if any) masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def open_store(url: str, blobs: BlobConfig | None = None) -> Store:
    """Opens the store a URL names, with its payloads over the inline limit in ``blobs``.

    ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` open a SQLite file;
    ``postgresql://user:password@host:5432/dbname`` (or ``postgres://…``) a PostgreSQL database,
    whose blob store every process using it must share. Blobs go by default to the folder
    ``blobs`` beside the SQLite file, or ``.perdure/blobs`` for PostgreSQL; an S3 bucket is
    checked for existence here, so that a wrong one fails at once.
    """
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise InvalidParameterError(
            f"Unsupported database URL {url!r}: use sqlite:///path/to/file.db (for example {DEFAULT_DB_URL}) "
            "or postgresql://user:password@host:5432/dbname."
        )
    if url == "sqlite:///":
        raise InvalidParameterError(f"Invalid database URL {url!r}: name a file, as in {DEFAULT_DB_URL}.")
    blobs = blobs or BlobConfig()
    if url.startswith("sqlite:///") or blobs.location is None:
        # Before the blob folder inside it is made, with its parents, readable by everyone.
        make_data_dir(data_dir_for(url))
    blob_store = blobs.open(data_dir_for(url) / "blobs")
    blob_store.check()
    if url.startswith("sqlite:///"):
        from perdure.store.sqlite import SQLiteStore

        return SQLiteStore(Path(url.removeprefix("sqlite:///")), blobs=blob_store)
    from perdure.store.pg_settings import PostgresSettings
    from perdure.store.postgres import PostgresStore

    # Pool size and time limits from PERDURE_PG_* (perdure.store.pg_settings), which worker
    # processes inherit with the rest of the environment.
    return PostgresStore(url, blobs=blob_store, settings=PostgresSettings.from_environment())
