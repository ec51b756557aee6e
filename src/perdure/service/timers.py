"""What happens when a durable timer falls due."""

from __future__ import annotations

from perdure.service import history, journal
from perdure.service.model import ErrorObject, Execution, ExecutionStatus, OperationStatus
from perdure.store.base import Timer, TimerKind, Transaction

CALLBACK_TIMEOUT = ErrorObject(message="The callback timed out.", type="Callback.Timeout")
HEARTBEAT_TIMEOUT = ErrorObject(
    message="The callback timed out: no heartbeat arrived within its heartbeat timeout.",
    type="Callback.Heartbeat",
)


def fire(tx: Transaction, timer: Timer, now: float) -> None:
    """Applies a due timer to its execution and deletes it, in the caller's transaction."""
    tx.delete_timer(timer)
    execution = tx.get_execution_by_id(timer.execution_id)
    if execution is None or execution.status.is_terminal:
        return
    if timer.kind is TimerKind.EXECUTION_TIMEOUT:
        error = ErrorObject(
            message=f"The execution exceeded its execution timeout of {execution.timeout_seconds} seconds.",
            type="Execution.Timeout",
        )
        execution = journal.end_execution(tx, execution, ExecutionStatus.TIMED_OUT, now, error=error)
        tx.update_execution(execution)
        return
    op = tx.get_operations(execution.id, [timer.operation_id]).get(timer.operation_id)
    if op is None or op.status.is_terminal:
        return
    version = execution.version + 1
    events = []
    if timer.kind is TimerKind.WAIT:
        op = op.evolve(status=OperationStatus.SUCCEEDED, end_time=now, version=version)
        events.append(history.operation_ended(op, now))
    elif timer.kind is TimerKind.RETRY:
        op = op.evolve(status=OperationStatus.READY, version=version)
    else:
        error = CALLBACK_TIMEOUT if timer.kind is TimerKind.CALLBACK_TIMEOUT else HEARTBEAT_TIMEOUT
        op = op.evolve(status=OperationStatus.TIMED_OUT, end_time=now, error=error, version=version)
        tx.delete_timers(execution.id, op.id)
        events.append(history.operation_ended(op, now))
    tx.put_operations(execution.id, [op])
    execution = journal.append_events(tx, execution.evolve(version=version), events)
    tx.update_execution(journal.wake(execution, now))


def arm_execution_timeout(tx: Transaction, execution: Execution) -> None:
    if execution.timeout_seconds:
        tx.set_timer(
            Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, execution.start_time + execution.timeout_seconds)
        )
