"""Starting an execution and leasing it in one transaction, for a server that runs it at once (issue 14), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from perdure.errors import ExecutionAlreadyExistsError
from perdure.protocol.limits import FunctionLimits
from perdure.protocol.records import InvocationOutput, InvocationStatus
from perdure.service import limits
from perdure.service.executions import DurableService, StartRequest

DONE = InvocationOutput(InvocationStatus.SUCCEEDED, result='"ok"')


def test_a_new_execution_is_leased_as_it_starts(service: DurableService) -> None:
    result, invocation = service.start_and_lease(StartRequest("orders", '{"n": 1}'), "server", 30)

    assert result.created and invocation is not None
    assert invocation.execution_arn == result.execution.arn and invocation.invocation == 1
    leased = service.get_execution(result.execution.arn)
    assert leased.lease_owner == "server" and leased.ready_time is None
    assert service.lease("other", ["orders"], 10, 30) == [], "no other lease takes it"
    ended = service.complete_invocation(invocation, DONE)
    assert ended is not None and ended.result == '"ok"', "its checkpoint token is good"


def test_an_execution_that_exists_is_not_leased_again(service: DurableService) -> None:
    request = StartRequest("orders", "{}", execution_name="once")
    _, first = service.start_and_lease(request, "server", 30)
    again, second = service.start_and_lease(request, "server", 30)

    assert first is not None and not again.created and second is None


def test_a_limited_function_is_left_to_the_scheduler(service: DurableService) -> None:
    limits.declare(service, {"orders": FunctionLimits(concurrency=1)})

    result, invocation = service.start_and_lease(StartRequest("orders", "{}"), "server", 30)

    assert invocation is None
    assert service.get_execution(result.execution.arn).ready_time is not None, "it waits, ready"
    (leased,) = service.lease("server", ["orders"], 10, 30)
    assert leased.execution_arn == result.execution.arn


def test_many_start_in_one_transaction_and_as_many_as_there_are_places_are_leased(service: DurableService) -> None:
    requests = [StartRequest("orders", f'{{"n": {n}}}') for n in range(5)]
    started = service.start_many([*requests, StartRequest("orders", "{}", execution_name="named")], "server", 30, 3)

    assert [result.created for result, _ in started] == [True] * 6
    leased = [invocation for _, invocation in started if invocation is not None]
    assert [i.execution_arn for i in leased] == [result.execution.arn for result, _ in started[:3]]
    rest = service.lease("server", ["orders"], 10, 30)
    assert sorted(i.execution_arn for i in rest) == sorted(result.execution.arn for result, _ in started[3:])


def test_a_batch_with_a_conflict_starts_none(service: DurableService) -> None:
    service.start_execution(StartRequest("orders", '{"a": 1}', execution_name="taken"))
    with pytest.raises(ExecutionAlreadyExistsError):
        service.start_many([StartRequest("orders", "{}"), StartRequest("orders", '{"a": 2}', execution_name="taken")])
    assert len(service.lease("server", ["orders"], 10, 30)) == 1, "only the execution started before"
