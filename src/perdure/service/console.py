"""Read-only views of executions for a console (the dashboard): counts, the inbox of callbacks
waiting for a human, per-function figures, an execution's operations as a tree, and what each
seed-style checkpoint saved.

Each function takes the service first and only reads; none changes an execution.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import pprint
import reprlib
from dataclasses import dataclass
from typing import Any

from perdure.errors import CallbackNotFoundError, ExecutionNotFoundError, InvalidParameterError
from perdure.protocol.queries import ExecutionQuery, LiveCount, OpenCallback, StatusCount
from perdure.protocol.records import ExecutionStatus, Operation, OperationStatus, OperationType
from perdure.protocol.snapshots import HIDDEN, SnapshotCodec, SnapshotError
from perdure.service.executions import DurableService
from perdure.service.restarts import all_operations, checkpoint_operations

PREVIEW_CHARS = 200
FULL_CHARS = 1024 * 1024
_MAX_PAGE = 1000


@dataclass(frozen=True)
class PendingCallback:
    """A callback an execution waits for, and what the execution does once it is completed.

    ``started`` and ``timeout_time`` are epoch seconds (``timeout_time`` None without a
    timeout); ``heartbeat_timeout`` is the seconds allowed between heartbeats, if any.
    """

    callback_id: str
    execution_arn: str
    execution_name: str
    function_name: str
    operation_id: str
    name: str | None
    started: float
    timeout_time: float | None
    heartbeat_timeout: float | None
    next_step: str


@dataclass(frozen=True)
class CallbackPage:
    """Open callbacks, oldest first, and the marker of the next page (None on the last)."""

    callbacks: list[PendingCallback]
    next_marker: str | None


@dataclass(frozen=True)
class CallbackState:
    """One callback as an approval page shows it: its name, whose it is, and whether it can still be completed."""

    callback_id: str
    name: str | None
    function_name: str
    execution_arn: str
    status: OperationStatus
    execution_status: ExecutionStatus

    @property
    def open(self) -> bool:
        """Started and not ended, in an execution that has not ended either."""
        return not self.status.is_terminal and not self.execution_status.is_terminal


@dataclass(frozen=True)
class FunctionStats:
    """How the executions of one function started in a period stand; ``running`` counts paused ones too."""

    function_name: str
    running: int
    succeeded: int
    failed: int
    timed_out: int
    stopped: int
    # What their invocations used: time from lease to end (what Lambda bills), CPU, GB-seconds.
    compute_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gb_seconds: float = 0.0


@dataclass(frozen=True)
class OperationNode:
    """An operation with the operations it contains (child contexts, parallel branches, map items).

    ``duration`` is seconds from start to end (None until it ends); ``attempts`` is how many
    times a step or a polled condition ran (0 for other operations).
    """

    operation: Operation
    children: list[OperationNode]
    duration: float | None
    attempts: int


@dataclass(frozen=True)
class SavedVariable:
    """A local a checkpoint saved: ``preview`` is at most 200 characters, ``truncated`` says it
    leaves something out, and ``full`` is the whole value pretty-printed (cut at 1 MiB)."""

    name: str
    type_name: str
    preview: str
    truncated: bool
    full: str


@dataclass(frozen=True)
class CheckpointView:
    """A seed-style checkpoint (``number`` counts from 1) and the locals it saved.

    ``error`` says why the variables cannot be shown (a snapshot that fails its signature is
    refused and never unpickled); ``variables`` is then empty.
    """

    number: int
    operation_id: str
    name: str | None
    time: float
    variables: list[SavedVariable]
    error: str | None = None


# -- counts -------------------------------------------------------------------------------------


def count_by_status(service: DurableService, query: ExecutionQuery) -> dict[ExecutionStatus, int]:
    """Counts the executions ``list_executions(query)`` lists on all its pages, by status (absent: none)."""
    try:
        with service.store.snapshot() as tx:
            return tx.count_executions(query)
    except ValueError as error:
        raise InvalidParameterError(str(error)) from None


_RUNNING = (ExecutionStatus.RUNNING, ExecutionStatus.PAUSING, ExecutionStatus.PAUSED)


def function_stats(service: DurableService, since: float) -> list[FunctionStats]:
    """Per function with executions started at or after ``since``: how many are in each state, by name."""
    with service.store.snapshot() as tx:
        counts = tx.count_by_function(since)
    by_function: dict[str, dict[ExecutionStatus, StatusCount]] = {}
    for row in counts:
        by_function.setdefault(row.function_name, {})[row.status] = row
    stats = []
    for name, rows in sorted(by_function.items()):
        def count(*statuses: ExecutionStatus) -> int:
            return sum(rows[status].count for status in statuses if status in rows)

        stats.append(
            FunctionStats(
                function_name=name,
                running=count(*_RUNNING),
                succeeded=count(ExecutionStatus.SUCCEEDED),
                failed=count(ExecutionStatus.FAILED),
                timed_out=count(ExecutionStatus.TIMED_OUT),
                stopped=count(ExecutionStatus.STOPPED),
                compute_seconds=sum(row.compute_seconds for row in rows.values()),
                cpu_seconds=sum(row.cpu_seconds for row in rows.values()),
                gb_seconds=sum(row.gb_seconds for row in rows.values()),
            )
        )
    return stats


def live_counts(service: DurableService) -> list[LiveCount]:
    """Each function's executions not ended, by state (running, ready, paused, suspended)."""
    with service.store.snapshot() as tx:
        return tx.live_counts(service.clock())


# -- the inbox ----------------------------------------------------------------------------------


def _encode_marker(callback: OpenCallback) -> str:
    key = [callback.operation.start_time, callback.operation.callback_id]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_marker(marker: str) -> tuple[float, str]:
    invalid = InvalidParameterError(f"Invalid marker {marker!r}: pass the next_marker of a previous page of callbacks.")
    try:
        key = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except (ValueError, binascii.Error):
        raise invalid from None
    if (
        not isinstance(key, list)
        or len(key) != 2
        or not isinstance(key[0], int | float)
        or isinstance(key[0], bool)
        or not isinstance(key[1], str)
    ):
        raise invalid
    return float(key[0]), key[1]


def _next_step(callback: OpenCallback) -> str:
    op = callback.operation
    what = f"callback {op.name!r}" if op.name else f"callback {op.id}"
    step = f"Resumes {callback.function_name} after {what}"
    if callback.parent_sub_type and callback.parent_name != op.name:
        parent = f" {callback.parent_name!r}" if callback.parent_name else ""
        step += f", inside {callback.parent_sub_type}{parent}"
    if callback.checkpoints_before:
        step += f", from checkpoint {callback.checkpoints_before} ({callback.checkpoint_name})"
    return step + "."


def pending_callbacks(
    service: DurableService, limit: int = 50, marker: str | None = None, function_name: str | None = None
) -> CallbackPage:
    """Callbacks waited for by executions that have not ended (running or paused), oldest first."""
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidParameterError(f"limit must be between 1 and {_MAX_PAGE}, not {limit}.")
    after = _decode_marker(marker) if marker else None
    with service.store.snapshot() as tx:
        found = tx.open_callbacks(limit + 1, after, function_name)
    page = found[:limit]
    callbacks = []
    for callback in page:
        op = callback.operation
        started = op.start_time or 0.0
        callbacks.append(
            PendingCallback(
                callback_id=op.callback_id or "",
                execution_arn=callback.execution_arn,
                execution_name=callback.execution_name,
                function_name=callback.function_name,
                operation_id=op.id,
                name=op.name,
                started=started,
                timeout_time=started + op.callback_timeout_seconds if op.callback_timeout_seconds else None,
                heartbeat_timeout=float(op.callback_heartbeat_timeout_seconds) or None,
                next_step=_next_step(callback),
            )
        )
    return CallbackPage(callbacks, _encode_marker(page[-1]) if len(found) > limit else None)


def callback_state(service: DurableService, callback_id: str) -> CallbackState:
    """The callback with this ID, open or not; raises CallbackNotFoundError when there is none (or its execution was deleted)."""
    with service.store.snapshot() as tx:
        found = tx.find_callback(callback_id)
        execution = tx.get_execution_by_id(found[0]) if found else None
        op = tx.get_operations(found[0], [found[1]]).get(found[1]) if found else None
    if execution is None or op is None:
        raise CallbackNotFoundError(callback_id)
    return CallbackState(callback_id, op.name, execution.function_name, execution.arn, op.status, execution.status)


# -- one execution ------------------------------------------------------------------------------


def _operations(service: DurableService, arn: str) -> list[Operation]:
    with service.store.snapshot() as tx:
        execution = tx.get_execution(arn)
        if execution is None:
            raise ExecutionNotFoundError(arn)
        return all_operations(tx, execution.id)


def operation_tree(service: DurableService, arn: str) -> list[OperationNode]:
    """The execution's operations as a tree (the EXECUTION operation left out).

    The top level is in recorded order; the operations inside a context are in the order the
    function reached them (their IDs' counter), which for the branches of a ``map`` or
    ``parallel``, run at once, is not the order they were recorded in.
    """
    operations = [op for op in _operations(service, arn) if op.type is not OperationType.EXECUTION]
    known = {op.id for op in operations}
    children: dict[str | None, list[Operation]] = {}
    for op in operations:
        parent = op.parent_id if op.parent_id in known else None
        children.setdefault(parent, []).append(op)
    for parent, ops in children.items():
        if parent is not None:
            ops.sort(key=lambda op: (_counter(op.id, parent), op.position))

    def node(op: Operation) -> OperationNode:
        duration = op.end_time - op.start_time if op.end_time is not None and op.start_time is not None else None
        return OperationNode(op, [node(child) for child in children.get(op.id, [])], duration, op.attempt)

    return [node(op) for op in children.get(None, [])]


def _counter(op_id: str, parent_id: str) -> float:
    """The counter of a seed-style ID ``PARENT-N`` inside its parent; other IDs (AWS SDK handlers' hashes) sort last."""
    rest = op_id.removeprefix(f"{parent_id}-")
    return int(rest) if rest != op_id and rest.isdigit() else math.inf


def checkpoints(service: DurableService, arn: str, codec: SnapshotCodec | None = None) -> list[CheckpointView]:
    """The execution's seed-style checkpoints in order, each with the locals it saved.

    Snapshots are verified with ``codec`` (by default one with the server's key) before
    anything is unpickled; one that fails has its ``error`` set instead of variables.
    """
    operations = _operations(service, arn)
    codec = codec or service.snapshots
    stored = {op.id: op.result for op in operations}
    views = []
    for number, op in enumerate(checkpoint_operations(operations), start=1):
        variables: list[SavedVariable] = []
        error: str | None = None
        try:
            snapshot, _ = codec.decode(op.result or "", arn, op.id, stored.get)
            variables = [_variable(name, value) for name, value in snapshot.locals.items() if not name.startswith(HIDDEN)]
        except SnapshotError as refused:
            error = str(refused)
        except Exception as failed:  # noqa: BLE001 - a verified snapshot this process cannot unpickle
            error = (
                f"Checkpoint {number} of {arn} is signed, but this server cannot read it back "
                f"({type(failed).__name__}: {failed}); it may hold a value of a class this process "
                "cannot import. Serve the function's code from this server to see its variables."
            )
        views.append(CheckpointView(number, op.id, op.name, op.end_time or op.start_time or 0.0, variables, error))
    return views


def _repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel = 3
    shown.maxlist = shown.maxtuple = shown.maxset = shown.maxfrozenset = shown.maxdeque = shown.maxdict = 10
    shown.maxstring = 120
    shown.maxlong = 60
    shown.maxother = 120
    return shown


_PREVIEW = _repr()


def _variable(name: str, value: Any) -> SavedVariable:
    """A saved local rendered for reading; a value that cannot even be printed says so."""
    kind = type(value)
    type_name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    try:
        full = pprint.pformat(value, width=100, sort_dicts=False)
        preview = _PREVIEW.repr(value)
    except Exception as error:  # noqa: BLE001 - a user's __repr__ may raise anything
        text = f"<{type_name} that cannot be printed: {type(error).__name__}: {error}>"
        return SavedVariable(name, type_name, text[:PREVIEW_CHARS], len(text) > PREVIEW_CHARS, text)
    whole = len(full) <= PREVIEW_CHARS * 4 and preview == repr(value)
    if len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1] + "…"
        whole = False
    if len(full) > FULL_CHARS:
        full = full[:FULL_CHARS] + f"\n… cut at {FULL_CHARS} characters of {len(full)}"
    return SavedVariable(name, type_name, preview, not whole, full)

