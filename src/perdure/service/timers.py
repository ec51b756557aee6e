"""What happens when a durable timer falls due."""

from __future__ import annotations

from perdure.service import history, journal
from perdure.service.model import ErrorObject, Execution, ExecutionStatus, Operation, OperationStatus
from perdure.store.base import Timer, TimerKind, Transaction

CALLBACK_TIMEOUT = ErrorObject(message="The callback timed out.", type="Callback.Timeout")
HEARTBEAT_TIMEOUT = ErrorObject(
    message="The callback timed out: no heartbeat arrived within its heartbeat timeout.",
    type="Callback.Heartbeat",
)


def fire_due(tx: Transaction, now: float, limit: int) -> int:
    """Fires up to ``limit`` timers due at ``now``, earliest first, in the caller's transaction; returns how many.

    The timers' executions and operations are read in two queries for the whole batch, and
    kept up to date as each timer fires: two timers of one execution (a callback's timeout and
    its heartbeat, say) see each other's effect, as they would firing one by one.
    """
    due = tx.due_timers(now, limit)
    if not due:
        return 0
    tx.delete_fired_timers(due)
    executions = tx.get_executions_by_ids(timer.execution_id for timer in due)
    operations = tx.get_operations_by_keys((t.execution_id, t.operation_id) for t in due if t.operation_id)
    for timer in due:
        execution = executions.get(timer.execution_id)
        if execution is not None:
            executions[timer.execution_id] = _apply(tx, timer, execution, operations, now)
    return len(due)


def _apply(
    tx: Transaction, timer: Timer, execution: Execution, operations: dict[tuple[str, str], Operation], now: float
) -> Execution:
    """Applies a due (and deleted) timer to its execution; returns the execution as it stored it."""
    if execution.status.is_terminal:
        return execution
    if timer.kind is TimerKind.EXECUTION_TIMEOUT:
        error = ErrorObject(
            message=f"The execution exceeded its execution timeout of {execution.timeout_seconds} seconds.",
            type="Execution.Timeout",
        )
        execution = journal.end_execution(tx, execution, ExecutionStatus.TIMED_OUT, now, error=error)
        tx.update_execution(execution)
        return execution
    key = (execution.id, timer.operation_id)
    op = operations.get(key)
    if op is None or op.status.is_terminal:
        return execution
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
    operations[key] = op
    tx.put_operations(execution.id, [op])
    execution = journal.wake(journal.append_events(tx, execution.evolve(version=version), events), now)
    tx.update_execution(execution)
    return execution


def arm_execution_timeout(tx: Transaction, execution: Execution) -> None:
    if execution.timeout_seconds:
        tx.set_timer(
            Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, execution.start_time + execution.timeout_seconds)
        )
