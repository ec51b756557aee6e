"""Writes changes to an execution's journal: operations, numbered events, timers, its end."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from perdure.protocol.records import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    Wire,
)
from perdure.protocol.timers import Timer, TimerKind
from perdure.protocol.trace_context import TraceContext, execution_span
from perdure.service import destinations, history, reporting
from perdure.service.checkpoints import BatchOutcome
from perdure.store.base import CoreTransaction, Transaction


def create_execution(
    tx: CoreTransaction,
    *,
    execution_id: str,
    arn: str,
    function_name: str,
    qualifier: str,
    name: str,
    now: float,
    input_payload: str | None,
    timeout_seconds: int | None,
    retention_days: int | None,
    tenant_id: str | None,
    parent_arn: str | None = None,
    parent_operation_id: str | None = None,
    function_version: int | None = None,
    copies: Sequence[Operation] = (),
    restarted_from: Wire | None = None,
    trace: TraceContext | None = None,
    destination_of: Wire | None = None,
) -> Execution:
    """Stores a new execution, ready to run now: its EXECUTION operation, first event and timeout.

    A start, a chained invoke's child, a restart and a destination all come through here.
    ``copies`` are the operations a restart carries over, stored after the EXECUTION operation;
    ``restarted_from`` and ``destination_of`` go into the first event's details as
    ``RestartedFrom`` and ``DestinationOf``. ``trace``: the trace it is part of (a caller's); by
    default one of its own.
    """
    start = execution_operation(execution_id, name, input_payload, now)
    event = history.execution_started(start, now, timeout_seconds)
    # The start event says where this execution came from (the history is its audit trail).
    if restarted_from is not None:
        event = event.evolve(details={**event.details, "RestartedFrom": restarted_from})
    if destination_of is not None:
        event = event.evolve(details={**event.details, "DestinationOf": destination_of})
    # Inserted complete, its first event already counted: an insert and then an update of the
    # same row rewrote every index of the executions table twice.
    execution = Execution(
        id=execution_id,
        arn=arn,
        function_name=function_name,
        qualifier=qualifier,
        name=name,
        status=ExecutionStatus.RUNNING,
        start_time=now,
        input_payload=input_payload,
        timeout_seconds=timeout_seconds,
        function_version=function_version,
        retention_days=retention_days,
        parent_arn=parent_arn,
        parent_operation_id=parent_operation_id,
        tenant_id=tenant_id,
        ready_time=now,
        version=1,
        event_count=1,
        operation_count=max([1, *(op.position for op in copies)]),
        trace_parent=(trace or reporting.new_trace(execution_id)).header(),
    )
    tx.insert_execution(execution)
    tx.put_operations(execution.id, [start, *copies])
    tx.append_events(execution.id, [event.evolve(event_id=1)])
    if timeout_seconds:
        tx.set_timer(Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, now + timeout_seconds))
    reporting.execution_started(execution)
    return execution


def append_events(tx: CoreTransaction, execution: Execution, events: list[Event], **changes: Any) -> Execution:
    """Numbers ``events`` after the execution's last event and stores them.

    Returns the execution with its event count moved on and ``changes`` made, in one copy.
    """
    if events:
        first = execution.event_count + 1
        tx.append_events(execution.id, [e.evolve(event_id=first + i) for i, e in enumerate(events)])
        changes["event_count"] = execution.event_count + len(events)
    return execution.evolve(**changes) if changes else execution


def record(tx: CoreTransaction, execution: Execution, outcome: BatchOutcome, now: float, **changes: Any) -> Execution:
    """Stores a batch outcome; returns the execution with its counters moved on and ``changes`` made."""
    if outcome.operations:
        reporting.operations_changed(execution, outcome.operations.values(), now, _attempt_starts(tx, execution, outcome))
    for operation_id in outcome.cleared_timers:
        tx.delete_timers(execution.id, operation_id)
    if outcome.operations:
        tx.put_operations(execution.id, outcome.operations.values())
        top = max(op.position for op in outcome.operations.values())
        if top > execution.operation_count:
            changes["operation_count"] = top
    for timer in outcome.timers:
        tx.set_timer(timer)
    return append_events(tx, execution, outcome.events, **changes)


def _attempt_starts(tx: CoreTransaction, execution: Execution, outcome: BatchOutcome) -> dict[str, float]:
    """When the current attempt of each step this batch ended began, where its ``start_time`` does not say.

    That is a later attempt, whose start is the batch's (``outcome.attempt_starts``) or, for
    one started by an earlier batch, its latest StepStarted event: a read, but only for a step
    retried.
    """
    starts = dict(outcome.attempt_starts)
    later = {
        op.id for op in outcome.operations.values()
        if op.type is OperationType.STEP and op.attempt > 1 and op.id not in starts
        and (op.status.is_terminal or op.status is OperationStatus.PENDING)
    }  # fmt: skip
    if later:
        for event in tx.list_events(execution.id, 0, _STARTS_LOOKED_AT, True):
            if event.event_type == "StepStarted" and event.operation_id in later:
                starts.setdefault(event.operation_id, event.timestamp)
    return starts


# How many of an execution's latest events ``_attempt_starts`` reads for a retried step's start.
_STARTS_LOOKED_AT = 200


def wake(execution: Execution, now: float) -> Execution:
    """Marks an execution ready to run again, or notes the wake-up if an invocation holds it
    or it is paused (it then runs when the invocation ends, or when it is resumed)."""
    if execution.lease_owner is not None or execution.status is ExecutionStatus.PAUSED:
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
    and completing a callback of an ended execution is refused. An execution that a chained
    invoke started completes its parent's CHAINED_INVOKE operation, and the function's
    destination for this end (``perdure.service.destinations``) starts, in the same transaction.
    """
    version = execution.version + 1
    # Built, not read: the EXECUTION operation is what ``create_execution`` stored, unchanged
    # until now (no checkpoint writes it), so reading it back cost a statement every end.
    execution_op = execution_operation(execution.id, execution.name, execution.input_payload, execution.start_time)
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
    _complete_parent(tx, execution, now)
    _start_destination(tx, execution, now)
    reporting.execution_ended(execution, now)
    return append_events(
        tx, execution, [history.execution_ended(status.value, execution_op, now, result, error)]
    )


def _invoke_outcome(child: Execution) -> tuple[OperationStatus, str | None, ErrorObject | None]:
    """What a child's end makes of its parent's CHAINED_INVOKE: the child's result or error."""
    if child.status is ExecutionStatus.SUCCEEDED:
        return OperationStatus.SUCCEEDED, child.result, None
    if child.status is ExecutionStatus.TIMED_OUT:
        # As AWS reports it: a fixed error type, whatever the child's own timeout error says.
        return OperationStatus.TIMED_OUT, None, ErrorObject(
            message=f"The chained invoke timed out: {child.arn} exceeded its execution timeout "
            f"of {child.timeout_seconds} seconds.",
            type="ChainedInvoke.Timeout",
        )
    status = OperationStatus.STOPPED if child.status is ExecutionStatus.STOPPED else OperationStatus.FAILED
    return status, None, child.error or ErrorObject(message=f"The chained invoke's execution {child.arn} failed.")


def _complete_parent(tx: CoreTransaction, child: Execution, now: float) -> None:
    """Completes the CHAINED_INVOKE operation that started ``child`` (just ended) and wakes its execution.

    Nothing happens if the parent has ended, was deleted, or the operation is no longer open.
    """
    if child.parent_arn is None or child.parent_operation_id is None:
        return
    parent = tx.get_execution(child.parent_arn)
    if parent is None or parent.status.is_terminal:
        return
    op = tx.get_operations(parent.id, [child.parent_operation_id]).get(child.parent_operation_id)
    if op is None or op.type is not OperationType.CHAINED_INVOKE or op.status is not OperationStatus.STARTED:
        return
    version = parent.version + 1
    status, result, error = _invoke_outcome(child)
    op = op.evolve(status=status, result=result, error=error, end_time=now, version=version)
    tx.put_operations(parent.id, [op])
    parent = append_events(tx, parent.evolve(version=version), [history.operation_ended(op, now)])
    reporting.operations_changed(parent, [op], now, {})
    tx.update_execution(wake(parent, now))


def _start_destination(tx: Transaction, ended: Execution, now: float) -> None:
    """Starts the destination of ``ended``'s end, if its function has one."""
    start = destinations.destination_for(tx, ended, now)
    if start is None:
        return
    config = start.version.config if start.version else None
    create_execution(
        tx,
        execution_id=start.execution_id,
        arn=start.arn,
        function_name=start.function_name,
        qualifier=start.qualifier,
        name=start.name,
        now=now,
        input_payload=start.input_payload,
        timeout_seconds=config.execution_timeout_seconds if config else None,
        retention_days=config.retention_days if config else None,
        tenant_id=ended.tenant_id,
        function_version=start.version.version if start.version else None,
        # Its spans follow the ended execution's, in the same trace.
        trace=dataclasses.replace(reporting.trace_of(ended.id, ended.trace_parent), parent_span_id=execution_span(ended.arn)),
        destination_of=start.origin,
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
