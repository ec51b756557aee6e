"""The records the service works with: executions, operations, updates and history events.

Field names follow the Lambda durable execution API (API version 2025-12-01); ``to_wire``
methods produce its JSON shapes, with timestamps as ``datetime`` (the HTTP layer encodes them).
Timestamps inside Perdure are seconds since the epoch, as floats.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from perdure.errors import InvalidParameterError
from perdure.protocol.arns import function_arn_of
from perdure.protocol.trace_context import stored

Wire = dict[str, Any]
WireIn = Mapping[str, Any]


class ExecutionStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"
    # Paused (PauseDurableExecution): not invoked until resumed; PAUSING while an invocation
    # that was running when the pause came has not yet reached its next checkpoint.
    PAUSING = "PAUSING"
    PAUSED = "PAUSED"
    # In the API's enum; a Perdure delete is one transaction, so no execution is seen in it.
    DELETING = "DELETING"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_EXECUTION


_TERMINAL_EXECUTION = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.STOPPED}
)


class OperationType(enum.StrEnum):
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


# The sub-type of the operation a seed-style ``ctx.checkpoint()`` records.
CHECKPOINT_SUBTYPE = "Checkpoint"
# How the pause reason of an execution that waits for the code it was suspended on begins.
CODE_CHANGED_PREFIX = "Code changed: "


class OperationStatus(enum.StrEnum):
    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self not in (OperationStatus.STARTED, OperationStatus.PENDING, OperationStatus.READY)


class OperationAction(enum.StrEnum):
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


R = TypeVar("R")

# However long an execution stays paused with its timeout standing still, it times out this
# long after its start (PauseDurableExecution's ExecutionTimeoutPaused: 366 days).
MAX_PAUSED_TIMEOUT_SECONDS = 366 * 86400


def _evolve(record: R, changes: dict[str, Any]) -> R:
    """A copy of a frozen record with some fields changed.

    ``dataclasses.replace`` re-runs ``__init__`` and costs about 13 µs on these records, and
    a checkpoint makes several copies; copying the instance dictionary costs about 1 µs.
    """
    unknown = changes.keys() - record.__dict__.keys()
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__)
    copy.__dict__.update(changes)
    return copy


def assemble(cls: type[R], fields: dict[str, Any]) -> R:
    """A frozen record of type ``cls`` with exactly these fields, as ``cls(**fields)`` makes it.

    For records built by the thousand (rows read back): it skips ``__init__``, which sets
    each field through ``object.__setattr__`` and costs about 6 µs for an ``Execution``.
    """
    expected = _FIELD_NAMES.get(cls)
    if expected is None:
        expected = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if fields.keys() != expected:
        raise TypeError(f"{cls.__name__} fields differ from the ones given: {sorted(fields.keys() ^ expected)}")
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def json_default(value: Any) -> Any:
    """``json.dumps`` hook: timestamps as epoch seconds, as Lambda's JSON API sends them."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_datetime(seconds: float | None) -> datetime.datetime | None:
    """Converts epoch seconds to an aware UTC datetime (``None`` stays ``None``)."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


@dataclass(frozen=True)
class ErrorObject:
    """An error as the protocol carries it (``ErrorMessage``, ``ErrorType``, ...)."""

    message: str | None = None
    type: str | None = None
    data: str | None = None
    stack_trace: tuple[str, ...] | None = None

    @classmethod
    def from_wire(cls, wire: Any) -> ErrorObject | None:
        """Parses an ErrorObject; raises ``InvalidParameterError`` for a field of the wrong type."""
        if not wire:
            return None
        if not isinstance(wire, dict):
            raise InvalidParameterError(
                f"An Error must be an object with ErrorMessage, ErrorType, ErrorData and StackTrace, not {_shown(wire)}."
            )
        trace = wire.get("StackTrace")
        if trace is not None and not (isinstance(trace, list) and all(isinstance(line, str) for line in trace)):
            raise InvalidParameterError(f"StackTrace must be a list of strings, not {_shown(trace)}.")
        return cls(
            message=_error_text(wire, "ErrorMessage"),
            type=_error_text(wire, "ErrorType"),
            data=_error_text(wire, "ErrorData"),
            stack_trace=tuple(trace) if trace else None,
        )

    def to_wire(self) -> Wire:
        wire: Wire = {}
        if self.message is not None:
            wire["ErrorMessage"] = self.message
        if self.type is not None:
            wire["ErrorType"] = self.type
        if self.data is not None:
            wire["ErrorData"] = self.data
        if self.stack_trace is not None:
            wire["StackTrace"] = list(self.stack_trace)
        return wire


def _error_text(wire: WireIn, key: str) -> str | None:
    value = wire.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"{key} must be a string, not {_shown(value)}.")
    return value


def _shown(value: Any) -> str:
    """A value for an error message: its type and the start of its JSON."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


@dataclass(frozen=True)
class OperationUpdate:
    """One entry of a checkpoint batch (``Updates`` of CheckpointDurableExecution)."""

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: ErrorObject | None = None
    replay_children: bool = False
    next_attempt_delay_seconds: int = 0
    wait_seconds: int | None = None
    callback_timeout_seconds: int = 0
    callback_heartbeat_timeout_seconds: int = 0
    # ChainedInvokeOptions: the function a CHAINED_INVOKE starts, and its tenant.
    invoke_function_name: str | None = None
    invoke_tenant_id: str | None = None
    # Never on the wire: when Perdure's own SDK began the step attempt that a START sent along
    # with its end records (the batch's time would make every such attempt take no time).
    started_at: float | None = None

    @classmethod
    def from_wire(cls, wire: WireIn) -> OperationUpdate:
        """Parses one update; raises ``KeyError``/``ValueError`` on a malformed entry."""
        context = _options(wire, "ContextOptions")
        step = _options(wire, "StepOptions")
        wait = _options(wire, "WaitOptions")
        callback = _options(wire, "CallbackOptions")
        invoke = _options(wire, "ChainedInvokeOptions")
        wait_seconds = _seconds(wait, "WaitSeconds")
        return cls(
            id=_required_text(wire, "Id"),
            type=OperationType(wire["Type"]),
            action=OperationAction(wire["Action"]),
            parent_id=_optional_text(wire, "ParentId") or None,
            name=_optional_text(wire, "Name") or None,
            sub_type=_optional_text(wire, "SubType") or None,
            payload=_optional_text(wire, "Payload"),
            error=ErrorObject.from_wire(wire.get("Error")),
            replay_children=bool(context.get("ReplayChildren", False)),
            next_attempt_delay_seconds=_seconds(step, "NextAttemptDelaySeconds") or 0,
            wait_seconds=wait_seconds,
            callback_timeout_seconds=_seconds(callback, "TimeoutSeconds") or 0,
            callback_heartbeat_timeout_seconds=_seconds(callback, "HeartbeatTimeoutSeconds") or 0,
            invoke_function_name=_optional_text(invoke, "FunctionName"),
            invoke_tenant_id=_optional_text(invoke, "TenantId"),
        )


def updates_from_wire(body: WireIn) -> list[OperationUpdate]:
    """The ``Updates`` of a CheckpointDurableExecution request; raises ``InvalidParameterError`` naming the bad one."""
    raw_updates = body.get("Updates") or []
    if not isinstance(raw_updates, list):
        raise InvalidParameterError("Updates must be a list of OperationUpdate objects.")
    updates = []
    for index, update in enumerate(raw_updates):
        if not isinstance(update, dict):
            raise InvalidParameterError(
                f"Updates[{index}] must be an OperationUpdate object, not {type(update).__name__}."
            )
        try:
            updates.append(OperationUpdate.from_wire(update))
        except KeyError as error:
            raise InvalidParameterError(
                f"Updates[{index}] has no {error}; each OperationUpdate needs Id, Type and Action."
            ) from None
        except ValueError as error:
            raise InvalidParameterError(
                f"Updates[{index}] is malformed: {error}. See OperationUpdate in the CheckpointDurableExecution API."
            ) from None
    return updates


def _options(wire: WireIn, key: str) -> WireIn:
    value = wire.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be an object, not {_shown(value)}")
    return value


def _required_text(wire: WireIn, key: str) -> str:
    value = _optional_text(wire, key)
    if not value:
        raise KeyError(key)
    return value


def _seconds(options: WireIn, key: str) -> int | None:
    """A duration in seconds: a JSON number (a fraction is cut off, as the SDK's Duration does)."""
    value = options.get(key)
    if value is None:
        return None
    # bool is an int to Python, and a string would be read by int(); neither is a JSON number.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number of seconds, not {_shown(value)}")
    return int(value)


def _optional_text(options: WireIn, key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, not {_shown(value)}")
    return value


@dataclass(frozen=True)
class Operation:
    """The recorded state of one operation of an execution."""

    id: str
    type: OperationType
    status: OperationStatus
    position: int
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    input_payload: str | None = None
    result: str | None = None
    error: ErrorObject | None = None
    attempt: int = 0
    next_attempt_time: float | None = None
    scheduled_end_time: float | None = None
    callback_id: str | None = None
    callback_timeout_seconds: int = 0
    callback_heartbeat_timeout_seconds: int = 0
    replay_children: bool = False
    version: int = 0

    def evolve(self, **changes: Any) -> Operation:
        return _evolve(self, changes)

    def to_wire(self) -> Wire:
        """Returns the ``Operation`` shape of GetDurableExecutionState and checkpoint replies."""
        wire: Wire = {"Id": self.id, "Type": self.type.value, "Status": self.status.value}
        if self.parent_id:
            wire["ParentId"] = self.parent_id
        if self.name:
            wire["Name"] = self.name
        if self.sub_type:
            wire["SubType"] = self.sub_type
        if self.start_time is not None:
            wire["StartTimestamp"] = to_datetime(self.start_time)
        if self.end_time is not None:
            wire["EndTimestamp"] = to_datetime(self.end_time)
        error = self.error.to_wire() if self.error else None
        if self.type is OperationType.EXECUTION:
            wire["ExecutionDetails"] = {"InputPayload": self.input_payload or ""}
        elif self.type is OperationType.STEP:
            step: Wire = {"Attempt": self.attempt}
            if self.next_attempt_time is not None:
                step["NextAttemptTimestamp"] = to_datetime(self.next_attempt_time)
            if self.result is not None:
                step["Result"] = self.result
            if error:
                step["Error"] = error
            wire["StepDetails"] = step
        elif self.type is OperationType.WAIT:
            wire["WaitDetails"] = {"ScheduledEndTimestamp": to_datetime(self.scheduled_end_time)}
        elif self.type is OperationType.CALLBACK:
            callback: Wire = {"CallbackId": self.callback_id}
            if self.result is not None:
                callback["Result"] = self.result
            if error:
                callback["Error"] = error
            wire["CallbackDetails"] = callback
        elif self.type is OperationType.CONTEXT:
            context: Wire = {}
            if self.result is not None:
                context["Result"] = self.result
            if error:
                context["Error"] = error
            if self.replay_children:
                context["ReplayChildren"] = True
            wire["ContextDetails"] = context
        elif self.type is OperationType.CHAINED_INVOKE:
            invoke: Wire = {}
            if self.result is not None:
                invoke["Result"] = self.result
            if error:
                invoke["Error"] = error
            wire["ChainedInvokeDetails"] = invoke
        return wire


@dataclass(frozen=True)
class Execution:
    """One durable execution and the bookkeeping the scheduler needs for it."""

    id: str
    arn: str
    function_name: str
    qualifier: str
    name: str
    status: ExecutionStatus
    start_time: float
    input_payload: str | None = None
    result: str | None = None
    error: ErrorObject | None = None
    end_time: float | None = None
    timeout_seconds: int | None = None
    retention_days: int | None = None
    # The execution whose CHAINED_INVOKE operation started this one, and that operation.
    parent_arn: str | None = None
    parent_operation_id: str | None = None
    tenant_id: str | None = None
    # The function version it started on, which every invocation of it runs (None: started
    # before versions existed, or of a function without any; it runs the newest code).
    function_version: int | None = None
    # PauseDurableExecution: when it was asked for, why, and whether the execution timeout
    # stands still meanwhile; ``paused_seconds`` is how long it has stood still in all.
    pause_time: float | None = None
    pause_reason: str | None = None
    timeout_paused: bool = False
    paused_seconds: float = 0.0
    # Scheduling state: when it may next be invoked (None while suspended or running).
    ready_time: float | None = None
    lease_owner: str | None = None
    lease_expiry: float | None = None
    invocation: int = 0
    invocation_secret: str = ""
    invocation_start: float | None = None
    failed_invocations: int = 0
    woken_during_invocation: bool = False
    version: int = 0
    event_count: int = 0
    operation_count: int = 0
    # What its invocations used (see ``Usage``): their time from lease to end summed, the CPU
    # time they took, and that time in GB-seconds of their functions' memory.
    compute_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gb_seconds: float = 0.0
    # Its W3C trace context (``00-<trace id>-<parent span id>-<flags>``): the caller's span when
    # the invoke carried a ``traceparent``, else a trace of its own; see ``perdure.telemetry``.
    trace_parent: str | None = None

    def evolve(self, **changes: Any) -> Execution:
        return _evolve(self, changes)

    @property
    def function_arn(self) -> str:
        return function_arn_of(self.arn)

    def timeout_due(self) -> float | None:
        """When the execution times out: its ExecutionTimeout after its start, plus the time its
        timeout stood still while paused, but never past ``MAX_PAUSED_TIMEOUT_SECONDS`` after the start."""
        if not self.timeout_seconds:
            return None
        ceiling = self.start_time + MAX_PAUSED_TIMEOUT_SECONDS
        if self.timeout_paused and self.status in (ExecutionStatus.PAUSED, ExecutionStatus.PAUSING):
            return ceiling
        return min(ceiling, self.start_time + self.timeout_seconds + self.paused_seconds)

    def summary_wire(self) -> Wire:
        """Returns the ``Execution`` entry of ListDurableExecutionsByFunction."""
        wire: Wire = {
            "DurableExecutionArn": self.arn,
            "DurableExecutionName": self.name,
            "FunctionArn": self.function_arn,
            "Status": self.status.value,
            "StartTimestamp": to_datetime(self.start_time),
        }
        if self.end_time is not None:
            wire["EndTimestamp"] = to_datetime(self.end_time)
        return wire

    def to_wire(self) -> Wire:
        """Returns the GetDurableExecution response body."""
        wire = self.summary_wire()
        wire["InputPayload"] = self.input_payload or ""
        if self.result is not None:
            wire["Result"] = self.result
        if self.error is not None:
            wire["Error"] = self.error.to_wire()
        # The version it runs, as AWS reports it; the qualifier it was invoked by is in its ARN.
        wire["Version"] = str(self.function_version) if self.function_version is not None else self.qualifier
        config: Wire = {}
        if self.timeout_seconds:
            config["ExecutionTimeout"] = self.timeout_seconds
        if self.retention_days:
            config["RetentionPeriodInDays"] = self.retention_days
        if config:
            wire["DurableConfig"] = config
        if self.status in (ExecutionStatus.PAUSING, ExecutionStatus.PAUSED) and self.pause_time is not None:
            pause: Wire = {
                "PauseRequestTimestamp": to_datetime(self.pause_time),
                "ExecutionTimeoutPaused": self.timeout_paused,
            }
            if self.pause_reason is not None:
                pause["Reason"] = self.pause_reason
            wire["PauseDetails"] = pause
        due = self.timeout_due()
        if due is not None and not self.status.is_terminal:
            wire["ExpectedExecutionTimeoutTimestamp"] = to_datetime(due)
        trace = stored(self.trace_parent)
        if trace is not None:
            wire["TraceHeader"] = {"XAmznTraceId": trace.xray()}
        # Perdure's own: what the invocations used beside how long the execution has lasted.
        wire["PerdureUsage"] = {
            "DurationSeconds": round((self.end_time or time.time()) - self.start_time, 3),
            "ComputeSeconds": round(self.compute_seconds, 3),
            "CpuSeconds": round(self.cpu_seconds, 3),
            "GBSeconds": round(self.gb_seconds, 3),
        }
        return wire


@dataclass(frozen=True)
class Event:
    """One history event, in the shape of GetDurableExecutionHistory's ``Events``."""

    event_type: str
    timestamp: float
    operation_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    details: Wire = field(default_factory=dict)
    event_id: int = 0

    def evolve(self, **changes: Any) -> Event:
        return _evolve(self, changes)

    def to_wire(self, include_data: bool = True) -> Wire:
        wire: Wire = {
            "EventType": self.event_type,
            "EventId": self.event_id,
            "EventTimestamp": to_datetime(self.timestamp),
        }
        if self.sub_type:
            wire["SubType"] = self.sub_type
        if self.operation_id:
            wire["Id"] = self.operation_id
        if self.name:
            wire["Name"] = self.name
        if self.parent_id:
            wire["ParentId"] = self.parent_id
        details_key = f"{self.event_type}Details"
        details = self.details if include_data else _without_payloads(self.details)
        wire[details_key] = details
        return wire


def _without_payloads(details: Wire) -> Wire:
    """Event details with payloads left out and marked ``Truncated`` (IncludeExecutionData=false)."""
    return {
        key: ({"Truncated": True} if isinstance(value, dict) and "Payload" in value else value)
        for key, value in details.items()
    }


@dataclass(frozen=True)
class Page:
    """A page of results and the marker of the next page, if any."""

    items: list[Any]
    next_marker: str | None = None


@dataclass(frozen=True)
class CheckpointResult:
    """What a checkpoint returns: the next token (None once the execution ended) and changes."""

    checkpoint_token: str | None
    operations: list[Operation]
    next_marker: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"NewExecutionState": {"Operations": [op.to_wire() for op in self.operations]}}
        if self.next_marker:
            wire["NewExecutionState"]["NextMarker"] = self.next_marker
        if self.checkpoint_token is not None:
            wire["CheckpointToken"] = self.checkpoint_token
        return wire


@dataclass(frozen=True)
class Invocation:
    """A lease on a ready execution: what a worker needs to run its handler once."""

    execution_arn: str
    function_name: str
    checkpoint_token: str
    invocation: int
    lease_owner: str
    # The function version the execution runs (None: the newest code).
    function_version: int | None = None
    # The execution's trace (``Execution.trace_parent``), for the spans its handler's code makes.
    trace_parent: str | None = None
    # The execution's whole journal, when the lease knew it (a new execution, leased as it
    # started): the worker then reads nothing before running the handler. None: read it.
    journal: tuple[Operation, ...] | None = None


# Lambda's default MemorySize: the memory GB-seconds count for a function that sets none.
DEFAULT_MEMORY_MB = 128


@dataclass(frozen=True)
class Usage:
    """What one invocation used, as its worker measured it (an invocation whose worker died has none).

    ``seconds`` is the handler's time, from its start to its end: a cold worker's start-up and
    the hand-off are not in it, as Lambda does not bill them; None, the invocation's time from
    lease to end counts instead.
    """

    cpu_seconds: float = 0.0
    memory_mb: int = DEFAULT_MEMORY_MB
    seconds: float | None = None


class InvocationStatus(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PENDING = "PENDING"


@dataclass(frozen=True)
class InvocationOutput:
    """What a handler returned: ``{"Status": ..., "Result": ..., "Error": ...}``."""

    status: InvocationStatus
    result: str | None = None
    error: ErrorObject | None = None
    # Set by Perdure's own engine, never on the wire: with PENDING, the execution cannot run on
    # this code (it changed while the execution was suspended) and is paused with this reason.
    pause_reason: str | None = None

    @classmethod
    def from_wire(cls, wire: Wire) -> InvocationOutput:
        return cls(
            status=InvocationStatus(wire["Status"]),
            result=wire.get("Result"),
            error=ErrorObject.from_wire(wire.get("Error")),
        )


@dataclass(frozen=True)
class LogLine:
    """One line an invocation wrote: to ``stdout``, ``stderr`` or ``log`` (Python logging).

    ``seq`` is assigned by the store (increasing, in the order lines were appended); lines to
    append leave it 0.
    """

    invocation: int
    stream: str
    time: float
    line: str
    seq: int = 0

    def to_wire(self) -> Wire:
        return {
            "Seq": self.seq,
            "Invocation": self.invocation,
            "Stream": self.stream,
            "Timestamp": self.time,
            "Message": self.line,
        }
