"""The seed engine's view of one execution: its recorded operations and the writes that add to them.

It talks to the service through the same two calls the AWS SDK uses (checkpoint and get
state), synchronously and in-process: one write per operation, no background thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from perdure.errors import NonDeterministicError, OperationFailedError, StaleCheckpointTokenError
from perdure.service.model import (
    CheckpointResult,
    ErrorObject,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Page,
)


class ServiceClient(Protocol):
    """The part of the service a durable function talks to (``DurableService`` fits it)."""

    def checkpoint(
        self, arn: str, checkpoint_token: str, updates: list[OperationUpdate], client_token: str | None = None
    ) -> CheckpointResult: ...

    def get_state(self, arn: str, checkpoint_token: str, marker: str | None = None, max_items: int = 1000) -> Page: ...


class Suspend(BaseException):
    """Ends the invocation: the execution waits for a timer or a callback.

    A BaseException, so that a user's ``except Exception`` cannot swallow it by accident.
    """


CHECKPOINT_SUBTYPE = "Checkpoint"


class Journal:
    """Recorded operations by ID, and the current checkpoint token."""

    def __init__(self, client: ServiceClient, arn: str, token: str, operations: list[Operation]) -> None:
        self.client = client
        self.arn = arn
        self.token: str | None = token
        self.operations = {op.id: op for op in operations}
        self.observers: list[Callable[[list[OperationUpdate]], None]] = []

    @classmethod
    def load(cls, client: ServiceClient, arn: str, token: str) -> Journal:
        operations: list[Operation] = []
        marker: str | None = None
        while True:
            page = client.get_state(arn, token, marker)
            operations.extend(page.items)
            marker = page.next_marker
            if not marker:
                return cls(client, arn, token, operations)

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


def failure(op: Operation, what: str) -> OperationFailedError:
    """The error a failed operation raises when its outcome is replayed."""
    error = op.error or ErrorObject()
    message = error.message or f"{what} {op.name or op.id} failed."
    return OperationFailedError(message, error.type, error.data)


