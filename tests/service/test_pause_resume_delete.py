"""Pause, resume and delete in the service, with time moved by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perdure.errors import (
    ConflictError,
    ExecutionNotFoundError,
    InvalidParameterError,
    StaleCheckpointTokenError,
)
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import (
    MAX_PAUSED_TIMEOUT_SECONDS,
    ErrorObject,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    InvocationStatus,
    OperationStatus,
    OperationUpdate,
    to_datetime,
)
from perdure.service.executions import DurableService, StartRequest
from perdure.testing import SkippableClock


@pytest.fixture
def service(open_service: Callable[..., DurableService]) -> DurableService:
    # Payloads over 100 characters go to blobs, so that deleting is seen to take them too.
    return open_service(inline_limit=100)


def update(op_id: str, type_: str, action: str, **fields: Any) -> OperationUpdate:
    return OperationUpdate.from_wire({"Id": op_id, "Type": type_, "Action": action, **fields})


def start(service: DurableService, timeout: int | None = None, payload: str = "{}") -> str:
    return service.start_execution(StartRequest("orders", payload, timeout_seconds=timeout)).execution.arn


def lease(service: DurableService) -> list[Invocation]:
    return service.lease("owner", ["orders"], 10, 30)


def events(service: DurableService, arn: str) -> list[str]:
    return [e.event_type for e in service.get_history(arn, max_items=1000).items]


def suspend_on_wait(service: DurableService, arn: str, seconds: int = 10) -> None:
    (invocation,) = lease(service)
    service.checkpoint(arn, invocation.checkpoint_token, [update("w", "WAIT", "START", WaitOptions={"WaitSeconds": seconds})])
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))


def test_a_paused_execution_is_not_invoked_until_resumed(service: DurableService, clock: SkippableClock) -> None:
    arn = start(service)
    paused = service.pause_execution(arn, reason="maintenance")
    assert paused.status is ExecutionStatus.PAUSED
    assert lease(service) == []
    wire = service.get_execution(arn).to_wire()
    assert wire["Status"] == "PAUSED"
    assert wire["PauseDetails"] == {
        "PauseRequestTimestamp": to_datetime(clock.now),
        "ExecutionTimeoutPaused": True,
        "Reason": "maintenance",
    }
    clock.advance(5)
    resumed = service.resume_execution(arn, reason="done")
    assert resumed.status is ExecutionStatus.RUNNING and "PauseDetails" not in resumed.to_wire()
    assert len(lease(service)) == 1
    history = service.get_history(arn).items
    assert [e.event_type for e in history] == ["ExecutionStarted", "ExecutionPaused", "ExecutionResumed"]
    assert history[1].details == {
        "PauseRequestTimestamp": clock.now - 5,
        "Reason": {"Payload": "maintenance", "Truncated": False},
        "ExecutionTimeoutPaused": True,
    }
    assert history[2].details == {"ResumeRequestTimestamp": clock.now, "Reason": {"Payload": "done", "Truncated": False}}


def test_timers_fire_while_paused_and_resuming_then_invokes_at_once(service: DurableService, clock: SkippableClock) -> None:
    arn = start(service)
    suspend_on_wait(service, arn, seconds=10)
    service.pause_execution(arn)
    clock.advance(10)
    assert lease(service) == []
    with service.store.snapshot() as tx:
        execution = tx.get_execution(arn)
        assert execution is not None
        op = tx.get_operations(execution.id, ["w"])["w"]
    assert op.status is OperationStatus.SUCCEEDED
    assert service.next_wakeup() is None
    service.resume_execution(arn)
    assert len(lease(service)) == 1


def test_resuming_with_nothing_new_leaves_the_execution_waiting(service: DurableService) -> None:
    arn = start(service)
    suspend_on_wait(service, arn, seconds=100)
    service.pause_execution(arn)
    service.resume_execution(arn)
    assert lease(service) == []
    assert events(service, arn)[-2:] == ["ExecutionPaused", "ExecutionResumed"]


def test_a_pause_during_an_invocation_takes_effect_at_its_next_checkpoint(service: DurableService) -> None:
    arn = start(service)
    (invocation,) = lease(service)
    pausing = service.pause_execution(arn)
    assert pausing.status is ExecutionStatus.PAUSING
    assert "PauseDetails" in pausing.to_wire()
    result = service.checkpoint(
        arn, invocation.checkpoint_token, [update("s", "STEP", "START"), update("s", "STEP", "SUCCEED", Payload="1")]
    )
    assert result.operations[0].status is OperationStatus.SUCCEEDED  # recorded
    assert service.get_execution(arn).status is ExecutionStatus.PAUSED
    assert result.checkpoint_token is not None
    with pytest.raises(StaleCheckpointTokenError):
        service.checkpoint(arn, result.checkpoint_token, [update("t", "STEP", "START")])
    assert service.complete_invocation(invocation, InvocationOutput(InvocationStatus.SUCCEEDED, result="1")) is None
    assert events(service, arn)[-3:] == ["StepSucceeded", "InvocationCompleted", "ExecutionPaused"]
    service.resume_execution(arn)
    (again,) = lease(service)
    ops = {op.id: op for op in service.get_state(arn, again.checkpoint_token).items}
    assert ops["s"].status is OperationStatus.SUCCEEDED


def test_a_pause_during_an_invocation_that_ends_first_takes_effect_at_its_end(service: DurableService) -> None:
    arn = start(service)
    (invocation,) = lease(service)
    token = invocation.checkpoint_token
    service.checkpoint(arn, token, [update("w", "WAIT", "START", WaitOptions={"WaitSeconds": 50})])
    service.pause_execution(arn)
    ended = service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))
    assert ended is not None and ended.status is ExecutionStatus.PAUSED
    service.resume_execution(arn)
    assert lease(service) == []  # it waits for its timer, as before the pause


def test_resuming_a_pausing_execution_cancels_the_pause(service: DurableService) -> None:
    arn = start(service)
    (invocation,) = lease(service)
    service.pause_execution(arn)
    service.resume_execution(arn)
    result = service.checkpoint(arn, invocation.checkpoint_token, [update("s", "STEP", "START")])
    assert result.checkpoint_token is not None
    assert service.get_execution(arn).status is ExecutionStatus.RUNNING
    assert "ExecutionPaused" not in events(service, arn)


def test_a_pausing_execution_whose_invocation_is_lost_pauses(service: DurableService, clock: SkippableClock) -> None:
    arn = start(service)
    lease(service)
    service.pause_execution(arn)
    clock.advance(31)
    assert lease(service) == []
    assert service.get_execution(arn).status is ExecutionStatus.PAUSED
    service.resume_execution(arn)
    assert len(lease(service)) == 1


def test_pausing_or_resuming_twice_changes_nothing_more(service: DurableService) -> None:
    arn = start(service)
    service.pause_execution(arn)
    service.pause_execution(arn, reason="again")
    assert service.get_execution(arn).pause_reason is None
    service.resume_execution(arn)
    service.resume_execution(arn)
    assert events(service, arn) == ["ExecutionStarted", "ExecutionPaused", "ExecutionResumed"]


def test_an_ended_execution_cannot_be_paused_or_resumed(service: DurableService) -> None:
    arn = start(service)
    service.stop_execution(arn)
    with pytest.raises(ConflictError, match="has ended with status STOPPED"):
        service.pause_execution(arn)
    with pytest.raises(ConflictError):
        service.resume_execution(arn)


def test_a_reason_over_1024_characters_is_refused(service: DurableService) -> None:
    arn = start(service)
    with pytest.raises(InvalidParameterError, match="at most 1024"):
        service.pause_execution(arn, reason="x" * 1025)
    assert service.get_execution(arn).status is ExecutionStatus.RUNNING


def test_a_paused_execution_can_be_stopped(service: DurableService) -> None:
    arn = start(service)
    service.pause_execution(arn)
    stopped = service.stop_execution(arn, ErrorObject(message="no"))
    assert stopped.status is ExecutionStatus.STOPPED


def test_the_execution_timeout_stands_still_while_paused(service: DurableService, clock: SkippableClock) -> None:
    arn = start(service, timeout=100)
    started = clock.now
    suspend_on_wait(service, arn, seconds=1000)
    clock.advance(50)
    service.pause_execution(arn)
    assert service.get_execution(arn).timeout_due() == started + MAX_PAUSED_TIMEOUT_SECONDS
    clock.advance(500)
    service.fire_due_timers()
    assert service.get_execution(arn).status is ExecutionStatus.PAUSED
    service.resume_execution(arn)
    execution = service.get_execution(arn)
    assert execution.timeout_due() == started + 600
    assert execution.to_wire()["ExpectedExecutionTimeoutTimestamp"] == to_datetime(started + 600)
    clock.advance(49)
    service.fire_due_timers()
    assert service.get_execution(arn).status is ExecutionStatus.RUNNING
    clock.advance(1)
    service.fire_due_timers()
    assert service.get_execution(arn).status is ExecutionStatus.TIMED_OUT


def test_a_pause_that_keeps_the_timeout_running_can_time_out_while_paused(
    service: DurableService, clock: SkippableClock
) -> None:
    arn = start(service, timeout=100)
    suspend_on_wait(service, arn, seconds=1000)
    service.pause_execution(arn, timeout_paused=False)
    clock.advance(100)
    service.fire_due_timers()
    assert service.get_execution(arn).status is ExecutionStatus.TIMED_OUT


def test_a_paused_timeout_still_ends_the_execution_366_days_after_its_start(
    service: DurableService, clock: SkippableClock
) -> None:
    arn = start(service, timeout=100)
    suspend_on_wait(service, arn, seconds=1000)
    service.pause_execution(arn)
    clock.advance(MAX_PAUSED_TIMEOUT_SECONDS)
    service.fire_due_timers()
    assert service.get_execution(arn).status is ExecutionStatus.TIMED_OUT


def test_paused_executions_are_listed_by_status(service: DurableService) -> None:
    running, paused = start(service), start(service)
    service.pause_execution(paused)
    page = service.list_executions(ExecutionQuery(statuses=(ExecutionStatus.PAUSED,)))
    assert [e.arn for e in page.executions] == [paused]
    page = service.list_executions(ExecutionQuery(statuses=(ExecutionStatus.RUNNING,)))
    assert [e.arn for e in page.executions] == [running]


def test_deleting_an_ended_execution_removes_it_and_the_blobs_only_it_used(
    service: DurableService, tmp_path: Path
) -> None:
    big = '"' + "x" * 500 + '"'
    other = '"' + "y" * 500 + '"'
    kept = start(service, payload=other)
    arn = start(service, payload=big)
    service.stop_execution(arn)
    service.stop_execution(kept)
    blobs = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert len(blobs) == 2
    service.delete_execution(arn)
    with pytest.raises(ExecutionNotFoundError):
        service.get_execution(arn)
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 1
    assert service.get_execution(kept).input_payload == other


@pytest.mark.parametrize("pause", [False, True])
def test_deleting_a_running_or_paused_execution_is_a_conflict(service: DurableService, pause: bool) -> None:
    arn = start(service)
    if pause:
        service.pause_execution(arn)
    with pytest.raises(ConflictError, match="Stop it first"):
        service.delete_execution(arn)
    assert service.get_execution(arn).status is not ExecutionStatus.STOPPED


def test_deleting_an_unknown_execution_is_not_found(service: DurableService) -> None:
    with pytest.raises(ExecutionNotFoundError):
        service.delete_execution("arn:aws:lambda:us-east-1:000000000000:function:orders:$LATEST/durable-execution/a/b")
