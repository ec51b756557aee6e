"""Leasing shares its places among functions when more is ready than fits (issue 14), on SQLite and PostgreSQL.

The end-to-end test (a real server with a backlog) is in tests/runtime/test_fair_leasing.py.
"""

from __future__ import annotations

from perdure.protocol.limits import FunctionLimits
from perdure.protocol.records import InvocationOutput, InvocationStatus
from perdure.service import fairness, limits
from perdure.service.executions import DurableService, StartRequest
from perdure.testing import SkippableClock

DONE = InvocationOutput(InvocationStatus.SUCCEEDED, result="null")


def start(service: DurableService, count: int, function: str) -> list[str]:
    """Starts ``count`` executions of ``function``, one clock tick apart so their order is known."""
    clock = service.clock
    assert isinstance(clock, SkippableClock)
    arns = []
    for _ in range(count):
        arns.append(service.start_execution(StartRequest(function, "{}")).execution.arn)
        clock.advance(0.001)
    return arns


def names(invocations: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(i.function_name for i in invocations)


def test_places_go_to_the_functions_running_fewest() -> None:
    assert fairness.shares({"a": 10}, ["a", "b"], 4) == {"a": 0, "b": 4}
    assert fairness.shares({"a": 2}, ["a", "b", "c"], 7) == {"a": 1, "b": 3, "c": 3}
    assert fairness.shares({}, ["a", "b"], 1) == {"a": 1, "b": 0}, "ties go by name"
    assert fairness.shares({}, [], 5) == {}


def test_a_backlog_does_not_keep_another_functions_execution_waiting(service: DurableService) -> None:
    backlog = start(service, 300, "bulk")
    first = service.lease("server", ["bulk", "urgent"], 100, 30)
    assert [i.execution_arn for i in first] == backlog[:100], "the oldest ready first while one function has work"
    (urgent,) = start(service, 1, "urgent")
    service.complete_invocation(first[0], DONE)
    (next_one,) = service.lease("server", ["bulk", "urgent"], 1, 30)
    assert next_one.execution_arn == urgent, "the first free place goes to the function running none, not to the backlog"


def test_functions_with_backlogs_share_the_places(service: DurableService) -> None:
    start(service, 150, "bulk")
    start(service, 150, "other")
    leased = service.lease("server", ["bulk", "other", "idle"], 100, 30)
    assert names(leased) == ["bulk"] * 50 + ["other"] * 50
    more = service.lease("server", ["bulk", "other", "idle"], 30, 30)
    assert names(more) == ["bulk"] * 15 + ["other"] * 15
    rest = service.lease("server", ["bulk", "other", "idle"], 500, 30)
    assert names(rest) == ["bulk"] * 85 + ["other"] * 85, "what one leaves is taken by the other"


def test_a_function_with_little_ready_leaves_its_share_to_the_others(service: DurableService) -> None:
    start(service, 200, "bulk")
    start(service, 3, "small")
    leased = service.lease("server", ["bulk", "small"], 100, 30)
    assert names(leased) == ["bulk"] * 97 + ["small"] * 3


def test_shared_places_keep_to_a_functions_limits(service: DurableService) -> None:
    limits.declare(service, {"limited": FunctionLimits(concurrency=5)})
    start(service, 200, "limited")
    start(service, 200, "free")
    batch = service.lease_batch("server", ["free", "limited"], 100, 30)
    assert names(batch.invocations) == ["free"] * 95 + ["limited"] * 5
    assert batch.held == {"limited": None}, "held until an invocation of it ends"
    assert names(service.lease("server", ["free", "limited"], 10, 30)) == ["free"] * 10
