"""Destinations in the service: an ended execution starts its OnSuccess or OnFailure function,
with Lambda's destination record, in the transaction that ends it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from perdure.errors import InvalidParameterError, NotFoundError
from perdure.protocol.destinations import ConfigSource, EventInvokeConfig
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import (
    ErrorObject,
    Execution,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    InvocationStatus,
)
from perdure.protocol.versions import FunctionConfig
from perdure.service import destinations, invoke_configs
from perdure.service.executions import DurableService, StartRequest
from perdure.service.functions import FunctionDefaults, lookup_of
from perdure.service.invoke_configs import InvokeConfigNotFoundError
from perdure.service.versions import VersionNotFoundError
from perdure.testing import SkippableClock

FUNCTIONS = lookup_of([FunctionDefaults("orders"), FunctionDefaults("notify"), FunctionDefaults("audit")])
BOOM = ErrorObject(message="card declined", type="PaymentError", stack_trace=("line 1", "line 2"))


@pytest.fixture
def service(open_service: Callable[..., DurableService]) -> DurableService:
    service = open_service(functions=FUNCTIONS)
    invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_success="audit", on_failure="notify"))
    return service


def start(service: DurableService, name: str = "o-1", function: str = "orders", timeout: int | None = None) -> Execution:
    request = StartRequest(function, '{"order": 7}', execution_name=name, timeout_seconds=timeout, tenant_id="t-1")
    return service.start_execution(request).execution


def lease_one(service: DurableService, function: str = "orders") -> Invocation:
    (invocation,) = service.lease("owner", [function], 1, 30)
    return invocation


def executions_of(service: DurableService, function: str) -> list[Execution]:
    return service.list_executions(ExecutionQuery(function_name=function, limit=100)).executions


def fail(service: DurableService, function: str = "orders") -> Execution:
    ended = service.complete_invocation(lease_one(service, function), InvocationOutput(InvocationStatus.FAILED, error=BOOM))
    assert ended is not None and ended.status is ExecutionStatus.FAILED
    return ended


def record_of(execution: Execution) -> dict[str, Any]:
    return json.loads(execution.input_payload or "null")  # type: ignore[no-any-return]


def test_a_failed_execution_starts_its_on_failure_function_once_with_lambdas_record(service: DurableService) -> None:
    start(service)
    failed = fail(service)
    (destination,) = executions_of(service, "notify")
    assert destination.name == f"on-failure-{failed.id}"
    assert destination.status is ExecutionStatus.RUNNING and destination.ready_time is not None
    assert destination.tenant_id == "t-1"
    record = record_of(destination)
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": str(uuid.UUID(failed.id)),
        "functionArn": service.function_arn("orders"),
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 1,
        "durableExecutionArn": failed.arn,
    }
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"] == {
        "errorMessage": "card declined",
        "errorType": "PaymentError",
        "stackTrace": ["line 1", "line 2"],
    }
    (started,) = service.get_history(destination.arn).items
    assert started.details["DestinationOf"] == {"DurableExecutionArn": failed.arn, "Condition": "RetriesExhausted", "Depth": 1}
    assert executions_of(service, "audit") == []
    # The destination runs as any execution does, once: nothing else is ready.
    lease_one(service, "notify")
    assert service.lease("owner", ["orders", "notify", "audit"], 10, 30) == []


def test_a_succeeded_execution_starts_its_on_success_function_with_its_result(service: DurableService) -> None:
    start(service)
    done = service.complete_invocation(lease_one(service), InvocationOutput(InvocationStatus.SUCCEEDED, result='{"paid": true}'))
    assert done is not None
    (destination,) = executions_of(service, "audit")
    assert destination.name == f"on-success-{done.id}"
    record = record_of(destination)
    assert record["requestContext"]["condition"] == "Success"
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"paid": True}
    assert executions_of(service, "notify") == []


def test_a_timed_out_or_stopped_execution_starts_on_failure_saying_how_it_ended(
    service: DurableService, clock: SkippableClock
) -> None:
    stopped = service.stop_execution(start(service, "o-1").arn, ErrorObject(message="enough", type="Operator"))
    timing_out = start(service, "o-2", timeout=60)
    clock.advance(61)
    service.fire_due_timers()
    timed_out = service.get_execution(timing_out.arn)
    assert timed_out.status is ExecutionStatus.TIMED_OUT
    records = {record_of(e)["requestContext"]["durableExecutionArn"]: record_of(e) for e in executions_of(service, "notify")}
    assert records[stopped.arn]["requestContext"]["condition"] == "Stopped"
    assert records[stopped.arn]["responsePayload"] == {"errorMessage": "enough", "errorType": "Operator"}
    assert records[timed_out.arn]["requestContext"]["condition"] == "TimedOut"
    assert records[timed_out.arn]["responsePayload"]["errorType"] == "Execution.Timeout"
    assert len(records) == 2


def test_the_destination_starts_in_the_transaction_that_ends_the_execution(
    service: DurableService, open_service: Callable[..., DurableService], monkeypatch: pytest.MonkeyPatch
) -> None:
    start(service)
    invocation = lease_one(service)

    def broken(*args: Any) -> Any:
        raise RuntimeError("the destination could not be made")

    # The end fails while the destination is made: neither is kept.
    with monkeypatch.context() as patched:
        patched.setattr(destinations, "record", broken)
        with pytest.raises(RuntimeError):
            service.complete_invocation(invocation, InvocationOutput(InvocationStatus.FAILED, error=BOOM))
    assert service.get_execution(invocation.execution_arn).status is ExecutionStatus.RUNNING
    assert executions_of(service, "notify") == []
    # Recorded again, the end and its destination are kept together: a new server on the
    # same database (one started after a crash right after the end) finds both.
    fail_again = service.complete_invocation(invocation, InvocationOutput(InvocationStatus.FAILED, error=BOOM))
    assert fail_again is not None and fail_again.status is ExecutionStatus.FAILED
    restarted = open_service(functions=FUNCTIONS)
    (destination,) = executions_of(restarted, "notify")
    assert record_of(destination)["requestContext"]["durableExecutionArn"] == invocation.execution_arn
    assert [i.function_name for i in restarted.lease("new-owner", ["notify"], 10, 30)] == ["notify"]


def test_an_execution_without_a_configured_destination_starts_nothing(service: DurableService) -> None:
    start(service, function="notify")
    fail(service, "notify")
    assert [e.function_name for e in executions_of(service, "orders") + executions_of(service, "audit")] == []


def test_a_chain_of_destinations_naming_each_other_stops_after_sixteen(open_service: Callable[..., DurableService]) -> None:
    service = open_service(functions=FUNCTIONS)
    invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="notify"))
    invoke_configs.put(service, "notify", "$LATEST", EventInvokeConfig(on_failure="orders"))
    start(service)
    for _ in range(40):
        ready = service.lease("owner", ["orders", "notify"], 1, 30)
        if not ready:
            break
        service.complete_invocation(ready[0], InvocationOutput(InvocationStatus.FAILED, error=BOOM))
    # The first execution and sixteen destinations, each started by the one before.
    assert len(executions_of(service, "orders")) + len(executions_of(service, "notify")) == 1 + destinations.MAX_DEPTH


def test_a_qualifiers_own_configuration_wins_over_the_functions(service: DurableService) -> None:
    service.publish_version("orders", b"orders one", FunctionConfig("orders.py:handler"))
    service.put_alias("orders", "live", 1)
    invoke_configs.put(service, "orders", "live", EventInvokeConfig(on_failure="audit"))
    service.start_execution(StartRequest("orders", "{}", execution_name="via-alias", qualifier="live"))
    fail(service)
    start(service, "unqualified")
    fail(service)
    assert [record_of(e)["requestContext"]["functionArn"] for e in executions_of(service, "audit")] == [
        service.function_arn("orders", "live")
    ]
    assert len(executions_of(service, "notify")) == 1
    assert record_of(executions_of(service, "audit")[0])["responseContext"]["executedVersion"] == "1"


def test_a_destination_runs_the_version_its_qualifier_names(service: DurableService) -> None:
    service.publish_version("notify", b"notify one", FunctionConfig("n.py:handler", execution_timeout_seconds=300))
    service.publish_version("notify", b"notify two", FunctionConfig("n.py:handler", retention_days=2))
    service.put_alias("notify", "stable", 1)
    invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="notify:stable"))
    start(service)
    fail(service)
    (destination,) = executions_of(service, "notify")
    assert (destination.qualifier, destination.function_version, destination.timeout_seconds) == ("stable", 1, 300)
    assert destination.arn.startswith(service.function_arn("notify", "stable") + "/durable-execution/on-failure-")


def test_configurations_are_set_read_changed_and_deleted(service: DurableService) -> None:
    stored = invoke_configs.get(service, "orders")
    assert stored.config == EventInvokeConfig(on_success="audit", on_failure="notify")
    assert stored.source is ConfigSource.API
    invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="audit", maximum_retry_attempts=0))
    assert invoke_configs.get(service, "orders").config == EventInvokeConfig(on_failure="audit", maximum_retry_attempts=0)
    assert [s.qualifier for s in invoke_configs.list_configs(service, "orders")] == ["$LATEST"]
    invoke_configs.delete(service, "orders")
    with pytest.raises(InvokeConfigNotFoundError, match="has no EventInvokeConfig"):
        invoke_configs.get(service, "orders")
    with pytest.raises(InvokeConfigNotFoundError):
        invoke_configs.delete(service, "orders")
    start(service)
    fail(service)
    assert executions_of(service, "notify") == executions_of(service, "audit") == []


def test_a_configuration_naming_what_the_server_does_not_run_is_refused(service: DurableService) -> None:
    with pytest.raises(InvalidParameterError, match=r"DestinationConfig.OnFailure.Destination names the function nope"):
        invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="nope"))
    with pytest.raises(NotFoundError, match="Function not found: ghost"):
        invoke_configs.put(service, "ghost", "$LATEST", EventInvokeConfig(on_failure="notify"))
    with pytest.raises(VersionNotFoundError):
        invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="notify:9"))
    with pytest.raises(InvalidParameterError, match="MaximumRetryAttempts must be from 0 to 2"):
        EventInvokeConfig(maximum_retry_attempts=3)
    assert invoke_configs.get(service, "orders").config.on_failure == "notify"


def test_a_server_start_replaces_what_its_code_sets_and_leaves_what_the_api_set(service: DurableService) -> None:
    invoke_configs.serve(service, "orders", EventInvokeConfig(on_failure="audit"))
    assert invoke_configs.get(service, "orders").source is ConfigSource.SERVED
    # Code that sets none takes back what a server start set...
    invoke_configs.serve(service, "orders", None)
    with pytest.raises(InvokeConfigNotFoundError):
        invoke_configs.get(service, "orders")
    # ...and leaves what the API set.
    invoke_configs.put(service, "orders", "$LATEST", EventInvokeConfig(on_failure="notify"))
    invoke_configs.serve(service, "orders", None)
    assert invoke_configs.get(service, "orders").config.on_failure == "notify"


def test_deleting_a_function_deletes_its_configurations(service: DurableService) -> None:
    service.publish_version("orders", b"orders one", FunctionConfig("orders.py:handler"))
    service.delete_function("orders")
    assert invoke_configs.list_configs(service, "orders") == []
