"""The API key role (``KeyStore``) in SQL, the same for every backend; each call is its own transaction."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager

from perdure.store import keys as keymap
from perdure.store.base import KeyStore
from perdure.store.dialect import Dialect
from perdure.store.keys import ApiKey
from perdure.store.sql import Execute

_COLUMNS = ", ".join(keymap.COLUMNS)


def _select(where: str = "") -> str:
    """Selects keys, oldest first, with an optional ``WHERE`` clause."""
    return f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_time, access_key_id"


class KeyStatements:
    """The API key statements in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        spell = dialect.spell
        self.insert = spell(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join(f':{c}' for c in keymap.COLUMNS)})"
        )
        self.by_id = spell(_select("WHERE access_key_id = ?"))
        self.by_token = spell(_select("WHERE token_sha256 = ?"))
        self.every = spell(_select())
        # Revokes an active key and returns it.
        self.revoke = spell(
            "UPDATE api_keys SET revoked_time = :now WHERE access_key_id = :access_key_id AND revoked_time IS NULL"
            f" RETURNING {_COLUMNS}"
        )
        # Bumps a key's session generation and returns the key.
        self.end_sessions = spell(
            "UPDATE api_keys SET session_generation = session_generation + 1 WHERE access_key_id = :access_key_id"
            f" RETURNING {_COLUMNS}"
        )


class SQLKeyStore(KeyStore):
    """``KeyStore`` over a backend's one-statement transactions (``_key_transaction``)."""

    _key_sql: KeyStatements

    @abc.abstractmethod
    def _key_transaction(self) -> AbstractContextManager[Execute]:
        """A transaction of its own, committed when the block exits normally: its ``execute``."""

    @abc.abstractmethod
    def _name_taken(self, error: Exception) -> bool:
        """Whether ``error`` is the unique index on active key names refusing a second one."""

    def add_api_key(self, key: ApiKey) -> None:
        with self._key_transaction() as execute:
            try:
                execute(self._key_sql.insert, keymap.to_row(key))
            except Exception as error:
                if self._name_taken(error):
                    raise keymap.KeyNameTakenError(key.name) from None
                raise

    def get_api_key(self, access_key_id: str) -> ApiKey | None:
        return self._one_key(self._key_sql.by_id, access_key_id)

    def find_api_key_by_token(self, token_sha256: str) -> ApiKey | None:
        return self._one_key(self._key_sql.by_token, token_sha256)

    def _one_key(self, sql: str, value: str) -> ApiKey | None:
        with self._key_transaction() as execute:
            row = execute(sql, (value,)).fetchone()
        return keymap.from_row(row) if row else None

    def list_api_keys(self) -> list[ApiKey]:
        with self._key_transaction() as execute:
            return [keymap.from_row(row) for row in execute(self._key_sql.every, ()).fetchall()]

    def revoke_api_key(self, access_key_id: str, now: float) -> ApiKey | None:
        with self._key_transaction() as execute:
            # fetchall: on SQLite the UPDATE commits once its statement has run to the end.
            rows = execute(self._key_sql.revoke, {"access_key_id": access_key_id, "now": now}).fetchall()
        return keymap.from_row(rows[0]) if rows else None

    def end_api_key_sessions(self, access_key_id: str) -> ApiKey | None:
        with self._key_transaction() as execute:
            rows = execute(self._key_sql.end_sessions, {"access_key_id": access_key_id}).fetchall()
        return keymap.from_row(rows[0]) if rows else None
