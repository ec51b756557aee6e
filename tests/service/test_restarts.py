"""Restarting an execution from a checkpoint, through the service with the seed engine on real SQLite.

The functions (tests/handlers/restartable.py) append a line to a side-effect log for every
step body they run, so a test sees exactly what ran again.
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from perdure.errors import ConflictError, ExecutionNotFoundError, InvalidParameterError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import Operation, OperationStatus, OperationType
from perdure.service import restarts
from perdure.testing import DurableTestRunner

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


def _load_flows() -> ModuleType:
    spec = importlib.util.spec_from_file_location("restartable", HANDLERS / "restartable.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flows = _load_flows()


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side-effects.log"
    monkeypatch.setenv("PERDURE_TEST_LOG", str(path))
    return path


@pytest.fixture
def runner(tmp_path: Path) -> Any:
    with DurableTestRunner(tmp_path) as runner:
        yield runner


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def operations(runner: DurableTestRunner, arn: str) -> list[Operation]:
    execution = runner.service.get_execution(arn)
    with runner.service.store.snapshot() as tx:
        return restarts.all_operations(tx, execution.id)


def checkpoint_ops(runner: DurableTestRunner, arn: str) -> list[Operation]:
    return restarts.checkpoint_operations(operations(runner, arn))


def history(runner: DurableTestRunner, arn: str) -> list[Any]:
    return runner.service.get_history(arn, max_items=1000).items


def is_delta(snapshot_text: str) -> bool:
    # The stored form (perdure.protocol.snapshots): a prefix, then base64 of a 32-byte MAC and a body
    # whose first byte says whole (F) or delta (D).
    body = base64.b64decode(snapshot_text.split(":", 1)[1])[32:]
    return body[:1] == b"D"


def test_a_restart_from_the_second_checkpoint_runs_only_what_follows_it(runner: DurableTestRunner, log: Path) -> None:
    first = runner.run(flows.three_stages, {"weight": 200}, name="order-1")
    assert first.status == "SUCCEEDED" and lines(log) == ["one", "two", "three", "four"]
    second_snapshot = checkpoint_ops(runner, first.arn)[1].result or ""
    assert is_delta(second_snapshot), "the second snapshot should build on the first, so the copy must carry both"
    old_execution = runner.service.get_execution(first.arn)
    old_operations = operations(runner, first.arn)
    old_history = history(runner, first.arn)

    restarted = runner.service.restart_execution(first.arn, "2")

    assert restarted.name == "order-1-restart-1" and restarted.status.value == "RUNNING"
    assert restarted.function_name == "three_stages" and restarted.input_payload == old_execution.input_payload
    run = runner.resume(restarted.arn)
    assert run.status == "SUCCEEDED" and run.result == first.result
    assert lines(log) == ["one", "two", "three", "four", "three", "four"]
    # The old execution is untouched.
    assert runner.service.get_execution(first.arn) == old_execution
    assert operations(runner, first.arn) == old_operations
    assert history(runner, first.arn) == old_history
    # The new one says where it came from.
    started = history(runner, restarted.arn)[0]
    assert started.event_type == "ExecutionStarted"
    assert started.details["RestartedFrom"] == {
        "DurableExecutionArn": first.arn,
        "Checkpoint": 2,
        "OperationId": checkpoint_ops(runner, first.arn)[1].id,
    }


@pytest.mark.parametrize(("checkpoint", "ran_again"), [("1", ["two", "three", "four"]), ("3", ["four"])])
def test_a_restart_from_any_checkpoint_resumes_right_after_it(
    runner: DurableTestRunner, log: Path, checkpoint: str, ran_again: list[str]
) -> None:
    first = runner.run(flows.three_stages, {"weight": 50}, name="any")
    restarted = runner.service.restart_execution(first.arn, checkpoint)
    run = runner.resume(restarted.arn)
    assert (run.status, run.result) == ("SUCCEEDED", first.result)
    assert lines(log) == ["one", "two", "three", "four", *ran_again]


def test_restarted_names_count_up_and_a_given_name_is_used(runner: DurableTestRunner, log: Path) -> None:
    first = runner.run(flows.three_stages, {}, name="n")
    assert runner.service.restart_execution(first.arn, "1").name == "n-restart-1"
    assert runner.service.restart_execution(first.arn, "1").name == "n-restart-2"
    assert runner.service.restart_execution(first.arn, "2", name="again").name == "again"
    with pytest.raises(ConflictError, match="'again' of function 'three_stages' already exists"):
        runner.service.restart_execution(first.arn, "2", name="again")
    with pytest.raises(InvalidParameterError, match="Invalid execution name 'no spaces'"):
        runner.service.restart_execution(first.arn, "2", name="no spaces")
    long = runner.run(flows.three_stages, {}, name="x" * 64)
    derived = runner.service.restart_execution(long.arn, "1").name
    assert derived == "x" * 54 + "-restart-1" and len(derived) == 64


def test_restart_errors_say_what_is_wrong(runner: DurableTestRunner, log: Path) -> None:
    first = runner.run(flows.three_stages, {}, name="e")
    missing = first.arn.replace("/e/", "/nobody/")
    with pytest.raises(ExecutionNotFoundError, match="Durable execution not found"):
        runner.service.restart_execution(missing, "1")
    for number in ("0", "4"):
        with pytest.raises(InvalidParameterError, match=f"has 3 checkpoints, so there is no checkpoint {number}: pass a number from 1 to 3"):
            runner.service.restart_execution(first.arn, number)
    with pytest.raises(InvalidParameterError, match="has no operation 'nope'"):
        runner.service.restart_execution(first.arn, "nope")
    execution_id = runner.service.get_execution(first.arn).id
    with pytest.raises(InvalidParameterError, match=f"has no operation '{execution_id}'"):
        runner.service.restart_execution(first.arn, execution_id)
    with pytest.raises(InvalidParameterError, match="Say where to restart from"):
        runner.service.restart_execution(first.arn, " ")
    plain = runner.run(flows.no_checkpoints, {}, name="plain")
    with pytest.raises(InvalidParameterError, match="has no checkpoints, so it cannot restart from checkpoint 1"):
        runner.service.restart_execution(plain.arn, "1")
    waiting = runner.run(flows.approval_then_steps, {}, name="waiting")
    callback = next(op for op in operations(runner, waiting.arn) if op.type is OperationType.CALLBACK)
    with pytest.raises(InvalidParameterError, match=f"Operation '{callback.id}' of .* is STARTED: an execution can only restart after an operation that has finished"):
        runner.service.restart_execution(waiting.arn, callback.id)
    # Nothing was created by the refused restarts.
    listed = runner.service.list_executions(ExecutionQuery(limit=100)).executions
    assert sorted(e.name for e in listed) == ["e", "plain", "waiting"]


def test_a_waiting_execution_restarts_with_its_own_callback(runner: DurableTestRunner, log: Path) -> None:
    waiting = runner.run(flows.approval_then_steps, {}, name="w")
    assert waiting.status == "RUNNING" and len(waiting.callbacks) == 1
    restarted = runner.service.restart_execution(waiting.arn, "1")
    run = runner.resume(restarted.arn)
    assert run.status == "RUNNING" and len(run.callbacks) == 1 and run.callbacks != waiting.callbacks
    runner.succeed_callback(run.callbacks[0], "yes")
    done = runner.resume(restarted.arn)
    assert (done.status, done.result) == ("SUCCEEDED", ["prepare", "after:yes"])
    assert lines(log) == ["prepare", f"asked:{waiting.callbacks[0]}", f"asked:{run.callbacks[0]}", "after:yes"]
    assert runner.service.get_execution(waiting.arn).status.value == "RUNNING"  # still waits for its own


# -- what is copied ------------------------------------------------------------------------


def op(op_id: str, position: int, version: int, type_: OperationType = OperationType.STEP, **fields: Any) -> Operation:
    fields.setdefault("status", OperationStatus.SUCCEEDED)
    fields.setdefault("start_time", float(position))
    return Operation(id=op_id, type=type_, position=position, version=version, **fields)


def test_the_copy_holds_what_had_finished_and_reopens_the_contexts_around_the_point() -> None:
    context = OperationType.CONTEXT
    recorded = [
        op("exec", 1, 9, OperationType.EXECUTION, status=OperationStatus.STARTED),
        op("before", 2, 2),
        op("par", 3, 9, context, result="[1, 2]", end_time=9.0),  # finished after the point
        op("par-a", 4, 8, context, parent_id="par", end_time=8.0),  # branch a: ends after the point
        op("par-a-1", 5, 4, parent_id="par-a", end_time=4.0),  # the point
        op("par-b", 6, 3, context, parent_id="par", end_time=3.0),  # branch b: ended before it
        op("par-b-1", 7, 3, parent_id="par-b", end_time=3.0),
        op("waiting", 8, 3, OperationType.WAIT, status=OperationStatus.STARTED),  # open then
        op("cb", 9, 4, OperationType.CALLBACK, callback_id="old-id", result='"ok"'),  # same batch as the point
        op("late", 10, 6),  # finished after the point
    ]
    point = restarts.RestartPoint(recorded[4], None)
    copied = {o.id: o for o in restarts.operations_at(recorded, point)}
    assert list(copied) == ["before", "par", "par-a", "par-a-1", "par-b", "par-b-1", "cb"]
    for reopened in ("par", "par-a"):
        assert copied[reopened].status is OperationStatus.STARTED
        assert copied[reopened].result is None and copied[reopened].end_time is None
    assert copied["par-b"] == recorded[5].evolve(version=1)
    assert copied["cb"].callback_id not in (None, "old-id") and copied["cb"].result == '"ok"'
    assert {o.version for o in copied.values()} == {1}


def test_a_restart_keeps_its_snapshots_when_the_old_execution_is_deleted(runner: DurableTestRunner, log: Path, tmp_path: Path) -> None:
    # 40,000 items pickle to over the 64 KiB inline limit: the snapshots are kept as blobs.
    first = runner.run(flows.three_stages, {"weight": 40_000}, name="big")
    assert first.status == "SUCCEEDED"
    blobs_before = sorted(path.name for path in (tmp_path / "blobs").rglob("*") if path.is_file())
    assert blobs_before, "the test needs snapshots stored as blobs"
    restarted = runner.service.restart_execution(first.arn, "2")
    runner.service.delete_execution(first.arn)
    blobs_after = sorted(path.name for path in (tmp_path / "blobs").rglob("*") if path.is_file())
    # The copied snapshots are signed for the new execution, so they are blobs of its own,
    # left in place when the old execution's go (the run below resumes from them).
    assert blobs_after
    run = runner.resume(restarted.arn)
    assert (run.status, run.result) == ("SUCCEEDED", first.result)
    assert lines(log) == ["one", "two", "three", "four", "three", "four"]
