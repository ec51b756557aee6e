"""Completing callbacks from outside: success, failure and heartbeats."""

from __future__ import annotations

from perdure.errors import CallbackAlreadyCompletedError, CallbackNotFoundError
from perdure.protocol.records import ErrorObject, Execution, Operation, OperationStatus
from perdure.protocol.timers import Timer, TimerKind
from perdure.service import history, journal, reporting
from perdure.store.base import CoreTransaction


def _open_callback(tx: CoreTransaction, callback_id: str) -> tuple[Execution, Operation]:
    found = tx.find_callback(callback_id)
    if found is None:
        raise CallbackNotFoundError(callback_id)
    execution = tx.get_execution_by_id(found[0])
    op = tx.get_operations(found[0], [found[1]]).get(found[1])
    if execution is None or op is None:
        raise CallbackNotFoundError(callback_id)
    if op.status.is_terminal:
        raise CallbackAlreadyCompletedError(callback_id, op.status.value)
    if execution.status.is_terminal:
        raise CallbackAlreadyCompletedError(
            callback_id, f"unusable: its execution has ended with status {execution.status.value}"
        )
    return execution, op


def complete(
    tx: CoreTransaction, callback_id: str, now: float, result: str | None = None, error: ErrorObject | None = None
) -> Execution:
    """Succeeds the callback with ``result``, or fails it with ``error``, and wakes its execution."""
    execution, op = _open_callback(tx, callback_id)
    version = execution.version + 1
    status = OperationStatus.FAILED if error is not None else OperationStatus.SUCCEEDED
    op = op.evolve(status=status, result=result, error=error, end_time=now, version=version)
    tx.put_operations(execution.id, [op])
    tx.delete_timers(execution.id, op.id)
    execution = journal.append_events(
        tx, execution.evolve(version=version), [history.operation_ended(op, now)]
    )
    execution = journal.wake(execution, now)
    tx.update_execution(execution)
    reporting.operations_changed(execution, [op], now, {})
    return execution


def heartbeat(tx: CoreTransaction, callback_id: str, now: float) -> None:
    """Pushes the callback's heartbeat deadline back by its heartbeat timeout."""
    execution, op = _open_callback(tx, callback_id)
    if op.callback_heartbeat_timeout_seconds:
        tx.set_timer(
            Timer(execution.id, op.id, TimerKind.CALLBACK_HEARTBEAT, now + op.callback_heartbeat_timeout_seconds)
        )
