"""Tells metrics and traces what the service recorded: executions, invocations, operations, timers.

Called where the service records each of these, inside the write transaction (a transaction
that then fails to commit has been counted; such failures are rare and raise to the caller).
Spans follow ``perdure.protocol.trace_context``: the execution's span is the root of its trace
(or the child of the caller's span), its invocations and top-level operations are its
children, and an operation inside a child context is the context's child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry.trace import SpanKind

from perdure.protocol.records import (
    ErrorObject,
    Execution,
    Operation,
    OperationStatus,
    OperationType,
    Usage,
)
from perdure.protocol.timers import DueWait, Timer
from perdure.protocol.trace_context import (
    TraceContext,
    execution_span,
    invocation_span,
    operation_span,
    own_trace,
    stored,
)
from perdure.telemetry import metrics, tracing
from perdure.telemetry.metrics import record


def new_trace(execution_id: str) -> TraceContext:
    """The trace of an execution no caller's trace holds: its own, recorded as the sampler says."""
    context = own_trace(execution_id)
    return dataclasses.replace(context, sampled=tracing.samples(context.trace_id))


def trace_of(execution_id: str, trace_parent: str | None) -> TraceContext:
    """The trace an execution's spans belong to (one started before traces were kept has its own)."""
    return stored(trace_parent) or own_trace(execution_id)


def _traced(execution_id: str, trace_parent: str | None) -> TraceContext | None:
    """The execution's trace if its spans are recorded (tracing on, the trace sampled), else None."""
    return tracing.recorded(trace_of(execution_id, trace_parent)) if tracing.enabled() else None


def _error(error: ErrorObject | None) -> tuple[str, str] | None:
    return (error.type or "Error", error.message or "") if error is not None else None


def _attributes(execution: Execution) -> dict[str, str | int | None]:
    return {
        "perdure.function": execution.function_name,
        "perdure.function.version": execution.function_version,
        "perdure.execution.arn": execution.arn,
        "perdure.execution.name": execution.name,
    }


def execution_started(execution: Execution) -> None:
    record(metrics.EXECUTIONS_STARTED, (execution.function_name,))


def execution_ended(execution: Execution, now: float) -> None:
    """``execution`` has ended (its final status and error set)."""
    record(metrics.EXECUTIONS_ENDED, (execution.function_name, execution.status.value))
    context = _traced(execution.id, execution.trace_parent)
    if context is None:
        return
    tracing.record_span(
        tracing.SpanRecord(
            context.trace_id,
            execution_span(execution.arn),
            context.parent_span_id,
            f"execution {execution.function_name}",
            execution.start_time,
            now,
            {**_attributes(execution), "perdure.execution.status": execution.status.value},
            _error(execution.error),
            SpanKind.SERVER,
        )
    )


def invocation_ended(execution: Execution, now: float, error: ErrorObject | None, outcome: str, usage: Usage) -> None:
    """The execution's current invocation ended (``outcome``: completed, failed or lost)."""
    function = (execution.function_name,)
    start = execution.invocation_start or now
    seconds = usage.seconds if usage.seconds is not None else max(0.0, now - start)
    record(metrics.INVOCATIONS, (execution.function_name, outcome))
    record(metrics.INVOCATION_SECONDS, function, seconds)
    record(metrics.COMPUTE_SECONDS, function, seconds)
    record(metrics.CPU_SECONDS, function, usage.cpu_seconds)
    record(metrics.GB_SECONDS, function, seconds * usage.memory_mb / 1024)
    context = _traced(execution.id, execution.trace_parent)
    if context is None:
        return
    tracing.record_span(
        tracing.SpanRecord(
            context.trace_id,
            invocation_span(execution.arn, execution.invocation),
            execution_span(execution.arn),
            f"invocation {execution.function_name}",
            start,
            now,
            {**_attributes(execution), "perdure.invocation": execution.invocation, "perdure.invocation.outcome": outcome},
            _error(error),
        )
    )


def invocation_retried(execution: Execution) -> None:
    record(metrics.RETRIES, (execution.function_name, "invocation"))


def operations_changed(
    execution: Execution, operations: Iterable[Operation], now: float, attempt_starts: Mapping[str, float]
) -> None:
    """Operations a checkpoint changed: each that ended (or, for a step, ended an attempt) is reported.

    ``attempt_starts``: when the current attempt of a step began, by operation ID, when the
    operation's ``start_time`` (its first attempt's) does not say.
    """
    context = _traced(execution.id, execution.trace_parent)
    for op in operations:
        ended = op.status.is_terminal
        retried = op.type is OperationType.STEP and op.status is OperationStatus.PENDING
        if not (ended or retried):
            continue
        start = attempt_starts.get(op.id, op.start_time if op.start_time is not None else now)
        if op.type is OperationType.STEP:
            record(metrics.STEP_SECONDS, (execution.function_name,), max(0.0, now - start))
            if retried:
                record(metrics.RETRIES, (execution.function_name, "step"))
        elif op.type is OperationType.CALLBACK:
            record(metrics.CALLBACK_WAIT, (execution.function_name, op.status.value), max(0.0, now - start))
        if context is not None:
            _operation_span(context, execution.arn, _attributes(execution), op, start, now)


def timers_fired(due: Sequence[Timer], now: float) -> None:
    for timer in due:
        record(metrics.TIMER_LATENESS, (timer.kind.value,), max(0.0, now - timer.due_time))


def wait_fired(wait: DueWait, now: float) -> None:
    """A wait fell due (read in bulk, so from the fields ``DueWait`` carries)."""
    context = _traced(wait.execution_id, wait.trace_parent)
    if context is None:
        return
    op = Operation(
        id=wait.operation_id,
        type=OperationType.WAIT,
        status=OperationStatus.SUCCEEDED,
        position=0,
        parent_id=wait.parent_id,
        name=wait.name,
        sub_type=wait.sub_type,
    )
    attributes = {"perdure.function": wait.function_name, "perdure.execution.arn": wait.execution_arn}
    start = wait.start_time if wait.start_time is not None else now
    _operation_span(context, wait.execution_arn, attributes, op, start, now)


def _operation_span(
    context: TraceContext,
    arn: str,
    attributes: Mapping[str, str | int | None],
    op: Operation,
    start: float,
    end: float,
) -> None:
    step = op.type is OperationType.STEP
    parent = operation_span(arn, op.parent_id) if op.parent_id else execution_span(arn)
    tracing.record_span(
        tracing.SpanRecord(
            context.trace_id,
            operation_span(arn, op.id, op.attempt if step else 0),
            parent,
            f"{op.type.value.lower()} {op.name or op.id}",
            start,
            end,
            {
                **attributes,
                "perdure.operation.id": op.id,
                "perdure.operation.type": op.type.value,
                "perdure.operation.name": op.name,
                "perdure.operation.sub_type": op.sub_type,
                "perdure.operation.attempt": op.attempt if step else None,
                "perdure.operation.status": op.status.value,
            },
            _error(op.error),
        )
    )
