"""Writes changes to an execution's journal: operations, numbered events, timers, its end."""

from __future__ import annotations

from perdure.service import history
from perdure.service.checkpoints import BatchOutcome
from perdure.service.model import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from perdure.store.base import Transaction

def append_events(tx: Transaction, execution: Execution, events: list[Event]) -> Execution:
    """Numbers ``events`` after the execution's last event and stores them."""
    if not events:
        return execution
    numbered = [
        Event(
            event_type=e.event_type,
            timestamp=e.timestamp,
            operation_id=e.operation_id,
            parent_id=e.parent_id,
            name=e.name,
            sub_type=e.sub_type,
            details=e.details,
            event_id=execution.event_count + i + 1,
        )
        for i, e in enumerate(events)
    ]
    tx.append_events(execution.id, numbered)
    return execution.evolve(event_count=execution.event_count + len(numbered))


def record(tx: Transaction, execution: Execution, outcome: BatchOutcome) -> Execution:
    """Stores a batch outcome; returns the execution with its counters moved on."""
    for operation_id in outcome.cleared_timers:
        tx.delete_timers(execution.id, operation_id)
    if outcome.operations:
        tx.put_operations(execution.id, outcome.operations.values())
        top = max(op.position for op in outcome.operations.values())
        execution = execution.evolve(operation_count=max(execution.operation_count, top))
    for timer in outcome.timers:
        tx.set_timer(timer)
    return append_events(tx, execution, outcome.events)


def wake(execution: Execution, now: float) -> Execution:
    """Marks an execution ready to run again, or notes the wake-up if an invocation holds it."""
    if execution.lease_owner is not None:
        return execution.evolve(woken_during_invocation=True)
    if execution.ready_time is None or execution.ready_time > now:
        return execution.evolve(ready_time=now)
    return execution


def end_execution(
    tx: Transaction,
    execution: Execution,
    status: ExecutionStatus,
    now: float,
    result: str | None = None,
    error: ErrorObject | None = None,
) -> Execution:
    """Ends an execution: final status, EXECUTION operation, history event; timers dropped.

    Open callbacks, waits and steps are left as they are: their outcome no longer matters,
    and completing a callback of an ended execution is refused.
    """
    version = execution.version + 1
    execution_op = tx.get_operations(execution.id, [execution.id])[execution.id]
    op_status = {
        ExecutionStatus.SUCCEEDED: OperationStatus.SUCCEEDED,
        ExecutionStatus.FAILED: OperationStatus.FAILED,
        ExecutionStatus.TIMED_OUT: OperationStatus.TIMED_OUT,
        ExecutionStatus.STOPPED: OperationStatus.STOPPED,
    }[status]
    execution_op = execution_op.evolve(
        status=op_status, end_time=now, result=result, error=error, version=version
    )
    tx.put_operations(execution.id, [execution_op])
    tx.delete_timers(execution.id)
    execution = execution.evolve(
        status=status,
        end_time=now,
        result=result,
        error=error,
        ready_time=None,
        version=version,
    )
    return append_events(
        tx, execution, [history.execution_ended(status.value, execution_op, now, result, error)]
    )


def execution_operation(execution_id: str, name: str, input_payload: str | None, now: float) -> Operation:
    """The EXECUTION operation every execution starts with; its ID is the execution's."""
    return Operation(
        id=execution_id,
        name=name,
        type=OperationType.EXECUTION,
        status=OperationStatus.STARTED,
        position=1,
        start_time=now,
        input_payload=input_payload,
        version=1,
    )
