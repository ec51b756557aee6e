"""An invocation lost because the store could not record it runs again after a growing pause, however often."""

from __future__ import annotations

from perdure.protocol.records import ExecutionStatus
from perdure.runtime.invoker import InvocationReport, record_report
from perdure.service.executions import DurableService, StartRequest
from perdure.service.invocations import LOST_INVOCATION, STORE_LOST_TYPE
from perdure.testing import SkippableClock


def _lose_to_the_store(service: DurableService, function: str) -> None:
    [invocation] = service.lease("test", [function], 1, 60)
    record_report(service, invocation, InvocationReport(None, lost="its disk is full"))


def test_an_invocation_lost_to_the_store_runs_again_after_a_pause_that_doubles_up_to_a_minute(
    service: DurableService, clock: SkippableClock
) -> None:
    arn = service.start_execution(StartRequest("held")).execution.arn
    pauses = []
    # Thirty losses in a row: a store away for over twenty minutes.
    for _ in range(30):
        _lose_to_the_store(service, "held")
        # Run again at once, it would be lost again.
        assert service.lease("test", ["held"], 1, 60) == []
        ready = service.get_execution(arn).ready_time
        assert ready is not None
        pauses.append(round(ready - clock()))
        clock.advance(ready - clock())
    assert pauses[:6] == [2, 4, 8, 16, 32, 60]
    assert set(pauses[6:]) == {60}
    # None of them is the handler's doing: the execution goes on once the store is back.
    assert service.get_execution(arn).status is ExecutionStatus.RUNNING
    assert len(service.lease("test", ["held"], 1, 60)) == 1
    events = [e for e in service.get_history(arn).items if e.event_type == "InvocationCompleted"]
    assert {e.details["Error"]["Payload"]["ErrorType"] for e in events} == {STORE_LOST_TYPE}


def test_losses_to_the_store_do_not_count_toward_the_losses_in_a_row_that_fail_an_execution(
    service: DurableService, clock: SkippableClock
) -> None:
    arn = service.start_execution(StartRequest("held")).execution.arn
    for _ in range(9):
        [invocation] = service.lease("test", ["held"], 1, 60)
        service.fail_invocation(invocation, LOST_INVOCATION, lost=True)
        _lose_to_the_store(service, "held")
        clock.advance(2)
    assert service.get_execution(arn).status is ExecutionStatus.RUNNING
    # Each loss to the store above ended a run of other losses, as progress does; two in a row wait 4 s.
    _lose_to_the_store(service, "held")
    ready = service.get_execution(arn).ready_time
    assert ready is not None and round(ready - clock()) == 4


def test_a_node_child_out_of_heap_is_lost_and_runs_again_at_once(service: DurableService) -> None:
    service.start_execution(StartRequest("heavy"))
    [invocation] = service.lease("test", ["heavy"], 1, 60)
    record_report(service, invocation, InvocationReport(None, lost="the Node.js process ran out of heap", out_of_memory=True))
    assert len(service.lease("test", ["heavy"], 1, 60)) == 1
