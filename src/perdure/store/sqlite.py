"""The embedded store: one SQLite database file in WAL mode, plus a blob folder."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from perdure.service.model import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from perdure.store.base import (
    ExecutionPage,
    ExecutionQuery,
    Store,
    Timer,
    TimerKind,
    Transaction,
    chunks,
)
from perdure.store.blobs import FileBlobStore

# Payloads longer than this many characters go to the blob folder rather than into a row.
DEFAULT_INLINE_LIMIT = 64 * 1024

_EXECUTION_COLUMNS = (
    "id", "arn", "function_name", "qualifier", "name", "status", "start_time", "end_time",
    "input_payload", "input_payload_blob", "result", "result_blob", "error", "timeout_seconds",
    "retention_days", "ready_time", "lease_owner", "lease_expiry", "invocation",
    "invocation_secret", "invocation_start", "failed_invocations", "woken_during_invocation",
    "version", "event_count", "operation_count",
)  # fmt: skip
# An execution's identity and input never change after it starts.
_MUTABLE_EXECUTION_COLUMNS = tuple(
    c for c in _EXECUTION_COLUMNS
    if c not in ("id", "arn", "function_name", "qualifier", "name", "start_time", "input_payload", "input_payload_blob")
)
_OPERATION_COLUMNS = (
    "execution_id", "id", "position", "type", "status", "parent_id", "name", "sub_type",
    "start_time", "end_time", "input_payload", "input_payload_blob", "result", "result_blob",
    "error", "attempt", "next_attempt_time", "scheduled_end_time", "callback_id",
    "callback_timeout_seconds", "callback_heartbeat_timeout_seconds", "replay_children", "version",
)  # fmt: skip


def _schema_scripts() -> list[tuple[int, str]]:
    folder = resources.files("perdure.store.schema")
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(scripts)


class SQLiteStore(Store):
    """A store in one SQLite file; safe to share between threads and processes.

    ``synchronous=NORMAL`` in WAL mode loses no committed transaction when a process crashes
    (only on power loss); pass ``synchronous="FULL"`` to survive that too.
    """

    def __init__(
        self,
        path: Path,
        *,
        blob_dir: Path | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.blobs = FileBlobStore(blob_dir or path.parent / "blobs")
        self.inline_limit = inline_limit
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        # A generous busy timeout rides out other processes' write transactions rather than
        # failing fast: workers and the server share this file.
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                current = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for number, script in _schema_scripts():
                    if number > current:
                        for statement in script.split(";\n"):
                            if statement.strip():
                                self._conn.execute(statement)
                        self._conn.execute(f"PRAGMA user_version = {number}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(self._conn, self)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # A deferred transaction takes no write lock, so readers never queue behind writers.
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield _SQLiteTransaction(self._conn, self)
            finally:
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def store_payload(self, text: str | None) -> tuple[str | None, str | None]:
        """Returns ``(inline, blob_key)`` for a payload column pair."""
        if text is None or len(text) <= self.inline_limit:
            return text, None
        return None, self.blobs.put(text.encode("utf-8"))

    def load_payload(self, inline: str | None, blob_key: str | None) -> str | None:
        if blob_key:
            return self.blobs.get(blob_key).decode("utf-8")
        return inline


def _error_to_text(error: ErrorObject | None) -> str | None:
    return json.dumps(error.to_wire()) if error else None


def _encode_marker(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _decode_marker(marker: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except ValueError:
        raise ValueError(f"Invalid pagination marker {marker!r}; pass a marker from a reply.") from None
    if not isinstance(values, list):
        raise ValueError(f"Invalid pagination marker {marker!r}; pass a marker from a reply.")
    return values


class _SQLiteTransaction(Transaction):
    def __init__(self, conn: sqlite3.Connection, store: SQLiteStore) -> None:
        self._conn = conn
        self._store = store

    # -- executions -------------------------------------------------------------------------

    def _execution_row(self, execution: Execution, with_input: bool = True) -> dict[str, Any]:
        input_inline, input_blob = self._store.store_payload(execution.input_payload) if with_input else (None, None)
        result_inline, result_blob = self._store.store_payload(execution.result)
        return {
            "id": execution.id,
            "arn": execution.arn,
            "function_name": execution.function_name,
            "qualifier": execution.qualifier,
            "name": execution.name,
            "status": execution.status.value,
            "start_time": execution.start_time,
            "end_time": execution.end_time,
            "input_payload": input_inline,
            "input_payload_blob": input_blob,
            "result": result_inline,
            "result_blob": result_blob,
            "error": _error_to_text(execution.error),
            "timeout_seconds": execution.timeout_seconds,
            "retention_days": execution.retention_days,
            "ready_time": execution.ready_time,
            "lease_owner": execution.lease_owner,
            "lease_expiry": execution.lease_expiry,
            "invocation": execution.invocation,
            "invocation_secret": execution.invocation_secret,
            "invocation_start": execution.invocation_start,
            "failed_invocations": execution.failed_invocations,
            "woken_during_invocation": int(execution.woken_during_invocation),
            "version": execution.version,
            "event_count": execution.event_count,
            "operation_count": execution.operation_count,
        }

    def _execution_from_row(self, row: sqlite3.Row) -> Execution:
        error = json.loads(row["error"]) if row["error"] else None
        return Execution(
            id=row["id"],
            arn=row["arn"],
            function_name=row["function_name"],
            qualifier=row["qualifier"],
            name=row["name"],
            status=ExecutionStatus(row["status"]),
            start_time=row["start_time"],
            end_time=row["end_time"],
            input_payload=self._store.load_payload(row["input_payload"], row["input_payload_blob"]),
            result=self._store.load_payload(row["result"], row["result_blob"]),
            error=ErrorObject.from_wire(error),
            timeout_seconds=row["timeout_seconds"],
            retention_days=row["retention_days"],
            ready_time=row["ready_time"],
            lease_owner=row["lease_owner"],
            lease_expiry=row["lease_expiry"],
            invocation=row["invocation"],
            invocation_secret=row["invocation_secret"],
            invocation_start=row["invocation_start"],
            failed_invocations=row["failed_invocations"],
            woken_during_invocation=bool(row["woken_during_invocation"]),
            version=row["version"],
            event_count=row["event_count"],
            operation_count=row["operation_count"],
        )

    def insert_execution(self, execution: Execution) -> None:
        row = self._execution_row(execution)
        names = ", ".join(_EXECUTION_COLUMNS)
        values = ", ".join(f":{c}" for c in _EXECUTION_COLUMNS)
        self._conn.execute(f"INSERT INTO executions ({names}) VALUES ({values})", row)

    def update_execution(self, execution: Execution) -> None:
        row = self._execution_row(execution, with_input=False)
        sets = ", ".join(f"{c} = :{c}" for c in _MUTABLE_EXECUTION_COLUMNS)
        self._conn.execute(f"UPDATE executions SET {sets} WHERE id = :id", row)

    def get_execution(self, arn: str) -> Execution | None:
        row = self._conn.execute("SELECT * FROM executions WHERE arn = ?", (arn,)).fetchone()
        return self._execution_from_row(row) if row else None

    def get_execution_by_id(self, execution_id: str) -> Execution | None:
        row = self._conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return self._execution_from_row(row) if row else None

    def find_execution(self, function_name: str, name: str) -> Execution | None:
        row = self._conn.execute(
            "SELECT * FROM executions WHERE function_name = ? AND name = ?", (function_name, name)
        ).fetchone()
        return self._execution_from_row(row) if row else None

    def list_executions(self, query: ExecutionQuery) -> ExecutionPage:
        clauses: list[str] = []
        params: list[Any] = []
        if query.function_name is not None:
            clauses.append("function_name = ?")
            params.append(query.function_name)
        if query.statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
            params.extend(s.value for s in query.statuses)
        if query.name is not None:
            clauses.append("name = ?")
            params.append(query.name)
        if query.started_after is not None:
            clauses.append("start_time >= ?")
            params.append(query.started_after)
        if query.started_before is not None:
            clauses.append("start_time < ?")
            params.append(query.started_before)
        before, order = (">", "ASC") if query.oldest_first else ("<", "DESC")
        if query.marker:
            start_time, execution_id = _decode_marker(query.marker)
            clauses.append(f"(start_time {before} ? OR (start_time = ? AND id {before} ?))")
            params.extend([start_time, start_time, execution_id])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT * FROM executions {where} ORDER BY start_time {order}, id {order} LIMIT ?",
            [*params, query.limit + 1],
        ).fetchall()
        executions = [self._execution_from_row(r) for r in rows[: query.limit]]
        marker = None
        if len(rows) > query.limit:
            last = executions[-1]
            marker = _encode_marker([last.start_time, last.id])
        return ExecutionPage(executions, marker)

    # -- operations -------------------------------------------------------------------------

    def _operation_from_row(self, row: sqlite3.Row) -> Operation:
        error = json.loads(row["error"]) if row["error"] else None
        return Operation(
            id=row["id"],
            type=OperationType(row["type"]),
            status=OperationStatus(row["status"]),
            position=row["position"],
            parent_id=row["parent_id"],
            name=row["name"],
            sub_type=row["sub_type"],
            start_time=row["start_time"],
            end_time=row["end_time"],
            input_payload=self._store.load_payload(row["input_payload"], row["input_payload_blob"]),
            result=self._store.load_payload(row["result"], row["result_blob"]),
            error=ErrorObject.from_wire(error),
            attempt=row["attempt"],
            next_attempt_time=row["next_attempt_time"],
            scheduled_end_time=row["scheduled_end_time"],
            callback_id=row["callback_id"],
            callback_timeout_seconds=row["callback_timeout_seconds"],
            callback_heartbeat_timeout_seconds=row["callback_heartbeat_timeout_seconds"],
            replay_children=bool(row["replay_children"]),
            version=row["version"],
        )

    def get_operations(self, execution_id: str, ids: Iterable[str]) -> dict[str, Operation]:
        found: dict[str, Operation] = {}
        for batch in chunks(sorted(set(ids)), 500):
            rows = self._conn.execute(
                f"SELECT * FROM operations WHERE execution_id = ? AND id IN ({', '.join('?' for _ in batch)})",
                [execution_id, *batch],
            ).fetchall()
            for row in rows:
                found[row["id"]] = self._operation_from_row(row)
        return found

    def list_operations(self, execution_id: str, after_position: int, limit: int) -> list[Operation]:
        rows = self._conn.execute(
            "SELECT * FROM operations WHERE execution_id = ? AND position > ? ORDER BY position LIMIT ?",
            (execution_id, after_position, limit),
        ).fetchall()
        return [self._operation_from_row(r) for r in rows]

    def operations_changed_since(self, execution_id: str, version: int) -> list[Operation]:
        rows = self._conn.execute(
            "SELECT * FROM operations WHERE execution_id = ? AND version > ? ORDER BY position",
            (execution_id, version),
        ).fetchall()
        return [self._operation_from_row(r) for r in rows]

    def put_operations(self, execution_id: str, operations: Iterable[Operation]) -> None:
        names = ", ".join(_OPERATION_COLUMNS)
        values = ", ".join(f":{c}" for c in _OPERATION_COLUMNS)
        rows = []
        for op in operations:
            input_inline, input_blob = self._store.store_payload(op.input_payload)
            result_inline, result_blob = self._store.store_payload(op.result)
            rows.append(
                {
                    "execution_id": execution_id,
                    "id": op.id,
                    "position": op.position,
                    "type": op.type.value,
                    "status": op.status.value,
                    "parent_id": op.parent_id,
                    "name": op.name,
                    "sub_type": op.sub_type,
                    "start_time": op.start_time,
                    "end_time": op.end_time,
                    "input_payload": input_inline,
                    "input_payload_blob": input_blob,
                    "result": result_inline,
                    "result_blob": result_blob,
                    "error": _error_to_text(op.error),
                    "attempt": op.attempt,
                    "next_attempt_time": op.next_attempt_time,
                    "scheduled_end_time": op.scheduled_end_time,
                    "callback_id": op.callback_id,
                    "callback_timeout_seconds": op.callback_timeout_seconds,
                    "callback_heartbeat_timeout_seconds": op.callback_heartbeat_timeout_seconds,
                    "replay_children": int(op.replay_children),
                    "version": op.version,
                }
            )
        # An upsert updates the row in place; REPLACE would delete and re-insert it, rewriting
        # every index entry of the operation on each change.
        updates = ", ".join(f"{c} = excluded.{c}" for c in _OPERATION_COLUMNS[2:])
        self._conn.executemany(
            f"INSERT INTO operations ({names}) VALUES ({values}) "
            f"ON CONFLICT (execution_id, id) DO UPDATE SET {updates}",
            rows,
        )

    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT execution_id, id FROM operations WHERE callback_id = ?", (callback_id,)
        ).fetchone()
        return (row["execution_id"], row["id"]) if row else None

    # -- history ----------------------------------------------------------------------------

    def append_events(self, execution_id: str, events: Iterable[Event]) -> None:
        self._conn.executemany(
            "INSERT INTO events (execution_id, event_id, body) VALUES (?, ?, ?)",
            [
                (
                    execution_id,
                    e.event_id,
                    json.dumps(
                        {
                            "type": e.event_type,
                            "time": e.timestamp,
                            "op": e.operation_id,
                            "parent": e.parent_id,
                            "name": e.name,
                            "sub": e.sub_type,
                            "details": e.details,
                        }
                    ),
                )
                for e in events
            ],
        )

    def list_events(self, execution_id: str, after_id: int, limit: int, reverse: bool) -> list[Event]:
        if reverse:
            sql = "SELECT * FROM events WHERE execution_id = ? AND event_id < ? ORDER BY event_id DESC LIMIT ?"
            bound = after_id if after_id > 0 else 2**62
        else:
            sql = "SELECT * FROM events WHERE execution_id = ? AND event_id > ? ORDER BY event_id LIMIT ?"
            bound = after_id
        events = []
        for row in self._conn.execute(sql, (execution_id, bound, limit)):
            body = json.loads(row["body"])
            events.append(
                Event(
                    event_type=body["type"],
                    timestamp=body["time"],
                    operation_id=body["op"],
                    parent_id=body["parent"],
                    name=body["name"],
                    sub_type=body["sub"],
                    details=body["details"],
                    event_id=row["event_id"],
                )
            )
        return events

    # -- timers and scheduling ----------------------------------------------------------------

    def set_timer(self, timer: Timer) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO timers (execution_id, operation_id, kind, due_time) VALUES (?, ?, ?, ?)",
            (timer.execution_id, timer.operation_id, timer.kind.value, timer.due_time),
        )

    def delete_timers(self, execution_id: str, operation_id: str | None = None) -> None:
        if operation_id is None:
            self._conn.execute("DELETE FROM timers WHERE execution_id = ?", (execution_id,))
        else:
            self._conn.execute(
                "DELETE FROM timers WHERE execution_id = ? AND operation_id = ?",
                (execution_id, operation_id),
            )

    def delete_timer(self, timer: Timer) -> None:
        self._conn.execute(
            "DELETE FROM timers WHERE execution_id = ? AND operation_id = ? AND kind = ?",
            (timer.execution_id, timer.operation_id, timer.kind.value),
        )

    def due_timers(self, now: float, limit: int) -> list[Timer]:
        rows = self._conn.execute(
            "SELECT * FROM timers WHERE due_time <= ? ORDER BY due_time LIMIT ?", (now, limit)
        ).fetchall()
        return [
            Timer(r["execution_id"], r["operation_id"], TimerKind(r["kind"]), r["due_time"])
            for r in rows
        ]

    def has_pending_work(self, execution_id: str) -> bool:
        row = self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM timers WHERE execution_id = :id) OR EXISTS ("
            " SELECT 1 FROM operations WHERE execution_id = :id AND status = 'STARTED'"
            " AND type IN ('CALLBACK', 'CHAINED_INVOKE')) AS pending",
            {"id": execution_id},
        ).fetchone()
        return bool(row["pending"])

    def lease_owners(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT lease_owner FROM executions WHERE lease_owner IS NOT NULL"
        ).fetchall()
        return [r["lease_owner"] for r in rows]

    def expire_leases(self, owner: str, now: float) -> None:
        self._conn.execute(
            "UPDATE executions SET lease_expiry = ? WHERE lease_owner = ? AND lease_expiry > ?",
            (now, owner, now),
        )

    def ready_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        if not functions:
            return []
        names = sorted(functions)
        served = f"function_name IN ({', '.join('?' for _ in names)})"
        # Two cases: ready and unleased, or leased by an invocation whose lease ran out.
        # Each half reads its own partial index, so suspended executions cost nothing here.
        rows = self._conn.execute(
            "SELECT * FROM ("
            " SELECT * FROM executions WHERE ready_time IS NOT NULL AND ready_time <= ?"
            f" AND lease_owner IS NULL AND status = 'RUNNING' AND {served}"
            " UNION ALL"
            " SELECT * FROM executions WHERE lease_owner IS NOT NULL AND lease_expiry <= ?"
            f" AND status = 'RUNNING' AND {served})"
            " ORDER BY COALESCE(ready_time, lease_expiry) LIMIT ?",
            [now, *names, now, *names, limit],
        ).fetchall()
        return [self._execution_from_row(r) for r in rows]

    def next_wakeup(self) -> float | None:
        row = self._conn.execute(
            "SELECT MIN(t) AS t FROM ("
            " SELECT MIN(due_time) AS t FROM timers"
            " UNION ALL SELECT MIN(ready_time) FROM executions WHERE ready_time IS NOT NULL"
            " UNION ALL SELECT MIN(lease_expiry) FROM executions WHERE lease_owner IS NOT NULL)"
        ).fetchone()
        return float(row["t"]) if row["t"] is not None else None

    # -- idempotency ------------------------------------------------------------------------

    def get_checkpoint_reply(self, execution_id: str, client_token: str) -> str | None:
        row = self._conn.execute(
            "SELECT reply FROM checkpoint_replies WHERE execution_id = ? AND client_token = ?",
            (execution_id, client_token),
        ).fetchone()
        return row["reply"] if row else None

    def put_checkpoint_reply(self, execution_id: str, client_token: str, reply: str) -> None:
        self._conn.execute(
            "INSERT INTO checkpoint_replies (execution_id, client_token, reply) VALUES (?, ?, ?)",
            (execution_id, client_token, reply),
        )
