"""Runs durable functions in this process against a service, without workers or a server.

``perdure run`` and ``perdure.testing`` are built on it: it leases the executions of its
functions that are ready and runs each invocation right here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig
from perdure.protocol.records import (
    CODE_CHANGED_PREFIX,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    Usage,
)
from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.secret import load_secret
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import destinations
from perdure.runtime.heap import freeze_startup_heap
from perdure.runtime.leases import lease_owner_id, owner_is_dead
from perdure.runtime.logcapture import capture_logs, keep_logs
from perdure.sdk.engine import run_seed_invocation
from perdure.sdk.function import MARKER, DurableFunction
from perdure.service import invoke_configs
from perdure.service.executions import DurableService, StartRequest
from perdure.service.functions import FunctionDefaults
from perdure.service.snapshot_upgrade import upgrade_snapshots
from perdure.store import data_dir_for, open_store

LEASE_SECONDS = 900.0


class LocalRunner:
    """Starts and runs executions of some durable functions in the current process.

    ``ctx.callback_link`` makes its links with ``links``; without them (``perdure run``, where no
    server would open a link) it raises.
    """

    def __init__(
        self,
        service: DurableService,
        codec: SnapshotCodec,
        functions: list[DurableFunction],
        links: ApprovalLinks | None = None,
    ) -> None:
        self.service = service
        self.codec = codec
        self.links = links
        self.functions: dict[str, DurableFunction] = {}
        for function in functions:
            self.add(function)
        self.owner = lease_owner_id()
        # An earlier `perdure run` that died still holds its lease: take it back now.
        service.expire_leases(owner_is_dead)
        self.checkpoint_hooks: list[Callable[[int], None]] = []

    def add(self, function: DurableFunction) -> None:
        """Makes ``function`` runnable here, and a target of chained invokes; the latest code given for a name runs.

        Its destinations (``on_success``, ``on_failure``) are recorded, as a server start records them.
        """
        options = function.options
        if self.functions.get(options.name) is not function:
            config = EventInvokeConfig(on_success=options.on_success, on_failure=options.on_failure)
            invoke_configs.serve(self.service, options.name, config if config.destinations else None)
        self.functions[options.name] = function

    def function_defaults(self, name: str) -> FunctionDefaults | None:
        """The service's view of a function this runner runs (``DurableService``'s ``functions``)."""
        function = self.functions.get(name)
        if function is None:
            return None
        return FunctionDefaults(name, function.options.max_suspension, function.options.retention_days)

    def start(self, function: DurableFunction, event: Any = None, name: str | None = None) -> Execution:
        """Starts an execution (or returns the existing one with this name and input)."""
        # The latest code given for a name is the one that runs (a redeploy, in a test).
        self.add(function)
        payload = json.dumps(event) if event is not None else None
        request = StartRequest(
            function.options.name,
            payload,
            execution_name=name,
            timeout_seconds=function.options.max_suspension,
            retention_days=function.options.retention_days,
        )
        execution = self.service.start_execution(request).execution
        if execution.status is ExecutionStatus.PAUSED and (execution.pause_reason or "").startswith(CODE_CHANGED_PREFIX):
            # Paused as its code had changed, it tries the code given now (and pauses again if it is still not its code).
            execution = self.service.resume_execution(execution.arn, "The function's code is given again.")
        return execution

    def run_ready(self) -> int:
        """Runs one invocation of every execution that is ready now; returns how many ran."""
        ran = 0
        for invocation in self.service.lease(self.owner, list(self.functions), 16, LEASE_SECONDS):
            function = self.functions[invocation.function_name]
            began, cpu = time.monotonic(), time.thread_time()
            with capture_logs(invocation.invocation) as captured:
                output = run_seed_invocation(
                    function,
                    self.service,
                    invocation.execution_arn,
                    invocation.checkpoint_token,
                    self.codec,
                    self.checkpoint_hooks,
                    links=self.links,
                )
            keep_logs(self.service, invocation.execution_arn, captured)
            self.service.complete_invocation(invocation, output, Usage(time.thread_time() - cpu, seconds=time.monotonic() - began))
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


def run_to_end(
    file: Path,
    attribute: str,
    event: Any,
    name: str | None,
    db_url: str,
    announce: Callable[[str, str], None],
    poll_seconds: float = 0.2,
) -> Execution:
    """Runs (or resumes, by name) one execution in this process until it ends; waits in place.

    ``announce(callback_id, db_url)`` is called once for each callback it starts waiting for.
    """
    from perdure.runtime.registry import load_handler, seed_functions

    # Every function of the file runs here, so that one can invoke another, or be another's destination.
    specs = seed_functions(file)
    destinations.check(specs)
    functions = {spec.attribute: getattr(load_handler(spec), MARKER) for spec in specs}
    durable = functions.get(attribute)
    if durable is None:
        raise InvalidParameterError(f"{file} has no @durable.function named {attribute!r}.")
    runners: list[LocalRunner] = []
    store = open_store(db_url)
    codec = SnapshotCodec(load_secret(data_dir_for(db_url)))
    service = DurableService(store, functions=lambda name: runners[0].function_defaults(name), snapshots=codec)
    # Before the execution runs: one suspended across an upgrade resumes from its snapshots.
    upgrade_snapshots(service.store, codec, service.clock())
    runner = LocalRunner(service, codec, list(functions.values()))
    runners.append(runner)
    # This process is perdure's own (`perdure run`); a LocalRunner inside a user's process (as
    # perdure.testing makes) leaves that process's garbage collector alone.
    freeze_startup_heap()
    arn = runner.start(durable, event, name).arn
    announced: set[str] = set()
    while True:
        execution = runner.run_until_blocked(arn)
        if execution.status.is_terminal:
            # Its end started its destination, if its function has one: that runs here too, until it ends or waits.
            while runner.run_ready():
                pass
            return execution
        # Paused, it waits for someone else (an operator, or the code it was suspended on).
        if execution.status is ExecutionStatus.PAUSED:
            return execution
        for op in runner.open_callbacks(arn):
            if op.callback_id and op.callback_id not in announced:
                announced.add(op.callback_id)
                announce(op.callback_id, db_url)
        wakeup = service.next_wakeup()
        # Callbacks completed by another process wake nothing here, so look again soon.
        delay = poll_seconds if wakeup is None else min(poll_seconds, max(0.0, wakeup - service.clock()))
        time.sleep(delay)
