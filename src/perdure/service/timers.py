"""What happens when a durable timer falls due."""

from __future__ import annotations

from dataclasses import dataclass, field

from perdure.service import history, journal
from perdure.service.model import ErrorObject, Event, Execution, ExecutionStatus, Operation, OperationStatus
from perdure.store.base import Timer, TimerKind, Transaction

CALLBACK_TIMEOUT = ErrorObject(message="The callback timed out.", type="Callback.Timeout")
HEARTBEAT_TIMEOUT = ErrorObject(
    message="The callback timed out: no heartbeat arrived within its heartbeat timeout.",
    type="Callback.Heartbeat",
)


def fire_due(tx: Transaction, now: float, limit: int) -> int:
    """Fires up to ``limit`` timers due at ``now``, earliest first, in the caller's transaction; returns how many.

    The batch is read in two queries (the timers' executions and operations) and its
    operations and events are written in one statement each: firing thousands of timers due at
    one moment costs a few statements, not a few per timer. The records are kept current as
    each timer fires, so two timers of one execution (a callback's timeout and its heartbeat,
    say) see each other's effect, as they would firing one by one.
    """
    due = tx.due_timers(now, limit)
    if not due:
        return 0
    tx.delete_fired_timers(due)
    stored = tx.get_executions_by_ids(timer.execution_id for timer in due)
    batch = _Batch(dict(stored), tx.get_operations_by_keys((t.execution_id, t.operation_id) for t in due if t.operation_id))
    for timer in due:
        if timer.execution_id in batch.executions:
            _apply(tx, timer, batch, now)
    tx.put_operations_of(batch.operations_written)
    tx.append_events_of(batch.events_written)
    for execution_id, execution in batch.executions.items():
        if execution is not stored[execution_id] and execution_id not in batch.ended:
            tx.update_execution(execution, before=stored[execution_id])
    return len(due)


@dataclass
class _Batch:
    """The records of a batch of timers as they fire, and what is left to write."""

    executions: dict[str, Execution]
    operations: dict[tuple[str, str], Operation]
    operations_written: list[tuple[str, Operation]] = field(default_factory=list)
    events_written: list[tuple[str, Event]] = field(default_factory=list)
    # Executions whose timeout ended them: written at once, by journal.end_execution's caller.
    ended: set[str] = field(default_factory=set)


def _apply(tx: Transaction, timer: Timer, batch: _Batch, now: float) -> None:
    """Applies a due (and deleted) timer to its execution in ``batch``."""
    execution = batch.executions[timer.execution_id]
    if execution.status.is_terminal:
        return
    if timer.kind is TimerKind.EXECUTION_TIMEOUT:
        # Rare, and it ends the execution: written at once, with what fired before it.
        tx.put_operations_of(batch.operations_written)
        tx.append_events_of(batch.events_written)
        batch.operations_written.clear()
        batch.events_written.clear()
        error = ErrorObject(
            message=f"The execution exceeded its execution timeout of {execution.timeout_seconds} seconds.",
            type="Execution.Timeout",
        )
        execution = journal.end_execution(tx, execution, ExecutionStatus.TIMED_OUT, now, error=error)
        tx.update_execution(execution)
        batch.executions[execution.id] = execution
        batch.ended.add(execution.id)
        return
    key = (execution.id, timer.operation_id)
    op = batch.operations.get(key)
    if op is None or op.status.is_terminal:
        return
    version = execution.version + 1
    event: Event | None = None
    if timer.kind is TimerKind.WAIT:
        op = op.evolve(status=OperationStatus.SUCCEEDED, end_time=now, version=version)
        event = history.operation_ended(op, now)
    elif timer.kind is TimerKind.RETRY:
        op = op.evolve(status=OperationStatus.READY, version=version)
    else:
        error = CALLBACK_TIMEOUT if timer.kind is TimerKind.CALLBACK_TIMEOUT else HEARTBEAT_TIMEOUT
        op = op.evolve(status=OperationStatus.TIMED_OUT, end_time=now, error=error, version=version)
        tx.delete_timers(execution.id, op.id)
        event = history.operation_ended(op, now)
    batch.operations[key] = op
    batch.operations_written.append((execution.id, op))
    changes: dict[str, object] = {"version": version}
    if event is not None:
        # Numbered as journal.append_events numbers them.
        batch.events_written.append((execution.id, event.evolve(event_id=execution.event_count + 1)))
        changes["event_count"] = execution.event_count + 1
    batch.executions[execution.id] = journal.wake(execution.evolve(**changes), now)


def arm_execution_timeout(tx: Transaction, execution: Execution) -> None:
    if execution.timeout_seconds:
        tx.set_timer(
            Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, execution.start_time + execution.timeout_seconds)
        )
