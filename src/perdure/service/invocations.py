"""The life of an invocation: lease a ready execution, then record how the handler ended.

An execution is run by at most one invocation at a time. Leasing gives the invocation a fresh
checkpoint token (fencing off any older one) and a lease that expires unless renewed, so an
invocation whose worker died is noticed and retried from the last checkpoint.

Two kinds of failure are counted apart (issue 11, finding 15). A failure the handler caused (it
raised out of the runtime, ran past its timeout or its memory, or its worker process exited or
crashed while its server lived on) counts toward ``InvocationRetryPolicy.max_attempts``. An
invocation *lost* (its lease lapsed or its owner's process died, as when a server or ``perdure
worker`` is killed, or its worker was SIGKILLed from outside) is no fault of the handler's, so a
few platform crashes in a row cannot fail a healthy execution; yet a handler that takes its own
process down every time must not run for ever, so lost invocations in a row, with nothing
recorded between them, are bounded too, by the larger ``max_lost_invocations``. An invocation lost
because the store could not record its progress (a database away, a full disk) is not counted:
it runs again after a pause that doubles with each such loss in a row, for as long as the store
stays away (the execution's own timeout still ends it).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from perdure.protocol.limits import StoredLimits
from perdure.protocol.records import (
    ErrorObject,
    Execution,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    InvocationStatus,
    Usage,
)
from perdure.service import fairness, history, journal, reporting, tokens
from perdure.service.allowance import UNBOUNDED, Allowance
from perdure.store.base import CoreTransaction, Transaction


@dataclass(frozen=True)
class InvocationRetryPolicy:
    """How often an invocation that crashes, or is lost, is retried before its execution fails.

    Not the SDK's ``perdure.RetryPolicy``, which says when a failed step is tried again.
    """

    max_attempts: int = 3
    # Lost invocations in a row (see the module's docstring) that fail the execution: enough
    # that repeated crashes of the platform do not, few enough that a handler that kills its
    # own process ends soon.
    max_lost_invocations: int = 10
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, failures - 1)))


# What an invocation used when its worker could not say (it died, or its lease lapsed): its
# time still counts, at Lambda's default memory.
NO_USAGE = Usage()

# How long a child execution that a chained invoke started waits for the parent's invocation
# to end before it runs anyway (see ``_parent_still_invoking``).
CHILD_START_GRACE_SECONDS = 1.0

LOST_TYPE = "Runtime.InvocationLost"
LOST_INVOCATION = ErrorObject(
    message="The invocation was lost: its worker stopped renewing the lease (it crashed or was killed).",
    type=LOST_TYPE,
)
# An invocation lost because the store could not record its progress (see the module's docstring).
STORE_LOST_TYPE = "Runtime.StoreUnavailable"
# Its first retry waits as long as the store asks its clients to (``StoreUnavailableError``), each
# next one twice as long, up to a minute: a store away for an hour is not asked every two seconds
# by every execution that was running.
STORE_LOST_FIRST_DELAY_SECONDS = 2.0
STORE_LOST_MAX_DELAY_SECONDS = 60.0
# Enough losses to the store in a row to reach that minute.
_STORE_LOSSES_COUNTED = 5


def request_id(execution: Execution) -> str:
    """The request ID of the execution's current invocation, as history reports it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution.arn}#{execution.invocation}"))


@dataclass(frozen=True)
class Leased:
    """What a lease took, and the functions of which it may have left ready executions to a limit.

    ``held`` maps each such function to when a rate next lets one of them start (epoch
    seconds), or None when only an invocation of it that ends makes room.
    """

    invocations: list[Invocation]
    held: dict[str, float | None]


def lease(
    tx: Transaction,
    now: float,
    owner: str,
    functions: Collection[str],
    limit: int,
    lease_seconds: float,
    policy: InvocationRetryPolicy,
) -> Leased:
    """Leases up to ``limit`` ready executions of ``functions`` to ``owner``; an expired lease counts as a crash.

    Functions with limits (``perdure.service.allowance``) lease only as far as their limits let
    them. When more is ready than fits, the places are shared among the functions
    (``perdure.service.fairness``); otherwise limited functions go first and the others take
    the rest, oldest ready first.
    """
    lease = _Lease(tx, now, owner, limit, lease_seconds, policy)
    limited = {stored.function_name: stored for stored in tx.function_limits(functions) if stored.effective.limited}
    free = set(functions).difference(limited)
    if tx.count_ready(now, functions, limit + 1) > limit:
        lease.fairly(sorted(functions), limited, free)
    else:
        for name in limited:
            lease.limited(limited[name], limit)
        if len(lease.leased) < limit and free:
            for execution in tx.ready_executions(now, limit - len(lease.leased), free):
                lease.free(execution)
    return lease.done()


class _Lease:
    """The executions one lease takes, into ``leased``, and the limits it applied."""

    def __init__(
        self, tx: Transaction, now: float, owner: str, limit: int, lease_seconds: float, policy: InvocationRetryPolicy
    ) -> None:
        self.tx, self.now, self.owner, self.limit = tx, now, owner, limit
        self.lease_seconds, self.policy = lease_seconds, policy
        self.leased: list[Invocation] = []
        self.held: dict[str, float | None] = {}
        self._allowances: dict[str, Allowance] = {}

    def fairly(self, functions: list[str], limited: dict[str, StoredLimits], free: set[str]) -> None:
        """Shares the places among ``functions`` in rounds, until they are full or nothing more is ready."""
        tx, now = self.tx, self.now
        # Lapsed leases first: their executions were running, and recovering them frees their places.
        for execution in tx.lapsed_executions(now, self.limit, free):
            self.free(execution)
        running = tx.leased_by_function(functions)
        wanting = functions
        while len(self.leased) < self.limit and wanting:
            quotas = fairness.shares(running, wanting, self.limit - len(self.leased))
            still: list[str] = []
            for name in wanting:
                before = len(self.leased)
                if quotas[name] == 0:
                    still.append(name)
                elif name in limited:
                    self.limited(limited[name], before + quotas[name])
                else:
                    for execution in tx.ready_of_function(now, name, quotas[name], ()):
                        self.free(execution)
                took = len(self.leased) - before
                running[name] = running.get(name, 0) + took
                if quotas[name] and took == quotas[name]:
                    still.append(name)  # it may have more ready
            # Each round leases something, or drops a function that had less ready than its share.
            wanting = still

    def limited(self, stored: StoredLimits, limit: int) -> None:
        """Leases ready executions of one limited function, as far as its limits let it, until ``leased`` holds ``limit``."""
        name = stored.function_name
        allowance = self._allowances.get(name)
        if allowance is None:
            tx = self.tx
            allowance = Allowance(stored, tx.leased_counts(name), tx.tenant_next_starts(name, self.now), self.now)
            self._allowances[name] = allowance
        if len(self.leased) < limit and _lease_within(
            self.tx, allowance, self.owner, limit, self.lease_seconds, self.policy, self.leased
        ):
            self.held[name] = allowance.resumes_at()

    def free(self, execution: Execution) -> None:
        """Leases one ready execution of a function without limits (one whose lease lapsed is recovered first)."""
        taken = _recover(self.tx, execution, self.now, self.policy)
        if taken is not None and not _parent_still_invoking(self.tx, taken, self.now):
            self.leased.append(_grant(self.tx, taken, execution, self.now, self.owner, self.lease_seconds))

    def done(self) -> Leased:
        """What the lease took; the rate state of the limited functions it leased is saved."""
        for allowance in self._allowances.values():
            allowance.save(self.tx)
        return Leased(self.leased, self.held)


def lease_new(
    tx: Transaction, executions: Sequence[Execution], now: float, owner: str, lease_seconds: float, limit: int
) -> dict[str, Invocation]:
    """Leases up to ``limit`` executions just started in ``tx`` to ``owner``, by ARN; those of functions with limits are left ready."""
    names = {execution.function_name for execution in executions}
    limited = {stored.function_name for stored in tx.function_limits(names) if stored.effective.limited}
    leased: dict[str, Invocation] = {}
    for execution in executions:
        if len(leased) >= limit:
            break
        if execution.function_name in limited or execution.ready_time is None or execution.ready_time > now:
            continue
        invocation = _grant(tx, execution, execution, now, owner, lease_seconds)
        # All it has is the EXECUTION operation, as ``journal.create_execution`` stored it.
        start = journal.execution_operation(execution.id, execution.name, execution.input_payload, execution.start_time)
        leased[execution.arn] = dataclasses.replace(invocation, journal=(start,))
    return leased


def _lease_within(
    tx: Transaction,
    allowance: Allowance,
    owner: str,
    limit: int,
    lease_seconds: float,
    policy: InvocationRetryPolicy,
    leased: list[Invocation],
) -> bool:
    """Leases ready executions of one limited function, up to ``limit`` in all, into ``leased``.

    Returns whether ready executions of it are left waiting for its limits.
    """
    now, name = allowance.now, allowance.function_name
    # Lapsed leases first: their invocations are gone, which frees their places, and those
    # retried at once are first in line.
    candidates: list[tuple[Execution, Execution]] = []
    for stored in tx.lapsed_executions(now, UNBOUNDED, [name]):
        allowance.release(stored.tenant_id)
        taken = _recover(tx, stored, now, policy)
        if taken is not None:
            candidates.append((taken, stored))
    held = False
    while True:
        wanted = min(limit - len(leased), allowance.room())
        if not candidates:
            if wanted <= 0:
                break
            candidates = [(e, e) for e in tx.ready_of_function(now, name, wanted, allowance.held_tenants())]
        if not candidates:
            break
        took = False
        for execution, stored in candidates:
            if execution is stored and _parent_still_invoking(tx, execution, now):
                continue
            if len(leased) < limit and allowance.admits(execution.tenant_id):
                allowance.take(execution.tenant_id)
                leased.append(_grant(tx, execution, stored, now, owner, lease_seconds))
                took = True
            else:
                held = True
                if execution is not stored:
                    # Recovered from a lapsed lease, it waits ready for its turn.
                    tx.update_execution(execution, before=stored)
        candidates = []
        if not took:
            break
    if held or not (allowance.room() == 0 or allowance.held_tenants()):
        return held
    # Every place taken, or some tenants held: whether anything waits for them.
    return bool(tx.ready_of_function(now, name, 1, ()))


def _recover(tx: Transaction, execution: Execution, now: float, policy: InvocationRetryPolicy) -> Execution | None:
    """The execution, ready to lease now; one whose lease lapsed is first recorded lost (None if it is not to run now)."""
    if execution.lease_owner is None:
        return execution
    pausing = execution.status is ExecutionStatus.PAUSING
    # Its lease lapsed (a wait already served) or its owner's process died: retried at once.
    execution = _record_loss(tx, execution, LOST_INVOCATION, now, policy)
    if pausing and not execution.status.is_terminal:
        # Its pause waited for this invocation, which is gone: it pauses now.
        execution = enter_paused(tx, execution, now, must_run=True)
    if execution.status is not ExecutionStatus.RUNNING or execution.ready_time is None or execution.ready_time > now:
        tx.update_execution(execution)
        return None
    return execution


def _grant(tx: Transaction, execution: Execution, stored: Execution, now: float, owner: str, lease_seconds: float) -> Invocation:
    """Leases the execution (``stored`` as read) to ``owner``, with a fresh checkpoint token."""
    execution = execution.evolve(
        invocation=execution.invocation + 1,
        invocation_secret=tokens.new_secret(),
        invocation_start=now,
        lease_owner=owner,
        lease_expiry=now + lease_seconds,
        ready_time=None,
        woken_during_invocation=False,
    )
    # Only the columns the lease changed: rewriting them all touched every index of the row.
    tx.update_execution(execution, before=stored)
    return Invocation(
        execution_arn=execution.arn,
        function_name=execution.function_name,
        checkpoint_token=tokens.issue(execution),
        invocation=execution.invocation,
        lease_owner=owner,
        function_version=execution.function_version,
        trace_parent=execution.trace_parent,
    )


def _parent_still_invoking(tx: CoreTransaction, execution: Execution, now: float) -> bool:
    """Whether a new child execution should wait a moment for the parent invocation that started it.

    A handler suspends right after it starts an invoke, so waiting for that invocation to end
    costs the child milliseconds, and the parent's history then reads as AWS's does: the
    invocation's end, then the child's result. A parent invocation that goes on running holds
    the child up for ``CHILD_START_GRACE_SECONDS`` at most.
    """
    if execution.parent_arn is None or execution.invocation > 0:
        return False
    if now >= execution.start_time + CHILD_START_GRACE_SECONDS:
        return False
    parent = tx.get_execution(execution.parent_arn)
    return parent is not None and parent.lease_owner is not None and (parent.lease_expiry or 0.0) > now


def renew(tx: CoreTransaction, invocation: Invocation, now: float, lease_seconds: float) -> bool:
    """Extends the lease; returns False if the invocation no longer holds the execution."""
    execution = tx.get_execution(invocation.execution_arn)
    if (
        execution is None
        or execution.status.is_terminal
        or execution.lease_owner != invocation.lease_owner
        or execution.invocation != invocation.invocation
    ):
        return False
    tx.update_execution(execution.evolve(lease_expiry=now + lease_seconds))
    return True


def held(tx: CoreTransaction, invocation: Invocation) -> Execution | None:
    """The execution ``invocation`` holds, or None if another invocation took over meanwhile."""
    execution = tx.get_execution(invocation.execution_arn)
    if execution is None or execution.invocation != invocation.invocation or execution.lease_owner is None:
        return None
    return execution


def _release(execution: Execution) -> Execution:
    return execution.evolve(lease_owner=None, lease_expiry=None, woken_during_invocation=False)


def _invocation_event(
    tx: CoreTransaction, execution: Execution, now: float, error: ErrorObject | None, usage: Usage = NO_USAGE
) -> Execution:
    """Records the end of the execution's invocation in its history, and adds what it used to its totals."""
    start = execution.invocation_start or now
    event = history.invocation_completed(start, now, request_id(execution), error)
    outcome = "completed" if error is None else "lost" if error.type in (LOST_TYPE, STORE_LOST_TYPE) else "failed"
    reporting.invocation_ended(execution, now, error, outcome, usage)
    seconds = usage.seconds if usage.seconds is not None else max(0.0, now - start)
    execution = execution.evolve(
        compute_seconds=execution.compute_seconds + seconds,
        cpu_seconds=execution.cpu_seconds + usage.cpu_seconds,
        gb_seconds=execution.gb_seconds + seconds * usage.memory_mb / 1024,
    )
    return journal.append_events(tx, execution, [event])


def complete(
    tx: Transaction,
    invocation: Invocation,
    output: InvocationOutput,
    now: float,
    policy: InvocationRetryPolicy,
    usage: Usage = NO_USAGE,
) -> Execution | None:
    """Records what the handler returned; returns None if the invocation had been superseded."""
    execution = stored = held(tx, invocation)
    if execution is None:
        return None
    if execution.status.is_terminal:
        # The handler ended the execution through an EXECUTION checkpoint (a large result).
        execution = _invocation_event(tx, execution, now, None, usage)
        tx.update_execution(_release(execution), before=stored)
        return execution
    if output.status is InvocationStatus.PENDING and not (
        execution.woken_during_invocation or tx.has_pending_work(execution.id)
    ):
        error = ErrorObject(
            message="The handler returned PENDING but nothing is pending: no wait, retry or callback is open.",
            type="InvalidParameterValueException",
        )
        return fail(tx, invocation, error, now, policy, usage=usage)
    if output.status is InvocationStatus.PENDING and execution.status is ExecutionStatus.PAUSING:
        # The invocation ended before another checkpoint: the pause it held up takes effect.
        execution = enter_paused(tx, execution.evolve(failed_invocations=0), now, execution.woken_during_invocation)
        tx.update_execution(execution)
        return execution
    execution = _invocation_event(tx, execution, now, None, usage).evolve(failed_invocations=0)
    if output.status is InvocationStatus.SUCCEEDED:
        execution = journal.end_execution(tx, execution, ExecutionStatus.SUCCEEDED, now, result=output.result)
    elif output.status is InvocationStatus.FAILED:
        execution = journal.end_execution(tx, execution, ExecutionStatus.FAILED, now, error=output.error)
    elif execution.woken_during_invocation:
        execution = execution.evolve(ready_time=now)
    tx.update_execution(_release(execution), before=stored)
    return execution


def enter_paused(tx: CoreTransaction, execution: Execution, now: float, must_run: bool) -> Execution:
    """Makes a PAUSING or RUNNING execution PAUSED, ending the invocation that holds it, if any.

    ``must_run``: whether it is to be invoked once resumed (an invocation was cut short, or
    something it waits for completed); otherwise it goes on waiting when resumed. The caller
    stores the execution.
    """
    if execution.lease_owner is not None:
        execution = _invocation_event(tx, execution, now, None)
    execution = _release(execution).evolve(status=ExecutionStatus.PAUSED, ready_time=None, woken_during_invocation=must_run)
    op = journal.execution_operation(execution.id, execution.name, None, execution.start_time)
    requested = execution.pause_time if execution.pause_time is not None else now
    event = history.execution_paused(op, now, requested, execution.pause_reason, execution.timeout_paused)
    return journal.append_events(tx, execution, [event])


def fail(
    tx: Transaction,
    invocation: Invocation,
    error: ErrorObject,
    now: float,
    policy: InvocationRetryPolicy,
    lost: bool = False,
    usage: Usage = NO_USAGE,
) -> Execution | None:
    """Records a crashed invocation: retried, or the execution fails with ``error``.

    ``lost``: the handler did not cause it (see the module's docstring); it is retried at once and
    counts toward ``max_lost_invocations``, not ``max_attempts`` (or, lost to the store, an
    ``error`` of type ``STORE_LOST_TYPE``, after a pause and toward neither). Otherwise it is
    retried with backoff.
    """
    execution = held(tx, invocation)
    if execution is None:
        return None
    if not execution.status.is_terminal:
        pausing = execution.status is ExecutionStatus.PAUSING
        if lost:
            execution = _record_loss(tx, execution, error, now, policy, usage)
        else:
            execution = _record_failure(tx, execution, error, now, policy, usage)
        if pausing and not execution.status.is_terminal:
            execution = enter_paused(tx, execution, now, must_run=True)
    tx.update_execution(_release(execution))
    return execution


def _record_failure(
    tx: Transaction, execution: Execution, error: ErrorObject, now: float, policy: InvocationRetryPolicy, usage: Usage
) -> Execution:
    execution = _invocation_event(tx, execution, now, error, usage)
    failures = execution.failed_invocations + 1
    execution = _release(execution).evolve(failed_invocations=failures)
    if failures >= policy.max_attempts:
        return journal.end_execution(tx, execution, ExecutionStatus.FAILED, now, error=error)
    reporting.invocation_retried(execution)
    return execution.evolve(ready_time=now + policy.delay(failures))


def _record_loss(
    tx: Transaction,
    execution: Execution,
    error: ErrorObject,
    now: float,
    policy: InvocationRetryPolicy,
    usage: Usage = NO_USAGE,
) -> Execution:
    """Records a lost invocation: retried, unless too many in a row were lost (see the module's docstring)."""
    if error.type == STORE_LOST_TYPE:
        earlier = _lost_in_a_row(tx, execution, STORE_LOST_TYPE, _STORE_LOSSES_COUNTED)
        execution = _release(_invocation_event(tx, execution, now, error, usage))
        reporting.invocation_retried(execution)
        delay = min(STORE_LOST_MAX_DELAY_SECONDS, STORE_LOST_FIRST_DELAY_SECONDS * 2**earlier)
        return execution.evolve(ready_time=now + delay)
    lost = _lost_in_a_row(tx, execution, LOST_TYPE, policy.max_lost_invocations) + 1
    execution = _release(_invocation_event(tx, execution, now, error, usage))
    if lost >= policy.max_lost_invocations:
        error = ErrorObject(
            message=f"{error.message} That is {lost} invocations lost in a row without a checkpoint between "
            "them, so the handler itself probably takes its process down (a SIGKILL it sends, the system's "
            "out-of-memory killer): the execution fails rather than run for ever.",
            type=error.type,
        )
        return journal.end_execution(tx, execution, ExecutionStatus.FAILED, now, error=error)
    reporting.invocation_retried(execution)
    return execution.evolve(ready_time=now)


def _lost_in_a_row(tx: CoreTransaction, execution: Execution, kind: str, limit: int) -> int:
    """How many of the execution's latest events (up to ``limit``) record invocations lost as ``kind``.

    Anything else in between (a checkpoint, an invocation that ended or was lost otherwise) ends
    the count. Read from the history, so the count needs no column of its own; losses are rare,
    and each reads at most ``limit`` events backwards along their primary key.
    """
    count = 0
    for event in tx.list_events(execution.id, 0, limit, reverse=True):
        error = event.details.get("Error", {}).get("Payload", {}) if event.event_type == "InvocationCompleted" else {}
        if error.get("ErrorType") != kind:
            break
        count += 1
    return count
