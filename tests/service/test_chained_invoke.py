"""CHAINED_INVOKE in the service: a child execution per invoke, its end completing the operation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from perdure.errors import CheckpointRejectedError
from perdure.protocol.records import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    InvocationStatus,
    OperationStatus,
    OperationUpdate,
)
from perdure.protocol.versions import FunctionConfig
from perdure.service.executions import DurableService, StartRequest
from perdure.service.functions import FunctionDefaults, lookup_of
from perdure.testing import SkippableClock

FUNCTIONS = lookup_of(
    [
        FunctionDefaults("parent"),
        FunctionDefaults("echo", execution_timeout_seconds=60, retention_days=3),
    ]
)


@pytest.fixture
def service(open_service: Callable[..., DurableService]) -> DurableService:
    return open_service(functions=FUNCTIONS)


def invoke_update(op_id: str = "i1", function: str = "echo", payload: str | None = '{"x": 1}', **options: Any) -> OperationUpdate:
    wire: dict[str, Any] = {
        "Id": op_id,
        "Type": "CHAINED_INVOKE",
        "Action": "START",
        "SubType": "ChainedInvoke",
        "Name": "call-echo",
        "ChainedInvokeOptions": {"FunctionName": function, **options},
    }
    if payload is not None:
        wire["Payload"] = payload
    return OperationUpdate.from_wire(wire)


def lease_one(service: DurableService, function: str) -> Invocation:
    (invocation,) = service.lease("owner", [function], 1, 30)
    return invocation


def start_parent(service: DurableService) -> Invocation:
    service.start_execution(StartRequest("parent", "{}", execution_name="p-1"))
    return lease_one(service, "parent")


def history(service: DurableService, arn: str) -> list[Event]:
    return service.get_history(arn, max_items=1000).items


def child_of(service: DurableService, parent_arn: str) -> Execution:
    (started,) = [e for e in history(service, parent_arn) if e.event_type == "ChainedInvokeStarted"]
    return service.get_execution(started.details["DurableExecutionArn"])


def test_an_invoke_starts_a_child_execution_with_the_payload_and_the_target_defaults(service: DurableService) -> None:
    parent = start_parent(service)
    result = service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update(TenantId="tenant-7")])
    (op,) = result.operations
    assert op.status is OperationStatus.STARTED
    child = child_of(service, parent.execution_arn)
    assert child.function_name == "echo"
    assert child.input_payload == '{"x": 1}'
    assert (child.timeout_seconds, child.retention_days) == (60, 3)
    assert (child.parent_arn, child.parent_operation_id, child.tenant_id) == (parent.execution_arn, "i1", "tenant-7")
    assert child.status is ExecutionStatus.RUNNING and child.ready_time is not None
    started = history(service, parent.execution_arn)[-1]
    assert started.event_type == "ChainedInvokeStarted"
    assert started.details == {
        "FunctionName": "echo",
        "TenantId": "tenant-7",
        "Input": {"Payload": '{"x": 1}', "Truncated": False},
        "ExecutedVersion": "$LATEST",
        "DurableExecutionArn": child.arn,
    }


def test_the_childs_success_completes_the_operation_with_its_result_and_wakes_the_parent(
    service: DurableService,
) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    service.complete_invocation(parent, InvocationOutput(InvocationStatus.PENDING))
    # Suspended on the invoke: only the child is ready.
    assert service.lease("owner", ["parent"], 1, 30) == []
    child = lease_one(service, "echo")
    service.complete_invocation(child, InvocationOutput(InvocationStatus.SUCCEEDED, result='{"x": 1}'))

    resumed = lease_one(service, "parent")
    page = service.get_state(resumed.execution_arn, resumed.checkpoint_token)
    op = next(op for op in page.items if op.id == "i1")
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, '{"x": 1}')
    assert op.to_wire()["ChainedInvokeDetails"] == {"Result": '{"x": 1}'}
    types = [e.event_type for e in history(service, parent.execution_arn)]
    assert types == [
        "ExecutionStarted",
        "ChainedInvokeStarted",
        "InvocationCompleted",
        "ChainedInvokeSucceeded",
    ]
    succeeded = history(service, parent.execution_arn)[-1]
    assert succeeded.details == {"Result": {"Payload": '{"x": 1}', "Truncated": False}}


@pytest.mark.parametrize(
    ("end", "status", "event", "error"),
    [
        ("fail", OperationStatus.FAILED, "ChainedInvokeFailed", ErrorObject(message="boom", type="ValueError")),
        ("stop", OperationStatus.STOPPED, "ChainedInvokeStopped", ErrorObject(message="enough", type="Operator")),
        ("timeout", OperationStatus.TIMED_OUT, "ChainedInvokeTimedOut", None),
    ],
)
def test_the_childs_failure_timeout_or_stop_completes_the_operation_with_its_error(
    service: DurableService,
    clock: SkippableClock,
    end: str,
    status: OperationStatus,
    event: str,
    error: ErrorObject | None,
) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    service.complete_invocation(parent, InvocationOutput(InvocationStatus.PENDING))
    child = child_of(service, parent.execution_arn)
    if end == "fail":
        invocation = lease_one(service, "echo")
        service.complete_invocation(invocation, InvocationOutput(InvocationStatus.FAILED, error=error))
    elif end == "stop":
        service.stop_execution(child.arn, error)
    else:
        clock.advance(61)
        service.fire_due_timers()
    resumed = lease_one(service, "parent")
    op = next(op for op in service.get_state(resumed.execution_arn, resumed.checkpoint_token).items if op.id == "i1")
    assert op.status is status
    if error is not None:
        assert op.error == error
    else:
        assert op.error is not None and op.error.type == "ChainedInvoke.Timeout"
        assert "60 seconds" in (op.error.message or "")
    last = history(service, parent.execution_arn)[-1]
    assert last.event_type == event
    assert last.details["Error"]["Payload"] == op.error.to_wire()


def test_an_unknown_target_fails_the_operation_at_once_without_a_child(service: DurableService) -> None:
    parent = start_parent(service)
    result = service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update(function="nope")])
    (op,) = result.operations
    assert op.status is OperationStatus.FAILED
    assert op.error is not None and op.error.type == "ResourceNotFoundException"
    assert "Function not found: nope" in (op.error.message or "")
    events = history(service, parent.execution_arn)
    assert [e.event_type for e in events[-2:]] == ["ChainedInvokeStarted", "ChainedInvokeFailed"]
    assert events[-2].details == {"FunctionName": "nope"}
    assert service.lease("owner", ["nope", "echo"], 10, 30) == []


def test_a_service_told_of_no_functions_fails_every_invoke(open_service: Callable[..., DurableService]) -> None:
    service = open_service()
    parent = start_parent(service)
    (op,) = service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()]).operations
    assert op.status is OperationStatus.FAILED


def test_a_qualified_name_or_an_arn_reaches_the_function_with_that_version(service: DurableService) -> None:
    first = service.publish_version("echo", b"echo one", FunctionConfig("echo.py:echo"))
    service.publish_version("echo", b"echo two", FunctionConfig("echo.py:echo"))
    service.put_alias("echo", "stable", first.version)
    parent = start_parent(service)
    arn = service.function_arn("echo", "stable")
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update("a", function=arn)])
    child = child_of(service, parent.execution_arn)
    assert (child.function_name, child.qualifier, child.function_version) == ("echo", "stable", 1)
    assert child.arn.startswith(f"{arn}/durable-execution/")


def test_an_unknown_version_fails_the_chained_invoke_not_the_checkpoint(service: DurableService) -> None:
    parent = start_parent(service)
    result = service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update("a", function="echo:7")])
    [op] = [op for op in result.operations if op.id == "a"]
    assert op.status.value == "FAILED" and op.error is not None
    assert op.error.type == "ResourceNotFoundException" and "echo has no version or alias '7'" in (op.error.message or "")


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (invoke_update(function="bad name!"), "Invalid function name"),
        (invoke_update(TenantId="tab\there"), "TenantId"),
        (
            OperationUpdate.from_wire({"Id": "i1", "Type": "CHAINED_INVOKE", "Action": "START"}),
            "needs ChainedInvokeOptions",
        ),
        (
            OperationUpdate.from_wire(
                {"Id": "i1", "Type": "CHAINED_INVOKE", "Action": "SUCCEED", "ChainedInvokeOptions": {"FunctionName": "echo"}}
            ),
            "do not accept the SUCCEED action",
        ),
    ],
)
def test_a_malformed_invoke_is_rejected_and_records_nothing(
    service: DurableService, update: OperationUpdate, reason: str
) -> None:
    parent = start_parent(service)
    with pytest.raises(CheckpointRejectedError, match=reason):
        service.checkpoint(parent.execution_arn, parent.checkpoint_token, [update])
    assert [e.event_type for e in history(service, parent.execution_arn)] == ["ExecutionStarted"]
    assert service.lease("owner", ["echo"], 1, 30) == []


def test_an_invoke_cannot_be_started_twice(service: DurableService) -> None:
    parent = start_parent(service)
    result = service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    assert result.checkpoint_token is not None
    with pytest.raises(CheckpointRejectedError, match="already started"):
        service.checkpoint(parent.execution_arn, result.checkpoint_token, [invoke_update()])


def test_a_child_ending_after_its_parent_ended_changes_nothing_in_the_parent(service: DurableService) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    service.complete_invocation(parent, InvocationOutput(InvocationStatus.PENDING))
    service.stop_execution(parent.execution_arn)
    before = history(service, parent.execution_arn)
    child = lease_one(service, "echo")
    service.complete_invocation(child, InvocationOutput(InvocationStatus.SUCCEEDED, result="1"))
    assert history(service, parent.execution_arn) == before
    assert service.get_execution(child.execution_arn).status is ExecutionStatus.SUCCEEDED


def test_a_child_of_a_deleted_parent_ends_normally(service: DurableService) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    service.complete_invocation(parent, InvocationOutput(InvocationStatus.PENDING))
    service.stop_execution(parent.execution_arn)
    service.delete_execution(parent.execution_arn)
    child = lease_one(service, "echo")
    ended = service.complete_invocation(child, InvocationOutput(InvocationStatus.SUCCEEDED, result=json.dumps("ok")))
    assert ended is not None and ended.status is ExecutionStatus.SUCCEEDED


def test_a_child_waits_a_moment_for_the_parent_invocation_that_started_it(
    service: DurableService, clock: SkippableClock
) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    # The parent's invocation still runs: the child is not run yet...
    assert service.lease("owner", ["echo"], 1, 30) == []
    service.complete_invocation(parent, InvocationOutput(InvocationStatus.PENDING))
    # ...and runs as soon as it has ended.
    assert len(service.lease("owner", ["echo"], 1, 30)) == 1


def test_a_parent_invocation_that_runs_on_holds_its_child_up_a_second_at_most(
    service: DurableService, clock: SkippableClock
) -> None:
    parent = start_parent(service)
    service.checkpoint(parent.execution_arn, parent.checkpoint_token, [invoke_update()])
    clock.advance(0.5)
    assert service.lease("owner", ["echo"], 1, 30) == []
    clock.advance(0.5)
    assert len(service.lease("owner", ["echo"], 1, 30)) == 1
