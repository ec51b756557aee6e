"""Runs durable functions in this process against a service, without workers or a server.

``perdure run`` and ``perdure.testing`` are built on it: it leases the executions of its
functions that are ready and runs each invocation right here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from perdure.sdk.engine import run_seed_invocation
from perdure.sdk.function import DurableFunction
from perdure.sdk.snapshot import SnapshotCodec
from perdure.service.executions import DurableService, StartRequest
from perdure.service.model import Execution, Operation, OperationStatus, OperationType

LEASE_SECONDS = 900.0


class LocalRunner:
    """Starts and runs executions of some durable functions in the current process."""

    def __init__(self, service: DurableService, codec: SnapshotCodec, functions: list[DurableFunction]) -> None:
        self.service = service
        self.codec = codec
        self.functions = {f.options.name: f for f in functions}
        self.owner = f"local:{os.getpid()}"
        self.checkpoint_hooks: list[Callable[[int], None]] = []

    def start(self, function: DurableFunction, event: Any = None, name: str | None = None) -> Execution:
        """Starts an execution (or returns the existing one with this name and input)."""
        self.functions.setdefault(function.options.name, function)
        payload = json.dumps(event) if event is not None else None
        request = StartRequest(
            function.options.name,
            payload,
            execution_name=name,
            timeout_seconds=function.options.max_suspension,
            retention_days=function.options.retention_days,
        )
        return self.service.start_execution(request).execution

    def run_ready(self) -> int:
        """Runs one invocation of every execution that is ready now; returns how many ran."""
        ran = 0
        for invocation in self.service.lease(self.owner, list(self.functions), 16, LEASE_SECONDS):
            function = self.functions[invocation.function_name]
            output = run_seed_invocation(
                function,
                self.service,
                invocation.execution_arn,
                invocation.checkpoint_token,
                self.codec,
                self.checkpoint_hooks,
            )
            self.service.complete_invocation(invocation, output)
            ran += 1
        return ran

    def run_until_blocked(self, arn: str) -> Execution:
        """Runs the execution until it ends or waits for something that is not due yet."""
        while self.run_ready():
            pass
        return self.service.get_execution(arn)

    def open_callbacks(self, arn: str) -> list[Operation]:
        """Returns the execution's callbacks that wait to be completed."""
        execution = self.service.get_execution(arn)
        with self.service.store.snapshot() as tx:
            operations = tx.list_operations(execution.id, 0, 100_000)
        return [op for op in operations if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED]
