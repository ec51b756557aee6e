"""A runtime with free places runs the executions it starts at once, without its scheduler (issue 14).

The scheduler is not started here, so only the hand-off in ``Runtime.start_executions`` can run
them: leased in the start's own transaction, sent to a worker with their journal.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from servers import HANDLERS

from perdure.protocol.limits import FunctionLimits
from perdure.protocol.records import ExecutionStatus
from perdure.runtime.registry import Registry, seed_functions
from perdure.runtime.runner import Runtime
from perdure.runtime.workers import WorkerSettings
from perdure.service import limits
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore


def test_started_executions_run_at_once_and_limited_ones_wait_for_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERDURE_TEST_LOG", str(tmp_path / "steps.log"))
    db = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(db))
    runtime = Runtime(service, Registry(seed_functions(HANDLERS / "fair.py")), WorkerSettings(f"sqlite:///{db}"), workers=1)
    limits.declare(service, {"bulk": FunctionLimits(concurrency=5)})
    try:
        started = runtime.start_executions([StartRequest("urgent", f'{{"n": {n}}}') for n in range(3)])
        held = runtime.start_execution(StartRequest("bulk", '{"n": 0}'))
        arns = [result.execution.arn for result in started]
        for arn in arns:
            execution = service.get_execution(arn)
            # Leased as it started (or, on a fast machine, run to its end already).
            assert execution.lease_owner == runtime.scheduler.owner or execution.status is ExecutionStatus.SUCCEEDED
        deadline = time.monotonic() + 60
        while any(service.get_execution(arn).status is ExecutionStatus.RUNNING for arn in arns):
            assert time.monotonic() < deadline, "the handed-off executions did not end"
            time.sleep(0.05)
        assert [service.get_execution(arn).result for arn in arns] == ["0", "1", "2"]
        waiting = service.get_execution(held.execution.arn)
        assert waiting.lease_owner is None and waiting.ready_time is not None, "a limited function waits for a lease"
    finally:
        runtime.pool.close()  # its scheduler never started
        service.store.close()
