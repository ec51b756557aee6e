"""``ctx.invoke`` in seed-style functions, through perdure.testing."""

from __future__ import annotations

from pathlib import Path

import invoking_flows as flows
import pytest

from perdure.protocol.records import ErrorObject
from perdure.testing import DurableTestRunner


@pytest.fixture
def runner(tmp_path: Path) -> DurableTestRunner:
    runner = DurableTestRunner(tmp_path)
    runner.register(flows.slow_square, flows.refuses)
    return runner


def _events(runner: DurableTestRunner, arn: str) -> list[str]:
    return [event.event_type for event in runner.service.get_history(arn, max_items=1000).items]


def test_an_invoked_function_runs_as_a_child_and_its_result_comes_back(runner: DurableTestRunner) -> None:
    flows.RUNS.clear()
    run = runner.run(flows.parent, {"target": "slow_square", "payload": {"n": 7}, "tenant": "acme"})
    assert (run.status, run.result) == ("SUCCEEDED", {"answer": 49})
    # The statement before the invoke ran once: the invoke is an implicit checkpoint.
    assert flows.RUNS == ["before", "after"]
    history = runner.service.get_history(run.arn, max_items=1000).items
    started = next(e for e in history if e.event_type == "ChainedInvokeStarted")
    child = runner.service.get_execution(started.details["DurableExecutionArn"])
    assert (child.function_name, child.tenant_id, child.status.value) == ("slow_square", "acme", "SUCCEEDED")
    assert child.timeout_seconds == 3600
    assert _events(runner, run.arn)[-3:] == ["ChainedInvokeSucceeded", "InvocationCompleted", "ExecutionSucceeded"]


def test_a_failed_child_raises_its_error_type_in_the_parent(runner: DurableTestRunner) -> None:
    run = runner.run(flows.careful_parent, {"target": "refuses", "payload": 3})
    assert run.result == {"error_type": "PermissionError", "message": "not allowed: 3"}


def test_an_uncaught_child_failure_fails_the_parent_with_the_childs_error(runner: DurableTestRunner) -> None:
    run = runner.run(flows.parent, {"target": "refuses", "payload": 4})
    assert run.status == "FAILED" and run.error is not None
    assert (run.error.type, run.error.message) == ("PermissionError", "not allowed: 4")


def test_invoking_an_unknown_function_raises_at_once(runner: DurableTestRunner) -> None:
    run = runner.run(flows.careful_parent, {"target": "nowhere"})
    assert run.result["error_type"] == "ResourceNotFoundException"
    assert "Function not found: nowhere" in run.result["message"]
    assert _events(runner, run.arn).count("InvocationCompleted") == 1


def test_a_stopped_child_fails_the_invoke_with_the_stop_error(runner: DurableTestRunner) -> None:
    runner.register(flows.awaits_approval)
    run = runner.run(flows.careful_parent, {"target": "awaits_approval"})
    assert run.status == "RUNNING"  # its child waits for a callback
    started = next(
        e for e in runner.service.get_history(run.arn, max_items=1000).items if e.event_type == "ChainedInvokeStarted"
    )
    runner.service.stop_execution(started.details["DurableExecutionArn"], ErrorObject(message="halted", type="Operator"))
    assert runner.resume(run).result == {"error_type": "Operator", "message": "halted"}
