"""Function versions and aliases (``VersionQueries``) in SQL, the same for every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perdure.protocol.records import ExecutionStatus
from perdure.protocol.versions import Alias, FunctionConfig, FunctionVersion
from perdure.store.base import VersionQueries
from perdure.store.dialect import Dialect

if TYPE_CHECKING:
    from perdure.store.sql import Execute, RowCount

# A version in use is one an execution that has not ended runs.
_UNFINISHED = tuple(s.value for s in ExecutionStatus if not s.is_terminal)


class VersionStatements:
    """The version and alias statements in one dialect, built once."""

    def __init__(self, dialect: Dialect) -> None:
        spell = dialect.spell
        columns = "function_name, version, digest, code_key, config, created_time"
        self.insert = spell(
            f"INSERT INTO function_versions ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (function_name, version) DO NOTHING"
        )
        self.by_digest = spell("SELECT * FROM function_versions WHERE function_name = ? AND digest = ?")
        self.by_number = spell("SELECT * FROM function_versions WHERE function_name = ? AND version = ?")
        self.latest = spell("SELECT * FROM function_versions WHERE function_name = ? ORDER BY version DESC LIMIT 1")
        self.every = spell("SELECT * FROM function_versions WHERE function_name = ? ORDER BY version")
        self.functions = spell("SELECT DISTINCT function_name FROM function_versions ORDER BY function_name")
        in_progress, self.unfinished_values = dialect.member("status", _UNFINISHED)
        self.unfinished = spell(
            "SELECT function_version, COUNT(*) AS n FROM executions"
            f" WHERE function_name = ? AND {in_progress} GROUP BY function_version"
        )
        self.referenced = spell(
            "SELECT DISTINCT function_version FROM executions WHERE function_name = ? AND function_version IS NOT NULL"
        )
        self.code_used = spell("SELECT 1 FROM function_versions WHERE code_key = ? LIMIT 1")
        self.delete = spell("DELETE FROM function_versions WHERE function_name = ? AND version = ?")
        self.delete_aliases_of = spell("DELETE FROM function_aliases WHERE function_name = ? AND version = ?")
        self.alias_upsert = spell(
            "INSERT INTO function_aliases (function_name, alias, version) VALUES (?, ?, ?)"
            " ON CONFLICT (function_name, alias) DO UPDATE SET version = excluded.version"
        )
        self.alias = spell("SELECT * FROM function_aliases WHERE function_name = ? AND alias = ?")
        self.aliases = spell("SELECT * FROM function_aliases WHERE function_name = ? ORDER BY alias")
        self.alias_delete = spell("DELETE FROM function_aliases WHERE function_name = ? AND alias = ?")


def _version(row: Any) -> FunctionVersion:
    return FunctionVersion(
        row["function_name"], row["version"], row["code_key"], FunctionConfig.from_json(row["config"]), row["created_time"]
    )


def _alias(row: Any) -> Alias:
    return Alias(row["function_name"], row["alias"], row["version"])


class SQLVersionQueries(VersionQueries):
    """``VersionQueries`` run through a transaction's ``_execute`` (see ``perdure.store.sql.SQLTransaction``)."""

    _versions: VersionStatements
    _execute: Execute
    _rowcount: RowCount

    def insert_version(self, version: FunctionVersion, digest: str) -> bool:
        row = (version.function_name, version.version, digest, version.code_key, version.config.to_json(), version.created_time)
        return bool(self._rowcount(self._execute(self._versions.insert, row)))

    def find_version(self, function_name: str, digest: str) -> FunctionVersion | None:
        row = self._execute(self._versions.by_digest, (function_name, digest)).fetchone()
        return _version(row) if row else None

    def get_version(self, function_name: str, version: int) -> FunctionVersion | None:
        row = self._execute(self._versions.by_number, (function_name, version)).fetchone()
        return _version(row) if row else None

    def latest_version(self, function_name: str) -> FunctionVersion | None:
        row = self._execute(self._versions.latest, (function_name,)).fetchone()
        return _version(row) if row else None

    def list_versions(self, function_name: str) -> list[FunctionVersion]:
        return [_version(row) for row in self._execute(self._versions.every, (function_name,)).fetchall()]

    def versioned_functions(self) -> list[str]:
        return [row["function_name"] for row in self._execute(self._versions.functions, ()).fetchall()]

    def unfinished_by_version(self, function_name: str) -> dict[int | None, int]:
        rows = self._execute(self._versions.unfinished, [function_name, *self._versions.unfinished_values]).fetchall()
        return {row["function_version"]: row["n"] for row in rows}

    def referenced_versions(self, function_name: str) -> set[int]:
        return {row["function_version"] for row in self._execute(self._versions.referenced, (function_name,)).fetchall()}

    def code_in_use(self, code_key: str) -> bool:
        return self._execute(self._versions.code_used, (code_key,)).fetchone() is not None

    def delete_version(self, function_name: str, version: int) -> None:
        self._execute(self._versions.delete_aliases_of, (function_name, version))
        self._execute(self._versions.delete, (function_name, version))

    def put_alias(self, alias: Alias) -> None:
        self._execute(self._versions.alias_upsert, (alias.function_name, alias.name, alias.version))

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        row = self._execute(self._versions.alias, (function_name, name)).fetchone()
        return _alias(row) if row else None

    def list_aliases(self, function_name: str) -> list[Alias]:
        return [_alias(row) for row in self._execute(self._versions.aliases, (function_name,)).fetchall()]

    def delete_alias(self, function_name: str, name: str) -> bool:
        return bool(self._rowcount(self._execute(self._versions.alias_delete, (function_name, name))))
