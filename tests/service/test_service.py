"""The service's rules, on real SQLite and PostgreSQL stores, with time moved by hand instead of waited for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perdure.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CheckpointRejectedError,
    ExecutionAlreadyExistsError,
    ExecutionNotFoundError,
    PayloadTooLargeError,
    StaleCheckpointTokenError,
)
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import (
    ErrorObject,
    Execution,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    InvocationStatus,
    OperationStatus,
    OperationUpdate,
)
from perdure.service.executions import DurableService, StartRequest
from perdure.service.invocations import InvocationRetryPolicy
from perdure.testing import SkippableClock

ServiceFactory = Callable[..., DurableService]


def update(op_id: str, type_: str, action: str, **fields: Any) -> OperationUpdate:
    return OperationUpdate.from_wire({"Id": op_id, "Type": type_, "Action": action, **fields})


def start_and_lease(service: DurableService, payload: str = '{"n": 1}') -> Invocation:
    service.start_execution(StartRequest("orders", payload))
    (invocation,) = service.lease("owner-a", ["orders"], 1, 30)
    return invocation


def operation(service: DurableService, invocation: Invocation, op_id: str) -> Any:
    page = service.get_state(invocation.execution_arn, invocation.checkpoint_token)
    return next(op for op in page.items if op.id == op_id)


def test_starting_a_named_execution_again_with_the_same_input_returns_it(service: DurableService) -> None:
    first = service.start_execution(StartRequest("orders", '{"n": 1}', execution_name="o-1"))
    again = service.start_execution(StartRequest("orders", '{"n": 1}', execution_name="o-1"))
    assert first.created and not again.created
    assert again.execution.arn == first.execution.arn


def test_starting_a_named_execution_with_another_input_is_a_conflict(service: DurableService) -> None:
    service.start_execution(StartRequest("orders", '{"n": 1}', execution_name="o-1"))
    with pytest.raises(ExecutionAlreadyExistsError, match="already exists with a different input"):
        service.start_execution(StartRequest("orders", '{"n": 2}', execution_name="o-1"))


def test_step_attempts_count_retries_and_the_retry_timer_makes_it_ready(
    service: DurableService, clock: SkippableClock
) -> None:
    invocation = start_and_lease(service)
    arn, token = invocation.execution_arn, invocation.checkpoint_token
    error = {"ErrorType": "ValueError", "ErrorMessage": "flaky"}
    result = service.checkpoint(
        arn,
        token,
        [
            update("s1", "STEP", "START", Name="charge"),
            update("s1", "STEP", "RETRY", Error=error, StepOptions={"NextAttemptDelaySeconds": 5}),
        ],
    )
    (retried,) = result.operations
    assert retried.status is OperationStatus.PENDING and retried.attempt == 1
    assert retried.next_attempt_time == clock.now + 5
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))

    assert service.lease("owner-a", ["orders"], 1, 30) == []
    clock.advance(5)
    (second,) = service.lease("owner-a", ["orders"], 1, 30)
    assert operation(service, second, "s1").status is OperationStatus.READY
    result = service.checkpoint(
        arn,
        second.checkpoint_token,
        [update("s1", "STEP", "START"), update("s1", "STEP", "SUCCEED", Payload='"paid"')],
    )
    (done,) = result.operations
    assert (done.status, done.attempt, done.result) == (OperationStatus.SUCCEEDED, 2, '"paid"')


def test_a_checkpoint_with_a_stale_token_is_refused_and_records_nothing(
    service: DurableService, clock: SkippableClock
) -> None:
    first = start_and_lease(service)
    clock.advance(31)  # the first invocation's lease runs out: it counts as lost and is retried at once
    (second,) = service.lease("owner-b", ["orders"], 1, 30)
    with pytest.raises(StaleCheckpointTokenError, match="^Invalid checkpoint token"):
        service.checkpoint(first.execution_arn, first.checkpoint_token, [update("s1", "STEP", "START")])
    page = service.get_state(second.execution_arn, second.checkpoint_token)
    assert [op.id for op in page.items] == [page.items[0].id]  # only the EXECUTION operation


def test_a_repeated_client_token_is_applied_once(service: DurableService) -> None:
    invocation = start_and_lease(service)
    batch = [update("s1", "STEP", "START"), update("s1", "STEP", "SUCCEED", Payload="1")]
    first = service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, batch, "ct-1")
    again = service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, batch, "ct-1")
    assert again.checkpoint_token == first.checkpoint_token
    assert [op.id for op in again.operations] == ["s1"]
    events = service.get_history(invocation.execution_arn).items
    assert [e.event_type for e in events].count("StepSucceeded") == 1


def test_a_checkpoint_reply_carries_only_what_changed_since_the_token(service: DurableService) -> None:
    invocation = start_and_lease(service)
    arn = invocation.execution_arn
    first = service.checkpoint(arn, invocation.checkpoint_token, [update("a", "STEP", "START")])
    assert first.checkpoint_token is not None
    second = service.checkpoint(arn, first.checkpoint_token, [update("b", "WAIT", "START", WaitOptions={"WaitSeconds": 3})])
    assert [op.id for op in second.operations] == ["b"]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([("w", "WAIT", "START", {}), ("w", "WAIT", "START", {})], "updates this operation twice"),
        ([("s", "STEP", "SUCCEED", {"Error": {"ErrorMessage": "x"}})], "SUCCEED update cannot carry an Error"),
        ([("s", "STEP", "START", {"ParentId": "nope"})], "is not a started CONTEXT"),
        ([("e", "EXECUTION", "SUCCEED", {}), ("s", "STEP", "START", {})], "must be the last update"),
        ([("w", "WAIT", "RETRY", {})], "do not accept the RETRY action"),
        ([("w", "WAIT", "START", {"WaitOptions": {"WaitSeconds": 0}})], "WaitSeconds must be"),
    ],
)
def test_a_batch_that_breaks_a_rule_is_refused_whole(
    service: DurableService, batch: list[tuple[str, str, str, dict[str, Any]]], message: str
) -> None:
    invocation = start_and_lease(service)
    updates = [update(i, t, a, **f) for i, t, a, f in batch]
    with pytest.raises(CheckpointRejectedError, match=message):
        service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, updates)
    page = service.get_state(invocation.execution_arn, invocation.checkpoint_token)
    assert len(page.items) == 1


def test_a_step_that_already_succeeded_cannot_be_changed(service: DurableService) -> None:
    invocation = start_and_lease(service)
    arn = invocation.execution_arn
    reply = service.checkpoint(arn, invocation.checkpoint_token, [update("s", "STEP", "START"), update("s", "STEP", "SUCCEED", Payload="1")])
    assert reply.checkpoint_token is not None
    with pytest.raises(CheckpointRejectedError, match="already SUCCEEDED"):
        service.checkpoint(arn, reply.checkpoint_token, [update("s", "STEP", "FAIL", Error={"ErrorMessage": "x"})])


def test_a_wait_fires_on_time_after_the_service_restarts(open_service: ServiceFactory, clock: SkippableClock) -> None:
    service = open_service()
    invocation = start_and_lease(service)
    service.checkpoint(
        invocation.execution_arn,
        invocation.checkpoint_token,
        [update("w", "WAIT", "START", WaitOptions={"WaitSeconds": 3600})],
    )
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))
    service.store.close()

    restarted = open_service()
    clock.advance(3599)
    assert restarted.lease("owner-b", ["orders"], 1, 30) == []
    assert restarted.next_wakeup() == clock.now + 1
    clock.advance(1)
    (resumed,) = restarted.lease("owner-b", ["orders"], 1, 30)
    assert operation(restarted, resumed, "w").status is OperationStatus.SUCCEEDED


def _callback(service: DurableService, invocation: Invocation, **options: int) -> str:
    reply = service.checkpoint(
        invocation.execution_arn,
        invocation.checkpoint_token,
        [update("c", "CALLBACK", "START", CallbackOptions=options)],
    )
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))
    callback_id = reply.operations[0].callback_id
    assert callback_id is not None and len(callback_id) >= 22  # at least 128 random bits
    return callback_id


def test_a_completed_callback_wakes_the_execution_and_cannot_complete_twice(service: DurableService) -> None:
    invocation = start_and_lease(service)
    callback_id = _callback(service, invocation)
    assert service.lease("owner-a", ["orders"], 1, 30) == []
    service.succeed_callback(callback_id, '{"approved": true}')
    (resumed,) = service.lease("owner-a", ["orders"], 1, 30)
    op = operation(service, resumed, "c")
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, '{"approved": true}')
    with pytest.raises(CallbackAlreadyCompletedError, match="already SUCCEEDED"):
        service.fail_callback(callback_id, ErrorObject(message="late"))
    with pytest.raises(CallbackNotFoundError, match="Callback not found"):
        service.succeed_callback("no-such-callback", None)


def test_a_callback_times_out_unless_heartbeats_arrive(service: DurableService, clock: SkippableClock) -> None:
    invocation = start_and_lease(service)
    callback_id = _callback(service, invocation, TimeoutSeconds=100, HeartbeatTimeoutSeconds=10)
    for _ in range(3):
        clock.advance(8)
        service.heartbeat_callback(callback_id)
        assert service.lease("owner-a", ["orders"], 1, 30) == []
    clock.advance(10)
    (resumed,) = service.lease("owner-a", ["orders"], 1, 30)
    op = operation(service, resumed, "c")
    assert op.status is OperationStatus.TIMED_OUT
    assert op.error.type == "Callback.Heartbeat"


def test_the_execution_timeout_ends_the_execution(service: DurableService, clock: SkippableClock) -> None:
    start = service.start_execution(StartRequest("orders", None, timeout_seconds=60))
    clock.advance(60)
    service.fire_due_timers()
    ended = service.get_execution(start.execution.arn)
    assert ended.status is ExecutionStatus.TIMED_OUT
    assert "execution timeout of 60 seconds" in (ended.error.message if ended.error else "")


def test_crashed_invocations_are_retried_with_backoff_then_fail_the_execution(
    open_service: ServiceFactory, clock: SkippableClock
) -> None:
    service = open_service(invocation_retries=InvocationRetryPolicy(max_attempts=3, base_delay_seconds=2))
    invocation = start_and_lease(service)
    crash = ErrorObject(message="boom", type="Runtime.ExitError")
    service.fail_invocation(invocation, crash)
    clock.advance(1.9)
    assert service.lease("owner-a", ["orders"], 1, 30) == []
    clock.advance(0.1)
    (second,) = service.lease("owner-a", ["orders"], 1, 30)
    service.fail_invocation(second, crash)
    clock.advance(4)
    (third,) = service.lease("owner-a", ["orders"], 1, 30)
    ended = service.fail_invocation(third, crash)
    assert isinstance(ended, Execution) and ended.status is ExecutionStatus.FAILED
    assert ended.error == crash
    completed = [e for e in service.get_history(ended.arn).items if e.event_type == "InvocationCompleted"]
    assert len(completed) == 3 and completed[0].details["Error"]["Payload"]["ErrorMessage"] == "boom"


def test_state_and_history_come_in_pages(service: DurableService) -> None:
    invocation = start_and_lease(service)
    arn = invocation.execution_arn
    updates = [update(f"s{i}", "STEP", "SUCCEED", Payload=str(i)) for i in range(5)]
    service.checkpoint(arn, invocation.checkpoint_token, updates)
    first = service.get_state(arn, invocation.checkpoint_token, max_items=4)
    rest = service.get_state(arn, invocation.checkpoint_token, first.next_marker, max_items=4)
    assert len(first.items) == 4 and rest.next_marker is None
    assert [op.id for op in first.items + rest.items][1:] == [f"s{i}" for i in range(5)]
    events = service.get_history(arn, max_items=2)
    assert [e.event_id for e in events.items] == [1, 2] and events.next_marker == "2"
    more = service.get_history(arn, events.next_marker, max_items=2)
    assert [e.event_id for e in more.items] == [3, 4]


def test_oversized_and_unknown_inputs_are_refused(open_service: ServiceFactory) -> None:
    service = open_service(max_payload_bytes=100)
    with pytest.raises(PayloadTooLargeError, match="over the limit of 100 bytes"):
        service.start_execution(StartRequest("orders", "x" * 101))
    assert service.list_executions(ExecutionQuery()).executions == []
    with pytest.raises(ExecutionNotFoundError, match="Durable execution not found"):
        service.get_execution("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST/durable-execution/x/y")


def test_children_of_a_finished_context_are_left_out_of_state_unless_replayed(service: DurableService) -> None:
    invocation = start_and_lease(service)
    arn, token = invocation.execution_arn, invocation.checkpoint_token
    batch = [
        update("quiet", "CONTEXT", "START"),
        update("quiet-1", "STEP", "SUCCEED", ParentId="quiet", Payload="1"),
        update("quiet", "CONTEXT", "SUCCEED", Payload="1", ContextOptions={"ReplayChildren": False}),
        update("loud", "CONTEXT", "START"),
        update("loud-1", "STEP", "SUCCEED", ParentId="loud", Payload="2"),
        update("loud", "CONTEXT", "SUCCEED", Payload="summary", ContextOptions={"ReplayChildren": True}),
        update("open", "CONTEXT", "START"),
        update("open-1", "STEP", "SUCCEED", ParentId="open", Payload="3"),
    ]
    service.checkpoint(arn, token, batch)
    ids = [op.id for op in service.get_state(arn, token).items][1:]
    assert ids == ["quiet", "loud", "loud-1", "open", "open-1"]


def test_a_large_result_checkpointed_on_the_execution_ends_it_and_lives_in_the_blob_folder(
    tmp_path: Path, service: DurableService
) -> None:
    invocation = start_and_lease(service)
    big = '"' + "x" * 300_000 + '"'
    reply = service.checkpoint(
        invocation.execution_arn,
        invocation.checkpoint_token,
        [update("execution-result-1", "EXECUTION", "SUCCEED", Payload=big)],
    )
    assert reply.checkpoint_token is None
    ended = service.complete_invocation(invocation, InvocationOutput(InvocationStatus.SUCCEEDED, result=""))
    assert ended is not None and ended.status is ExecutionStatus.SUCCEEDED
    assert service.get_execution(invocation.execution_arn).result == big
    blobs = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].stat().st_size == len(big)


def test_a_process_leases_only_the_functions_it_serves(service: DurableService) -> None:
    service.start_execution(StartRequest("billing", None))
    assert service.lease("owner-a", ["orders"], 5, 30) == []
    (invocation,) = service.lease("owner-b", ["billing"], 5, 30)
    assert invocation.function_name == "billing"


def test_history_events_carry_large_payloads_truncated(service: DurableService) -> None:
    invocation = start_and_lease(service)
    big = '"' + "y" * 300_000 + '"'
    service.checkpoint(
        invocation.execution_arn,
        invocation.checkpoint_token,
        [update("s", "STEP", "START"), update("s", "STEP", "SUCCEED", Payload=big)],
    )
    (succeeded,) = [e for e in service.get_history(invocation.execution_arn).items if e.event_type == "StepSucceeded"]
    assert succeeded.details["Result"] == {"Truncated": True}
    assert operation(service, invocation, "s").result == big
