"""The operations of ``ctx`` through perdure.testing: steps, retries, waits, callbacks, structure."""

from __future__ import annotations

import logging
from pathlib import Path

import flows
import pytest

from perdure.testing import DurableTestRunner


@pytest.fixture
def runner(tmp_path: Path) -> DurableTestRunner:
    return DurableTestRunner(tmp_path)


def _events(runner: DurableTestRunner, arn: str) -> list[str]:
    return [event.event_type for event in runner.service.get_history(arn, max_items=1000).items]


def test_a_failing_step_is_retried_after_durable_waits_and_its_result_recorded(runner: DurableTestRunner) -> None:
    run = runner.run(flows.retrying, {"key": "a", "failures": 2, "attempts": 3})
    assert (run.status, run.result) == ("SUCCEEDED", "a ok after 3")
    events = _events(runner, run.arn)
    assert events.count("StepFailed") == 2 and events.count("StepSucceeded") == 1
    assert events.count("InvocationCompleted") == 3  # each retry waited durably in between


def test_a_step_out_of_attempts_fails_the_execution_with_the_users_error(runner: DurableTestRunner) -> None:
    run = runner.run(flows.retrying, {"key": "b", "failures": 5, "attempts": 2})
    assert run.status == "FAILED" and run.error is not None
    assert (run.error.type, run.error.message) == ("ConnectionError", "attempt 2 of b failed")


def test_waits_are_skipped_by_the_test_clock(runner: DurableTestRunner) -> None:
    before = runner.clock.now
    run = runner.run(flows.waiting)
    assert run.result == "woke"
    assert runner.clock.now - before >= 3 * 24 * 3600 + 30
    assert _events(runner, run.arn).count("WaitSucceeded") == 2


def test_a_callback_result_reaches_the_function(runner: DurableTestRunner) -> None:
    run = runner.run(flows.approval)
    assert run.status == "RUNNING" and len(run.callbacks) == 1
    runner.succeed_callback(run.callbacks[0], {"approved": True})
    assert runner.resume(run).result == {"answer": {"approved": True}}


def test_a_failed_callback_raises_its_error_in_the_function(runner: DurableTestRunner) -> None:
    run = runner.run(flows.approval)
    runner.fail_callback(run.callbacks[0], "no budget", "Rejected")
    assert runner.resume(run).result == {"rejected": "no budget", "type": "Rejected"}


def test_a_callback_times_out_when_its_time_passes(runner: DurableTestRunner) -> None:
    run = runner.run(flows.approval)
    runner.clock.advance_to(runner.clock.now + 3600)
    assert runner.resume(run).result == {"timed_out": "The callback timed out."}


def test_map_parallel_and_child_contexts_record_their_results(runner: DurableTestRunner) -> None:
    run = runner.run(flows.structured, {"x": 41})
    assert run.result == {"doubled": [2, 4, 6], "pair": ["left", "right"], "inner": 42}
    history = runner.service.get_history(run.arn, max_items=1000).items
    contexts = {(e.sub_type, e.name) for e in history if e.event_type == "ContextSucceeded"}
    assert ("Map", "double") in contexts and ("MapIteration", "double-2") in contexts
    assert ("Parallel", "pair") in contexts and ("RunInChildContext", "child") in contexts


def test_the_logger_stays_quiet_while_a_resumed_run_replays(
    runner: DurableTestRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="perdure.functions")
    run = runner.run(flows.logging_flow, {"key": "log"})
    assert run.result == [1, "log ok after 2"]
    assert [r.getMessage() for r in caplog.records] == ["starting", "between"]


def test_function_retries_rerun_it_from_its_last_checkpoint(runner: DurableTestRunner, tmp_path: Path) -> None:
    run = runner.run(flows.crashes_twice, {"marker": str(tmp_path / "count")})
    assert (run.status, run.result) == ("SUCCEEDED", 2)


def test_an_uncaught_exception_fails_with_the_users_own_type_and_message(runner: DurableTestRunner) -> None:
    run = runner.run(flows.rejects, {"order_id": 7})
    assert run.status == "FAILED" and run.error is not None
    assert (run.error.type, run.error.message) == ("flows.OrderRejected", "order 7 rejected")


def test_wait_for_condition_polls_durably_until_the_condition_holds(runner: DurableTestRunner) -> None:
    before = runner.clock.now
    run = runner.run(flows.polling, {"target": 3})
    assert run.result == 3
    assert runner.clock.now - before >= 20  # two waits of 10 s between the three checks
    history = runner.service.get_history(run.arn, max_items=1000).items
    checks = [e.details["Result"]["Payload"] for e in history if e.event_type == "StepSucceeded"]
    assert checks == ["1", "2", "3"]  # two retries carrying the state, then the final success
