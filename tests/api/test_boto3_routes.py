"""Every route of the Lambda-compatible API, driven by boto3's own ``lambda`` client.

Most tests share one `perdure serve` process (module scope: starting a server and warming its
workers costs seconds); each test uses its own executions, and the listing tests their own
function names, so tests do not see each other's work.

The protocol routes (GetDurableExecutionState, CheckpointDurableExecution) need a checkpoint
token, which only a leased invocation holds. Those tests serve the API in-process (uvicorn in
a thread, no runtime) over a database nothing else leases from, and lease the execution
themselves through the same ``DurableService``: the test is then the only invocation.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from botocore.exceptions import ClientError
from servers import Server, free_port, handler_target, lambda_client, shared_server, wait_for

from perdure.api.app import PerdureApp
from perdure.protocol.records import Invocation, InvocationOutput, InvocationStatus
from perdure.runtime.registry import Registry
from perdure.service.executions import DurableService, StartRequest
from perdure.store import open_store

ACCOUNT_ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FUNCTIONS = {
    "steps": "steps",  # {"count": N} -> {"total": 0 + 1 + ... + N-1}
    "flow": "step_wait_callback",  # step, wait, callback, step
    "listing": "step_wait_callback",  # only the listing-filter test starts these
    "paging": "steps",  # only the listing-pagination test starts these
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    targets = [handler_target(name, attribute) for name, attribute in FUNCTIONS.items()]
    with shared_server(tmp_path_factory, "boto3-routes", [*targets, "--workers", "4"]) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return lambda_client(server.endpoint)


# -- helpers ---------------------------------------------------------------------------------


def invoke(client: Any, function: str, payload: Any, **kwargs: Any) -> dict[str, Any]:
    """Invokes and returns the reply with ``Payload`` read (and decoded when it is JSON)."""
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), **kwargs)
    raw = reply["Payload"].read()
    reply["Payload"] = json.loads(raw) if raw else None
    return reply  # type: ignore[no-any-return]


def start(client: Any, function: str, payload: Any, name: str | None = None) -> str:
    """Starts an execution without waiting (InvocationType=Event) and returns its ARN."""
    extra = {"DurableExecutionName": name} if name else {}
    reply = invoke(client, function, payload, InvocationType="Event", **extra)
    assert reply["StatusCode"] == 202
    return str(reply["DurableExecutionArn"])


def history(client: Any, arn: str, **kwargs: Any) -> list[dict[str, Any]]:
    return client.get_durable_execution_history(DurableExecutionArn=arn, **kwargs)["Events"]  # type: ignore[no-any-return]


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [event["EventType"] for event in events]


def first_event(client: Any, arn: str, event_type: str) -> dict[str, Any] | None:
    return next((e for e in history(client, arn) if e["EventType"] == event_type), None)


def callback_id(client: Any, arn: str) -> str:
    """Waits until the execution has created its callback and returns the callback's ID."""
    event = wait_for(lambda: first_event(client, arn, "CallbackStarted"), timeout=20)
    return str(event["CallbackStartedDetails"]["CallbackId"])  # type: ignore[index]


def ended(client: Any, arn: str, timeout: float = 20) -> dict[str, Any]:
    """Waits until the execution has ended and returns it."""

    def done() -> dict[str, Any] | None:
        execution = client.get_durable_execution(DurableExecutionArn=arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(done, timeout=timeout)  # type: ignore[return-value]


def all_pages(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[list[Any]]:
    """Follows Marker/NextMarker to the end; returns the items of each page."""
    pages = []
    marker: str | None = None
    while True:
        reply = call(**kwargs, **({"Marker": marker} if marker else {}))
        pages.append(reply[key])
        marker = reply.get("NextMarker")
        if not marker:
            return pages
        assert len(pages) < 50, "pagination does not end"


def client_error(call: Callable[..., Any], code: str, **kwargs: Any) -> str:
    """Calls and expects the given Lambda error code; returns the error message."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    return str(error["Message"])


# -- Invoke ----------------------------------------------------------------------------------


def test_request_response_invoke_returns_the_result_and_the_execution_arn(client: Any) -> None:
    reply = invoke(client, "steps", {"count": 4})

    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply
    assert reply["Payload"] == {"total": 6}
    assert reply["ExecutedVersion"] == "$LATEST"
    arn = reply["DurableExecutionArn"]
    assert arn.startswith(f"{ACCOUNT_ARN}:steps:$LATEST/durable-execution/")
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {"total": 6}


@pytest.mark.parametrize(
    "function_name",
    ["steps", "steps:$LATEST", f"{ACCOUNT_ARN}:steps", f"{ACCOUNT_ARN}:steps:$LATEST"],
    ids=["name", "name-qualifier", "arn", "arn-qualifier"],
)
def test_invoke_accepts_name_qualified_name_and_function_arn(client: Any, function_name: str) -> None:
    reply = invoke(client, function_name, {"count": 3})

    assert reply["Payload"] == {"total": 3}
    assert reply["DurableExecutionArn"].startswith(f"{ACCOUNT_ARN}:steps:$LATEST/durable-execution/")
    execution = client.get_durable_execution(DurableExecutionArn=reply["DurableExecutionArn"])
    assert execution["FunctionArn"] == f"{ACCOUNT_ARN}:steps:$LATEST"


def test_event_invoke_returns_202_at_once_with_the_execution_arn(client: Any) -> None:
    began = time.monotonic()
    reply = invoke(client, "flow", {"wait": 300}, InvocationType="Event")
    elapsed = time.monotonic() - began

    assert reply["StatusCode"] == 202
    assert reply["Payload"] is None
    assert elapsed < 5  # the execution waits 300 s; the reply did not
    arn = reply["DurableExecutionArn"]
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    client.stop_durable_execution(DurableExecutionArn=arn)


def test_same_execution_name_and_payload_returns_the_same_execution(client: Any) -> None:
    first = invoke(client, "steps", {"count": 2}, DurableExecutionName="same-name-1")
    again = invoke(client, "steps", {"count": 2}, DurableExecutionName="same-name-1")
    queued = invoke(client, "steps", {"count": 2}, DurableExecutionName="same-name-1", InvocationType="Event")

    assert first["DurableExecutionArn"] == again["DurableExecutionArn"] == queued["DurableExecutionArn"]
    assert "/durable-execution/same-name-1/" in first["DurableExecutionArn"]
    assert again["Payload"] == {"total": 1}
    listed = client.list_durable_executions_by_function(FunctionName="steps", DurableExecutionName="same-name-1")
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [first["DurableExecutionArn"]]
    # Running it again did not run its steps again.
    assert event_types(history(client, first["DurableExecutionArn"])).count("StepStarted") == 2


def test_same_execution_name_with_another_payload_is_refused(client: Any) -> None:
    arn = invoke(client, "steps", {"count": 2}, DurableExecutionName="same-name-2")["DurableExecutionArn"]

    message = client_error(
        client.invoke,
        "DurableExecutionAlreadyStartedException",
        FunctionName="steps",
        Payload=json.dumps({"count": 5}).encode(),
        DurableExecutionName="same-name-2",
    )

    assert "'same-name-2'" in message and arn in message
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert json.loads(execution["InputPayload"]) == {"count": 2}
    assert json.loads(execution["Result"]) == {"total": 1}
    listed = client.list_durable_executions_by_function(FunctionName="steps", DurableExecutionName="same-name-2")
    assert len(listed["DurableExecutions"]) == 1


# -- GetDurableExecution and its history ----------------------------------------------------


def test_get_durable_execution_returns_the_execution_with_or_without_its_data(client: Any) -> None:
    reply = invoke(client, "steps", {"count": 3}, DurableExecutionName="get-me")
    arn = reply["DurableExecutionArn"]

    full = client.get_durable_execution(DurableExecutionArn=arn)
    bare = client.get_durable_execution(DurableExecutionArn=arn, IncludeExecutionData=False)

    assert full["DurableExecutionArn"] == arn
    assert full["DurableExecutionName"] == "get-me"
    assert full["Status"] == "SUCCEEDED"
    assert json.loads(full["InputPayload"]) == {"count": 3}
    assert json.loads(full["Result"]) == {"total": 3}
    assert full["ExecutionDataIncluded"] is True
    assert isinstance(full["StartTimestamp"], datetime.datetime)
    assert full["StartTimestamp"] <= full["EndTimestamp"]
    assert "InputPayload" not in bare and "Result" not in bare
    assert bare["ExecutionDataIncluded"] is False
    assert bare["Status"] == "SUCCEEDED"


STEPS_HISTORY = [
    "ExecutionStarted",
    "StepStarted",
    "StepSucceeded",
    "StepStarted",
    "StepSucceeded",
    "StepStarted",
    "StepSucceeded",
    "InvocationCompleted",
    "ExecutionSucceeded",
]


@pytest.fixture(scope="module")
def steps_run(client: Any) -> str:
    """A finished three-step execution whose history the history tests read."""
    return str(invoke(client, "steps", {"count": 3})["DurableExecutionArn"])


def test_history_lists_the_events_in_order_with_event_ids_from_one(client: Any, steps_run: str) -> None:
    events = history(client, steps_run)

    assert event_types(events) == STEPS_HISTORY
    assert [e["EventId"] for e in events] == list(range(1, len(STEPS_HISTORY) + 1))
    assert [e.get("Name") for e in events if e["EventType"].startswith("Step")] == [
        "step-0", "step-0", "step-1", "step-1", "step-2", "step-2",
    ]  # fmt: skip
    results = [e["StepSucceededDetails"]["Result"]["Payload"] for e in events if e["EventType"] == "StepSucceeded"]
    assert results == ["0", "1", "2"]
    assert json.loads(events[-1]["ExecutionSucceededDetails"]["Result"]["Payload"]) == {"total": 3}
    timestamps = [e["EventTimestamp"] for e in events]
    assert timestamps == sorted(timestamps)


def test_history_pages_with_max_items_and_marker(client: Any, steps_run: str) -> None:
    pages = all_pages(client.get_durable_execution_history, "Events", DurableExecutionArn=steps_run, MaxItems=2)

    assert [len(page) for page in pages] == [2, 2, 2, 2, 1]
    assert [e["EventId"] for page in pages for e in page] == list(range(1, 10))
    assert event_types([e for page in pages for e in page]) == STEPS_HISTORY


def test_history_in_reverse_order_starts_from_the_last_event(client: Any, steps_run: str) -> None:
    reversed_events = history(client, steps_run, ReverseOrder=True)
    pages = all_pages(
        client.get_durable_execution_history, "Events", DurableExecutionArn=steps_run, MaxItems=4, ReverseOrder=True
    )

    assert event_types(reversed_events) == STEPS_HISTORY[::-1]
    assert [e["EventId"] for e in reversed_events] == list(range(9, 0, -1))
    assert [len(page) for page in pages] == [4, 4, 1]
    assert [e["EventId"] for page in pages for e in page] == list(range(9, 0, -1))


def test_history_without_execution_data_leaves_out_payloads(client: Any, steps_run: str) -> None:
    events = history(client, steps_run, IncludeExecutionData=False)

    assert event_types(events) == STEPS_HISTORY
    assert "Payload" not in events[0]["ExecutionStartedDetails"]["Input"]
    assert all("Payload" not in e["StepSucceededDetails"]["Result"] for e in events if e["EventType"] == "StepSucceeded")


# -- ListDurableExecutionsByFunction ----------------------------------------------------------


def test_list_executions_filters_by_status_and_by_name(client: Any) -> None:
    arns = {name: start(client, "listing", {"wait": 300}, name=name) for name in ("list-a", "list-b", "list-c")}
    client.stop_durable_execution(DurableExecutionArn=arns["list-b"])

    def names(**filters: Any) -> list[str]:
        reply = client.list_durable_executions_by_function(FunctionName="listing", **filters)
        return [e["DurableExecutionName"] for e in reply["DurableExecutions"]]

    assert names() == ["list-c", "list-b", "list-a"]  # newest first
    assert names(ReverseOrder=True) == ["list-a", "list-b", "list-c"]
    assert names(Statuses=["RUNNING"]) == ["list-c", "list-a"]
    assert names(Statuses=["STOPPED"]) == ["list-b"]
    assert names(Statuses=["RUNNING", "STOPPED"]) == ["list-c", "list-b", "list-a"]
    assert names(Statuses=["SUCCEEDED"]) == []
    assert names(DurableExecutionName="list-b") == ["list-b"]
    assert names(DurableExecutionName="list-b", Statuses=["RUNNING"]) == []
    by_arn = client.list_durable_executions_by_function(FunctionName=f"{ACCOUNT_ARN}:listing")
    assert {e["DurableExecutionArn"] for e in by_arn["DurableExecutions"]} == set(arns.values())
    summary = next(e for e in by_arn["DurableExecutions"] if e["DurableExecutionName"] == "list-b")
    assert summary["Status"] == "STOPPED"
    assert summary["FunctionArn"] == f"{ACCOUNT_ARN}:listing:$LATEST"
    assert "EndTimestamp" in summary
    for arn in (arns["list-a"], arns["list-c"]):
        client.stop_durable_execution(DurableExecutionArn=arn)


def test_list_executions_pages_with_max_items_and_marker(client: Any) -> None:
    arns = [invoke(client, "paging", {"count": 1})["DurableExecutionArn"] for _ in range(5)]

    pages = all_pages(client.list_durable_executions_by_function, "DurableExecutions", FunctionName="paging", MaxItems=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [e["DurableExecutionArn"] for page in pages for e in page] == arns[::-1]


# -- StopDurableExecution -----------------------------------------------------------------------


def test_stop_durable_execution_stops_it_with_the_given_error(client: Any) -> None:
    arn = start(client, "flow", {"wait": 300})
    wait_for(lambda: first_event(client, arn, "WaitStarted"), timeout=20)

    reply = client.stop_durable_execution(
        DurableExecutionArn=arn, Error={"ErrorType": "OrderCancelled", "ErrorMessage": "the customer cancelled"}
    )

    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "STOPPED"
    assert execution["Error"] == {"ErrorType": "OrderCancelled", "ErrorMessage": "the customer cancelled"}
    assert reply["StopTimestamp"] == execution["EndTimestamp"]
    last = history(client, arn)[-1]
    assert last["EventType"] == "ExecutionStopped"
    assert last["ExecutionStoppedDetails"]["Error"]["Payload"]["ErrorType"] == "OrderCancelled"


# -- callbacks ------------------------------------------------------------------------------------


def test_callback_heartbeat_then_success_completes_the_execution_with_the_result(client: Any) -> None:
    arn = start(client, "flow", {"wait": 1})
    callback = callback_id(client, arn)

    beat = client.send_durable_execution_callback_heartbeat(CallbackId=callback)
    assert beat["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    done = client.send_durable_execution_callback_success(CallbackId=callback, Result=b'{"approved": true}')
    assert done["ResponseMetadata"]["HTTPStatusCode"] == 200

    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {
        "first": "done:first",
        "answer": '{"approved": true}',
        "last": "done:last",
    }
    succeeded = first_event(client, arn, "CallbackSucceeded")
    assert succeeded is not None
    assert succeeded["CallbackSucceededDetails"]["Result"]["Payload"] == '{"approved": true}'


def test_callback_failure_fails_the_execution_with_the_callback_error(client: Any) -> None:
    arn = start(client, "flow", {"wait": 1})
    callback = callback_id(client, arn)

    client.send_durable_execution_callback_failure(
        CallbackId=callback, Error={"ErrorType": "Rejected", "ErrorMessage": "the approver said no", "ErrorData": "{}"}
    )

    execution = ended(client, arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorMessage"] == "the approver said no"
    assert execution["Error"]["ErrorData"] == "{}"
    failed = first_event(client, arn, "CallbackFailed")
    assert failed is not None
    assert failed["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "Rejected",
        "ErrorMessage": "the approver said no",
        "ErrorData": "{}",
    }
    assert first_event(client, arn, "StepStarted") is not None
    assert all(e.get("Name") != "last" for e in history(client, arn))  # the step after the callback never ran


# -- GetDurableExecutionState and CheckpointDurableExecution (in-process API, test as invocation) --


@dataclass
class Protocol:
    """The API for a database that only the test leases from."""

    service: DurableService
    client: Any

    def leased_execution(self, payload: str = '{"order": 1}') -> tuple[str, str, str]:
        """Starts an execution and leases it; returns (ARN, execution ID, checkpoint token)."""
        invocation = self.start_and_lease(payload)
        arn = invocation.execution_arn
        return arn, arn.rsplit("/", 1)[1], invocation.checkpoint_token

    def start_and_lease(self, payload: str = '{"order": 1}') -> Invocation:
        """Starts an execution and leases it, as a worker would, to the test."""
        execution = self.service.start_execution(StartRequest("manual", payload)).execution
        [invocation] = self.service.lease("test-invocation", ["manual"], 1, 300)
        assert invocation.execution_arn == execution.arn
        return invocation

    def checkpoint(self, arn: str, token: str, *updates: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        reply = self.client.checkpoint_durable_execution(
            DurableExecutionArn=arn, CheckpointToken=token, Updates=list(updates), **kwargs
        )
        reply.pop("ResponseMetadata")
        return reply  # type: ignore[no-any-return]

    def operations(self, arn: str, token: str) -> list[dict[str, Any]]:
        return self.client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken=token)["Operations"]  # type: ignore[no-any-return]


@pytest.fixture
def protocol(tmp_path: Path) -> Iterator[Protocol]:
    service = DurableService(open_store(f"sqlite:///{tmp_path / 'protocol.db'}"))
    port = free_port()
    api = uvicorn.Server(uvicorn.Config(PerdureApp(service, Registry()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=api.run, name="perdure-test-api", daemon=True)
    thread.start()
    wait_for(lambda: api.started, timeout=10)
    try:
        yield Protocol(service, lambda_client(f"http://127.0.0.1:{port}"))
    finally:
        api.should_exit = True
        thread.join(10)


def step(op_id: str, action: str, **fields: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "Action": action, **fields}


def by_id(operations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {op["Id"]: op for op in operations}


def test_state_and_checkpoints_drive_an_execution_to_success(protocol: Protocol) -> None:
    arn, execution_id, token = protocol.leased_execution()
    [root] = protocol.operations(arn, token)
    assert root["Type"] == "EXECUTION" and root["Id"] == execution_id and root["Status"] == "STARTED"
    assert root["ExecutionDetails"]["InputPayload"] == '{"order": 1}'

    # A step started and finished in one batch.
    reply = protocol.checkpoint(arn, token, step("s1", "START", Name="reserve"), step("s1", "SUCCEED", Payload='"r-1"'))
    assert reply["CheckpointToken"] != token
    token = reply["CheckpointToken"]
    [s1] = reply["NewExecutionState"]["Operations"]
    assert (s1["Id"], s1["Type"], s1["Status"], s1["Name"]) == ("s1", "STEP", "SUCCEEDED", "reserve")
    assert s1["StepDetails"] == {"Attempt": 1, "Result": '"r-1"'}

    # A wait and a callback; the callback gets its ID from the service.
    before = time.time()
    reply = protocol.checkpoint(
        arn,
        token,
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 60}},
        {"Id": "cb1", "Type": "CALLBACK", "Action": "START", "Name": "approval", "CallbackOptions": {"TimeoutSeconds": 300}},
    )
    token = reply["CheckpointToken"]
    ops = by_id(reply["NewExecutionState"]["Operations"])
    assert ops.keys() == {"w1", "cb1"}
    assert ops["w1"]["Status"] == "STARTED"
    scheduled = ops["w1"]["WaitDetails"]["ScheduledEndTimestamp"].timestamp()
    assert before + 59 <= scheduled <= time.time() + 61
    assert ops["cb1"]["Status"] == "STARTED"
    callback = ops["cb1"]["CallbackDetails"]["CallbackId"]
    assert isinstance(callback, str) and len(callback) >= 16

    # A child context with a step inside, finished with ReplayChildren.
    reply = protocol.checkpoint(arn, token, {"Id": "ctx", "Type": "CONTEXT", "Action": "START", "Name": "child"})
    token = reply["CheckpointToken"]
    reply = protocol.checkpoint(
        arn,
        token,
        step("inner", "START", ParentId="ctx", Name="inner"),
        step("inner", "SUCCEED", ParentId="ctx", Payload="2"),
        {
            "Id": "ctx",
            "Type": "CONTEXT",
            "Action": "SUCCEED",
            "Payload": '"child-done"',
            "ContextOptions": {"ReplayChildren": True},
        },
    )
    token = reply["CheckpointToken"]
    ops = by_id(reply["NewExecutionState"]["Operations"])
    assert ops["inner"]["ParentId"] == "ctx" and ops["inner"]["Status"] == "SUCCEEDED"
    assert ops["ctx"]["Status"] == "SUCCEEDED"
    assert ops["ctx"]["ContextDetails"] == {"Result": '"child-done"', "ReplayChildren": True}

    state = protocol.operations(arn, token)
    assert [op["Id"] for op in state] == [execution_id, "s1", "w1", "cb1", "ctx", "inner"]
    assert by_id(state)["cb1"]["CallbackDetails"]["CallbackId"] == callback

    # Ending the execution: no token comes back, since nothing may checkpoint any more.
    reply = protocol.checkpoint(
        arn, token, {"Id": execution_id, "Type": "EXECUTION", "Action": "SUCCEED", "Payload": '{"ok": true}'}
    )
    assert "CheckpointToken" not in reply

    execution = protocol.client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == '{"ok": true}'
    events = protocol.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert event_types(events) == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "CallbackStarted",
        "ContextStarted",
        "StepStarted",
        "StepSucceeded",
        "ContextSucceeded",
        "ExecutionSucceeded",
    ]
    message = client_error(
        protocol.client.get_durable_execution_state,
        "InvalidParameterValueException",
        DurableExecutionArn=arn,
        CheckpointToken=token,
    )
    assert message.startswith("Invalid checkpoint token")


def test_get_state_pages_with_max_items_and_marker(protocol: Protocol) -> None:
    arn, execution_id, token = protocol.leased_execution()
    token = protocol.checkpoint(arn, token, *(step(f"s{i}", "START") for i in range(4)))["CheckpointToken"]

    pages = all_pages(
        protocol.client.get_durable_execution_state, "Operations", DurableExecutionArn=arn, CheckpointToken=token, MaxItems=2
    )

    assert [[op["Id"] for op in page] for page in pages] == [[execution_id, "s0"], ["s1", "s2"], ["s3"]]


@pytest.mark.parametrize(
    "bad_token",
    ["made-up", "1.1.not-the-secret", "2.1.{secret}", "0.1.{secret}"],
    ids=["garbage", "wrong-secret", "later-invocation", "earlier-invocation"],
)
def test_checkpoint_with_a_made_up_token_is_refused_and_records_nothing(protocol: Protocol, bad_token: str) -> None:
    arn, execution_id, token = protocol.leased_execution()
    bad_token = bad_token.format(secret=token.split(".", 2)[2])

    message = client_error(
        protocol.client.checkpoint_durable_execution,
        "InvalidParameterValueException",
        DurableExecutionArn=arn,
        CheckpointToken=bad_token,
        Updates=[step("s1", "START"), step("s1", "SUCCEED", Payload="1")],
    )

    assert message.startswith("Invalid checkpoint token")
    assert "Nothing was recorded" in message
    assert [op["Id"] for op in protocol.operations(arn, token)] == [execution_id]
    assert event_types(protocol.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]) == [
        "ExecutionStarted"
    ]
    # The real token still works.
    assert protocol.checkpoint(arn, token, step("s1", "START"))["CheckpointToken"]


def test_checkpoint_from_a_superseded_invocation_is_refused_and_records_nothing(protocol: Protocol) -> None:
    first = protocol.start_and_lease()
    arn, execution_id = first.execution_arn, first.execution_arn.rsplit("/", 1)[1]
    reply = protocol.checkpoint(arn, first.checkpoint_token, {"Id": "cb", "Type": "CALLBACK", "Action": "START"})
    first_token = reply["CheckpointToken"]
    callback = reply["NewExecutionState"]["Operations"][0]["CallbackDetails"]["CallbackId"]
    # The first invocation suspends; the callback completes; a second invocation leases it.
    protocol.service.complete_invocation(first, InvocationOutput(InvocationStatus.PENDING))
    protocol.client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"yes"')
    [second] = protocol.service.lease("test-invocation-2", ["manual"], 1, 300)
    events_before = protocol.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]

    for call, kwargs in (
        (protocol.client.checkpoint_durable_execution, {"Updates": [step("late", "START")]}),
        (protocol.client.get_durable_execution_state, {}),
    ):
        message = client_error(
            call, "InvalidParameterValueException", DurableExecutionArn=arn, CheckpointToken=first_token, **kwargs
        )
        assert message.startswith(f"Invalid checkpoint token for {arn}")

    assert protocol.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"] == events_before
    state = protocol.operations(arn, second.checkpoint_token)
    assert [op["Id"] for op in state] == [execution_id, "cb"]
    assert state[1]["CallbackDetails"]["Result"] == '"yes"'
    assert protocol.checkpoint(arn, second.checkpoint_token, step("late", "START"))["CheckpointToken"]


def test_repeated_client_token_is_applied_once(protocol: Protocol) -> None:
    arn, execution_id, token = protocol.leased_execution()
    updates = [step("s1", "START", Name="charge")]

    first = protocol.checkpoint(arn, token, *updates, ClientToken="retry-me")
    again = protocol.checkpoint(arn, token, *updates, ClientToken="retry-me")

    assert again == first
    assert [op["Id"] for op in protocol.operations(arn, first["CheckpointToken"])] == [execution_id, "s1"]
    events = protocol.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert event_types(events) == ["ExecutionStarted", "StepStarted"]
    # The reply's token is still the current one: the retry did not move the execution on.
    reply = protocol.checkpoint(arn, first["CheckpointToken"], step("s1", "SUCCEED", Payload="1"))
    assert reply["NewExecutionState"]["Operations"][0]["Status"] == "SUCCEEDED"
