"""The scheduler: leases executions as they become ready and hands them to the worker pool.

It sleeps until the next timer or ready time the store knows of, or until something pokes
it (a new execution, a completed callback, an invocation that ended), so a suspended
execution costs nothing but its rows.
"""

from __future__ import annotations

import logging
import threading
import time

from perdure.runtime.workers import WorkerPool
from perdure.service.executions import DurableService
from perdure.service.leases import owner_is_dead

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
# The longest the scheduler sleeps without looking at the store, for changes made by other
# processes that cannot poke it (a CLI writing to the same database file, for instance).
MAX_SLEEP_SECONDS = 1.0


class Scheduler:
    """Runs the lease loop in a background thread."""

    def __init__(self, service: DurableService, pool: WorkerPool, owner: str) -> None:
        self.service = service
        self.pool = pool
        self.owner = owner
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perdure-scheduler", daemon=True)
        self._last_renewal = 0.0

    def start(self) -> None:
        self.service.expire_leases(owner_is_dead)
        self._thread.start()

    def poke(self) -> None:
        """Asks the scheduler to look for ready work now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                # With every worker busy, the next finished invocation pokes the loop.
                sleep = self._sleep_seconds() if self._tick() else MAX_SLEEP_SECONDS
            except Exception:
                logger.exception("The scheduler failed to lease work; it tries again shortly.")
                sleep = MAX_SLEEP_SECONDS
            self._wake.wait(sleep)

    def _tick(self) -> bool:
        """Renews leases and leases ready work; returns False when no worker is free."""
        now = time.monotonic()
        if now - self._last_renewal > LEASE_SECONDS / 3:
            self._last_renewal = now
            for invocation in self.pool.running():
                self.service.renew_lease(invocation, LEASE_SECONDS)
        free = self.pool.free_slots()
        if free <= 0:
            self.service.fire_due_timers()
            return False
        served = [spec.name for spec in self.pool.registry]
        for invocation in self.service.lease(self.owner, served, free, LEASE_SECONDS):
            self.pool.submit(invocation)
        return True

    def _sleep_seconds(self) -> float:
        wakeup = self.service.next_wakeup()
        renewal = LEASE_SECONDS / 3
        if wakeup is None:
            return min(MAX_SLEEP_SECONDS, renewal)
        return max(0.0, min(wakeup - self.service.clock(), MAX_SLEEP_SECONDS, renewal))
