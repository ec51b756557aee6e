"""API keys as the store keeps them, and their SQL, the same for every backend.

A row holds no secret: the SigV4 secret is derived from the server secret and ``secret_salt``
and checked against ``secret_sha256``, and the bearer token is kept as its SHA-256 (see
``perdure.api.keys`` for why). Each backend passes ``param(name)``, which writes a named
parameter in its dialect (``:name`` in SQLite, ``%(name)s`` in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perdure.errors import ConflictError
from perdure.store.rows import Row

COLUMNS = (
    "access_key_id", "name", "created_time", "revoked_time", "secret_salt", "secret_sha256", "token_sha256",
    "session_generation",
)


@dataclass(frozen=True)
class ApiKey:
    """A key that may call the HTTP API; ``revoked_time`` is set once it may not any more."""

    access_key_id: str
    name: str
    created_time: float
    secret_salt: str
    secret_sha256: str
    token_sha256: str
    revoked_time: float | None = None
    # Dashboard sessions made in an older generation are refused: signing out bumps it.
    session_generation: int = 0

    @property
    def active(self) -> bool:
        return self.revoked_time is None

    def to_wire(self) -> dict[str, Any]:
        """The key as ``perdure keys list`` prints it: no salt, no hashes."""
        return {
            "Name": self.name,
            "AccessKeyId": self.access_key_id,
            "Status": "ACTIVE" if self.active else "REVOKED",
            "CreatedTimestamp": self.created_time,
            "RevokedTimestamp": self.revoked_time,
        }


class KeyNameTakenError(ConflictError):
    """An active key already has the name a new key was given."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"An active API key is already named {name!r}. Revoke it first with "
            f"`perdure keys revoke {name}`, or choose another --name."
        )
        self.name = name


def to_row(key: ApiKey) -> dict[str, Any]:
    return {column: getattr(key, column) for column in COLUMNS}


def from_row(row: Row) -> ApiKey:
    return ApiKey(**{column: row[column] for column in COLUMNS})


def insert_sql(param: Callable[[str], str]) -> str:
    return f"INSERT INTO api_keys ({', '.join(COLUMNS)}) VALUES ({', '.join(param(c) for c in COLUMNS)})"


def select_sql(where: str = "") -> str:
    """Selects keys, oldest first, with an optional ``WHERE`` clause."""
    return f"SELECT {', '.join(COLUMNS)} FROM api_keys {where} ORDER BY created_time, access_key_id"


def revoke_sql(param: Callable[[str], str]) -> str:
    """Revokes an active key; takes ``access_key_id`` and ``now``, and returns the revoked row."""
    return (
        f"UPDATE api_keys SET revoked_time = {param('now')}"
        f" WHERE access_key_id = {param('access_key_id')} AND revoked_time IS NULL"
        f" RETURNING {', '.join(COLUMNS)}"
    )


def end_sessions_sql(param: Callable[[str], str]) -> str:
    """Bumps a key's session generation; takes ``access_key_id``, and returns the updated row."""
    return (
        "UPDATE api_keys SET session_generation = session_generation + 1"
        f" WHERE access_key_id = {param('access_key_id')}"
        f" RETURNING {', '.join(COLUMNS)}"
    )
