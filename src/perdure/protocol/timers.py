"""Durable timers and the records that firing WAIT timers passes between the service and the store."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from perdure.protocol.records import Event, ExecutionStatus, OperationStatus


class TimerKind(enum.StrEnum):
    WAIT = "wait"
    RETRY = "retry"
    CALLBACK_TIMEOUT = "callback_timeout"
    CALLBACK_HEARTBEAT = "callback_heartbeat"
    EXECUTION_TIMEOUT = "execution_timeout"


@dataclass(frozen=True)
class Timer:
    """A durable timer; ``operation_id`` is empty for timers of the execution itself."""

    execution_id: str
    operation_id: str
    kind: TimerKind
    due_time: float


# The records of firing waits are named tuples rather than frozen dataclasses: a batch makes
# them by the thousand, and a frozen dataclass's __init__ costs about twice as much.


class DueWait(NamedTuple):
    """What firing a due WAIT timer reads of its operation and execution (``Transaction.due_waits``)."""

    execution_id: str
    operation_id: str
    operation_status: OperationStatus
    parent_id: str | None
    name: str | None
    sub_type: str | None
    start_time: float | None
    scheduled_end_time: float | None
    execution_status: ExecutionStatus
    version: int
    event_count: int
    ready_time: float | None
    lease_owner: str | None
    woken_during_invocation: bool
    # What its span needs (see ``perdure.service.reporting``).
    execution_arn: str
    function_name: str
    trace_parent: str | None


class FiredWait(NamedTuple):
    """A wait operation that succeeded at its event's time, with the version it changed at."""

    execution_id: str
    operation_id: str
    version: int
    event: Event


class WaitedExecution(NamedTuple):
    """The columns of an execution that firing its waits changes, as they are after."""

    id: str
    version: int
    event_count: int
    ready_time: float | None
    woken_during_invocation: bool
