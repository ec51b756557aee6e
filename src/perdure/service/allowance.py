"""Which ready executions of a limited function one lease may start (issue 16; ``perdure.protocol.limits``).

A lease reads, inside its transaction, how many invocations of the function are running now on
every server (their executions are leased), and when its rates next let one start; on
PostgreSQL the function's row of limits is locked first, so servers leasing it take turns and
each counts what the one before it started. An ``Allowance`` then admits ready executions one
by one, counting each it admits, and says which tenants to pass over.

A rate spreads starts evenly: one every ``Rate.interval``, so that no window of the rate's
period holds more than its count. There is no burst: a function idle for an hour starts one
invocation at once, then the next an interval later.
"""

from __future__ import annotations

from perdure.protocol.limits import NO_TENANT, Rate, StoredLimits
from perdure.store.base import Transaction

# The room of a function without a concurrency limit: any lease's limit is smaller.
UNBOUNDED = 2**31


def tenant_of(tenant_id: str | None) -> str:
    """The key of an execution's tenant in counts and rate state."""
    return NO_TENANT if tenant_id is None else tenant_id


def _after(next_start: float | None, now: float, rate: Rate) -> float:
    """When ``rate`` lets the next invocation start, after one started at ``now``."""
    return max(next_start or now, now) + rate.interval


class Allowance:
    """What one lease may still start of one function, given what runs and what its rates allow at ``now``."""

    def __init__(self, stored: StoredLimits, running: dict[str, int], tenant_starts: dict[str, float], now: float) -> None:
        self.function_name = stored.function_name
        self.limits = stored.effective
        self.now = now
        self._running = dict(running)
        self._total = sum(running.values())
        self._next_start = stored.next_start
        self._tenant_starts = dict(tenant_starts)
        self._started = False
        self._tenants_started: dict[str, float] = {}

    def release(self, tenant_id: str | None) -> None:
        """Counts out an invocation whose lease lapsed: it no longer runs."""
        tenant = tenant_of(tenant_id)
        self._total -= 1
        self._running[tenant] = self._running.get(tenant, 0) - 1

    def room(self) -> int:
        """How many more invocations of the function may start now, whatever their tenants."""
        limits = self.limits
        if limits.rate is not None and self._next_start is not None and self._next_start > self.now:
            return 0
        room = UNBOUNDED if limits.concurrency is None else limits.concurrency - self._total
        # A rate lets one start at a time (see the module's docstring).
        return max(0, min(room, 1 if limits.rate is not None else room))

    def held_tenants(self) -> set[str]:
        """The tenants none of whose invocations may start now (at their concurrency, or held by their rate)."""
        held = {tenant for tenant, starts in self._tenant_starts.items() if starts > self.now}
        cap = self.limits.tenant_concurrency
        if cap is not None:
            held.update(tenant for tenant, count in self._running.items() if count >= cap)
        return held

    def admits(self, tenant_id: str | None) -> bool:
        """Whether an invocation of this tenant may start now."""
        tenant = tenant_of(tenant_id)
        cap = self.limits.tenant_concurrency
        if cap is not None and self._running.get(tenant, 0) >= cap:
            return False
        return self._tenant_starts.get(tenant, self.now) <= self.now and self.room() > 0

    def take(self, tenant_id: str | None) -> None:
        """Counts in an invocation that starts now."""
        tenant = tenant_of(tenant_id)
        self._total += 1
        self._running[tenant] = self._running.get(tenant, 0) + 1
        limits = self.limits
        if limits.rate is not None:
            self._next_start = _after(self._next_start, self.now, limits.rate)
            self._started = True
        if limits.tenant_rate is not None:
            starts = _after(self._tenant_starts.get(tenant), self.now, limits.tenant_rate)
            self._tenant_starts[tenant] = self._tenants_started[tenant] = starts

    def save(self, tx: Transaction) -> None:
        """Records the rate state of the invocations it let start."""
        if self._started and self._next_start is not None:
            tx.put_next_start(self.function_name, self._next_start)
        if self._tenants_started:
            tx.put_tenant_next_starts(self.function_name, self._tenants_started, self.now)

    def resumes_at(self) -> float | None:
        """When a rate next lets an invocation held back start; None: when one running ends."""
        times = [t for t in (self._next_start, *self._tenant_starts.values()) if t is not None and t > self.now]
        return min(times, default=None)
