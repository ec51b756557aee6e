"""The transaction both SQL backends share: every statement that reads the same on SQLite and PostgreSQL.

``Statements`` builds the text of those statements once, spelled in one ``Dialect``; the
checkpoint path runs them thousands of times a second, and building their text each time cost
more than SQLite takes to find them in its statement cache (on PostgreSQL, the same text on
every call is also what lets psycopg prepare a statement once). ``SQLTransaction`` runs them on
the connection or cursor its backend binds; a backend keeps only what it does differently:
leasing, firing timers in bulk, row locks and notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from perdure.protocol.queries import ResultScan, StoredResult
from perdure.protocol.records import Event, Execution, LogLine, Operation
from perdure.protocol.timers import Timer
from perdure.store import rows as rowmap
from perdure.store.base import Transaction
from perdure.store.dialect import Dialect
from perdure.store.sql_console import SQLConsoleQueries
from perdure.store.sql_destinations import DestinationStatements, SQLDestinationQueries
from perdure.store.sql_limits import LimitStatements, SQLLimitQueries
from perdure.store.sql_schedules import ScheduleStatements, SQLScheduleQueries
from perdure.store.sql_versions import SQLVersionQueries, VersionStatements

# How many shapes of partial execution update a set of statements keeps: a few recur.
_PARTIAL_UPDATES_KEPT = 256


class Cursor(Protocol):
    """What a statement run returns: a ``sqlite3.Cursor`` or a psycopg cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, Any], Cursor]
ExecuteMany = Callable[[str, Any], object]
# How many rows the statement a cursor ran changed (PostgreSQL in pipeline mode knows only once it has synced).
RowCount = Callable[[Cursor], int]


def plain_rowcount(cursor: Cursor) -> int:
    """The rowcount a cursor holds as soon as its statement ran."""
    return cursor.rowcount


def _columns(columns: Iterable[str]) -> str:
    return ", ".join(columns)


def _named(columns: Iterable[str]) -> str:
    return ", ".join(f":{c}" for c in columns)


class Statements:
    """The shared statements in one dialect, with or without row locks on the reads a writer locks."""

    def __init__(self, dialect: Dialect, *, locking: bool) -> None:
        spell = dialect.spell
        lock = dialect.row_lock if locking else ""
        self.dialect = dialect
        self.versions = VersionStatements(dialect)
        self.schedules = ScheduleStatements(dialect, lock)
        self.destinations = DestinationStatements(dialect)
        self.limits = LimitStatements(dialect, locking=locking)
        self._partial_updates: dict[tuple[str, ...], str] = {}

        self.execution_insert = spell(
            f"INSERT INTO executions ({_columns(rowmap.EXECUTION_COLUMNS)}) VALUES ({_named(rowmap.EXECUTION_COLUMNS)})"
        )
        self.execution_update = spell(
            f"UPDATE executions SET {', '.join(f'{c} = :{c}' for c in rowmap.MUTABLE_EXECUTION_COLUMNS)} WHERE id = :id"
        )
        self.execution_by_arn = spell(f"SELECT * FROM executions WHERE arn = ?{lock}")
        self.execution_by_id = spell(f"SELECT * FROM executions WHERE id = ?{lock}")
        self.execution_by_name = spell(f"SELECT * FROM executions WHERE function_name = ? AND name = ?{lock}")

        # An upsert updates the row in place; SQLite's REPLACE would delete and re-insert it,
        # rewriting every index entry of the operation on each change.
        self.operation_upsert = spell(
            f"INSERT INTO operations ({_columns(rowmap.OPERATION_COLUMNS)}) VALUES ({_named(rowmap.OPERATION_COLUMNS)})"
            " ON CONFLICT (execution_id, id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in rowmap.OPERATION_UPDATE_COLUMNS)
        )
        self.operations_after = spell(
            "SELECT * FROM operations WHERE execution_id = ? AND position > ? ORDER BY position LIMIT ?"
        )
        # Walks operations_by_position backwards from the journal's end.
        self.latest_operation = spell(
            "SELECT * FROM operations WHERE execution_id = ? AND sub_type = ? AND parent_id IS NULL"
            " AND status = 'SUCCEEDED' ORDER BY position DESC LIMIT 1"
        )
        self.operations_changed = spell(
            "SELECT * FROM operations WHERE execution_id = ? AND version > ? ORDER BY position"
        )
        self.callback = spell("SELECT execution_id, id FROM operations WHERE callback_id = ?")

        self.event_insert = spell(
            f"INSERT INTO events ({_columns(rowmap.EVENT_COLUMNS)}) VALUES ({_named(rowmap.EVENT_COLUMNS)})"
        )
        self.events_forward = spell(
            "SELECT * FROM events WHERE execution_id = ? AND event_id > ? ORDER BY event_id LIMIT ?"
        )
        self.events_backward = spell(
            "SELECT * FROM events WHERE execution_id = ? AND event_id < ? ORDER BY event_id DESC LIMIT ?"
        )
        self.log_insert = spell("INSERT INTO logs (execution_id, invocation, stream, time, line) VALUES (?, ?, ?, ?, ?)")
        self.logs_after = spell("SELECT * FROM logs WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?")

        self.timer_upsert = spell(
            "INSERT INTO timers (execution_id, operation_id, kind, due_time) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (execution_id, operation_id, kind) DO UPDATE SET due_time = excluded.due_time"
        )
        self.timers_of_execution_delete = spell("DELETE FROM timers WHERE execution_id = ?")
        self.timers_of_operation_delete = spell("DELETE FROM timers WHERE execution_id = ? AND operation_id = ?")
        self.timer_delete = spell("DELETE FROM timers WHERE execution_id = ? AND operation_id = ? AND kind = ?")
        self.next_timer_due = spell("SELECT MIN(due_time) AS t FROM timers")
        self.pending_work = spell(
            "SELECT EXISTS (SELECT 1 FROM timers WHERE execution_id = :id) OR EXISTS ("
            " SELECT 1 FROM operations WHERE execution_id = :id AND status = 'STARTED'"
            " AND type IN ('CALLBACK', 'CHAINED_INVOKE')) AS pending"
        )
        self.lease_owners = spell(
            "SELECT DISTINCT lease_owner FROM executions WHERE lease_owner IS NOT NULL AND lease_expiry > ?"
            " ORDER BY lease_owner"
        )

        self.reply = spell("SELECT reply FROM checkpoint_replies WHERE execution_id = ? AND client_token = ?")
        self.reply_insert = spell("INSERT INTO checkpoint_replies (execution_id, client_token, reply) VALUES (?, ?, ?)")

        self.upgrade_done = spell("SELECT done_time FROM upgrades WHERE name = ?")
        self.upgrade_insert = spell(
            "INSERT INTO upgrades (name, done_time) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
        )
        same = dialect.null_safe_equal
        self.result_replace = spell(
            "UPDATE operations SET result = ?, result_blob = ? WHERE execution_id = ? AND id = ?"
            f" AND result {same} ? AND result_blob {same} ?"
        )

    def partial_update(self, columns: tuple[str, ...]) -> str:
        """An update of these columns of an execution, by ``id``."""
        sql = self._partial_updates.get(columns)
        if sql is None:
            sql = self.dialect.spell(f"UPDATE executions SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id")
            if len(self._partial_updates) < _PARTIAL_UPDATES_KEPT:
                self._partial_updates[columns] = sql
        return sql


class SQLTransaction(SQLConsoleQueries, SQLVersionQueries, SQLScheduleQueries, SQLDestinationQueries, SQLLimitQueries, Transaction):
    """The contract's methods whose SQL is the same on every backend, run through the backend's ``execute``.

    ``execute`` and ``execute_many`` are a connection's or cursor's own methods, bound once (no
    layer between the shared code and the driver); ``rowcount`` reads how many rows a statement
    changed. ``store_payload`` and ``load_payload`` move
    payloads over the inline limit to and from blobs. ``wakes_scheduler`` says whether the
    transaction moved a timer or otherwise made work ready that any scheduler may act on, and
    ``ready_functions()`` of which functions it made executions ready (PostgreSQL notifies its
    listeners of them).
    """

    def __init__(
        self,
        sql: Statements,
        execute: Execute,
        execute_many: ExecuteMany,
        store_payload: rowmap.StorePayload,
        load_payload: rowmap.LoadPayload,
        rowcount: RowCount = plain_rowcount,
    ) -> None:
        self._sql = sql
        self._versions = sql.versions
        self._schedules = sql.schedules
        self._destinations = sql.destinations
        self._limits = sql.limits
        self._execute = execute
        self._execute_many = execute_many
        self._rowcount = rowcount
        self._store_payload = store_payload
        self._load_payload = load_payload
        self.wakes_scheduler = False
        # Functions with work made ready by statements of many rows (leases expired, a schedule set).
        self.made_ready: set[str] = set()
        # The function of each execution written ready, by ID; one written again not ready (leased
        # in the same transaction, as a start handed straight to a worker) is taken out, so that
        # no listener is woken for work already taken.
        self._ready_executions: dict[str, str] = {}

    def ready_functions(self) -> set[str]:
        """The functions this transaction left with ready executions (or ready soon): their servers may lease them."""
        return self.made_ready | set(self._ready_executions.values())

    def _note_readiness(self, execution: Execution) -> None:
        if execution.ready_time is not None:
            self._ready_executions[execution.id] = execution.function_name
        else:
            self._ready_executions.pop(execution.id, None)

    def _execution(self, row: Any) -> Execution:
        return rowmap.execution_from_row(row, self._load_payload)

    def _operation(self, row: Any) -> Operation:
        return rowmap.operation_from_row(row, self._load_payload)

    # -- executions -------------------------------------------------------------------------

    def insert_execution(self, execution: Execution) -> None:
        self._execute(self._sql.execution_insert, rowmap.execution_row(execution, self._store_payload))
        self._note_readiness(execution)

    def update_execution(self, execution: Execution, before: Execution | None = None) -> None:
        row = self._update_row(execution, before)
        if row is not None:
            self._execute(self._sql.execution_update if before is None else self._sql.partial_update(tuple(row)[1:]), row)
        self._note_readiness(execution)

    def _update_row(self, execution: Execution, before: Execution | None) -> dict[str, Any] | None:
        """What an update of ``execution`` writes: every column without ``before``, else ``id`` and
        the columns that changed since it (None if none did)."""
        if before is None:
            return rowmap.execution_row(execution, self._store_payload, with_input=False)
        changes = rowmap.execution_changes(execution, before, self._store_payload)
        return changes if len(changes) > 1 else None

    def get_execution(self, arn: str) -> Execution | None:
        row = self._execute(self._sql.execution_by_arn, (arn,)).fetchone()
        return self._execution(row) if row else None

    def get_execution_by_id(self, execution_id: str) -> Execution | None:
        row = self._execute(self._sql.execution_by_id, (execution_id,)).fetchone()
        return self._execution(row) if row else None

    def find_execution(self, function_name: str, name: str) -> Execution | None:
        row = self._execute(self._sql.execution_by_name, (function_name, name)).fetchone()
        return self._execution(row) if row else None

    # -- operations -------------------------------------------------------------------------

    def list_operations(self, execution_id: str, after_position: int, limit: int) -> list[Operation]:
        rows = self._execute(self._sql.operations_after, (execution_id, after_position, limit)).fetchall()
        return [self._operation(r) for r in rows]

    def latest_operation(self, execution_id: str, sub_type: str) -> Operation | None:
        row = self._execute(self._sql.latest_operation, (execution_id, sub_type)).fetchone()
        return self._operation(row) if row else None

    def operations_changed_since(self, execution_id: str, version: int) -> list[Operation]:
        rows = self._execute(self._sql.operations_changed, (execution_id, version)).fetchall()
        return [self._operation(r) for r in rows]

    def put_operations(self, execution_id: str, operations: Iterable[Operation]) -> None:
        store = self._store_payload
        rows = [rowmap.operation_row(execution_id, op, store) for op in operations]
        if rows:
            self._execute_many(self._sql.operation_upsert, rows)

    def put_operations_of(self, operations: Iterable[tuple[str, Operation]]) -> None:
        store = self._store_payload
        rows = [rowmap.operation_row(eid, op, store) for eid, op in operations]
        if rows:
            self._execute_many(self._sql.operation_upsert, rows)

    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        row = self._execute(self._sql.callback, (callback_id,)).fetchone()
        return (row["execution_id"], row["id"]) if row else None

    # -- history and logs ---------------------------------------------------------------------

    def append_events(self, execution_id: str, events: Iterable[Event]) -> None:
        rows = [rowmap.event_row(execution_id, e) for e in events]
        if rows:
            self._execute_many(self._sql.event_insert, rows)

    def append_events_of(self, events: Iterable[tuple[str, Event]]) -> None:
        rows = [rowmap.event_row(eid, event) for eid, event in events]
        if rows:
            self._execute_many(self._sql.event_insert, rows)

    def list_events(self, execution_id: str, after_id: int, limit: int, reverse: bool) -> list[Event]:
        if reverse:
            sql, bound = self._sql.events_backward, (after_id if after_id > 0 else 2**62)
        else:
            sql, bound = self._sql.events_forward, after_id
        return [rowmap.event_from_row(row) for row in self._execute(sql, (execution_id, bound, limit)).fetchall()]

    def append_logs(self, execution_id: str, lines: Iterable[LogLine]) -> None:
        rows = [(execution_id, x.invocation, x.stream, x.time, rowmap.storable_line(x.line)) for x in lines]
        if rows:
            self._execute_many(self._sql.log_insert, rows)

    def list_logs(self, execution_id: str, after_seq: int, limit: int) -> list[LogLine]:
        rows = self._execute(self._sql.logs_after, (execution_id, after_seq, limit)).fetchall()
        return [LogLine(r["invocation"], r["stream"], r["time"], r["line"], r["seq"]) for r in rows]

    # -- timers -------------------------------------------------------------------------------

    def set_timer(self, timer: Timer) -> None:
        self._execute(
            self._sql.timer_upsert, (timer.execution_id, timer.operation_id, timer.kind.value, timer.due_time)
        )
        self.wakes_scheduler = True

    def delete_timers(self, execution_id: str, operation_id: str | None = None) -> None:
        if operation_id is None:
            self._execute(self._sql.timers_of_execution_delete, (execution_id,))
        else:
            self._execute(self._sql.timers_of_operation_delete, (execution_id, operation_id))

    def delete_timer(self, timer: Timer) -> None:
        self._execute(self._sql.timer_delete, (timer.execution_id, timer.operation_id, timer.kind.value))

    def next_timer_due(self) -> float | None:
        row = self._execute(self._sql.next_timer_due, ()).fetchone()
        return float(row["t"]) if row and row["t"] is not None else None

    def has_pending_work(self, execution_id: str) -> bool:
        row = self._execute(self._sql.pending_work, {"id": execution_id}).fetchone()
        return bool(row and row["pending"])

    def lease_owners(self, now: float) -> list[str]:
        return [r["lease_owner"] for r in self._execute(self._sql.lease_owners, (now,)).fetchall()]

    # -- idempotency ------------------------------------------------------------------------

    def get_checkpoint_reply(self, execution_id: str, client_token: str) -> str | None:
        row = self._execute(self._sql.reply, (execution_id, client_token)).fetchone()
        return row["reply"] if row else None

    def put_checkpoint_reply(self, execution_id: str, client_token: str, reply: str) -> None:
        self._execute(self._sql.reply_insert, (execution_id, client_token, reply))

    # -- one-time upgrades ------------------------------------------------------------------

    def results_with_prefix(self, sub_type: str, prefix: str, after: tuple[str, str] | None, limit: int) -> ResultScan:
        dialect = self._sql.dialect
        params: dict[str, Any] = {"sub_type": sub_type, "prefix": prefix, "offset": limit - 1}
        past = ""
        if after is not None:
            past = " WHERE (execution_id, id) > (:after_execution, :after_id)"
            params["after_execution"], params["after_id"] = after
        end = self._execute(
            dialect.spell(f"SELECT execution_id, id FROM operations{past} ORDER BY execution_id, id LIMIT 1 OFFSET :offset"),
            params,
        ).fetchone()
        last = (end["execution_id"], end["id"]) if end is not None else None
        # Both ends of the stretch bound the primary key's range (on PostgreSQL its columns are
        # COLLATE "C", as the order here): with the lower one alone, the planner read every
        # operation after it. The ARN is looked up for the matches alone: joined, PostgreSQL's
        # planner hashed every execution for each stretch (50 ms a stretch with 100,000 executions).
        bounds = " AND (o.execution_id, o.id) > (:after_execution, :after_id)" if after is not None else ""
        if last is not None:
            bounds += " AND (o.execution_id, o.id) <= (:last_execution, :last_id)"
            params["last_execution"], params["last_id"] = last
        rows = self._execute(
            dialect.spell(
                "SELECT o.execution_id, (SELECT arn FROM executions WHERE id = o.execution_id) AS arn, o.id,"
                " o.result, o.result_blob FROM operations AS o"
                f" WHERE o.sub_type = :sub_type AND ({dialect.starts_with('o.result', 'prefix')}"
                f" OR o.result_blob IS NOT NULL){bounds} ORDER BY o.execution_id, o.id"
            ),
            params,
        ).fetchall()
        found = [StoredResult(r["execution_id"], r["arn"], r["id"], r["result"], r["result_blob"]) for r in rows]
        return ResultScan(found, last)

    def replace_result(self, stored: StoredResult, result: str) -> bool:
        inline, key = self._store_payload(result)
        # On PostgreSQL (READ COMMITTED) an UPDATE that waited for another writer of the row
        # checks its WHERE again on what that one committed: of two servers upgrading at once, one writes.
        cursor = self._execute(
            self._sql.result_replace,
            (inline, key, stored.execution_id, stored.operation_id, stored.inline, stored.blob_key),
        )
        return self._rowcount(cursor) == 1

    def upgrade_done(self, name: str) -> float | None:
        row = self._execute(self._sql.upgrade_done, (name,)).fetchone()
        return float(row["done_time"]) if row else None

    def record_upgrade(self, name: str, now: float) -> None:
        self._execute(self._sql.upgrade_insert, (name, now))
