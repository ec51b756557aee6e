"""The API key role (``KeyStore``) in SQL, the same for every backend; each call is its own transaction."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager

from perdure.store import keys as keymap
from perdure.store.base import KeyStore
from perdure.store.dialect import Dialect
from perdure.store.keys import ApiKey
from perdure.store.sql import Execute


class KeyStatements:
    """The API key statements in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        spell = dialect.spell
        self.insert = spell(keymap.insert_sql(lambda name: f":{name}"))
        self.by_id = spell(keymap.select_sql("WHERE access_key_id = ?"))
        self.by_token = spell(keymap.select_sql("WHERE token_sha256 = ?"))
        self.every = spell(keymap.select_sql())
        self.revoke = spell(keymap.revoke_sql(lambda name: f":{name}"))
        self.end_sessions = spell(keymap.end_sessions_sql(lambda name: f":{name}"))


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
