"""Redriving a function's failed executions: each restarts from its last checkpoint, once.

The seed-style tests run tests/handlers/destinations.py with the seed engine on SQLite
(perdure.testing); its steps append to a side-effect log, so a test sees what ran again. The
others run on SQLite and PostgreSQL through the service.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from store_backends import StoreFactory

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import (
    ExecutionStatus,
    InvocationOutput,
    InvocationStatus,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from perdure.protocol.snapshots import SnapshotCodec
from perdure.service import redrive, restarts
from perdure.service.executions import DurableService, StartRequest
from perdure.service.redrive import RedriveOutcome
from perdure.testing import DurableTestRunner, SkippableClock

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HANDLERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flows = _load("destinations")


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side-effects.log"
    monkeypatch.setenv("PERDURE_TEST_LOG", str(path))
    return path


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableTestRunner]:
    with DurableTestRunner(tmp_path) as runner:
        runner.register(flows.alert, flows.receipt)
        yield runner


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_redrive_resumes_each_failed_execution_after_its_last_checkpoint_once(runner: DurableTestRunner, log: Path) -> None:
    since = runner.clock.now - 1
    first = runner.run(flows.charge, {"order": 1}, name="order-1")
    runner.clock.advance(1)
    second = runner.run(flows.charge, {"order": 2}, name="order-2")
    assert first.status == second.status == "FAILED"
    # Each failure started the alert, once.
    assert sorted(line for line in lines(log) if line.startswith("alert:")) == sorted(
        [f"alert:RetriesExhausted:{first.arn}", f"alert:RetriesExhausted:{second.arn}"]
    )
    Path(f"{log}.fixed").touch()
    before = lines(log)

    done = redrive.redrive(runner.service, "charge", since)
    assert [(d.failed.arn, d.outcome, d.from_checkpoint) for d in done] == [
        (first.arn, RedriveOutcome.REDRIVEN, "2"),
        (second.arn, RedriveOutcome.REDRIVEN, "2"),
    ]
    for order, item in enumerate(done, start=1):
        assert item.restarted_arn is not None
        assert runner.resume(item.restarted_arn).result == {"order": order, "charged": True}
    # Only what followed the second checkpoint ran again: no validation, no charge, twice a receipt.
    assert sorted(lines(log)[len(before):]) == ["receipt:1", "receipt:2"]
    restarted = runner.service.get_execution(done[0].restarted_arn or "")
    assert restarted.name == f"redrive-{runner.service.get_execution(first.arn).id}"

    again = redrive.redrive(runner.service, "charge", since)
    assert [(d.outcome, d.restarted_arn) for d in again] == [(RedriveOutcome.ALREADY_REDRIVEN, d.restarted_arn) for d in done]


def test_a_dry_run_says_what_it_would_redrive_and_starts_nothing(runner: DurableTestRunner, log: Path) -> None:
    failed = runner.run(flows.charge, {"order": 3}, name="order-3")
    (would,) = redrive.redrive(runner.service, "charge", runner.clock.now - 1, dry_run=True)
    assert (would.failed.arn, would.outcome, would.restarted_arn, would.from_checkpoint) == (
        failed.arn, RedriveOutcome.WOULD_REDRIVE, None, "2"
    )  # fmt: skip
    assert [e.name for e in runner.service.list_executions(ExecutionQuery(function_name="charge")).executions] == ["order-3"]


def test_only_failures_started_since_the_moment_given_are_redriven(runner: DurableTestRunner, log: Path) -> None:
    runner.run(flows.charge, {"order": 4}, name="old")
    runner.clock.advance(3600)
    since = runner.clock.now - 60
    recent = runner.run(flows.charge, {"order": 5}, name="recent")
    assert [d.failed.arn for d in redrive.redrive(runner.service, "charge", since)] == [recent.arn]


# -- on both stores -------------------------------------------------------------------------


@pytest.fixture
def service(open_test_store: StoreFactory, clock: SkippableClock) -> DurableService:
    return DurableService(open_test_store(), clock=clock, snapshots=SnapshotCodec(b"redrive-test-secret-" * 2))


def step(op_id: str, action: str, payload: str | None = None) -> OperationUpdate:
    wire = {"Id": op_id, "Type": "STEP", "Action": action, "Name": op_id, "SubType": "Step"}
    if payload is not None:
        wire["Payload"] = payload
    return OperationUpdate.from_wire(wire)


def test_an_aws_handlers_failure_is_redriven_after_its_last_step_that_succeeded(service: DurableService, clock: SkippableClock) -> None:
    since = clock.now - 1
    started = service.start_execution(StartRequest("orders", '{"order": 6}', execution_name="aws-1")).execution
    (invocation,) = service.lease("owner", ["orders"], 1, 30)
    token = invocation.checkpoint_token
    for update in (step("a", "START"), step("a", "SUCCEED", '"A"'), step("b", "START"), step("b", "SUCCEED", '"B"'), step("c", "START")):
        token = service.checkpoint(started.arn, token, [update]).checkpoint_token or ""
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.FAILED))

    (done,) = redrive.redrive(service, "orders", since)
    assert (done.outcome, done.from_checkpoint) == (RedriveOutcome.REDRIVEN, "b")
    restarted = service.get_execution(done.restarted_arn or "")
    assert (restarted.status, restarted.input_payload) == (ExecutionStatus.RUNNING, '{"order": 6}')
    with service.store.snapshot() as tx:
        copied = restarts.all_operations(tx, restarted.id)
    assert [(op.id, op.status) for op in copied if op.type is OperationType.STEP] == [
        ("a", OperationStatus.SUCCEEDED),
        ("b", OperationStatus.SUCCEEDED),
    ]
    (first_event,) = service.get_history(restarted.arn, max_items=1).items
    assert first_event.details["RestartedFrom"] == {"DurableExecutionArn": started.arn, "OperationId": "b"}
    assert [d.outcome for d in redrive.redrive(service, "orders", since)] == [RedriveOutcome.ALREADY_REDRIVEN]


def test_a_failure_before_any_checkpoint_is_redriven_from_the_beginning(service: DurableService, clock: SkippableClock) -> None:
    since = clock.now - 1
    started = service.start_execution(StartRequest("orders", '{"order": 8}', execution_name="early")).execution
    (invocation,) = service.lease("owner", ["orders"], 1, 30)
    service.complete_invocation(invocation, InvocationOutput(InvocationStatus.FAILED))
    (done,) = redrive.redrive(service, "orders", since)
    assert (done.outcome, done.from_checkpoint) == (RedriveOutcome.REDRIVEN, None)
    restarted = service.get_execution(done.restarted_arn or "")
    with service.store.snapshot() as tx:
        assert [op.type for op in restarts.all_operations(tx, restarted.id)] == [OperationType.EXECUTION]
    (first_event,) = service.get_history(restarted.arn, max_items=1).items
    assert first_event.details["RestartedFrom"] == {"DurableExecutionArn": started.arn}


def test_the_last_point_is_the_last_checkpoint_else_the_last_success() -> None:
    def op(op_id: str, version: int, status: OperationStatus = OperationStatus.SUCCEEDED, sub_type: str | None = None) -> Operation:
        kind = OperationType.CONTEXT if sub_type else OperationType.STEP
        return Operation(op_id, kind, status, version, sub_type=sub_type, version=version)

    assert redrive.last_point([]) is None
    assert redrive.last_point([op("a", 2), op("b", 4), op("c", 5, OperationStatus.FAILED)]) == "b"
    assert redrive.last_point([op("k1", 2, sub_type="Checkpoint"), op("s", 3), op("k2", 4, sub_type="Checkpoint")]) == "2"
