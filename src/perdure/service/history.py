"""Builds history events in the shapes of GetDurableExecutionHistory (``Event`` and ``…Details``).

Timestamps inside details are epoch seconds, which is how the JSON API encodes timestamps.
"""

from __future__ import annotations

from perdure.protocol.records import ErrorObject, Event, Operation, OperationStatus, OperationType, Wire, assemble

# Like AWS's history, events carry large payloads truncated (`Truncated: true`): the full value
# stays on its operation, and a history row never repeats a megabyte-sized result or snapshot.
# AWS's own history keeps a 240 KiB chained-invoke input whole (conformance case 5-7), so the
# limit is that of an asynchronous invocation's payload, 256 KiB.
EVENT_PAYLOAD_LIMIT = 256 * 1024


def _result(payload: str | None) -> Wire:
    if payload is None:
        return {}
    if len(payload) > EVENT_PAYLOAD_LIMIT:
        return {"Truncated": True}
    return {"Payload": payload, "Truncated": False}


def _error(error: ErrorObject | None) -> Wire:
    return {"Payload": error.to_wire()} if error else {}


def _event(event_type: str, op: Operation, now: float, details: Wire) -> Event:
    return Event(
        event_type=event_type,
        timestamp=now,
        operation_id=op.id,
        parent_id=op.parent_id,
        name=op.name,
        sub_type=op.sub_type,
        details=details,
    )


def execution_started(op: Operation, now: float, timeout_seconds: int | None) -> Event:
    details: Wire = {"Input": _result(op.input_payload)}
    if timeout_seconds:
        details["ExecutionTimeout"] = timeout_seconds
    return _event("ExecutionStarted", op, now, details)


def execution_ended(status: str, op: Operation, now: float, result: str | None, error: ErrorObject | None) -> Event:
    """``status`` is the execution's final status: SUCCEEDED, FAILED, TIMED_OUT or STOPPED."""
    event_type = {
        "SUCCEEDED": "ExecutionSucceeded",
        "FAILED": "ExecutionFailed",
        "TIMED_OUT": "ExecutionTimedOut",
        "STOPPED": "ExecutionStopped",
    }[status]
    if status == "SUCCEEDED":
        return _event(event_type, op, now, {"Result": _result(result)})
    return _event(event_type, op, now, {"Error": _error(error)})


# Keyed by the enums themselves (StrEnum members hash as their values): an enum's ``.value``
# is a Python-level property, and a checkpoint builds these events by the thousand.
_STARTED = {OperationType.STEP: "StepStarted", OperationType.CONTEXT: "ContextStarted"}
_KIND = {
    OperationType.STEP: "Step",
    OperationType.CONTEXT: "Context",
    OperationType.WAIT: "Wait",
    OperationType.CALLBACK: "Callback",
    OperationType.CHAINED_INVOKE: "ChainedInvoke",
}
_OUTCOME = {
    OperationStatus.SUCCEEDED: "Succeeded",
    OperationStatus.FAILED: "Failed",
    OperationStatus.CANCELLED: "Cancelled",
    OperationStatus.TIMED_OUT: "TimedOut",
    OperationStatus.STOPPED: "Stopped",
}


def operation_started(op: Operation, now: float) -> Event:
    if op.type is OperationType.WAIT:
        duration = round((op.scheduled_end_time or now) - now)
        return _event(
            "WaitStarted",
            op,
            now,
            {"Duration": duration, "ScheduledEndTimestamp": op.scheduled_end_time},
        )
    if op.type is OperationType.CALLBACK:
        details: Wire = {"CallbackId": op.callback_id}
        if op.callback_timeout_seconds:
            details["Timeout"] = op.callback_timeout_seconds
        if op.callback_heartbeat_timeout_seconds:
            details["HeartbeatTimeout"] = op.callback_heartbeat_timeout_seconds
        return _event("CallbackStarted", op, now, details)
    return _event(_STARTED[op.type], op, now, {})


def chained_invoke_started(
    op: Operation,
    now: float,
    function_name: str,
    tenant_id: str | None,
    payload: str | None,
    child_arn: str | None,
    executed_version: str | None,
) -> Event:
    """ChainedInvokeStarted; a target that could not be resolved has no child, version nor input."""
    details: Wire = {"FunctionName": function_name}
    if tenant_id is not None:
        details["TenantId"] = tenant_id
    if payload is not None:
        details["Input"] = _result(payload)
    if executed_version is not None:
        details["ExecutedVersion"] = executed_version
    if child_arn is not None:
        details["DurableExecutionArn"] = child_arn
    return _event("ChainedInvokeStarted", op, now, details)


def _reason(reason: str | None) -> Wire:
    return {"Reason": {"Payload": reason, "Truncated": False}} if reason is not None else {}


def execution_paused(op: Operation, now: float, requested: float, reason: str | None, timeout_paused: bool) -> Event:
    """ExecutionPaused, at the moment the execution paused (``requested`` is when the pause was asked for)."""
    details: Wire = {"PauseRequestTimestamp": requested, **_reason(reason), "ExecutionTimeoutPaused": timeout_paused}
    return _event("ExecutionPaused", op, now, details)


def execution_resumed(op: Operation, now: float, reason: str | None) -> Event:
    return _event("ExecutionResumed", op, now, {"ResumeRequestTimestamp": now, **_reason(reason)})


def step_retried(op: Operation, now: float, delay_seconds: int) -> Event:
    """An attempt to be tried again: StepFailed with its error, or StepSucceeded with the state
    a polling step (wait_for_condition) carries to its next attempt, as AWS's history has it."""
    retry = {"CurrentAttempt": op.attempt, "NextAttemptDelaySeconds": delay_seconds}
    if op.error is None:
        return _event("StepSucceeded", op, now, {"Result": _result(op.result), "RetryDetails": retry})
    return _event("StepFailed", op, now, {"Error": _error(op.error), "RetryDetails": retry})


def operation_ended(op: Operation, now: float) -> Event:
    """The event for ``op`` having reached its terminal status."""
    kind = _KIND[op.type]
    outcome = _OUTCOME[op.status]
    if op.type is OperationType.WAIT and outcome == "Succeeded":
        return wait_succeeded(op.id, op.parent_id, op.name, op.sub_type, op.start_time, op.scheduled_end_time, now)
    details: Wire
    if outcome == "Succeeded":
        details = {"Result": _result(op.result)}
    else:
        details = {"Error": _error(op.error)}
    if op.type is OperationType.STEP:
        details["RetryDetails"] = {"CurrentAttempt": op.attempt}
    return _event(f"{kind}{outcome}", op, now, details)


def wait_succeeded(
    operation_id: str,
    parent_id: str | None,
    name: str | None,
    sub_type: str | None,
    start_time: float | None,
    scheduled_end_time: float | None,
    now: float,
    event_id: int = 0,
) -> Event:
    """The ``WaitSucceeded`` event of a wait that fell due, from the wait's fields alone.

    Waits fire by the thousand (``perdure.service.timers.fire_waits``), so the event is built
    without ``Event.__init__``.
    """
    return assemble(
        Event,
        {
            "event_type": "WaitSucceeded",
            "timestamp": now,
            "operation_id": operation_id,
            "parent_id": parent_id,
            "name": name,
            "sub_type": sub_type,
            "details": {"Duration": round((scheduled_end_time or now) - (start_time or now))},
            "event_id": event_id,
        },
    )


def invocation_completed(start: float, now: float, request_id: str, error: ErrorObject | None) -> Event:
    details: Wire = {
        "StartTimestamp": start,
        "EndTimestamp": now,
        "RequestId": request_id,
    }
    if error:
        details["Error"] = _error(error)
    return Event(event_type="InvocationCompleted", timestamp=now, details=details)
