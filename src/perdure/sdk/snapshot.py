"""Snapshots of a seed-style function's state: pickled locals, signed so they are never forged.

A snapshot is pickled (protocol 5) and signed with HMAC-SHA256; one whose signature does not
match is refused before anything is unpickled, since unpickling runs code. The key comes from
``PERDURE_SECRET`` or from a ``secret`` file in the data folder, created on first use and
readable by its owner only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perdure.errors import PerdureError

_PREFIX = "perdure-snapshot-v1:"
_MAC_BYTES = 32


class SnapshotError(PerdureError):
    """A snapshot cannot be taken or cannot be trusted."""

    code = "Perdure.SnapshotError"
    status = 400


class UnpicklableLocalError(SnapshotError):
    """A local variable cannot be saved at a checkpoint."""

    def __init__(self, name: str, value: Any, filename: str, line: int, cause: Exception) -> None:
        super().__init__(
            f"{filename}:{line}: the checkpoint cannot save the local variable {name!r} of type "
            f"{type(value).__name__} ({cause}). Make it a value that pickles (data, not open files, "
            f"locks, clients or generators), or delete it (`del {name}`) before the checkpoint."
        )
        self.name = name
        self.line = line


@dataclass(frozen=True)
class Snapshot:
    """Where the function stood (its checkpoint label), its locals, and its operation counter."""

    label: int
    locals: dict[str, Any]
    counter: int
    fingerprint: str


def load_secret(data_dir: Path) -> bytes:
    """Returns the signing key: ``PERDURE_SECRET``, or the data folder's key (created if missing)."""
    from_env = os.environ.get("PERDURE_SECRET")
    if from_env:
        return from_env.encode()
    path = data_dir / "secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()  # another process created it first
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class SnapshotCodec:
    """Encodes snapshots to signed text and decodes them, refusing any that fail the signature."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def encode(self, snapshot: Snapshot, filename: str, line: int) -> str:
        try:
            data = pickle.dumps(snapshot, protocol=5)
        except Exception as error:  # noqa: BLE001 - find which local is to blame
            raise self._blame(snapshot, filename, line) or SnapshotError(
                f"{filename}:{line}: the checkpoint could not be saved: {error}"
            ) from error
        return _PREFIX + base64.b64encode(self._mac(data) + data).decode("ascii")

    @staticmethod
    def _blame(snapshot: Snapshot, filename: str, line: int) -> UnpicklableLocalError | None:
        for name, value in snapshot.locals.items():
            try:
                pickle.dumps(value, protocol=5)
            except Exception as error:  # noqa: BLE001 - any pickling failure names the variable
                return UnpicklableLocalError(name, value, filename, line, error)
        return None

    def decode(self, text: str, execution_arn: str) -> Snapshot:
        """Verifies the signature, then unpickles; raises SnapshotError for anything forged."""
        refused = SnapshotError(
            f"The snapshot of {execution_arn} is not signed with this server's key (tampered, or "
            "written under another PERDURE_SECRET); it was refused and not loaded. Restore the "
            "key the execution was started with."
        )
        if not text.startswith(_PREFIX):
            raise refused
        try:
            raw = base64.b64decode(text[len(_PREFIX) :], validate=True)
        except ValueError:
            raise refused from None
        mac, data = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(data)):
            raise refused
        snapshot = pickle.loads(data)
        if not isinstance(snapshot, Snapshot):
            raise refused
        return snapshot
