"""Functions' event invoke configurations (``DestinationQueries``) in SQL, the same for every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perdure.protocol.destinations import ConfigSource, EventInvokeConfig, StoredInvokeConfig
from perdure.store.base import DestinationQueries
from perdure.store.dialect import Dialect

if TYPE_CHECKING:
    from perdure.store.sql import Execute, RowCount


class DestinationStatements:
    """The configuration statements in one dialect, built once."""

    def __init__(self, dialect: Dialect) -> None:
        spell = dialect.spell
        self.upsert = spell(
            "INSERT INTO event_invoke_configs (function_name, qualifier, config, source, last_modified)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (function_name, qualifier) DO UPDATE SET"
            " config = excluded.config, source = excluded.source, last_modified = excluded.last_modified"
        )
        # Every execution's end runs this: a walk of the primary key's prefix, a row or two.
        self.of_function = spell("SELECT * FROM event_invoke_configs WHERE function_name = ? ORDER BY qualifier")
        self.delete = spell("DELETE FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?")
        self.delete_of_source = spell(
            "DELETE FROM event_invoke_configs WHERE function_name = ? AND qualifier = ? AND source = ?"
        )
        self.delete_of_function = spell("DELETE FROM event_invoke_configs WHERE function_name = ?")


def _stored(row: Any) -> StoredInvokeConfig:
    return StoredInvokeConfig(
        row["function_name"],
        row["qualifier"],
        EventInvokeConfig.from_json(row["config"]),
        ConfigSource(row["source"]),
        row["last_modified"],
    )


class SQLDestinationQueries(DestinationQueries):
    """``DestinationQueries`` run through a transaction's ``_execute`` (see ``perdure.store.sql.SQLTransaction``)."""

    _destinations: DestinationStatements
    _execute: Execute
    _rowcount: RowCount

    def put_invoke_config(self, stored: StoredInvokeConfig) -> None:
        row = (stored.function_name, stored.qualifier, stored.config.to_json(), stored.source.value, stored.last_modified)
        self._execute(self._destinations.upsert, row)

    def invoke_configs(self, function_name: str) -> list[StoredInvokeConfig]:
        return [_stored(row) for row in self._execute(self._destinations.of_function, (function_name,)).fetchall()]

    def delete_invoke_config(self, function_name: str, qualifier: str, source: ConfigSource | None = None) -> bool:
        if source is None:
            return bool(self._rowcount(self._execute(self._destinations.delete, (function_name, qualifier))))
        return bool(self._rowcount(self._execute(self._destinations.delete_of_source, (function_name, qualifier, source.value))))

    def delete_invoke_configs(self, function_name: str) -> None:
        self._execute(self._destinations.delete_of_function, (function_name,))
