"""Crashes of the platform do not count against an execution; crashes its handler causes do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servers import HANDLERS, Server, wait_for

from perdure.protocol.records import (
    ErrorObject,
    Execution,
    ExecutionStatus,
    OperationAction,
    OperationType,
    OperationUpdate,
)
from perdure.service.executions import DurableService, StartRequest
from perdure.service.invocations import InvocationRetryPolicy
from perdure.store.sqlite import SQLiteStore
from perdure.testing import SkippableClock


def _start(server: Server, function: str, payload: str) -> str:
    started = server.cli("invoke", function, "--payload", payload, "--async")
    assert started.returncode == 0, started.stderr
    return str(json.loads(started.stdout)["DurableExecutionArn"])


def _ended(server: Server, arn: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        execution: dict[str, Any] = json.loads(server.cli("executions", "get", arn).stdout)
        return execution if execution["Status"] != "RUNNING" else None

    # Ten workers started one after another for the killed ones: slow on a busy machine.
    return wait_for(ended, timeout=120, interval=0.2)  # type: ignore[return-value]


def _status(server: Server, arn: str) -> str:
    return str(json.loads(server.cli("executions", "get", arn).stdout)["Status"])


def _lines(side_effects: Path, label: str) -> int:
    return side_effects.read_text().splitlines().count(label) if side_effects.exists() else 0


def test_a_healthy_execution_outlives_more_server_kills_than_its_crash_limit(
    serve: Any, tmp_path: Path, side_effects: Path
) -> None:
    server = serve(f"held={HANDLERS / 'interruptible.py'}:held")
    release = tmp_path / "release"
    arn = _start(server, "held", json.dumps({"release": str(release)}))
    kills = InvocationRetryPolicy().max_attempts + 1
    for kill in range(kills):
        # Killed while its handler runs, before it records anything: each kill loses an invocation.
        wait_for(lambda: _lines(side_effects, "invoked") == kill + 1 or _status(server, arn) != "RUNNING")
        assert _status(server, arn) == "RUNNING", _ended(server, arn)
        server.kill()
        server.start()
    wait_for(lambda: _lines(side_effects, "invoked") == kills + 1)
    release.touch()

    execution = _ended(server, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert execution["Result"] == "released"


def test_a_handler_that_exits_its_worker_fails_after_its_retries(serve: Any, side_effects: Path) -> None:
    server = serve(f"exits={HANDLERS / 'crashing.py'}:exits")
    execution = _ended(server, _start(server, "exits", "{}"))
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "Runtime.ExitError"
    assert _lines(side_effects, "exits") == InvocationRetryPolicy().max_attempts


def test_a_handler_whose_worker_is_killed_every_time_does_not_run_for_ever(serve: Any, side_effects: Path) -> None:
    server = serve(f"kills={HANDLERS / 'crashing.py'}:kills_itself")
    execution = _ended(server, _start(server, "kills", "{}"))
    assert execution["Status"] == "FAILED", execution
    assert execution["Error"]["ErrorType"] == "Runtime.InvocationLost", execution["Error"]
    assert _lines(side_effects, "kills_itself") == InvocationRetryPolicy().max_lost_invocations


def test_only_lost_invocations_in_a_row_without_a_checkpoint_fail_an_execution(tmp_path: Path) -> None:
    service = DurableService(SQLiteStore(tmp_path / "perdure.db"), clock=SkippableClock())
    service.start_execution(StartRequest("orders"))
    limit = InvocationRetryPolicy().max_lost_invocations
    lost = ErrorObject(message="killed", type="Runtime.InvocationLost")

    def lose(times: int) -> Execution | None:
        ended = None
        for _ in range(times):
            (invocation,) = service.lease("owner", ["orders"], 1, 30)
            ended = service.fail_invocation(invocation, lost, lost=True)
        return ended

    assert lose(limit - 1) is not None
    # A checkpoint between them is progress: the count starts again.
    (invocation,) = service.lease("owner", ["orders"], 1, 30)
    service.checkpoint(
        invocation.execution_arn,
        invocation.checkpoint_token,
        [OperationUpdate("s1", OperationType.STEP, OperationAction.SUCCEED, payload="1")],
    )
    service.fail_invocation(invocation, lost, lost=True)
    still = lose(limit - 2)
    assert still is not None and still.status is ExecutionStatus.RUNNING
    ended = lose(1)
    assert ended is not None and ended.status is ExecutionStatus.FAILED
    assert ended.error is not None and f"{limit} invocations lost in a row" in ended.error.message
    service.store.close()
