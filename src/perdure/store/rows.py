"""How executions, operations and events map to table rows, the same for every backend.

A row is a dict keyed by column name, bound as named parameters (``:name`` in SQLite,
``%(name)s`` in PostgreSQL); a row read back is anything indexed by column name
(``sqlite3.Row``, a psycopg ``dict_row``). Each backend keeps its own SQL and its own payload
storage, which the functions here take as ``store_payload`` / ``load_payload``.

The flags (``woken_during_invocation``, ``timeout_paused``, ``replay_children``) are written as Python bools:
SQLite binds a bool as the integer 0 or 1 of its INTEGER column, PostgreSQL as its BOOLEAN
column; read back, either becomes a bool.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any, Protocol

from perdure.protocol.records import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    assemble,
)

# What a PostgreSQL text column cannot hold (NUL; lone surrogates, which are not UTF-8).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable_line(text: str) -> str:
    """A log line with NUL and lone surrogates replaced by U+FFFD, so both databases keep it.

    A handler may print anything; one such character made PostgreSQL refuse the whole batch of
    an invocation's lines, and they were lost. Replacing them is what a terminal shows anyway.
    """
    return _UNSTORABLE.sub("\ufffd", text)


# Payloads longer than this many characters go to the blob folder rather than into a row.
DEFAULT_INLINE_LIMIT = 64 * 1024

EXECUTION_COLUMNS: tuple[str, ...] = (
    "id", "arn", "function_name", "qualifier", "name", "status", "start_time", "end_time",
    "input_payload", "input_payload_blob", "result", "result_blob", "error", "timeout_seconds",
    "retention_days", "ready_time", "lease_owner", "lease_expiry", "invocation",
    "invocation_secret", "invocation_start", "failed_invocations", "woken_during_invocation",
    "version", "event_count", "operation_count", "parent_arn", "parent_operation_id", "tenant_id",
    "pause_time", "pause_reason", "timeout_paused", "paused_seconds", "function_version",
    "compute_seconds", "cpu_seconds", "gb_seconds", "trace_parent",
)  # fmt: skip
# An execution's identity and input never change after it starts: an update leaves them be.
IMMUTABLE_EXECUTION_COLUMNS: tuple[str, ...] = (
    "id", "arn", "function_name", "qualifier", "name", "start_time", "input_payload", "input_payload_blob",
    "parent_arn", "parent_operation_id", "tenant_id", "function_version", "trace_parent",
)  # fmt: skip
MUTABLE_EXECUTION_COLUMNS: tuple[str, ...] = tuple(
    c for c in EXECUTION_COLUMNS if c not in IMMUTABLE_EXECUTION_COLUMNS
)
OPERATION_COLUMNS: tuple[str, ...] = (
    "execution_id", "id", "position", "type", "status", "parent_id", "name", "sub_type",
    "start_time", "end_time", "input_payload", "input_payload_blob", "result", "result_blob",
    "error", "attempt", "next_attempt_time", "scheduled_end_time", "callback_id",
    "callback_timeout_seconds", "callback_heartbeat_timeout_seconds", "replay_children", "version",
)  # fmt: skip
# What an upsert of an operation rewrites: all but its key (execution_id, id).
OPERATION_UPDATE_COLUMNS: tuple[str, ...] = OPERATION_COLUMNS[2:]
EVENT_COLUMNS: tuple[str, ...] = ("execution_id", "event_id", "body")

# ``store_payload(text) -> (inline, blob_key)`` and ``load_payload(inline, blob_key) -> text``.
StorePayload = Callable[[str | None], tuple[str | None, str | None]]
LoadPayload = Callable[[str | None, str | None], str | None]


class Row(Protocol):
    """A row read back: its columns by name."""

    def __getitem__(self, column: str, /) -> Any: ...


# -- errors and pagination markers ------------------------------------------------------------


def error_to_text(error: ErrorObject | None) -> str | None:
    return json.dumps(error.to_wire()) if error else None


def error_from_text(text: str | None) -> ErrorObject | None:
    return ErrorObject.from_wire(json.loads(text)) if text else None


def encode_marker(start_time: float, execution_id: str) -> str:
    """The marker of a page of executions that ends with this one."""
    return base64.urlsafe_b64encode(json.dumps([start_time, execution_id]).encode()).decode()


def decode_marker(marker: str) -> tuple[float, str]:
    """Returns ``(start_time, execution_id)``; raises ``ValueError`` unless ``encode_marker`` made it."""
    invalid = f"Invalid pagination marker {marker!r}; pass a marker from a reply."
    try:
        values = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except ValueError:
        raise ValueError(invalid) from None
    # Checked in full: PostgreSQL refuses to compare a time with a string, SQLite would not,
    # neither compares with infinity or a number too large for a float, and an execution ID is
    # ASCII (PostgreSQL cannot hold NUL, nor either database a lone surrogate).
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not isinstance(values[0], (int, float))
        or isinstance(values[0], bool)
        or not isinstance(values[1], str)
        or not values[1].isascii()
        or "\0" in values[1]
    ):
        raise ValueError(invalid)
    try:
        start_time = float(values[0])
    except OverflowError:
        raise ValueError(invalid) from None
    if not math.isfinite(start_time):
        raise ValueError(invalid)
    return start_time, values[1]


# -- executions -------------------------------------------------------------------------------


def execution_row(execution: Execution, store_payload: StorePayload, *, with_input: bool = True) -> dict[str, Any]:
    """The row of an execution; without ``with_input`` its input is not stored (the columns are None)."""
    input_inline, input_blob = store_payload(execution.input_payload) if with_input else (None, None)
    result_inline, result_blob = store_payload(execution.result)
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
        "error": error_to_text(execution.error),
        "timeout_seconds": execution.timeout_seconds,
        "retention_days": execution.retention_days,
        "ready_time": execution.ready_time,
        "lease_owner": execution.lease_owner,
        "lease_expiry": execution.lease_expiry,
        "invocation": execution.invocation,
        "invocation_secret": execution.invocation_secret,
        "invocation_start": execution.invocation_start,
        "failed_invocations": execution.failed_invocations,
        "woken_during_invocation": bool(execution.woken_during_invocation),
        "version": execution.version,
        "event_count": execution.event_count,
        "operation_count": execution.operation_count,
        "parent_arn": execution.parent_arn,
        "parent_operation_id": execution.parent_operation_id,
        "tenant_id": execution.tenant_id,
        "pause_time": execution.pause_time,
        "pause_reason": execution.pause_reason,
        "timeout_paused": bool(execution.timeout_paused),
        "paused_seconds": execution.paused_seconds,
        "function_version": execution.function_version,
        "compute_seconds": execution.compute_seconds,
        "cpu_seconds": execution.cpu_seconds,
        "gb_seconds": execution.gb_seconds,
        "trace_parent": execution.trace_parent,
    }


# The fields of an execution that ``update_execution`` may rewrite; each is the column of its
# name, except ``result`` (``result`` and ``result_blob``) and ``error`` (its JSON text).
_MUTABLE_EXECUTION_FIELDS: tuple[str, ...] = tuple(
    c for c in MUTABLE_EXECUTION_COLUMNS if c not in ("result_blob",)
)


def execution_changes(execution: Execution, before: Execution, store_payload: StorePayload) -> dict[str, Any]:
    """The mutable columns whose values differ between ``before`` and ``execution``, and ``id``.

    A checkpoint changes three or four of an execution's 22 mutable columns; writing only
    those saves binding the others and re-storing an unchanged result.
    """
    new, old = execution.__dict__, before.__dict__
    row: dict[str, Any] = {"id": execution.id}
    for name in _MUTABLE_EXECUTION_FIELDS:
        value = new[name]
        if value == old[name]:
            continue
        if name == "result":
            row["result"], row["result_blob"] = store_payload(value)
        elif name == "error":
            row["error"] = error_to_text(value)
        elif name == "status":
            row["status"] = value.value
        elif name in ("woken_during_invocation", "timeout_paused"):
            row[name] = bool(value)
        else:
            row[name] = value
    return row


# Columns read back into the execution field of their name as they are.
_EXECUTION_PLAIN: tuple[str, ...] = (
    "id", "arn", "function_name", "qualifier", "name", "start_time", "end_time", "timeout_seconds",
    "retention_days", "ready_time", "lease_owner", "lease_expiry", "invocation", "invocation_secret",
    "invocation_start", "failed_invocations", "version", "event_count", "operation_count", "parent_arn",
    "parent_operation_id", "tenant_id", "pause_time", "pause_reason", "function_version", "trace_parent",
)  # fmt: skip


def execution_from_row(row: Row, load_payload: LoadPayload) -> Execution:
    # Every checkpoint reads its execution: built without Execution.__init__ (see assemble).
    fields = {name: row[name] for name in _EXECUTION_PLAIN}
    fields["status"] = ExecutionStatus(row["status"])
    fields["input_payload"] = load_payload(row["input_payload"], row["input_payload_blob"])
    fields["result"] = load_payload(row["result"], row["result_blob"])
    fields["error"] = error_from_text(row["error"])
    fields["woken_during_invocation"] = bool(row["woken_during_invocation"])
    fields["timeout_paused"] = bool(row["timeout_paused"])
    for name in ("paused_seconds", "compute_seconds", "cpu_seconds", "gb_seconds"):
        fields[name] = float(row[name])
    return assemble(Execution, fields)


# -- operations -------------------------------------------------------------------------------


def operation_row(execution_id: str, op: Operation, store_payload: StorePayload) -> dict[str, Any]:
    input_inline, input_blob = store_payload(op.input_payload)
    result_inline, result_blob = store_payload(op.result)
    return {
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
        "error": error_to_text(op.error),
        "attempt": op.attempt,
        "next_attempt_time": op.next_attempt_time,
        "scheduled_end_time": op.scheduled_end_time,
        "callback_id": op.callback_id,
        "callback_timeout_seconds": op.callback_timeout_seconds,
        "callback_heartbeat_timeout_seconds": op.callback_heartbeat_timeout_seconds,
        "replay_children": bool(op.replay_children),
        "version": op.version,
    }


_OPERATION_PLAIN: tuple[str, ...] = (
    "id", "position", "parent_id", "name", "sub_type", "start_time", "end_time", "attempt",
    "next_attempt_time", "scheduled_end_time", "callback_id", "callback_timeout_seconds",
    "callback_heartbeat_timeout_seconds", "version",
)  # fmt: skip


def operation_from_row(row: Row, load_payload: LoadPayload) -> Operation:
    fields = {name: row[name] for name in _OPERATION_PLAIN}
    fields["type"] = OperationType(row["type"])
    fields["status"] = OperationStatus(row["status"])
    fields["input_payload"] = load_payload(row["input_payload"], row["input_payload_blob"])
    fields["result"] = load_payload(row["result"], row["result_blob"])
    fields["error"] = error_from_text(row["error"])
    fields["replay_children"] = bool(row["replay_children"])
    return assemble(Operation, fields)


# -- events -----------------------------------------------------------------------------------


def event_row(execution_id: str, event: Event) -> dict[str, Any]:
    """The row of a history event: all but its ID go into one JSON ``body``."""
    body = {
        "type": event.event_type,
        "time": event.timestamp,
        "op": event.operation_id,
        "parent": event.parent_id,
        "name": event.name,
        "sub": event.sub_type,
        "details": event.details,
    }
    return {"execution_id": execution_id, "event_id": event.event_id, "body": json.dumps(body)}


def event_from_row(row: Row) -> Event:
    body = json.loads(row["body"])
    return Event(
        event_type=body["type"],
        timestamp=body["time"],
        operation_id=body["op"],
        parent_id=body["parent"],
        name=body["name"],
        sub_type=body["sub"],
        details=body["details"],
        event_id=row["event_id"],
    )
