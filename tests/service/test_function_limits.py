"""Functions' concurrency and rate limits, as leasing applies them, on SQLite and PostgreSQL with time moved by hand.

The end-to-end tests (real servers, handlers that record when they run) are in
tests/runtime/test_concurrency_limits.py; these pin down the rules one lease at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from perdure.protocol.limits import FunctionLimits, Rate
from perdure.protocol.records import ExecutionStatus, Invocation, InvocationOutput, InvocationStatus
from perdure.service import limits
from perdure.service.executions import DurableService, StartRequest
from perdure.testing import SkippableClock

ServiceFactory = Callable[..., DurableService]
DONE = InvocationOutput(InvocationStatus.SUCCEEDED, result="null")


def start(service: DurableService, count: int, function: str = "orders", tenant: str | None = None) -> list[str]:
    """Starts ``count`` executions, one clock tick apart so their order is known; returns their ARNs."""
    clock = service.clock
    assert isinstance(clock, SkippableClock)
    arns = []
    for _ in range(count):
        arns.append(service.start_execution(StartRequest(function, "{}", tenant_id=tenant)).execution.arn)
        clock.advance(0.001)
    return arns


def tenant(service: DurableService, invocation: Invocation) -> str | None:
    return service.get_execution(invocation.execution_arn).tenant_id


def test_a_function_runs_no_more_invocations_at_once_than_its_concurrency(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=2)})
    arns = start(service, 5)
    first = service.lease("server-a", ["orders"], 10, 30)
    assert [i.execution_arn for i in first] == arns[:2], "the oldest ready first"
    assert service.lease("server-a", ["orders"], 10, 30) == []
    # Another server on the database counts the same invocations.
    assert service.lease("server-b", ["orders"], 10, 30) == []
    service.complete_invocation(first[0], DONE)
    (third,) = service.lease("server-b", ["orders"], 10, 30)
    assert third.execution_arn == arns[2]
    held = service.lease_batch("server-a", ["orders"], 10, 30)
    assert held.invocations == [] and held.held == {"orders": None}, "held until an invocation ends"
    waiting = [service.get_execution(arn) for arn in arns[3:]]
    assert all(e.status is ExecutionStatus.RUNNING and e.ready_time is not None for e in waiting), "they wait ready"


def test_a_limited_function_leaves_the_others_their_places(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=1)})
    start(service, 20)  # a backlog, older than billing's work
    start(service, 2, function="billing")
    leased = service.lease("server", ["orders", "billing"], 3, 30)
    assert sorted(i.function_name for i in leased) == ["billing", "billing", "orders"]


def test_each_tenant_gets_no_more_than_its_share(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=4, tenant_concurrency=2)})
    start(service, 6, tenant="a")
    start(service, 3, tenant="b")
    start(service, 3)  # without a TenantId: one tenant of their own
    leased = service.lease("server", ["orders"], 10, 30)
    assert sorted(str(tenant(service, i)) for i in leased) == ["a", "a", "b", "b"], "b does not wait behind a"
    service.complete_invocation(next(i for i in leased if tenant(service, i) == "b"), DONE)
    (next_one,) = service.lease("server", ["orders"], 10, 30)
    assert tenant(service, next_one) == "b", "a, at its share, is passed over though its executions are older"


def test_a_reserved_concurrency_wins_over_the_declared_one_until_deleted(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=5)})
    assert limits.reserve(service, "orders", 0) == 0
    start(service, 3)
    assert service.lease("server", ["orders"], 10, 30) == [], "0 holds every invocation"
    assert limits.of(service, "orders").concurrency == 0
    limits.reserve(service, "orders", 1)
    assert len(service.lease("server", ["orders"], 10, 30)) == 1
    limits.unreserve(service, "orders")
    assert limits.of(service, "orders").concurrency == 5
    assert len(service.lease("server", ["orders"], 10, 30)) == 2


def test_a_function_declared_without_limits_again_has_none(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=1, rate=Rate(1, 60.0))})
    limits.declare(service, {"orders": FunctionLimits()})
    assert limits.every(service) == {}
    start(service, 3)
    assert len(service.lease("server", ["orders"], 10, 30)) == 3


def test_a_rate_spreads_invocation_starts_evenly(service: DurableService, clock: SkippableClock) -> None:
    limits.declare(service, {"orders": FunctionLimits(rate=Rate(10, 1.0))})
    start(service, 30)
    starts: list[float] = []
    while len(starts) < 21:
        leased = service.lease_batch("server", ["orders"], 10, 30)
        starts += [clock.now] * len(leased.invocations)
        resumes = leased.held["orders"]
        assert resumes is not None and resumes > clock.now, "held until the rate lets the next one start"
        clock.advance_to(resumes)
    assert [later - earlier for earlier, later in zip(starts, starts[1:])] == pytest.approx([0.1] * 20)


def test_each_tenant_has_a_rate_of_its_own(service: DurableService, clock: SkippableClock) -> None:
    limits.declare(service, {"orders": FunctionLimits(tenant_rate=Rate(1, 60.0))})
    start(service, 3, tenant="a")
    start(service, 2, tenant="b")
    assert sorted(str(tenant(service, i)) for i in service.lease("server", ["orders"], 10, 30)) == ["a", "b"]
    clock.advance(59)
    assert service.lease_batch("server", ["orders"], 10, 30).held == {"orders": pytest.approx(clock.now + 1)}
    clock.advance(1)
    assert sorted(str(tenant(service, i)) for i in service.lease("server", ["orders"], 10, 30)) == ["a", "b"]


def test_a_lapsed_lease_gives_its_place_back(service: DurableService, clock: SkippableClock) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=1)})
    start(service, 2)
    (lost,) = service.lease("dead-server", ["orders"], 10, 30)
    assert service.lease("server", ["orders"], 10, 30) == []
    clock.advance(31)
    (retried,) = service.lease("server", ["orders"], 10, 30)
    assert retried.execution_arn == lost.execution_arn, "retried at once, first in line"
    assert service.lease("server", ["orders"], 10, 30) == []


def test_servers_leasing_at_once_keep_to_the_concurrency_together(open_service: ServiceFactory) -> None:
    servers = [open_service(), open_service()]
    limits.declare(servers[0], {"orders": FunctionLimits(concurrency=3)})
    start(servers[0], 40)
    leased: list[Invocation] = []
    gate = threading.Barrier(8)

    def lease(server: DurableService, owner: str) -> None:
        gate.wait()
        for _ in range(5):
            leased.extend(server.lease(owner, ["orders"], 2, 30))

    threads = [threading.Thread(target=lease, args=(servers[i % 2], f"owner-{i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(leased) == 3, leased
