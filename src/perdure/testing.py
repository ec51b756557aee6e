"""Run durable functions in tests: in-process, on a real store, with time you move yourself.

    from perdure.testing import DurableTestRunner

    def test_order(tmp_path):
        with DurableTestRunner(tmp_path) as runner:
            run = runner.run(process_order, {"order_id": "A-1"})
            assert run.status == "RUNNING"              # waiting for the approval callback
            runner.succeed_callback(run.callbacks[0], {"approved": True})
            assert runner.resume(run).result == {"status": "completed", "order_id": "A-1"}

Waits are skipped: when an execution only waits for a timer, the runner moves its clock to the
timer and goes on. ``crash_after_checkpoints(n)`` makes the process exit for real after the
n-th checkpoint, to test resuming in a new process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.records import ErrorObject, Execution
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.local import LocalRunner
from perdure.sdk.function import MARKER, DurableFunction
from perdure.service.executions import DurableService
from perdure.store.blobs import BlobStore
from perdure.store.sqlite import SQLiteStore


class SkippableClock:
    """A clock that starts at real time and only moves when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance_to(self, moment: float) -> None:
        self.now = max(self.now, moment)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Run:
    """An execution as a test sees it: status, result or error, and open callback IDs."""

    arn: str
    status: str
    result: Any = None
    error: ErrorObject | None = None
    callbacks: list[str] = field(default_factory=list)


def _durable(function: Callable[..., Any]) -> DurableFunction:
    durable = getattr(function, MARKER, None)
    if not isinstance(durable, DurableFunction):
        raise TypeError(f"{function!r} is not decorated with @perdure.function.")
    return durable


class DurableTestRunner:
    """Runs durable functions on a SQLite store in ``folder``, skipping waits.

    Payloads over the inline limit go to ``blobs`` (by default the folder ``blobs`` in ``folder``).
    ``ctx.callback_link`` makes links under ``public_url``, signed with ``secret``; ``self.links``
    reads them back (``links.read(url.rsplit("/", 1)[1]).callback_id``).
    """

    def __init__(
        self,
        folder: Path,
        secret: bytes = b"perdure-testing-secret",
        blobs: BlobStore | None = None,
        public_url: str = "http://127.0.0.1:8500",
    ) -> None:
        self.clock = SkippableClock()
        codec = SnapshotCodec(secret)
        self.service = DurableService(
            SQLiteStore(folder / "perdure.db", blobs=blobs),
            clock=self.clock,
            functions=lambda name: self.local.function_defaults(name),
            snapshots=codec,
        )
        self.links = ApprovalLinks(secret, public_url, self.clock)
        self.local = LocalRunner(self.service, codec, [], self.links)

    def __enter__(self) -> DurableTestRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.store.close()

    def register(self, *functions: Callable[..., Any]) -> None:
        """Makes durable functions known to the runner, so that ``ctx.invoke`` can start them."""
        for function in functions:
            self.local.add(_durable(function))

    def run(self, function: Callable[..., Any], event: Any = None, name: str | None = None) -> Run:
        """Starts (or resumes, by name) an execution and runs it until it ends or awaits a callback."""
        execution = self.local.start(_durable(function), event, name)
        return self.resume(execution.arn)

    def resume(self, run: Run | str) -> Run:
        """Runs an execution on until it ends or awaits a callback, skipping timer waits."""
        arn = run.arn if isinstance(run, Run) else run
        function_name = self.service.get_execution(arn).function_name
        if function_name not in self.local.functions:
            raise ValueError(
                f"{function_name} is not known to this runner: start or resume it with "
                "runner.run(function, event, name=...) so the runner has the function."
            )
        while True:
            execution = self.local.run_until_blocked(arn)
            callbacks = self.local.open_callbacks(arn)
            wakeup = self.service.next_wakeup()
            # Work due now that nothing here ran belongs to functions this runner does not have.
            if execution.status.is_terminal or callbacks or wakeup is None or wakeup <= self.clock.now:
                return self._run(execution, [op.callback_id or "" for op in callbacks])
            self.clock.advance_to(wakeup)

    def succeed_callback(self, callback_id: str, result: Any = None) -> None:
        self.service.succeed_callback(callback_id, json.dumps(result))

    def fail_callback(self, callback_id: str, message: str, error_type: str | None = None) -> None:
        self.service.fail_callback(callback_id, ErrorObject(message=message, type=error_type))

    def crash_after_checkpoints(self, count: int) -> None:
        """Makes this process exit (``os._exit``, no clean-up) right after the count-th checkpoint."""

        def crash(done: int) -> None:
            if done >= count:
                os._exit(86)

        self.local.checkpoint_hooks.append(crash)

    @staticmethod
    def _run(execution: Execution, callbacks: list[str]) -> Run:
        result = json.loads(execution.result) if execution.result else None
        return Run(execution.arn, execution.status.value, result, execution.error, callbacks)
