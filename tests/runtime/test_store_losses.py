"""An invocation lost because the store could not record it runs again after a pause, not at once."""

from __future__ import annotations

from perdure.errors import StoreUnavailableError
from perdure.protocol.records import ExecutionStatus
from perdure.runtime.invoker import InvocationReport, record_report
from perdure.service.executions import DurableService, StartRequest
from perdure.testing import SkippableClock


def test_an_invocation_lost_to_an_unavailable_store_runs_again_after_its_retry_delay(
    service: DurableService, clock: SkippableClock
) -> None:
    arn = service.start_execution(StartRequest("held")).execution.arn
    for _ in range(12):
        [invocation] = service.lease("test", ["held"], 1, 60)
        record_report(service, invocation, InvocationReport(None, lost="its disk is full"))
        # Run again at once, it would be lost again: a full disk or a database away for a few
        # seconds would use up the ten losses in a row an execution is allowed.
        assert service.lease("test", ["held"], 1, 60) == []
        clock.advance(StoreUnavailableError.retry_after_seconds)
        if service.get_execution(arn).status is not ExecutionStatus.RUNNING:
            break
    assert service.get_execution(arn).status is ExecutionStatus.FAILED


def test_a_node_child_out_of_heap_is_lost_and_runs_again_at_once(service: DurableService) -> None:
    service.start_execution(StartRequest("heavy"))
    [invocation] = service.lease("test", ["heavy"], 1, 60)
    record_report(service, invocation, InvocationReport(None, lost="the Node.js process ran out of heap", out_of_memory=True))
    assert len(service.lease("test", ["heavy"], 1, 60)) == 1
