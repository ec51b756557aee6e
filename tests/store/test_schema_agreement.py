"""The SQLite and PostgreSQL schemas agree: tables, columns, types, keys and indexes.

The schema is written twice (``store/schema/`` and ``store/pg_schema/``, issue 12), and the
store's SQL and ``store/rows.py`` assume the two hold the same rows. Each side is migrated here
by the store's own code, read back from the database's catalog (not from the scripts) and the
two compared, so a migration made on one side alone fails this test. What differs on purpose
is in ``ALLOWED``, with the reason.
"""

from __future__ import annotations

import copy
import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from pg_server import PostgresServer

from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import migrate
from perdure.store.sqlite import SQLiteStore

# The PostgreSQL type a column of each SQLite type must have. SQLite's INTEGER is 64 bits wide,
# so an INTEGER is a BIGINT (PostgreSQL's INTEGER is 32 bits), and REAL is an 8-byte float.
PG_TYPE = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text", "BLOB": "bytea"}
# SQLite has no boolean type: the flags are INTEGER 0/1 there and BOOLEAN on PostgreSQL, and
# rows.py writes them as Python bools, which each binds to its own column.
FLAGS = {
    ("executions", "woken_during_invocation"),
    ("executions", "timeout_paused"),
    ("operations", "replay_children"),
    ("schedules", "enabled"),
}

# Differences that are deliberate, each as ``differences`` words it, with the reason.
# A difference that stops occurring must leave this table too.
_SQLITE_NULL_KEY = (
    "SQLite lets a PRIMARY KEY column that is not an INTEGER hold NULL unless it is declared NOT "
    "NULL (kept for compatibility, https://sqlite.org/lang_createtable.html#the_primary_key); the "
    "store always writes a key, and a rebuild of the table to declare it is not worth the copy."
)
ALLOWED = {
    "table perdure_schema_version: only on PostgreSQL": (
        "The migrations applied; SQLite keeps the version in PRAGMA user_version instead, which "
        "needs no table (store/postgres.py migrate, store/sqlite.py SQLiteStore._migrate)."
    ),
    "column executions.id: nullable on SQLite, NOT NULL on PostgreSQL": _SQLITE_NULL_KEY,
    "column api_keys.access_key_id: nullable on SQLite, NOT NULL on PostgreSQL": _SQLITE_NULL_KEY,
    "column upgrades.name: nullable on SQLite, NOT NULL on PostgreSQL": _SQLITE_NULL_KEY,
}


@dataclass(frozen=True)
class Column:
    type: str  # as the database names it: SQLite's declared type, PostgreSQL's data_type
    not_null: bool
    default: str | None
    generated: bool  # numbered by the database (AUTOINCREMENT, an identity column)


@dataclass(frozen=True)
class Index:
    table: str
    columns: tuple[str, ...]  # each a column or expression, with " DESC" when descending
    unique: bool
    predicate: str | None  # of a partial index, in a spelling common to both databases


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    references: str
    referenced_columns: tuple[str, ...]
    on_delete: str


@dataclass
class Schema:
    version: int = 0
    columns: dict[str, dict[str, Column]] = field(default_factory=dict)
    primary_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # UNIQUE constraints (on SQLite, the sqlite_autoindex_* that back them) by their columns.
    unique: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    # Indexes made with CREATE INDEX, by name.
    indexes: dict[str, Index] = field(default_factory=dict)
    foreign_keys: dict[str, set[ForeignKey]] = field(default_factory=dict)


def _predicate(text: str) -> str:
    """A partial index's WHERE clause, written as both databases would compare it.

    PostgreSQL gives it back with casts on the literals (``'STARTED'::text``) and parentheses
    around each term; neither changes what it means for these predicates. Both spell keywords in
    capitals (the scripts here, PostgreSQL's deparser), so case is kept: it matters in literals.
    """
    text = re.sub(r"::[a-z ]+", "", text)
    text = text.replace("(", "").replace(")", "")
    return " ".join(text.split())


def _index_column(text: str) -> str:
    """An index column as PostgreSQL gives it back, in SQLite's spelling."""
    # PostgreSQL's "C" collation is byte order, as SQLite's default collation (BINARY) compares:
    # an index column in "C" on PostgreSQL is the plain column on SQLite.
    text = re.sub(r'^\((.*) COLLATE "C"\)$', r"\1", text)
    # A column named by a keyword comes back quoted ("position").
    text = re.sub(r'^"(\w+)"$', r"\1", text)
    # An expression comes back in parentheses, with casts: compared as a predicate is.
    return text if re.fullmatch(r"\w+", text) else _predicate(text)


def _sqlite_index_terms(index_sql: str) -> list[str]:
    """The terms of a SQLite index (columns or expressions) as its CREATE INDEX statement writes them."""
    start = re.search(r"\bON\s+\w+\s*\(", index_sql, re.IGNORECASE)
    assert start, index_sql
    terms, depth, term = [], 0, ""
    for char in index_sql[start.end() :]:
        if char == ")" and depth == 0:
            break
        if char == "," and depth == 0:
            terms.append(term)
            term = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        term += char
    return [*terms, term]


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_schema(path: Path) -> Schema:
    schema = Schema()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        schema.version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for table in tables:
            _read_sqlite_table(conn, table["name"], table["sql"], schema)
    finally:
        conn.close()
    return schema


def _read_sqlite_table(conn: sqlite3.Connection, table: str, sql: str, schema: Schema) -> None:
    rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    keys = sorted((r for r in rows if r["pk"]), key=lambda r: r["pk"])
    schema.primary_keys[table] = tuple(r["name"] for r in keys)
    # A lone INTEGER PRIMARY KEY is the rowid: never NULL (inserting NULL numbers the row),
    # and numbered without reuse when the table says AUTOINCREMENT.
    rowid = keys[0]["name"] if len(keys) == 1 and keys[0]["type"].upper() == "INTEGER" else None
    schema.columns[table] = {
        r["name"]: Column(
            type=r["type"].upper(),
            not_null=bool(r["notnull"]) or r["name"] == rowid,
            default=r["dflt_value"],
            generated=r["name"] == rowid and "AUTOINCREMENT" in sql.upper(),
        )
        for r in rows
    }
    schema.unique[table] = set()
    for entry in conn.execute(f"PRAGMA index_list({table})").fetchall():
        name, origin = entry["name"], entry["origin"]
        columns = conn.execute(f"PRAGMA index_xinfo({name})").fetchall()
        key = [c for c in columns if c["key"]]
        if origin == "u":
            schema.unique[table].add(tuple(c["name"] for c in key))
        elif origin == "c":
            index_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
            where = re.search(r"\bWHERE\b(.*)$", index_sql, re.IGNORECASE | re.DOTALL)
            terms = _sqlite_index_terms(index_sql)
            schema.indexes[name] = Index(
                table=table,
                # An expression has no name (its cid is -2): it is read from the statement.
                columns=tuple(
                    (c["name"] or _predicate(terms[c["seqno"]])) + (" DESC" if c["desc"] else "") for c in key
                ),
                unique=bool(entry["unique"]),
                predicate=_predicate(where.group(1)) if where else None,
            )
    schema.foreign_keys[table] = set()
    references: dict[int, list[sqlite3.Row]] = {}
    for ref in conn.execute(f"PRAGMA foreign_key_list({table})").fetchall():
        references.setdefault(ref["id"], []).append(ref)
    for parts in references.values():
        parts.sort(key=lambda r: r["seq"])
        schema.foreign_keys[table].add(
            ForeignKey(
                columns=tuple(r["from"] for r in parts),
                references=parts[0]["table"],
                referenced_columns=tuple(r["to"] for r in parts),
                on_delete=parts[0]["on_delete"].upper(),
            )
        )


# -- PostgreSQL -----------------------------------------------------------------------------

_PG_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

_PG_COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
FROM information_schema.columns WHERE table_schema = current_schema()
"""
_PG_INDEXES = """
SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique, con.contype,
       x.indoption::int2[] AS options,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) AS k) AS columns,
       pg_get_expr(x.indpred, x.indrelid, true) AS predicate
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
LEFT JOIN pg_constraint AS con ON con.conindid = x.indexrelid AND con.contype IN ('p', 'u')
WHERE t.relnamespace = current_schema()::regnamespace
"""
_PG_FOREIGN_KEYS = """
SELECT con.conrelid::regclass::text AS table_name, con.confrelid::regclass::text AS referenced, con.confdeltype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k (n, i)
             JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k (n, i)
             JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) AS referenced_columns
FROM pg_constraint AS con
WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace
"""


def _pg_default(text: str | None) -> str | None:
    if text is None:
        return None
    value = re.sub(r"::[a-z ]+$", "", text)  # '' arrives as ''::text
    # A flag's FALSE/TRUE is SQLite's 0/1.
    return {"false": "0", "true": "1"}.get(value, value)


def _pg_schema(url: str) -> Schema:
    schema = Schema()
    with psycopg.connect(url, autocommit=True) as conn:
        schema.version = migrate(conn)
        for table, name, data_type, nullable, default, identity in conn.execute(_PG_COLUMNS):
            schema.columns.setdefault(table, {})[name] = Column(
                type=data_type,
                not_null=nullable == "NO",
                default=_pg_default(default),
                generated=identity == "YES",
            )
            schema.unique.setdefault(table, set())
            schema.foreign_keys.setdefault(table, set())
        for table, name, unique, constraint, options, columns, predicate in conn.execute(_PG_INDEXES):
            # Bit 0 of indoption: the column is descending.
            keys = tuple(_index_column(c) + (" DESC" if o & 1 else "") for c, o in zip(columns, options))
            if constraint == "p":
                schema.primary_keys[table] = keys
            elif constraint == "u":
                schema.unique[table].add(keys)
            else:
                schema.indexes[name] = Index(table, keys, unique, _predicate(predicate) if predicate else None)
        for table, referenced, on_delete, columns, referenced_columns in conn.execute(_PG_FOREIGN_KEYS):
            schema.foreign_keys[table].add(
                ForeignKey(tuple(columns), referenced, tuple(referenced_columns), _PG_ON_DELETE[on_delete])
            )
    return schema


# -- the comparison -------------------------------------------------------------------------


def differences(sqlite: Schema, pg: Schema) -> list[str]:
    """Every way the two schemas differ, one sentence each."""
    found: list[str] = []
    for table in sorted(sqlite.columns.keys() ^ pg.columns.keys()):
        found.append(f"table {table}: only on {'SQLite' if table in sqlite.columns else 'PostgreSQL'}")
    for table in sorted(sqlite.columns.keys() & pg.columns.keys()):
        found += _column_differences(table, sqlite.columns[table], pg.columns[table])
        if sqlite.primary_keys.get(table) != pg.primary_keys.get(table):
            found.append(
                f"table {table}: primary key {sqlite.primary_keys.get(table)} on SQLite, "
                f"{pg.primary_keys.get(table)} on PostgreSQL"
            )
        for keys in sorted(sqlite.unique[table] ^ pg.unique[table]):
            side = "SQLite" if keys in sqlite.unique[table] else "PostgreSQL"
            found.append(f"table {table}: UNIQUE {keys} only on {side}")
        for fk in sorted(sqlite.foreign_keys[table] ^ pg.foreign_keys[table], key=repr):
            side = "SQLite" if fk in sqlite.foreign_keys[table] else "PostgreSQL"
            found.append(f"table {table}: foreign key {fk} only on {side}")
    for name in sorted(sqlite.indexes.keys() | pg.indexes.keys()):
        ours, theirs = sqlite.indexes.get(name), pg.indexes.get(name)
        if ours is None or theirs is None:
            found.append(f"index {name}: only on {'SQLite' if theirs is None else 'PostgreSQL'}")
        elif ours != theirs:
            found.append(f"index {name}: {ours} on SQLite, {theirs} on PostgreSQL")
    return found


def _column_differences(table: str, sqlite: dict[str, Column], pg: dict[str, Column]) -> list[str]:
    found = []
    for name in sorted(sqlite.keys() ^ pg.keys()):
        found.append(f"column {table}.{name}: only on {'SQLite' if name in sqlite else 'PostgreSQL'}")
    for name in sorted(sqlite.keys() & pg.keys()):
        ours, theirs = sqlite[name], pg[name]
        expected = "boolean" if (table, name) in FLAGS and ours.type == "INTEGER" else PG_TYPE.get(ours.type)
        if theirs.type != expected:
            wanted = f"wants {expected}" if expected else "has no PostgreSQL type in PG_TYPE"
            found.append(f"column {table}.{name}: {ours.type} on SQLite {wanted}, not {theirs.type} on PostgreSQL")
        if ours.not_null != theirs.not_null:
            sides = ("NOT NULL", "nullable") if ours.not_null else ("nullable", "NOT NULL")
            found.append(f"column {table}.{name}: {sides[0]} on SQLite, {sides[1]} on PostgreSQL")
        if ours.default != theirs.default:
            found.append(f"column {table}.{name}: default {ours.default} on SQLite, {theirs.default} on PostgreSQL")
        if ours.generated != theirs.generated:
            side = "SQLite" if ours.generated else "PostgreSQL"
            found.append(f"column {table}.{name}: numbered by the database on {side} alone")
    return found


# -- the tests ------------------------------------------------------------------------------


def _migrations(package: str) -> list[str]:
    return sorted(f.name for f in resources.files(package).iterdir() if f.name.endswith(".sql"))


@pytest.fixture(scope="module")
def schemas(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Schema, Schema]]:
    """Both schemas, each migrated from nothing by its store's own code."""
    folder = tmp_path_factory.mktemp("schema")
    SQLiteStore(folder / "perdure.db", blobs=FileBlobStore(folder / "blobs")).close()
    url = postgres_server.create_database(f"schema_{uuid.uuid4().hex[:8]}")
    yield _sqlite_schema(folder / "perdure.db"), _pg_schema(url)


def test_both_backends_ship_the_same_migrations() -> None:
    sqlite, pg = _migrations("perdure.store.schema"), _migrations("perdure.store.pg_schema")
    assert sqlite == pg
    # Numbered 001, 002, ... without a gap or a number used twice: each store applies the
    # scripts above the version it is at, so a gap or a twin would be skipped or run out of turn.
    assert [int(name.split("_", 1)[0]) for name in sqlite] == list(range(1, len(sqlite) + 1))


def test_both_backends_migrate_to_the_last_migration(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    assert sqlite.version == pg.version == len(_migrations("perdure.store.schema"))


def test_both_schemas_have_the_same_tables_columns_keys_and_indexes(schemas: tuple[Schema, Schema]) -> None:
    found = differences(*schemas)
    unexplained = [d for d in found if d not in ALLOWED]
    assert not unexplained, (
        "The SQLite and PostgreSQL schemas differ:\n  " + "\n  ".join(unexplained) + "\nAdd a migration "
        "to the side that is wrong (the next number, on both sides if need be), or, if the difference "
        "is deliberate, add it to ALLOWED with the reason."
    )
    stale = sorted(ALLOWED.keys() - set(found))
    assert not stale, f"These allowed differences no longer occur; take them out of ALLOWED: {stale}"


def test_the_comparison_sees_a_column_type_and_index_that_differ(schemas: tuple[Schema, Schema]) -> None:
    sqlite, pg = schemas
    changed = copy.deepcopy(pg)
    changed.columns["timers"]["extra"] = Column("text", False, None, False)
    changed.columns["events"]["event_id"] = Column("integer", True, None, False)  # a 32-bit INTEGER
    changed.indexes["timers_by_due"] = Index("timers", ("due_time DESC",), False, None)
    found = differences(sqlite, changed)
    assert "column timers.extra: only on PostgreSQL" in found
    assert any(d.startswith("column events.event_id: ") for d in found)
    assert any(d.startswith("index timers_by_due: ") for d in found)
