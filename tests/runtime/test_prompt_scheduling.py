"""The scheduler acts on events at once: an interrupted execution on restart, timers due together."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from servers import HANDLERS, Server, wait_for

from perdure.protocol.records import InvocationOutput, InvocationStatus, OperationStatus, OperationUpdate
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.runner import Runtime
from perdure.runtime.workers import WorkerSettings
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore
from perdure.testing import SkippableClock


def _history(server: Server, arn: str) -> list[dict[str, Any]]:
    result = server.cli("executions", "history", arn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _status(server: Server, arn: str) -> str:
    result = server.cli("executions", "get", arn)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["Status"])


def test_an_execution_interrupted_by_a_killed_server_resumes_at_once_on_restart(
    serve: Any, side_effects: Path, tmp_path: Path
) -> None:
    server = serve(f"held={HANDLERS / 'interruptible.py'}:held")
    release = tmp_path / "release"
    started = server.cli("invoke", "held", "--payload", json.dumps({"release": str(release)}), "--async")
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    wait_for(lambda: side_effects.exists() and side_effects.read_text().count("invoked") == 1)

    server.kill()
    server.start()
    wait_for(lambda: side_effects.read_text().count("invoked") == 2)
    release.touch()
    wait_for(lambda: _status(server, arn) == "SUCCEEDED")

    ended = [e for e in _history(server, arn) if e["EventType"] == "InvocationCompleted"]
    lost, resumed = (e["InvocationCompletedDetails"] for e in ended)
    assert lost["Error"]["Payload"]["ErrorType"] == "Runtime.InvocationLost"
    # The lease of the dead server was taken back when the new one started, and the lost
    # invocation retried in the same transaction: no lease ran out, no backoff was waited.
    assert resumed["StartTimestamp"] == lost["EndTimestamp"]


def _suspend_with_waits(service: DurableService, clock: SkippableClock, count: int) -> dict[str, float]:
    """Starts ``count`` executions of "sleeper", each suspended in a wait; returns each one's due time by ID.

    The later an execution starts, the sooner its wait falls due.
    """
    for index in range(count):
        service.start_execution(StartRequest("sleeper", execution_name=f"s{index}"))
    due: dict[str, float] = {}
    for index, invocation in enumerate(service.lease("setup", ["sleeper"], count, 3600)):
        clock.advance(0.001)
        wait = OperationUpdate.from_wire(
            {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 100 + count - index}}
        )
        service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, [wait])
        service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))
        due[invocation.execution_arn.rsplit("/", 1)[1]] = clock.now + 100 + count - index
    return due


def test_ten_thousand_timers_due_together_fire_in_one_pass_in_due_order(tmp_path: Path) -> None:
    clock = SkippableClock()
    db = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(db), clock=clock)
    due = _suspend_with_waits(service, clock, 10_000)
    clock.advance_to(max(due.values()))

    # The one worker is for another function: the pass fires timers whatever the workers do.
    registry = Registry([FunctionSpec("other", HANDLERS / "interruptible.py", "held")])
    runtime = Runtime(service, registry, WorkerSettings(f"sqlite:///{db}"), workers=1)
    runtime.start()

    def pending() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM timers WHERE kind = 'wait'").fetchone()[0])

    try:
        # The scheduler's first pass runs behind start; the clock, skipped, does not move meanwhile.
        wait_for(lambda: pending() == 0)
        with sqlite3.connect(db) as conn:
            fired = conn.execute(
                "SELECT execution_id FROM operations WHERE type = 'WAIT' AND status = ?",
                (OperationStatus.SUCCEEDED.value,),
            ).fetchall()
            # The events table keeps rows in the order they were written.
            order = [
                row[0]
                for row in conn.execute(
                    "SELECT execution_id FROM events WHERE body LIKE '%WaitSucceeded%' ORDER BY rowid"
                )
            ]
    finally:
        runtime.stop()
        service.store.close()
    assert len(fired) == 10_000
    assert order == sorted(due, key=lambda execution_id: due[execution_id])
