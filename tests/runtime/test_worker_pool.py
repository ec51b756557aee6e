"""The worker pool: starting a worker process holds up nothing else, and a stop while one starts loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import HANDLERS, wait_for

from perdure.protocol.records import ExecutionStatus, Invocation
from perdure.runtime import workers
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.worker_process import ProcessKey
from perdure.runtime.workers import WorkerPool, WorkerSettings
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore


@dataclass
class SlowStart:
    """A pool whose worker processes start only once ``release`` is set."""

    service: DurableService
    pool: WorkerPool
    starting: threading.Event
    release: threading.Event
    ended: threading.Event

    def leased(self) -> Invocation:
        self.service.start_execution(StartRequest("echo", input_payload='{"n": 1}'))
        [invocation] = self.service.lease("test", ["echo"], 1, 60)
        return invocation


@pytest.fixture
def slow_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowStart]:
    db = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(db))
    registry = Registry([FunctionSpec("echo", HANDLERS / "invoking.py", "echo")])
    starting, release, ended = threading.Event(), threading.Event(), threading.Event()
    real_process = workers._Process

    def start_when_released(settings: WorkerSettings, key: ProcessKey, slots: int) -> workers._Process:
        # Stands in for a process that is slow to start (a loaded machine, a large interpreter).
        starting.set()
        release.wait(30)
        return real_process(settings, key, slots)

    monkeypatch.setattr(workers, "_Process", start_when_released)
    pool = WorkerPool(service, registry, WorkerSettings(f"sqlite:///{db}"), 2, lambda *_: ended.set())
    try:
        yield SlowStart(service, pool, starting, release, ended)
    finally:
        release.set()
        pool.close(grace_seconds=1)
        service.close()


def test_a_worker_being_started_does_not_hold_the_pool(slow_start: SlowStart) -> None:
    invocation = slow_start.leased()
    submitting = threading.Thread(target=slow_start.pool.submit, args=(invocation,))
    submitting.start()
    assert slow_start.starting.wait(10)

    asked = threading.Thread(target=lambda: (slow_start.pool.free_slots(), slow_start.pool.running()))
    asked.start()
    asked.join(5)
    held = asked.is_alive()
    # While it starts, its invocation already takes a slot.
    running = [] if held else slow_start.pool.running()
    slow_start.release.set()
    asked.join(30)
    submitting.join(30)
    assert not held, "the pool's lock was held while a worker process started"
    assert running == [invocation]
    wait_for(slow_start.ended.is_set)
    assert slow_start.service.get_execution(invocation.execution_arn).status is ExecutionStatus.SUCCEEDED


def test_an_invocation_whose_worker_starts_after_the_pool_closed_is_recorded_as_lost(slow_start: SlowStart) -> None:
    invocation = slow_start.leased()
    submitting = threading.Thread(target=slow_start.pool.submit, args=(invocation,))
    submitting.start()
    assert slow_start.starting.wait(10)
    closing = threading.Thread(target=slow_start.pool.close, kwargs={"grace_seconds": 0.2})
    closing.start()
    wait_for(lambda: slow_start.pool._closed)
    slow_start.release.set()
    submitting.join(30)
    closing.join(30)

    assert slow_start.ended.is_set()
    assert slow_start.pool.running() == []
    events = slow_start.service.get_history(invocation.execution_arn).items
    [ended] = [event for event in events if event.event_type == "InvocationCompleted"]
    assert ended.details["Error"]["Payload"]["ErrorType"] == "Runtime.InvocationLost"
    # Lost, it keeps its attempts and runs again, from its last checkpoint, on the next server.
    assert slow_start.service.get_execution(invocation.execution_arn).status is ExecutionStatus.RUNNING


def test_an_invocation_whose_worker_is_killed_by_close_while_importing_is_recorded_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERDURE_TEST_IMPORT_SECONDS", "30")
    db = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(db))
    registry = Registry([FunctionSpec("slow", HANDLERS / "slow_import.py", "handler")])
    pool = WorkerPool(service, registry, WorkerSettings(f"sqlite:///{db}"), 1, lambda *_: None)
    try:
        arn = service.start_execution(StartRequest("slow")).execution.arn
        [invocation] = service.lease("test", ["slow"], 1, 60)
        pool.submit(invocation)
        pool.close(grace_seconds=0.2)
        wait_for(lambda: pool.running() == [])
        events = service.get_history(arn).items
        [ended] = [event for event in events if event.event_type == "InvocationCompleted"]
        assert ended.details["Error"]["Payload"]["ErrorType"] == "Runtime.InvocationLost", ended.details
    finally:
        pool.close(grace_seconds=0)
        service.close()


def test_an_invocation_whose_worker_is_slow_to_start_is_lost_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "perdure.db"
    service = DurableService(SQLiteStore(db))
    registry = Registry([FunctionSpec("echo", HANDLERS / "invoking.py", "echo")])
    ended = threading.Event()
    pool = WorkerPool(service, registry, WorkerSettings(f"sqlite:///{db}"), 1, lambda *_: ended.set())
    try:
        arn = service.start_execution(StartRequest("echo", input_payload='{"n": 1}')).execution.arn
        # No process is ready within a millisecond: as on a machine too loaded to start one in time.
        monkeypatch.setattr(workers, "STARTUP_TIMEOUT_SECONDS", 0.001)
        pool.submit(service.lease("test", ["echo"], 1, 60)[0])
        wait_for(ended.is_set)
        [completed] = [e for e in service.get_history(arn).items if e.event_type == "InvocationCompleted"]
        error = completed.details["Error"]["Payload"]
        assert error["ErrorType"] == "Runtime.InvocationLost", error
        assert "took more than 0.001 seconds to start" in error["ErrorMessage"]

        monkeypatch.setattr(workers, "STARTUP_TIMEOUT_SECONDS", 60.0)
        ended.clear()
        pool.submit(service.lease("test", ["echo"], 1, 60)[0])
        wait_for(ended.is_set)
        assert service.get_execution(arn).status is ExecutionStatus.SUCCEEDED
    finally:
        pool.close(grace_seconds=0)
        service.close()
