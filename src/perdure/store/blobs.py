"""Blob storage for payloads too large to keep inline in the database."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class BlobNotFoundError(LookupError):
    """A payload's blob is missing from the blob folder."""


class FileBlobStore:
    """Content-addressed blobs in a folder: the key of a blob is its SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        """Stores ``data`` durably (written, fsynced, renamed) and returns its key."""
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
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
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(
                f"Blob {key} is missing from {self.root}; the payload stored there is lost. "
                "Restore the blob folder from a backup taken with the database."
            ) from None

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key
