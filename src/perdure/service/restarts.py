"""Restarts an execution from one of its checkpoints, as a new execution.

The new execution runs the same function, qualifier and input, and starts with a copy of
the old one's operations as they stood when the chosen point was reached, so its handler
resumes right after that point: a seed-style function from the checkpoint's snapshot, an
AWS-SDK handler by replaying the copied operations. The old execution is left untouched.

The point is a checkpoint number (``"2"``: the execution's second seed-style checkpoint) or
the ID of a finished operation. "As they stood" is read from operation versions: every
checkpoint batch moves the execution's version on, and an operation keeps the version of the
batch that last changed it, so the finished operations whose version is at most the point's
are exactly those that had finished by then, in the state they finished in. Operations that
were still open then (or began later) are left out and run again; the contexts enclosing the
point are copied as open, since the point lay inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from perdure.errors import ConflictError, InvalidParameterError
from perdure.protocol.arns import execution_arn_for
from perdure.protocol.records import CHECKPOINT_SUBTYPE, Execution, Operation, OperationStatus, OperationType
from perdure.protocol.snapshots import SnapshotCodec
from perdure.service import journal
from perdure.service.checkpoints import new_callback_id
from perdure.service.validation import NAME, NAME_RULE
from perdure.store.base import CoreTransaction

_PAGE = 1000


@dataclass(frozen=True)
class RestartPoint:
    """Where a restart resumes: after ``operation``; ``checkpoint`` is its 1-based number, if a checkpoint."""

    operation: Operation
    checkpoint: int | None


def all_operations(tx: CoreTransaction, execution_id: str) -> list[Operation]:
    """Every operation of an execution, in the order they were first recorded."""
    found: list[Operation] = []
    while True:
        page = tx.list_operations(execution_id, found[-1].position if found else 0, _PAGE)
        found.extend(page)
        if len(page) < _PAGE:
            return found


def checkpoint_operations(operations: list[Operation]) -> list[Operation]:
    """The seed-style checkpoints among ``operations``, in order: checkpoint N is item N-1.

    Only top-level ones count: the seed engine resumes from those alone (a checkpoint cannot
    be taken inside a child context).
    """
    return [
        op
        for op in operations
        if op.type is OperationType.CONTEXT
        and op.sub_type == CHECKPOINT_SUBTYPE
        and op.parent_id is None
        and op.status is OperationStatus.SUCCEEDED
    ]


def find_point(execution: Execution, operations: list[Operation], from_checkpoint: str) -> RestartPoint:
    """Resolves ``from_checkpoint`` (a checkpoint number, or a finished operation's ID) in ``operations``."""
    wanted = from_checkpoint.strip()
    if not wanted:
        raise InvalidParameterError(
            "Say where to restart from: a checkpoint number (1 for the first) or the ID of a finished operation."
        )
    if wanted.isascii() and wanted.isdigit():  # str.isdigit alone takes "²", which int() refuses
        checkpoints = checkpoint_operations(operations)
        number = int(wanted)
        if not checkpoints:
            raise InvalidParameterError(
                f"{execution.arn} has no checkpoints, so it cannot restart from checkpoint {number}. "
                "An AWS SDK handler's execution restarts after one of its finished operations: pass "
                "that operation's ID (see `perdure executions history ARN`)."
            )
        if not 1 <= number <= len(checkpoints):
            raise InvalidParameterError(
                f"{execution.arn} has {len(checkpoints)} checkpoint{'s' if len(checkpoints) != 1 else ''}, "
                f"so there is no checkpoint {number}: pass a number from 1 to {len(checkpoints)}."
            )
        return RestartPoint(checkpoints[number - 1], number)
    by_id = {op.id: op for op in operations}
    op = by_id.get(wanted)
    if op is None or op.type is OperationType.EXECUTION:
        raise InvalidParameterError(
            f"{execution.arn} has no operation {wanted!r}. Pass a checkpoint number (1 for the first) or "
            "the ID of one of its finished operations (see `perdure executions history ARN`)."
        )
    if not op.status.is_terminal:
        raise InvalidParameterError(
            f"Operation {wanted!r} of {execution.arn} is {op.status.value}: an execution can only restart "
            "after an operation that has finished. Pick an earlier one, or a checkpoint number."
        )
    return RestartPoint(op, None)


def operations_at(operations: list[Operation], point: RestartPoint) -> list[Operation]:
    """The operations to copy: those finished when ``point`` was reached, and the contexts enclosing it.

    The EXECUTION operation is left out (the new execution has its own). Copies are marked
    as of version 1 (the new execution's first), and finished callbacks get new IDs, since a
    callback ID names one callback of one execution.
    """
    by_id = {op.id: op for op in operations}
    reached = point.operation.version
    enclosing: set[str] = set()
    parent = point.operation.parent_id
    while parent is not None and parent in by_id:
        enclosing.add(parent)
        parent = by_id[parent].parent_id
    copies: list[Operation] = []
    for op in operations:
        if op.type is OperationType.EXECUTION:
            continue
        finished_then = op.status.is_terminal and op.version <= reached
        if finished_then:
            copy = op.evolve(version=1)
            if op.callback_id is not None:
                copy = copy.evolve(callback_id=new_callback_id())
            copies.append(copy)
        elif op.id in enclosing:
            copies.append(
                op.evolve(status=OperationStatus.STARTED, end_time=None, result=None, error=None, version=1)
            )
    return copies


def restart_name(tx: CoreTransaction, execution: Execution, name: str | None) -> str:
    """The new execution's name: ``name`` if free, else ``<old name>-restart-<n>`` with the first free ``n``."""
    if name is not None:
        if not NAME.fullmatch(name):
            raise InvalidParameterError(f"Invalid execution name {name!r}: use {NAME_RULE}.")
        existing = tx.find_execution(execution.function_name, name)
        if existing is not None:
            raise ConflictError(
                f"An execution named {name!r} of function {execution.function_name!r} already exists "
                f"({existing.arn}). Choose another name, or leave it out to get one like "
                f"{execution.name}-restart-1."
            )
        return name
    n = 1
    while True:
        suffix = f"-restart-{n}"
        candidate = execution.name[: 64 - len(suffix)] + suffix
        if tx.find_execution(execution.function_name, candidate) is None:
            return candidate
        n += 1


def signed_for(copies: list[Operation], source: Execution, arn: str, codec: SnapshotCodec) -> list[Operation]:
    """The copies, with each checkpoint's snapshot signed for the new execution ``arn``.

    A snapshot's signature names its execution (``perdure.protocol.snapshots``): one not signed for
    ``source`` raises SnapshotError, so a restart never launders a snapshot copied in from elsewhere.
    """
    return [
        op.evolve(result=codec.rebind(op.result, source.arn, arn, op.id))
        if op.sub_type == CHECKPOINT_SUBTYPE and op.type is OperationType.CONTEXT and op.result is not None
        else op
        for op in copies
    ]


def restart(
    tx: CoreTransaction,
    source: Execution,
    from_checkpoint: str | None,
    name: str | None,
    execution_id: str,
    now: float,
    codec: SnapshotCodec,
) -> Execution:
    """Creates the restarted execution of ``source`` with ID ``execution_id``, ready to run now.

    ``from_checkpoint`` None starts it from the beginning, with nothing copied. ``codec`` signs
    the copied checkpoints' snapshots for the new execution.
    """
    operations = all_operations(tx, source.id) if from_checkpoint is not None else []
    point = find_point(source, operations, from_checkpoint) if from_checkpoint is not None else None
    new_name = restart_name(tx, source, name)
    arn = execution_arn_for(source.function_arn, new_name, execution_id)
    copies = signed_for(operations_at(operations, point), source, arn, codec) if point is not None else []
    origin: dict[str, object] = {"DurableExecutionArn": source.arn}
    if point is not None:
        origin["OperationId"] = point.operation.id
    if point is not None and point.checkpoint is not None:
        origin["Checkpoint"] = point.checkpoint
    return journal.create_execution(
        tx,
        execution_id=execution_id,
        arn=arn,
        function_name=source.function_name,
        qualifier=source.qualifier,
        name=new_name,
        now=now,
        input_payload=source.input_payload,
        timeout_seconds=source.timeout_seconds,
        retention_days=source.retention_days,
        tenant_id=source.tenant_id,
        function_version=source.function_version,
        copies=copies,
        restarted_from=origin,
    )
