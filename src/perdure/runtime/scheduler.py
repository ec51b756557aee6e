"""The scheduler: leases executions as they become ready and hands them to the worker pool.

It sleeps until the next timer or ready time the store knows of, or until something pokes
it: a new execution or a completed callback in this process, an invocation that ended, or a
commit in another process that the store reports (``DurableService.wait_for_change``, which a
watcher thread waits on). So a suspended execution costs nothing but its rows, and on
PostgreSQL an idle worker wakes for work started through another machine's API within a
round trip, without polling. On SQLite, which cannot report commits, the watcher polls once a
second, as before.
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
# How long one wait for a commit elsewhere lasts. A store that cannot report commits sleeps it
# out and wakes the scheduler (a CLI writing to the same SQLite file is seen within a second);
# one that can returns early on a commit.
WATCH_SECONDS = 1.0
# How soon to look again when the loop cannot act on what it knows: with every worker busy
# (the next finished invocation pokes it; timers falling due meanwhile fire at this interval, or
# at once in an idle scheduler sharing the database), or with a wakeup past that it could not take.
BUSY_SLEEP_SECONDS = 1.0
# How often the watcher looks for leases held by processes of this host that died: their
# leases would otherwise lapse only after LEASE_SECONDS, and ``owner_is_dead`` knows at once
# that a local process is gone. One indexed read, without a write lock, when all are alive.
# (Owners on other machines cannot be checked so; their leases lapse.)
DEAD_OWNER_CHECK_SECONDS = 2.0


class Scheduler:
    """Runs the lease loop in a background thread, and a watcher of the store beside it."""

    def __init__(self, service: DurableService, pool: WorkerPool, owner: str) -> None:
        self.service = service
        self.pool = pool
        self.owner = owner
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perdure-scheduler", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="perdure-store-watcher", daemon=True)
        self._last_renewal = 0.0
        self._last_dead_check = 0.0

    def start(self) -> None:
        self._last_dead_check = time.monotonic()
        self.service.expire_leases(owner_is_dead)
        self._thread.start()
        self._watcher.start()

    def poke(self) -> None:
        """Asks the scheduler to look for ready work now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        # Joined before the caller closes the store, which the watcher may be waiting on.
        self._watcher.join(10)

    def _watch(self) -> None:
        """Pokes the loop on commits elsewhere, and when a dead owner's leases were freed."""
        while not self._stop.is_set():
            try:
                changed = self.service.wait_for_change(WATCH_SECONDS, self._stop)
                if self._stop.is_set():
                    return
                changed = self._free_dead_owners() or changed
            except Exception:
                logger.exception("Watching the store failed; the scheduler looks for work anyway.")
                self._stop.wait(WATCH_SECONDS)
                changed = True
            if changed:
                self._wake.set()

    def _free_dead_owners(self) -> bool:
        now = time.monotonic()
        if now - self._last_dead_check < DEAD_OWNER_CHECK_SECONDS:
            return False
        self._last_dead_check = now
        dead = self.service.expire_leases(owner_is_dead)
        for owner in dead:
            logger.warning("Lease owner %s is gone; its executions resume from their last checkpoint.", owner)
        return bool(dead)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                sleep = self._sleep_seconds() if self._tick() else BUSY_SLEEP_SECONDS
            except Exception:
                logger.exception("The scheduler failed to lease work; it tries again shortly.")
                sleep = BUSY_SLEEP_SECONDS
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
        """How long to sleep after leasing all the ready work this process could take."""
        limit = LEASE_SECONDS / 3
        wakeup = self.service.next_wakeup()
        if wakeup is None:
            return limit
        until = wakeup - self.service.clock()
        if until <= 0:
            # Past already, so it is work this lease could not take: executions of functions
            # this process does not serve, or rows another process held locked a moment ago
            # (a timer due while a checkpoint of its execution commits, which may not notify).
            # Sleeping 0 would spin; looking again shortly bounds how late such a timer fires.
            return BUSY_SLEEP_SECONDS
        return min(until, limit)
