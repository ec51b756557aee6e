"""A PostgreSQL transaction's writes of operations, events and execution rows, held back and sent as one statement.

Most of a checkpoint's client CPU on PostgreSQL is psycopg's own work for each statement
(binding, dumping each parameter, the pipeline's bookkeeping): a checkpoint wrote its
operations, its events and its execution's counters in three statements, or more (executemany
sends one an operation), and an invocation's end in five (issue 17). ``HeldWrites`` keeps those
rows until the transaction next reads (or commits) and sends them as one statement: a
data-modifying ``WITH`` whose parts each take their rows as one JSON array
(``json_populate_recordset`` over the table's row type). One text parameter costs psycopg far
less than a parameter per column: measured on this machine, a checkpoint's writes took 175 µs
of client CPU so, 223 µs as three statements, and 278 µs over binary arrays (``unnest``).

The parts of one statement all see the same snapshot and may not change a row twice
(PostgreSQL: "trying to update the same row twice in a single statement is not supported"), so
operations are kept by key, the last write winning, and the updates of one execution are merged
into one, later columns over earlier ones. Rows are plain Python values of their columns' types
(``perdure.store.rows``): numbers, text, booleans and None.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import DictRow

from perdure.protocol.records import Event, Execution, Operation
from perdure.store import rows as rowmap
from perdure.store.sql import RowCount, SQLTransaction, Statements

# Non-finite floats are refused here, where PostgreSQL's JSON would refuse them with a vaguer error;
# text goes as UTF-8 rather than \u escapes (shorter, and a lone surrogate fails to encode, as before).
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

_OPERATIONS = ", ".join(rowmap.OPERATION_COLUMNS)
_OPERATIONS_UPSERT = (
    f"INSERT INTO operations ({_OPERATIONS}) SELECT {_OPERATIONS}"
    " FROM json_populate_recordset(NULL::operations, %s::json)"
    " ON CONFLICT (execution_id, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in rowmap.OPERATION_UPDATE_COLUMNS)
)
# What a whole update of an execution sets: its mutable columns, by ``id``.
_UPDATED_COLUMNS = ("id", *rowmap.MUTABLE_EXECUTION_COLUMNS)
_EVENTS_INSERT = (
    "INSERT INTO events (execution_id, event_id, body) SELECT execution_id, event_id, body"
    " FROM json_populate_recordset(NULL::events, %s::json)"
)
# The tables whose rows are held: a statement that names none of them cannot see those rows (no
# trigger reads them; a foreign key of another table refers to an execution's ``id``, which an
# update never changes, and executions are inserted at once).
_HELD_TABLES = ("operations", "events", "executions")
# How many statement shapes are kept built: a few recur (which parts, which execution columns).
_SHAPES_KEPT = 256
_shapes: dict[tuple[bool, bool, tuple[tuple[str, ...], ...]], str] = {}


def reads_held(sql: str) -> bool:
    """Whether a statement names a table whose rows may be held: they must be sent before it runs."""
    return any(table in sql for table in _HELD_TABLES)


def _execution_update(columns: tuple[str, ...]) -> str:
    return (
        f"UPDATE executions AS x SET {', '.join(f'{c} = f.{c}' for c in columns)}"
        " FROM json_populate_recordset(NULL::executions, %s::json) AS f WHERE x.id = f.id"
    )


def _statement(has_operations: bool, has_events: bool, updates: tuple[tuple[str, ...], ...]) -> str:
    key = (has_operations, has_events, updates)
    sql = _shapes.get(key)
    if sql is None:
        parts = ([_OPERATIONS_UPSERT] if has_operations else []) + ([_EVENTS_INSERT] if has_events else [])
        parts += [_execution_update(columns) for columns in updates]
        # The last part is the statement; the others run once each as parts of its WITH.
        held = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        sql = f"WITH {held} {parts[-1]}" if held else parts[-1]
        if len(_shapes) < _SHAPES_KEPT:
            _shapes[key] = sql
    return sql


class HeldWrites:
    """Rows of operations, events and execution updates not yet sent, and the one statement that writes them."""

    __slots__ = ("_operations", "_events", "_executions")

    def __init__(self) -> None:
        self._operations: dict[tuple[str, str], dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._executions: dict[str, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._operations or self._events or self._executions)

    def put_operations(self, rows: list[dict[str, Any]]) -> None:
        """Holds operation rows (``rows.operation_row``); a later row of the same operation replaces an earlier one."""
        for row in rows:
            self._operations[(row["execution_id"], row["id"])] = row

    def append_events(self, rows: list[dict[str, Any]]) -> None:
        """Holds event rows (``rows.event_row``)."""
        self._events.extend(rows)

    def update_execution(self, row: dict[str, Any]) -> None:
        """Holds an update of an execution's columns: ``id`` and the columns to set (taken over, not copied)."""
        held = self._executions.get(row["id"])
        if held is None:
            self._executions[row["id"]] = row
        else:
            held.update(row)

    def take(self) -> tuple[str, tuple[str, ...]]:
        """The statement that writes every held row and its parameters; nothing is held afterwards.

        Call it only when something is held.
        """
        params: list[str] = []
        if self._operations:
            params.append(_dumps(list(self._operations.values())))
        if self._events:
            params.append(_dumps(self._events))
        # Executions grouped by the columns they set: one update for each set of columns.
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in self._executions.values():
            groups.setdefault(tuple(sorted(c for c in row if c != "id")), []).append(row)
        updates = tuple(columns for columns in groups if columns)
        params.extend(_dumps(groups[columns]) for columns in updates)
        sql = _statement(bool(self._operations), bool(self._events), updates)
        self._operations, self._events, self._executions = {}, [], {}
        return sql, tuple(params)


class HoldingTransaction(SQLTransaction):
    """The shared transaction on a psycopg cursor, its writes of operations, events and execution rows held.

    They are sent as one statement before the next statement that names their tables (so every
    read sees them, as it saw them written at once), and at the latest when ``send_held`` is
    called before the commit. An error of that statement is raised where a pipelined write's
    is: by the next read, or by the commit, which then rolls everything back.
    """

    def __init__(
        self,
        sql: Statements,
        cursor: psycopg.Cursor[DictRow],
        store_payload: rowmap.StorePayload,
        load_payload: rowmap.LoadPayload,
        rowcount: RowCount,
    ) -> None:
        super().__init__(sql, self._run, self._run_many, store_payload, load_payload, rowcount)
        self._cur = cursor
        self._held = HeldWrites()

    def send_held(self) -> None:
        """Sends the held writes, if any, as one statement (pipelined: nothing waits for it)."""
        if self._held:
            self._cur.execute(*self._held.take())

    def _run(self, sql: str, params: Any) -> psycopg.Cursor[DictRow]:
        if self._held and reads_held(sql):
            self.send_held()
        return self._cur.execute(sql, params)

    def _run_many(self, sql: str, params: Any) -> None:
        if self._held and reads_held(sql):
            self.send_held()
        self._cur.executemany(sql, params)

    def put_operations(self, execution_id: str, operations: Iterable[Operation]) -> None:
        store = self._store_payload
        self._held.put_operations([rowmap.operation_row(execution_id, op, store) for op in operations])

    def put_operations_of(self, operations: Iterable[tuple[str, Operation]]) -> None:
        store = self._store_payload
        self._held.put_operations([rowmap.operation_row(eid, op, store) for eid, op in operations])

    def append_events(self, execution_id: str, events: Iterable[Event]) -> None:
        self._held.append_events([rowmap.event_row(execution_id, event) for event in events])

    def append_events_of(self, events: Iterable[tuple[str, Event]]) -> None:
        self._held.append_events([rowmap.event_row(eid, event) for eid, event in events])

    def update_execution(self, execution: Execution, before: Execution | None = None) -> None:
        row = self._update_row(execution, before)
        if row is not None:
            self._held.update_execution(row if before is not None else {c: row[c] for c in _UPDATED_COLUMNS})
        self._note_readiness(execution)
