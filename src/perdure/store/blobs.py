"""Blob storage for payloads too large to keep inline in the database.

Blobs are content-addressed: a blob's key is the SHA-256 of its bytes, so equal payloads share
one blob, storing the same bytes twice is harmless, and a key names the same bytes wherever
the blob lives. A store keeps its blobs in one ``BlobStore``: a folder (``FileBlobStore``) or
an S3 bucket (``perdure.store.s3_blobs.S3BlobStore``). Every process using one database must
use the same one, since rows hold only the keys.

Keys come back from the database, which is not trusted to name files: a key that is not 64
lowercase hex digits is refused before it reaches a path or an object name (a key rewritten to
``/etc/passwd`` must not read or delete it), and a blob whose bytes do not hash to its key is
refused on read (issue 11, finding 1).
"""

from __future__ import annotations

import abc
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from perdure.errors import (
    BlobIntegrityError,
    BlobKeyError,
    BlobNotFoundError,
    BlobStorageError,
    InvalidParameterError,
)

log = logging.getLogger(__name__)

# What blob_key makes; fullmatch, since `$` would also match before a trailing newline.
_KEY = re.compile(r"[0-9a-f]{64}")


def blob_key(data: bytes) -> str:
    """The key a blob of these bytes is stored under."""
    return hashlib.sha256(data).hexdigest()


def checked_key(location: str, key: str) -> str:
    """Returns ``key`` if it is a content key; raises ``BlobKeyError`` for anything else."""
    if not _KEY.fullmatch(key):
        raise BlobKeyError(location, key)
    return key


def verified(location: str, key: str, data: bytes) -> bytes:
    """Returns ``data`` if it is the blob ``key`` names; raises ``BlobIntegrityError`` otherwise."""
    if blob_key(data) != key:
        raise BlobIntegrityError(location, key, "does not hold the bytes its key names (their SHA-256 differs)")
    return data


class BlobStore(abc.ABC):
    """Content-addressed blobs: ``put`` returns the key that ``get`` and ``delete`` take."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the blobs are, for messages and reports: a folder, or ``s3://bucket/prefix``."""

    @abc.abstractmethod
    def put(self, data: bytes) -> str:
        """Stores ``data`` durably under ``blob_key(data)`` and returns that key.

        When this returns, the blob survives a crash. Storing bytes that are already there
        stores them again or does nothing; either way the blob is whole.
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Returns the blob's bytes, checked against ``key``.

        Raises ``BlobNotFoundError`` if there is none, ``BlobKeyError`` for a key that is not
        a content key, and ``BlobIntegrityError`` for bytes that are not the ones ``key`` names.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Removes the blob; removing one that is not there is no error, a malformed key is (``BlobKeyError``)."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Removes the blobs, or none of them when any key is malformed (``BlobKeyError``).

        Every key is checked first: a store that deletes an execution's blobs inside its
        transaction rolls the rows back on the error, and the blobs must still be there then.
        """
        keys = [checked_key(self.location, key) for key in keys]
        for key in keys:
            self.delete(key)

    def delete_expired(self, keys: Iterable[str]) -> None:
        """Removes the blobs of purged rows, passing over (and logging) malformed keys.

        Unlike ``delete_many`` this does not refuse: a malformed key names no blob of this store,
        so there is nothing of it to delete, and refusing would hold up every later purge.
        """
        for key in keys:
            if _KEY.fullmatch(key):
                self.delete(key)
            else:
                log.warning("%s", BlobKeyError(self.location, key).message)

    def check(self) -> None:
        """Raises ``BlobStorageError`` when the blobs cannot be reached (a missing bucket, say)."""


class FileBlobStore(BlobStore):
    """Blobs in a folder, each in a file named by its key under a folder of the key's first two characters."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()

    @property
    def location(self) -> str:
        return str(self.root)

    def put(self, data: bytes) -> str:
        key = blob_key(data)
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary file, fsynced and renamed: a crash leaves the whole blob or none.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        path = self._path(key)
        # A link planted in the folder is not followed out of it (reading it would not
        # pass the hash check unless its target were already known, but it is never opened).
        real = path.resolve()
        if not real.is_relative_to(self._real_root):
            raise BlobIntegrityError(self.location, key, f"is a link to {real}, outside the blob folder")
        try:
            return verified(self.location, key, real.read_bytes())
        except FileNotFoundError:
            raise BlobNotFoundError(self.location, key) from None

    def delete(self, key: str) -> None:
        # unlink removes a link itself, never what it points to.
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        key = checked_key(self.location, key)
        return self.root / key[:2] / key


@dataclass(frozen=True)
class BlobConfig:
    """Where a store keeps its blobs, in a form one process can hand to another.

    ``location`` is a folder, ``s3://bucket/prefix``, or None for the store's default folder
    (``blobs`` beside a SQLite database, ``.perdure/blobs`` for PostgreSQL). ``s3_endpoint``
    is the URL of an S3-compatible server (MinIO, moto, ...); without it boto3 finds the
    endpoint as usual (AWS S3, or ``AWS_ENDPOINT_URL_S3``). Credentials come from boto3's usual
    places: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role.
    """

    location: str | None = None
    s3_endpoint: str | None = None

    @property
    def is_s3(self) -> bool:
        return bool(self.location and self.location.startswith("s3://"))

    def open(self, default_dir: Path) -> BlobStore:
        """Opens the blob store; raises ``InvalidParameterError`` for a location it cannot use."""
        if self.s3_endpoint and not self.is_s3:
            raise InvalidParameterError(
                f"--s3-endpoint {self.s3_endpoint} was given, but blobs are kept in the folder "
                f"{self.location or default_dir}. Pass --blobs s3://bucket/prefix to keep them in S3."
            )
        if self.location is None:
            return FileBlobStore(default_dir.absolute())
        if self.is_s3:
            bucket, _, prefix = self.location.removeprefix("s3://").partition("/")
            if not bucket:
                raise InvalidParameterError(
                    f"The blob location {self.location!r} names no bucket. Write s3://bucket or s3://bucket/prefix."
                )
            from perdure.store.s3_blobs import S3BlobStore

            return S3BlobStore(bucket, prefix.strip("/"), self.s3_endpoint)
        if "://" in self.location:
            raise InvalidParameterError(
                f"Unsupported blob location {self.location!r}: use a folder, or s3://bucket/prefix."
            )
        return FileBlobStore(Path(self.location).absolute())


__all__ = [
    "BlobConfig",
    "BlobIntegrityError",
    "BlobKeyError",
    "BlobNotFoundError",
    "BlobStorageError",
    "BlobStore",
    "FileBlobStore",
    "blob_key",
    "checked_key",
    "verified",
]
