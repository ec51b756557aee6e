"""How SQLite and PostgreSQL spell the few things the shared SQL (``perdure.store.sql``) writes differently.

The shared statements are written once, in SQLite's parameter style (``?`` and ``:name``), and
``Dialect.spell`` rewrites each for its database when the statements are built: once per store
class, not per call. The rest of a dialect is the handful of clauses whose words differ: a row
lock, a list membership test, a comparison of column pairs, a byte-order comparison of text. Its
clauses are written in the same style as the statements, and spelled with them.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

# A named parameter (``:name``), but not a PostgreSQL cast (``::type``).
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Dialect(abc.ABC):
    """The spelling of one database."""

    # What a read inside a write transaction appends to lock the rows it reads against other writers.
    row_lock: str = ""
    # What a read inside a write transaction appends to lock the rows it reads, passing over
    # rows another transaction holds (as leasing reads ready executions).
    skip_locked: str = ""
    # A join that the planner must do in the order written.
    ordered_join: str = "JOIN"
    # ``a {null_safe_equal} b``: whether two values are equal, NULL being equal to NULL.
    null_safe_equal: str = "IS NOT DISTINCT FROM"
    # The package of this database's migration scripts, ``NNN_name.sql``.
    schema_package: str

    def schema_scripts(self) -> list[tuple[int, str]]:
        """The migration scripts, ``(number, text)`` in the order they apply."""
        scripts = []
        for entry in resources.files(self.schema_package).iterdir():
            if entry.name.endswith(".sql"):
                scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
        return sorted(scripts)

    @abc.abstractmethod
    def spell(self, sql: str) -> str:
        """The statement ``sql``, written with ``?`` and ``:name`` parameters, in this database's parameter style."""

    @abc.abstractmethod
    def member(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A test that ``column`` is one of ``values`` (not empty), and its positional parameters."""

    @abc.abstractmethod
    def after(self, columns: tuple[str, str], op: str, values: tuple[Any, Any]) -> tuple[str, list[Any]]:
        """A test that the pair ``columns`` is ``op`` (``<`` or ``>``) the pair ``values``, and its parameters."""

    def bytewise(self, column: str) -> str:
        """``column`` compared in byte order, as SQLite compares text."""
        return column

    def indexed_by(self, index: str) -> str:
        """What follows a table's name to make the planner read it through ``index``, where the database can be told."""
        return ""

    @abc.abstractmethod
    def starts_with(self, column: str, prefix: str) -> str:
        """A test that ``column`` starts with the named parameter ``prefix``."""


class SQLiteDialect(Dialect):
    """SQLite: one writer holds the whole database, so a read needs no row lock."""

    # SQLite's planner takes CROSS JOIN as an order to keep (see its "Query Planner" page).
    ordered_join = "CROSS JOIN"
    # SQLite has IS NOT DISTINCT FROM only from 3.39 on; IS means the same.
    null_safe_equal = "IS"
    schema_package = "perdure.store.schema"

    def spell(self, sql: str) -> str:
        return sql

    def member(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def after(self, columns: tuple[str, str], op: str, values: tuple[Any, Any]) -> tuple[str, list[Any]]:
        # Written out rather than as a row value: so the planner ranges over the index on the first column.
        first, second = columns
        return f"({first} {op} ? OR ({first} = ? AND {second} {op} ?))", [values[0], values[0], values[1]]

    def starts_with(self, column: str, prefix: str) -> str:
        return f"substr({column}, 1, length(:{prefix})) = :{prefix}"

    def indexed_by(self, index: str) -> str:
        # SQLite's planner prefers an index on a column it tests for equality (function_name),
        # then reads every match, where the partial index holds only the few rows wanted.
        return f" INDEXED BY {index}"


class PostgresDialect(Dialect):
    """PostgreSQL: row locks, arrays, row values and collations (see ``perdure.store.postgres``)."""

    # The lock an UPDATE of non-key columns takes: it waits for any other writer of the row.
    row_lock = " FOR NO KEY UPDATE"
    skip_locked = " FOR NO KEY UPDATE SKIP LOCKED"
    schema_package = "perdure.store.pg_schema"

    def spell(self, sql: str) -> str:
        if "%" in sql:
            # psycopg would read it as the start of a parameter.
            raise ValueError(f"A shared statement may not contain '%' (write it as a parameter): {sql!r}")
        return _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))

    def member(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def after(self, columns: tuple[str, str], op: str, values: tuple[Any, Any]) -> tuple[str, list[Any]]:
        return f"({columns[0]}, {columns[1]}) {op} (?, ?)", [values[0], values[1]]

    def bytewise(self, column: str) -> str:
        # The byte order of the index executions_by_name; its equality is the default collation's too.
        return f'{column} COLLATE "C"'

    def starts_with(self, column: str, prefix: str) -> str:
        return f"starts_with({column}, :{prefix})"


SQLITE = SQLiteDialect()
POSTGRES = PostgresDialect()
