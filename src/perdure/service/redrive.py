"""Redrives a function's failed executions: each restarts from its last checkpoint, once.

The failed executions are a dead-letter queue that keeps itself: ``perdure executions list
--status FAILED --since 1h`` shows them, and a redrive restarts every one of them that started
since a moment as a new execution (``perdure.service.restarts``) that resumes right after its
last checkpoint, so the work done before it is not done again. The new execution is named after
the failed one (``redrive-<execution id>``), so a second redrive never restarts the same failed
execution twice; a redriven execution that fails again is redriven anew.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import Execution, ExecutionStatus, Operation, OperationStatus, OperationType, Wire
from perdure.service import restarts, versions
from perdure.service.executions import DurableService

_PAGE = 1000


class RedriveOutcome:
    """What a redrive did with one failed execution (``Redrive.outcome``)."""

    REDRIVEN = "REDRIVEN"
    # Its redrive execution exists: an earlier redrive restarted it.
    ALREADY_REDRIVEN = "ALREADY_REDRIVEN"
    # A dry run: it would be redriven.
    WOULD_REDRIVE = "WOULD_REDRIVE"


@dataclass(frozen=True)
class Redrive:
    """One failed execution and its redrive: the execution that restarts it, and from where."""

    failed: Execution
    outcome: str
    # The execution that restarts it (one the redrive started, or an earlier redrive's); None on a dry run.
    restarted_arn: str | None
    # Where it resumes: a checkpoint number, a finished operation's ID, or None for the beginning.
    from_checkpoint: str | None

    def to_wire(self) -> Wire:
        wire: Wire = {
            "DurableExecutionArn": self.failed.arn,
            "DurableExecutionName": self.failed.name,
            "Outcome": self.outcome,
            "FromCheckpoint": self.from_checkpoint,
        }
        if self.restarted_arn is not None:
            wire["RestartedAs"] = self.restarted_arn
        return wire


def redrive_name(failed: Execution) -> str:
    """The name of the execution that redrives ``failed``: made from its ID, so there is only one."""
    return f"redrive-{failed.id}"


def last_point(operations: list[Operation]) -> str | None:
    """Where a redrive resumes: the last seed-style checkpoint (its number), else the last operation
    that succeeded (an AWS SDK handler's, its ID), else None: from the beginning."""
    checkpoints = restarts.checkpoint_operations(operations)
    if checkpoints:
        return str(len(checkpoints))
    succeeded = [op for op in operations if op.type is not OperationType.EXECUTION and op.status is OperationStatus.SUCCEEDED]
    return max(succeeded, key=lambda op: (op.version, op.position)).id if succeeded else None


def failed_since(service: DurableService, function_name: str, started_after: float) -> list[Execution]:
    """The function's FAILED executions that started after ``started_after``, oldest first."""
    query = ExecutionQuery(
        function_name=function_name,
        statuses=(ExecutionStatus.FAILED,),
        started_after=started_after,
        limit=_PAGE,
        oldest_first=True,
    )
    found: list[Execution] = []
    while True:
        page = service.list_executions(query)
        found.extend(page.executions)
        if page.next_marker is None:
            return found
        query = dataclasses.replace(query, marker=page.next_marker)


def redrive(
    service: DurableService, function_name: str, started_after: float, version: str | None = None, dry_run: bool = False
) -> list[Redrive]:
    """Restarts each FAILED execution of the function started after ``started_after`` from its last checkpoint.

    ``version`` (a number, an alias or ``$LATEST``) runs them on that version's code, once the
    bug that failed them is fixed; by default each runs the version it ran. ``dry_run`` says
    what would be done and starts nothing.
    """
    if version is not None:
        # Refused first: naming a version the function lacks is a mistake even with nothing to redrive.
        service.get_version(function_name, version)
    return [_redrive_one(service, failed, version, dry_run) for failed in failed_since(service, function_name, started_after)]


def _redrive_one(service: DurableService, failed: Execution, version: str | None, dry_run: bool) -> Redrive:
    name = redrive_name(failed)
    with service.store.snapshot() if dry_run else service.store.transaction() as tx:
        point = last_point(restarts.all_operations(tx, failed.id))
        existing = tx.find_execution(failed.function_name, name)
        if existing is not None:
            return Redrive(failed, RedriveOutcome.ALREADY_REDRIVEN, existing.arn, point)
        if dry_run:
            return Redrive(failed, RedriveOutcome.WOULD_REDRIVE, None, point)
        source = failed
        if version is not None:
            target = versions.resolve(tx, failed.function_name, version)
            source = failed.evolve(function_version=target.version if target else None)
        restarted = restarts.restart(tx, source, point, name, uuid.uuid4().hex, service.clock(), service.snapshots)
    return Redrive(failed, RedriveOutcome.REDRIVEN, restarted.arn, point)
