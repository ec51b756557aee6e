"""The seed engine's view of one execution: its recorded operations and the writes that add to them.

It talks to the service through the same two calls the AWS SDK uses (checkpoint and get
state), synchronously and in-process: one write per operation, no background thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from perdure.errors import NonDeterministicError, OperationFailedError, StaleCheckpointTokenError, StoreUnavailableError
from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.records import (
    CHECKPOINT_SUBTYPE,
    CheckpointResult,
    ErrorObject,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Page,
)
from perdure.protocol.trace_context import TraceContext


class ServiceClient(Protocol):
    """The part of the service a durable function talks to (``DurableService`` fits it)."""

    def checkpoint(
        self, arn: str, checkpoint_token: str, updates: list[OperationUpdate], client_token: str | None = None
    ) -> CheckpointResult: ...

    def get_state(self, arn: str, checkpoint_token: str, marker: str | None = None, max_items: int = 1000) -> Page: ...


@runtime_checkable
class ResumingClient(ServiceClient, Protocol):
    """A client that reads parts of a journal (``DurableService`` fits it): a resumed invocation
    then reads its latest checkpoint and what followed, not every operation recorded before."""

    def latest_operation(self, arn: str, checkpoint_token: str, sub_type: str) -> Operation | None: ...

    def get_operations(self, arn: str, checkpoint_token: str, ids: Collection[str]) -> list[Operation]: ...


class Suspend(BaseException):
    """Ends the invocation: the execution waits for a timer or a callback.

    A BaseException, so that a user's ``except Exception`` cannot swallow it by accident.
    """


class StoreUnavailable(BaseException):
    """Ends the invocation with nothing more recorded: the store cannot write (its disk is full, its database is unreachable).

    A BaseException like ``Suspend``: neither a user's ``except Exception`` nor the engine's
    recording of the function's own failures may take it for the function's error (recorded
    the moment space returned, it failed a healthy execution). The runtime counts the
    invocation as lost, and it resumes from its last checkpoint.
    """


# How many top-level operations before a missing one ``Journal.earlier`` reads with it.
_READ_AHEAD = 63


class Journal:
    """Recorded operations by ID, and the current checkpoint token.

    ``operations`` holds every operation recorded, or, for a journal loaded from its latest
    checkpoint on (``complete`` False), that checkpoint and every operation started after it:
    all that the function's code from the checkpoint on can ask for by the IDs it makes.
    ``earlier`` finds any other (a snapshot's delta base, the function's retry count).
    """

    def __init__(
        self, client: ServiceClient, arn: str, token: str, operations: list[Operation], complete: bool = True
    ) -> None:
        self.client = client
        self.arn = arn
        self.token: str | None = token
        self.operations = {op.id: op for op in operations}
        self.complete = complete
        # Operations read by ``earlier``, and every ID it has asked the service for.
        self._earlier: dict[str, Operation] = {}
        self._asked: set[str] = set()
        self.observers: list[Callable[[list[OperationUpdate]], None]] = []
        # The execution's trace, when its spans are recorded: the steps' code runs inside theirs.
        self.trace: TraceContext | None = None
        # What makes approval links (``ctx.callback_link``) where a server can open them; None elsewhere.
        self.links: ApprovalLinks | None = None
        # The branches of a ``map`` or ``parallel`` write from threads of their own; each write
        # uses the token the one before it returned.
        self._writing = threading.Lock()

    def now(self) -> float:
        """The time to stamp a step's start with: the service's clock where the client has one
        (``DurableService.clock``, a test's skippable clock there), so that it reads as the
        moments the service stamps on the rest of the step's record do; else the wall clock."""
        clock = getattr(self.client, "clock", None)
        return clock() if callable(clock) else time.time()

    @classmethod
    def load(cls, client: ServiceClient, arn: str, token: str, known: Sequence[Operation] | None = None) -> Journal:
        """Reads the journal from its latest checkpoint on when the client can, or else whole; ``known``: the whole journal, read already.

        Operation IDs follow the order the function reaches its operations, and a resumed run
        starts at the latest checkpoint, so what it asks for by ID was started after it. A
        resume then costs what followed the checkpoint, however long the journal before it.
        """
        if known is not None:
            return cls(client, arn, token, list(known), complete=True)
        latest = client.latest_operation(arn, token, CHECKPOINT_SUBTYPE) if isinstance(client, ResumingClient) else None
        # Positions are the state's page markers: a page after this one starts at the checkpoint.
        operations = _pages(client, arn, token, str(latest.position - 1) if latest else None)
        return cls(client, arn, token, operations, complete=latest is None)

    def earlier(self, op_id: str) -> Operation | None:
        """Returns the operation with this ID, reading it from the service if it was recorded
        before what this journal holds."""
        op = self.operations.get(op_id) or self._earlier.get(op_id)
        if op is not None or self.complete or op_id in self._asked:
            return op
        assert isinstance(self.client, ResumingClient), "only a ResumingClient loads part of a journal"
        if self.token is None:
            raise Suspend("The execution has already ended; nothing more can be read.")
        # A delta snapshot's base is the checkpoint before it, whose base is the one before...:
        # the top-level operations just before this one come in the same read.
        wanted = [op_id]
        if op_id.isdigit():
            wanted += [str(n) for n in range(max(1, int(op_id) - _READ_AHEAD), int(op_id))]
        try:
            found = self.client.get_operations(self.arn, self.token, wanted)
        except StaleCheckpointTokenError:
            self.token = None
            raise Suspend("This invocation no longer holds the execution.") from None
        self._earlier.update((op.id, op) for op in found)
        self._asked.update(wanted)
        return self._earlier.get(op_id)

    def execution_input(self) -> Any:
        execution = next(op for op in self.operations.values() if op.type is OperationType.EXECUTION)
        return json.loads(execution.input_payload) if execution.input_payload else {}

    def latest_checkpoint(self) -> Operation | None:
        checkpoints = [
            op
            for op in self.operations.values()
            if op.sub_type == CHECKPOINT_SUBTYPE and op.status is OperationStatus.SUCCEEDED and op.parent_id is None
        ]
        return max(checkpoints, key=lambda op: op.position, default=None)

    def write(self, updates: list[OperationUpdate]) -> None:
        """Records updates durably (one checkpoint call) and takes in what changed."""
        with self._writing:
            self._write(updates)

    def _write(self, updates: list[OperationUpdate]) -> None:
        if self.token is None:
            raise Suspend("The execution has already ended; nothing more can be recorded.")
        try:
            result = self.client.checkpoint(self.arn, self.token, updates)
        except StaleCheckpointTokenError:
            # This invocation no longer holds the execution (it was paused, stopped, or taken
            # over after a lost lease): stop here, recording nothing more; whoever holds it now
            # goes on from what was recorded.
            self.token = None
            raise Suspend("This invocation no longer holds the execution.") from None
        except StoreUnavailableError as error:
            raise StoreUnavailable(error.message) from error
        self.token = result.checkpoint_token
        for op in result.operations:
            self.operations[op.id] = op
        for observer in self.observers:
            observer(updates)

    def recorded(self, op_id: str, type_: OperationType, name: str | None, sub_type: str) -> Operation | None:
        """Returns the operation recorded at this ID, checking it is the same kind of operation."""
        op = self.operations.get(op_id)
        if op is not None and (op.type is not type_ or op.sub_type != sub_type):
            raise NonDeterministicError(
                op_id, f"{op.type.value}/{op.sub_type} {op.name!r}", f"{type_.value}/{sub_type} {name!r}"
            )
        return op


def _pages(client: ServiceClient, arn: str, token: str, marker: str | None) -> list[Operation]:
    """Every operation from the page after ``marker`` on (all of them from no marker)."""
    operations: list[Operation] = []
    while True:
        page = client.get_state(arn, token, marker)
        operations.extend(page.items)
        marker = page.next_marker
        if not marker:
            return operations


def failure(op: Operation, what: str) -> OperationFailedError:
    """The error a failed operation raises when its outcome is replayed."""
    error = op.error or ErrorObject()
    message = error.message or f"{what} {op.name or op.id} failed."
    return OperationFailedError(message, error.type, error.data)


