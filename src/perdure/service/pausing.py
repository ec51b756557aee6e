"""Pausing and resuming executions (PauseDurableExecution, ResumeDurableExecution).

A paused execution is not invoked until it is resumed, but what it waits for goes on: its
waits fire, its step retries fall due, its callbacks can be completed and time out, and its
chained invokes' children run and complete their operations. Each of these notes that the
execution has something new to see, and resuming it then invokes it at once; resuming an
execution with nothing new leaves it waiting, as before the pause.

A pause that arrives while an invocation runs makes the execution PAUSING; the invocation's
next checkpoint is recorded and then ends it (its later checkpoints are refused as stale, and it
is invoked again once resumed), or, if it ends first, its end does. The execution timeout
stands still while paused unless the pause says otherwise (``ExecutionTimeoutPaused``): the
time from the pause request to the resume is added to it, and, however long the pause, the
execution times out at the latest ``MAX_PAUSED_TIMEOUT_SECONDS`` after its start (AWS's rule).
"""

from __future__ import annotations

from perdure.errors import ConflictError, InvalidParameterError
from perdure.protocol.records import MAX_PAUSED_TIMEOUT_SECONDS, Execution, ExecutionStatus, Invocation
from perdure.protocol.timers import Timer, TimerKind
from perdure.service import history, journal
from perdure.service.invocations import enter_paused, held
from perdure.store.base import CoreTransaction

# PauseReason and ResumeReason are at most this many characters.
MAX_REASON_LENGTH = 1024


class ExecutionEndedError(ConflictError):
    """A pause or resume named an execution that has ended."""

    def __init__(self, execution: Execution, action: str) -> None:
        super().__init__(
            f"Cannot {action} {execution.arn}: it has ended with status {execution.status.value}. "
            "Only a running or paused execution can be paused or resumed."
        )
        self.execution_arn = execution.arn


def _check_reason(reason: str | None) -> None:
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise InvalidParameterError(f"Reason is {len(reason)} characters long; it may have at most {MAX_REASON_LENGTH}.")


def pause(tx: CoreTransaction, execution: Execution, now: float, reason: str | None, timeout_paused: bool) -> Execution:
    """Pauses a running execution (PAUSING while an invocation holds it); a paused one is left as it is."""
    _check_reason(reason)
    if execution.status.is_terminal:
        raise ExecutionEndedError(execution, "pause")
    if execution.status is not ExecutionStatus.RUNNING:
        return execution
    execution = _requested(tx, execution, now, reason, timeout_paused)
    if execution.lease_owner is not None:
        execution = execution.evolve(status=ExecutionStatus.PAUSING)
    else:
        must_run = execution.ready_time is not None or execution.woken_during_invocation
        execution = enter_paused(tx, execution, now, must_run)
    tx.update_execution(execution)
    return execution


def park(tx: CoreTransaction, invocation: Invocation, now: float, reason: str) -> Execution | None:
    """Pauses the execution ``invocation`` holds, as its handler could not run on this code.

    Its code changed while it was suspended: it waits, paused with ``reason`` and its timeout
    standing still, and is invoked again once resumed (``resume_parked`` does when the code
    returns). Returns None if another invocation took over meanwhile.
    """
    execution = held(tx, invocation)
    if execution is None:
        return None
    execution = _requested(tx, execution.evolve(failed_invocations=0), now, reason[:MAX_REASON_LENGTH], timeout_paused=True)
    execution = enter_paused(tx, execution, now, must_run=True)
    tx.update_execution(execution)
    return execution


def _requested(tx: CoreTransaction, execution: Execution, now: float, reason: str | None, timeout_paused: bool) -> Execution:
    """The execution with a pause requested now; a timeout that stands still still ends it a year on (AWS's rule)."""
    execution = execution.evolve(pause_time=now, pause_reason=reason, timeout_paused=timeout_paused)
    if timeout_paused and execution.timeout_seconds:
        tx.set_timer(
            Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, execution.start_time + MAX_PAUSED_TIMEOUT_SECONDS)
        )
    return execution


def resume(tx: CoreTransaction, execution: Execution, now: float, reason: str | None) -> Execution:
    """Resumes a paused execution, or cancels a pause still waiting for an invocation; a running one is left as it is."""
    _check_reason(reason)
    if execution.status.is_terminal:
        raise ExecutionEndedError(execution, "resume")
    if execution.status is ExecutionStatus.RUNNING:
        return execution
    was_paused = execution.status is ExecutionStatus.PAUSED
    timeout_stood_still = execution.timeout_paused
    stood_still = max(0.0, now - execution.pause_time) if timeout_stood_still and execution.pause_time else 0.0
    execution = execution.evolve(
        status=ExecutionStatus.RUNNING,
        paused_seconds=execution.paused_seconds + stood_still,
        pause_time=None,
        pause_reason=None,
        timeout_paused=False,
    )
    due = execution.timeout_due()
    if timeout_stood_still and due is not None:
        tx.set_timer(Timer(execution.id, "", TimerKind.EXECUTION_TIMEOUT, due))
    if was_paused:
        op = journal.execution_operation(execution.id, execution.name, None, execution.start_time)
        execution = journal.append_events(tx, execution, [history.execution_resumed(op, now, reason)])
        if execution.woken_during_invocation:
            execution = execution.evolve(ready_time=now, woken_during_invocation=False)
    tx.update_execution(execution)
    return execution
