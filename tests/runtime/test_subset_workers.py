"""A worker serving some functions sleeps through the work of the others, on PostgreSQL.

It is woken by notifications of its own functions' work only (each names the function whose
work became ready), and a dead owner's leases of functions it does not serve, once expired, no
longer wake it at every check for dead owners.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from servers import HANDLERS, wait_for

from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.runner import Runtime
from perdure.runtime.workers import WorkerSettings
from perdure.service.executions import DurableService, StartRequest
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore


class CountingService(DurableService):
    """A service that counts the scheduler's looks at what is due next: one or two per pass."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self.looks = 0
        self._counting = threading.Lock()

    def next_wakeup(self, functions: Collection[str] | None = None) -> float | None:
        with self._counting:
            self.looks += 1
        return super().next_wakeup(functions)


@pytest.fixture
def stores(postgres_url: str, tmp_path: Path) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """The worker's store, and another process's."""
    opened = [PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs")) for _ in range(2)]
    yield opened[0], opened[1]
    for store in opened:
        store.close()


def _quiet_for(service: CountingService, seconds: float) -> int:
    """How many times the scheduler looked at what is due next in ``seconds``."""
    before = service.looks
    time.sleep(seconds)
    return service.looks - before


def test_a_worker_of_one_function_sleeps_through_the_work_and_dead_owners_of_others(
    stores: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    mine, elsewhere = stores
    service, other = CountingService(mine), DurableService(elsewhere)
    # An owner of this host that died holding leases of "theirs", which this worker does not serve.
    for index in range(5):
        other.start_execution(StartRequest("theirs", execution_name=f"orphan-{index}"))
    other.lease(f"{socket.gethostname()}:999999:-:dead", ["theirs"], 5, 3600)

    registry = Registry([FunctionSpec("mine", HANDLERS / "scale.py", "quick")])
    runtime = Runtime(service, registry, WorkerSettings(postgres_url), workers=1)
    runtime.start()
    try:
        # Its first pass expires the dead owner's leases; nothing else is due for it.
        wait_for(lambda: not other.lease_owners())
        time.sleep(1)
        # It checks for dead owners every second: the expired leases wake it no more.
        assert _quiet_for(service, 4) == 0
        # Work of another function, started elsewhere, is not its to wake for.
        for index in range(20):
            other.start_execution(StartRequest("theirs", execution_name=f"busy-{index}"))
        assert _quiet_for(service, 2) == 0
        # Its own function's work, started elsewhere, wakes it within a round trip.
        other.start_execution(StartRequest("mine", execution_name="own"))
        wait_for(lambda: service.looks > 0, timeout=5)
    finally:
        runtime.stop()
