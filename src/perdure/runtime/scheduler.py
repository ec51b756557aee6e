"""The scheduler: fires due timers and hands ready executions to the worker pool, as they come.

It is woken by events, not by a clock: a new execution or a completed callback in this
process (``poke``), an invocation that ended (the pool pokes), or a commit in another process
that the store reports (``DurableService.wait_for_change``, which a watcher thread waits on):
on PostgreSQL, one that made work of the functions it serves ready, or moved a timer.
Otherwise it sleeps exactly until the next thing it can act on: the next timer always (firing
one needs no worker), and the next ready execution or lapsing lease of the functions it serves
only while a worker is free. So a suspended execution costs nothing but its rows, the timers
due at one moment fire together in large batches in the order they fell due, however busy the
workers are, and on PostgreSQL an idle worker wakes for work started through another
machine's API within a round trip. On SQLite, which reports no commits, the store's wait polls
the file's data version every 20 ms, so a `perdure worker` sharing the file with `perdure serve`
sees work started there as soon (this server's own workers poke it). Ready work that a
function's concurrency or rate limits hold back (``perdure.service.allowance``) is not due: the
loop looks at it again when a rate next lets one start, when an invocation here ends, and at
least every ``HELD_RECHECK_SECONDS``.

It also fires the due ticks of the served functions' schedules (``perdure.service.schedules``),
and sleeps no later than the next of them.
"""

from __future__ import annotations

import logging
import threading
import time

from perdure.errors import StoreUnavailableError
from perdure.runtime.leases import holds_lock, owner_is_dead
from perdure.runtime.workers import WorkerPool
from perdure.service.executions import DurableService
from perdure.service.schedules import FIRE_BATCH, Schedules

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
# Running invocations renew their leases this often; the loop wakes for it while any runs.
RENEW_SECONDS = LEASE_SECONDS / 3
# How many due timers fire in one transaction: large, since a commit costs more than firing
# one timer, and thousands due together must all fire at once.
TIMER_BATCH = 1000
# How long one wait for a commit elsewhere lasts; the store returns early on a commit it sees.
WATCH_SECONDS = 1.0
# How soon to look again at work that is due but could not be taken: a child execution
# waiting for its parent's invocation to end, or rows another process held locked a moment ago.
RECHECK_SECONDS = 0.05
# How soon to try again after the loop failed (a database that cannot be reached, say).
RETRY_SECONDS = 1.0
# How often to look again at ready work a function's concurrency holds back while no invocation
# of it ends here: its running invocations may be another server's, whose ends wake nobody here.
HELD_RECHECK_SECONDS = 1.0
# How often the watcher looks for leases held by owners that died: a process of this host
# that is gone (``owner_is_dead`` knows at once), or an owner anywhere whose liveness lock is
# free (``DurableService.vanished_owners``; PostgreSQL lets it go when the owner's session
# ends). Their leases would otherwise lapse only after LEASE_SECONDS. One indexed read, without
# a write lock, and one statement over the owners' locks, when all are alive.
DEAD_OWNER_CHECK_SECONDS = 1.0


class Scheduler:
    """Runs the scheduling loop in a background thread, and a watcher of the store beside it."""

    def __init__(self, service: DurableService, pool: WorkerPool, owner: str) -> None:
        self.service = service
        self.pool = pool
        self.owner = owner
        self.schedules = Schedules(service)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perdure-scheduler", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="perdure-store-watcher", daemon=True)
        self._last_renewal = 0.0
        self._last_dead_check = 0.0
        # Owners whose lock was free at the last check: one is taken for dead when its lock is
        # still free at the next, a check later (one seen free once may be reconnecting).
        self._suspects: set[str] = set()
        self._store_unavailable = False
        # What the last lease left to functions' limits (``Leased.held``): the wake-up looks
        # past their ready executions, to when a rate next lets one start.
        self._held: dict[str, float | None] = {}

    def start(self) -> None:
        """Starts the loop and the watcher, and returns at once.

        The loop first takes back the leases of dead local owners, so work interrupted by the
        death of a server on this host goes to the workers with its first pass.
        """
        # Before anything is leased: another process finding the lock free takes this one for dead.
        self.service.hold_owner_lock(self.owner)
        self._thread.start()
        self._watcher.start()

    def poke(self) -> None:
        """Asks the scheduler to look for due timers and ready work now."""
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
                # Woken by the commits of its own functions' work only, unless the registry
                # takes on functions as they are published: then a new one's too.
                registry = self.pool.registry
                served = None if registry.grows else [spec.name for spec in registry]
                changed = self.service.wait_for_change(WATCH_SECONDS, self._stop, served)
                if self._stop.is_set():
                    return
                changed = self._free_dead_owners() or changed
            except StoreUnavailableError:
                # The loop says so (once); its passes find out when the store is back.
                self._stop.wait(WATCH_SECONDS)
                changed = True
            except Exception:
                logger.exception("Watching the store failed; the scheduler looks for work anyway.")
                self._stop.wait(WATCH_SECONDS)
                changed = True
            if changed:
                self._wake.set()

    def _free_dead_owners(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last_dead_check < DEAD_OWNER_CHECK_SECONDS:
            return False
        self._last_dead_check = now
        owners = [owner for owner in self.service.lease_owners() if owner != self.owner]
        vanished = self.service.vanished_owners([owner for owner in owners if holds_lock(owner)])
        dead = sorted({owner for owner in owners if owner_is_dead(owner)} | (vanished & self._suspects))
        self._suspects = vanished - set(dead)
        self.service.expire_leases_of(dead)
        # Each is found once: only leases that have not lapsed count (``lease_owners``), so an
        # owner whose executions wait for a server of their functions is not found again at
        # every check, with a write and a pass each time (issue 11, finding 16; issue 17).
        for owner in dead:
            logger.warning("Lease owner %s is gone; its executions resume from their last checkpoint.", owner)
        return bool(dead)

    def _loop(self) -> None:
        try:
            self._free_dead_owners(force=True)
        except Exception:
            logger.exception("Looking for the leases of dead owners failed; the watcher looks again.")
        while not self._stop.is_set():
            # Cleared before the pass, so a poke that arrives during it is not lost.
            self._wake.clear()
            try:
                sleep = self._pass()
            except StoreUnavailableError as error:
                # Said once, not at every try while the disk stays full or the database down.
                if not self._store_unavailable:
                    logger.warning("%s The scheduler tries again every %.0f s.", error.message, RETRY_SECONDS)
                self._store_unavailable = True
                sleep = RETRY_SECONDS
            except Exception:
                logger.exception("The scheduler failed to fire timers or lease work; it tries again shortly.")
                sleep = RETRY_SECONDS
            else:
                self._store_unavailable = False
            self._wake.wait(sleep)

    def _pass(self) -> float:
        """Renews leases, fires every due timer, hands out ready work; returns how long to sleep."""
        now = time.monotonic()
        if now - self._last_renewal > RENEW_SECONDS:
            self._last_renewal = now
            for invocation in self.pool.running():
                self.service.renew_lease(invocation, LEASE_SECONDS)
        served = [spec.name for spec in self.pool.registry]
        # Whatever woke this pass (an invocation's end, a rate's next start) may let held work start.
        self._held = {}
        # Reads without the write lock say whether anything is due at all: most passes (each
        # invocation's end pokes one) find nothing, and then take no write lock, which the
        # workers' checkpoints and the API's starts wait on.
        work, tick = self._wakeups(served)
        now = self.service.clock()
        work_due, tick_due = work is not None and work <= now, tick is not None and tick <= now
        if not work_due and not tick_due:
            return self._sleep_until(_earliest(work, tick))
        # Every due timer first, oldest first, in batches: handing out work between batches
        # would let the invocations it starts compete for the write lock with the firing.
        while work_due and self.service.fire_due_timers(TIMER_BATCH) == TIMER_BATCH and not self._stop.is_set():
            pass
        # Then the schedules' due ticks, whose executions the lease below can hand out at once.
        while tick_due and self.schedules.fire_due(served).schedules == FIRE_BATCH and not self._stop.is_set():
            pass
        free = self.pool.free_slots()
        if free > 0:
            # Every due timer has just fired: the lease need not look again.
            leased = self.service.lease_batch(self.owner, served, free, LEASE_SECONDS, fire_timers=False)
            self.pool.submit(*leased.invocations)
            self._held = leased.held
        return self._sleep_until(_earliest(*self._wakeups(served)))

    def _wakeups(self, served: list[str]) -> tuple[float | None, float | None]:
        """When the loop next has something to do that no poke will announce: (work, a schedule's tick)."""
        if self.pool.free_slots() > 0:
            # Ready work that limits hold back is not due: a rate says when it is.
            wakeup = self.service.next_wakeup([name for name in served if name not in self._held])
            work = _earliest(wakeup, *self._held.values())
        else:
            # Ready work waits for a worker, whose end pokes the loop; timers and ticks do not wait.
            work = self.service.next_timer_due()
        return work, self.schedules.next_due(served)

    def _sleep_until(self, wakeup: float | None) -> float:
        """How long to sleep for a wake-up at ``wakeup`` (epoch seconds; None: nothing planned)."""
        limit = RENEW_SECONDS if self.pool.running() else RENEW_SECONDS * 3
        if self._held:
            limit = min(limit, HELD_RECHECK_SECONDS)
        if wakeup is None:
            return limit
        until = wakeup - self.service.clock()
        if until <= 0:
            # Due, yet this pass could not take it (see RECHECK_SECONDS): look again shortly
            # rather than spin.
            return RECHECK_SECONDS
        return min(until, limit)


def _earliest(*moments: float | None) -> float | None:
    return min((moment for moment in moments if moment is not None), default=None)
