"""The rules of each operation type: how a checkpoint batch changes an execution's operations.

``apply_batch`` is pure: it takes the operations a batch touches and returns what changes
(operations, history events, timers, and the execution's end if the batch ends it). The
caller writes all of it in one transaction, or nothing if a rule is broken.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perdure.errors import CheckpointRejectedError, PerdureError
from perdure.protocol.arns import execution_arn_for
from perdure.protocol.records import (
    ErrorObject,
    Event,
    ExecutionStatus,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from perdure.protocol.timers import Timer, TimerKind
from perdure.protocol.versions import FunctionVersion
from perdure.service import history
from perdure.service.functions import FunctionDefaults
from perdure.service.validation import TENANT_ID, TENANT_ID_RULE, unstorable

# WaitOptions.WaitSeconds and callback timeouts are bounded by the API at one year plus a day.
MAX_DURATION_SECONDS = 31_622_400
# The largest ErrorObject (as JSON) one update may carry.
MAX_ERROR_BYTES = 32_768

_ALLOWED: dict[OperationType, frozenset[OperationAction]] = {
    OperationType.EXECUTION: frozenset({OperationAction.SUCCEED, OperationAction.FAIL}),
    OperationType.STEP: frozenset(
        {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL, OperationAction.RETRY}
    ),
    OperationType.WAIT: frozenset({OperationAction.START, OperationAction.CANCEL}),
    OperationType.CALLBACK: frozenset({OperationAction.START, OperationAction.CANCEL}),
    OperationType.CONTEXT: frozenset(
        {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL}
    ),
    # A chained invoke is completed by its child execution's end, never by the handler.
    OperationType.CHAINED_INVOKE: frozenset({OperationAction.START}),
}


@dataclass(frozen=True)
class InvokeTarget:
    """The function a CHAINED_INVOKE names, resolved: its defaults, qualifier and qualified ARN."""

    function: FunctionDefaults
    qualifier: str
    function_arn: str
    # The version the qualifier names; None for a function that has none.
    version: FunctionVersion | None = None


# Resolves ChainedInvokeOptions.FunctionName: the target, or the error that fails the operation
# at once (an unknown function). Raises InvalidParameterError for a malformed name.
ResolveInvoke = Callable[[str], InvokeTarget | ErrorObject]


def _unresolvable(function_name: str) -> ErrorObject:
    return ErrorObject(message=f"Function not found: {function_name}.", type="ResourceNotFoundException")


@dataclass(frozen=True)
class ChildStart:
    """A child execution that a CHAINED_INVOKE starts, created in the checkpoint's transaction."""

    execution_id: str
    name: str
    arn: str
    target: InvokeTarget
    input_payload: str | None
    tenant_id: str | None
    parent_operation_id: str


@dataclass
class BatchOutcome:
    """Everything one checkpoint batch changes."""

    operations: dict[str, Operation] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cleared_timers: list[str] = field(default_factory=list)
    ended: tuple[ExecutionStatus, str | None, ErrorObject | None] | None = None
    children: list[ChildStart] = field(default_factory=list)
    # When steps started in this batch began their attempt (see ``OperationUpdate.started_at``).
    attempt_starts: dict[str, float] = field(default_factory=dict)


def new_callback_id() -> str:
    """Returns an unguessable callback ID (192 random bits).

    Hex fits Lambda's CallbackId pattern (``[A-Za-z0-9+/]+={0,2}``) and, unlike base64, never
    starts with '-' (which a command line would take for an option) nor needs URL escaping.
    """
    return secrets.token_hex(24)


class _Batch:
    def __init__(
        self,
        execution_arn: str,
        execution_id: str,
        existing: dict[str, Operation],
        next_position: int,
        version: int,
        now: float,
        resolve_invoke: ResolveInvoke,
    ) -> None:
        self.resolve_invoke = resolve_invoke
        self.arn = execution_arn
        self.execution_id = execution_id
        self.ops = dict(existing)
        self.position = next_position
        self.version = version
        self.now = now
        self.out = BatchOutcome()

    def reject(self, update: OperationUpdate, reason: str) -> CheckpointRejectedError:
        return CheckpointRejectedError(self.arn, update.id, reason)

    def save(self, op: Operation, **changes: Any) -> Operation:
        """Records ``op`` with ``changes`` made (one copy) as changed by this batch."""
        op = op.evolve(version=self.version, **changes)
        self.ops[op.id] = op
        self.out.operations[op.id] = op
        return op

    def timer(self, op: Operation, kind: TimerKind, due: float) -> None:
        self.out.timers.append(Timer(self.execution_id, op.id, kind, due))

    def create(self, update: OperationUpdate, status: OperationStatus) -> Operation:
        self.position += 1
        return Operation(
            id=update.id,
            type=update.type,
            status=status,
            position=self.position,
            parent_id=update.parent_id,
            name=update.name,
            sub_type=update.sub_type,
            start_time=update.started_at or self.now,
        )

    def apply(self, update: OperationUpdate) -> None:
        if update.action not in _ALLOWED.get(update.type, frozenset()):
            raise self.reject(
                update, f"{update.type.value} operations do not accept the {update.action.value} action."
            )
        parent = self.ops.get(update.parent_id) if update.parent_id is not None else None
        if update.parent_id is not None and (parent is None or parent.type is not OperationType.CONTEXT):
            raise self.reject(update, f"its parent {update.parent_id!r} is not a started CONTEXT operation.")
        current = self.ops.get(update.id)
        if current is not None and current.type is not update.type:
            raise self.reject(
                update,
                f"it was recorded as a {current.type.value} operation, not {update.type.value}. "
                "Check that the workflow code is deterministic.",
            )
        if current is not None and current.status.is_terminal:
            raise self.reject(update, f"the operation is already {current.status.value}.")
        _HANDLERS[update.type](self, update, current)

    # -- per type -------------------------------------------------------------------------

    def _execution(self, update: OperationUpdate, current: Operation | None) -> None:
        if update.action is OperationAction.SUCCEED:
            self.out.ended = (ExecutionStatus.SUCCEEDED, update.payload, None)
        else:
            self.out.ended = (ExecutionStatus.FAILED, None, update.error)

    def _step(self, update: OperationUpdate, current: Operation | None) -> None:
        action = update.action
        if action is OperationAction.START:
            if current is None:
                op = self.save(self.create(update, OperationStatus.STARTED))
            elif current.status is OperationStatus.READY:
                op = self.save(current, status=OperationStatus.STARTED, next_attempt_time=None)
            else:
                raise self.reject(update, f"a step can start only when new or READY, not {current.status.value}.")
            self.out.attempt_starts[op.id] = update.started_at or self.now
            self.out.events.append(history.operation_started(op, self.now))
            return
        if current is not None and current.status not in (OperationStatus.STARTED, OperationStatus.READY):
            raise self.reject(update, f"a step can end only when STARTED or READY, not {current.status.value}.")
        # Attempt counts finished attempts: a new step is at 0 and each SUCCEED, FAIL or RETRY adds one.
        op = current or self.create(update, OperationStatus.STARTED)
        attempt = op.attempt + 1
        if action is OperationAction.RETRY:
            delay = update.next_attempt_delay_seconds
            if not 0 <= delay <= MAX_DURATION_SECONDS:
                raise self.reject(update, f"NextAttemptDelaySeconds must be 0..{MAX_DURATION_SECONDS}, not {delay}.")
            if update.error is not None and update.payload is not None:
                raise self.reject(update, "a RETRY carries an Error or a Payload, not both.")
            op = self.save(
                op,
                attempt=attempt,
                status=OperationStatus.PENDING,
                next_attempt_time=self.now + delay,
                error=update.error,
                result=update.payload,
            )
            self.timer(op, TimerKind.RETRY, self.now + delay)
            self.out.events.append(history.step_retried(op, self.now, delay))
            return
        succeeded = action is OperationAction.SUCCEED
        op = self.save(
            op,
            attempt=attempt,
            status=OperationStatus.SUCCEEDED if succeeded else OperationStatus.FAILED,
            result=update.payload if succeeded else None,
            error=None if succeeded else update.error,
            end_time=self.now,
            next_attempt_time=None,
        )
        self.out.events.append(history.operation_ended(op, self.now))

    def _wait(self, update: OperationUpdate, current: Operation | None) -> None:
        if update.action is OperationAction.START:
            if current is not None:
                raise self.reject(update, "the wait has already started.")
            seconds = update.wait_seconds if update.wait_seconds is not None else 1
            if not 1 <= seconds <= MAX_DURATION_SECONDS:
                raise self.reject(update, f"WaitSeconds must be 1..{MAX_DURATION_SECONDS}, not {seconds}.")
            op = self.create(update, OperationStatus.STARTED).evolve(scheduled_end_time=self.now + seconds)
            op = self.save(op)
            self.timer(op, TimerKind.WAIT, self.now + seconds)
            self.out.events.append(history.operation_started(op, self.now))
            return
        if current is None:
            raise self.reject(update, "only a started wait can be cancelled.")
        self.cancel(current, update.error)

    def _callback(self, update: OperationUpdate, current: Operation | None) -> None:
        if update.action is OperationAction.START:
            if current is not None:
                raise self.reject(update, "the callback has already started.")
            timeout = update.callback_timeout_seconds
            heartbeat = update.callback_heartbeat_timeout_seconds
            for label, value in (("TimeoutSeconds", timeout), ("HeartbeatTimeoutSeconds", heartbeat)):
                if not 0 <= value <= MAX_DURATION_SECONDS:
                    raise self.reject(update, f"{label} must be 0..{MAX_DURATION_SECONDS}, not {value}.")
            op = self.create(update, OperationStatus.STARTED).evolve(
                callback_id=new_callback_id(),
                callback_timeout_seconds=timeout,
                callback_heartbeat_timeout_seconds=heartbeat,
            )
            op = self.save(op)
            if timeout:
                self.timer(op, TimerKind.CALLBACK_TIMEOUT, self.now + timeout)
            if heartbeat:
                self.timer(op, TimerKind.CALLBACK_HEARTBEAT, self.now + heartbeat)
            self.out.events.append(history.operation_started(op, self.now))
            return
        if current is None:
            raise self.reject(update, "only a started callback can be cancelled.")
        self.cancel(current, update.error)

    def _context(self, update: OperationUpdate, current: Operation | None) -> None:
        if update.action is OperationAction.START:
            if current is not None:
                raise self.reject(update, "the context has already started.")
            op = self.save(self.create(update, OperationStatus.STARTED))
            self.out.events.append(history.operation_started(op, self.now))
            return
        op = current or self.create(update, OperationStatus.STARTED)
        if update.action is OperationAction.SUCCEED:
            op = self.save(
                op,
                status=OperationStatus.SUCCEEDED,
                result=update.payload,
                replay_children=update.replay_children,
                end_time=self.now,
            )
        else:
            op = self.save(op, status=OperationStatus.FAILED, error=update.error, end_time=self.now)
        self.out.events.append(history.operation_ended(op, self.now))

    def _chained_invoke(self, update: OperationUpdate, current: Operation | None) -> None:
        if current is not None:
            raise self.reject(update, "the chained invoke has already started.")
        function_name = update.invoke_function_name
        if not function_name:
            raise self.reject(update, "a CHAINED_INVOKE START needs ChainedInvokeOptions with a FunctionName.")
        tenant_id = update.invoke_tenant_id
        if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
            raise self.reject(update, f"its TenantId must be {TENANT_ID_RULE}.")
        try:
            target = self.resolve_invoke(function_name)
        except PerdureError as error:
            raise self.reject(update, error.message) from None
        op = self.create(update, OperationStatus.STARTED)
        if isinstance(target, ErrorObject):
            # An unknown target fails the operation at once; its input is not kept, as AWS keeps none.
            op = self.save(op.evolve(status=OperationStatus.FAILED, end_time=self.now, error=target))
            self.out.events.append(history.chained_invoke_started(op, self.now, function_name, tenant_id, None, None, None))
            self.out.events.append(history.operation_ended(op, self.now))
            return
        child_name, child_id = uuid.uuid4().hex, uuid.uuid4().hex
        child_arn = execution_arn_for(target.function_arn, child_name, child_id)
        op = self.save(op.evolve(input_payload=update.payload))
        self.out.children.append(
            ChildStart(child_id, child_name, child_arn, target, update.payload, tenant_id, op.id)
        )
        self.out.events.append(
            history.chained_invoke_started(op, self.now, function_name, tenant_id, update.payload, child_arn, target.qualifier)
        )

    def cancel(self, op: Operation, error: ErrorObject | None) -> None:
        op = self.save(op, status=OperationStatus.CANCELLED, end_time=self.now, error=error)
        self.out.cleared_timers.append(op.id)
        self.out.events.append(history.operation_ended(op, self.now))


_HANDLERS: dict[OperationType, Callable[[_Batch, OperationUpdate, Operation | None], None]] = {
    OperationType.EXECUTION: _Batch._execution,
    OperationType.STEP: _Batch._step,
    OperationType.WAIT: _Batch._wait,
    OperationType.CALLBACK: _Batch._callback,
    OperationType.CONTEXT: _Batch._context,
    OperationType.CHAINED_INVOKE: _Batch._chained_invoke,
}


def ids_touched(updates: list[OperationUpdate]) -> set[str]:
    """Returns the operation IDs a batch reads: its own and its parents'."""
    ids = {u.id for u in updates}
    ids.update(u.parent_id for u in updates if u.parent_id)
    return ids


def apply_batch(
    execution_arn: str,
    execution_id: str,
    existing: dict[str, Operation],
    updates: list[OperationUpdate],
    next_position: int,
    version: int,
    now: float,
    resolve_invoke: ResolveInvoke = lambda name: _unresolvable(name),
) -> BatchOutcome:
    """Applies ``updates`` in order to ``existing``; raises CheckpointRejectedError on a broken rule.

    A CHAINED_INVOKE START names its target through ``resolve_invoke``; the child executions
    to start come back in ``BatchOutcome.children``.
    """
    batch = _Batch(execution_arn, execution_id, existing, next_position, version, now, resolve_invoke)
    seen: dict[str, OperationAction] = {}
    for index, update in enumerate(updates):
        _check_shape(batch, update, is_last=index == len(updates) - 1)
        earlier = seen.get(update.id)
        if earlier is not None and not (
            update.type in (OperationType.STEP, OperationType.CONTEXT)
            and earlier is OperationAction.START
            and update.action is not OperationAction.START
        ):
            raise batch.reject(update, "the batch updates this operation twice; send one update per operation.")
        seen[update.id] = update.action
        batch.apply(update)
    return batch.out


def _check_shape(batch: _Batch, update: OperationUpdate, is_last: bool) -> None:
    if update.type is OperationType.EXECUTION and not is_last:
        raise batch.reject(update, "an EXECUTION update must be the last update of its batch.")
    if update.action is OperationAction.SUCCEED and update.error is not None:
        raise batch.reject(update, "a SUCCEED update cannot carry an Error.")
    if update.action is OperationAction.FAIL and update.payload is not None:
        raise batch.reject(update, "a FAIL update cannot carry a Payload.")
    if update.error is not None and len(json.dumps(update.error.to_wire())) > MAX_ERROR_BYTES:
        raise batch.reject(update, f"its Error is over {MAX_ERROR_BYTES} bytes; shorten the message or data.")
    # Stored as text columns (the Error is stored as JSON, which escapes what text cannot hold).
    texts = {"Id": update.id, "ParentId": update.parent_id, "Name": update.name, "SubType": update.sub_type}
    for field_name, text in texts.items():
        problem = unstorable(text) if text else None
        if problem is not None:
            raise batch.reject(update, f"its {field_name} {problem}; choose another.")
