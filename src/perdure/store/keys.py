"""API keys as the store keeps them: the record and its row (its SQL is in ``perdure.store.sql_keys``).

A row holds no secret: the SigV4 secret is derived from the server secret and ``secret_salt``
and checked against ``secret_sha256``, and the bearer token is kept as its SHA-256 (see
``perdure.api.keys`` for why).
"""

from __future__ import annotations

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
