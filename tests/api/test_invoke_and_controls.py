"""Chained invokes, pause, resume and delete against a real `perdure serve`, through boto3 and the CLI.

One server for the module serves AWS-SDK handlers (tests/handlers/invoking.py) and seed-style
functions (tests/handlers/seed_invoking.py) side by side, so each style invokes the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers import HANDLERS, Server, lambda_client, shared_server, wait_for

AWS_HANDLERS = {
    "caller": "caller",
    "forgiving": "forgiving_caller",
    "echo": "echo",
    "boom": "boom",
    "sleeper": "sleeper",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    targets = [f"{name}={HANDLERS / 'invoking.py'}:{attribute}" for name, attribute in AWS_HANDLERS.items()]
    args = [*targets, str(HANDLERS / "seed_invoking.py"), "--workers", "4"]
    with shared_server(tmp_path_factory, "invoke-and-controls", args) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return lambda_client(server.endpoint)


def run(client: Any, function: str, payload: Any) -> tuple[str, dict[str, Any]]:
    """Invokes synchronously; returns the execution ARN and the execution as GetDurableExecution gives it."""
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    arn = reply["DurableExecutionArn"]
    return arn, client.get_durable_execution(DurableExecutionArn=arn)


def history(client: Any, arn: str) -> list[dict[str, Any]]:
    return client.get_durable_execution_history(DurableExecutionArn=arn, MaxItems=1000)["Events"]  # type: ignore[no-any-return]


def event(client: Any, arn: str, event_type: str) -> dict[str, Any]:
    (found,) = [e for e in history(client, arn) if e["EventType"] == event_type]
    return found


# -- chained invokes -------------------------------------------------------------------------


def test_an_aws_handler_invokes_another_and_gets_its_result(client: Any) -> None:
    arn, execution = run(client, "caller", {"target": "echo", "payload": {"a": [1, 2]}, "tenant": "acme-1"})
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {"got": {"a": [1, 2]}}
    types = [e["EventType"] for e in history(client, arn)]
    assert types == [
        "ExecutionStarted",
        "ChainedInvokeStarted",
        "InvocationCompleted",
        "ChainedInvokeSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    started = event(client, arn, "ChainedInvokeStarted")["ChainedInvokeStartedDetails"]
    assert started["FunctionName"] == "echo"
    assert started["TenantId"] == "acme-1"
    assert json.loads(started["Input"]["Payload"]) == {"a": [1, 2]}
    assert started["ExecutedVersion"] == "$LATEST"
    child = client.get_durable_execution(DurableExecutionArn=started["DurableExecutionArn"])
    assert child["FunctionArn"].endswith(":function:echo:$LATEST")
    assert (child["Status"], json.loads(child["InputPayload"])) == ("SUCCEEDED", {"a": [1, 2]})
    succeeded = event(client, arn, "ChainedInvokeSucceeded")["ChainedInvokeSucceededDetails"]
    assert json.loads(succeeded["Result"]["Payload"]) == {"a": [1, 2]}


def test_a_failing_target_fails_the_invoking_execution_with_the_targets_error(client: Any) -> None:
    arn, execution = run(client, "caller", {"target": "boom", "payload": "x"})
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorMessage"] == "boom: x"
    failed = event(client, arn, "ChainedInvokeFailed")["ChainedInvokeFailedDetails"]
    assert failed["Error"]["Payload"]["ErrorType"] == "ValueError"
    assert failed["Error"]["Payload"]["ErrorMessage"] == "boom: x"


def test_a_caught_invoke_error_carries_the_targets_error_type_and_message(client: Any) -> None:
    _, execution = run(client, "forgiving", {"target": "boom", "payload": 7})
    assert json.loads(execution["Result"]) == {"error_type": "ValueError", "message": "boom: 7"}


def test_invoking_a_function_the_server_does_not_run_fails_at_once(client: Any) -> None:
    arn, execution = run(client, "forgiving", {"target": "ghost"})
    result = json.loads(execution["Result"])
    assert result["error_type"] == "ResourceNotFoundException"
    assert "Function not found: ghost" in result["message"]
    started = event(client, arn, "ChainedInvokeStarted")["ChainedInvokeStartedDetails"]
    assert started == {"FunctionName": "ghost"}
    assert [e["EventType"] for e in history(client, arn)].count("InvocationCompleted") == 1


def test_a_seed_function_invokes_an_aws_handler(client: Any) -> None:
    arn, execution = run(client, "seed_parent", {"target": "echo", "payload": "hi", "tenant": "t-9"})
    assert json.loads(execution["Result"]) == {"before": "before", "got": "hi"}
    started = event(client, arn, "ChainedInvokeStarted")["ChainedInvokeStartedDetails"]
    assert (started["FunctionName"], started["TenantId"]) == ("echo", "t-9")


def test_a_seed_function_gets_the_targets_error_type(client: Any) -> None:
    _, execution = run(client, "seed_parent", {"target": "boom", "payload": 1})
    result = json.loads(execution["Result"])
    assert (result["error_type"], result["message"]) == ("ValueError", "boom: 1")


def test_an_aws_handler_invokes_a_seed_function(client: Any) -> None:
    _, execution = run(client, "caller", {"target": "seed_double", "payload": {"n": 21}})
    assert json.loads(execution["Result"]) == {"got": 42}


# -- pause, resume, delete -------------------------------------------------------------------


def start_async(client: Any, function: str, payload: Any) -> str:
    reply = client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode())
    return reply["DurableExecutionArn"]  # type: ignore[no-any-return]


def suspended(client: Any, arn: str) -> bool:
    return any(e["EventType"] == "InvocationCompleted" for e in history(client, arn))


def test_a_paused_execution_is_not_invoked_until_resumed(client: Any) -> None:
    arn = start_async(client, "sleeper", {"seconds": 1})
    wait_for(lambda: suspended(client, arn))
    reply = client.pause_durable_execution(DurableExecutionArn=arn, Reason="deploying", ExecutionTimeoutPaused=True)
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "PAUSED"
    assert execution["PauseDetails"]["Reason"] == "deploying"
    assert execution["PauseDetails"]["ExecutionTimeoutPaused"] is True
    without_data = client.get_durable_execution(DurableExecutionArn=arn, IncludeExecutionData=False)
    assert "Reason" not in without_data["PauseDetails"]
    # The wait fires meanwhile, but nothing runs.
    wait_for(lambda: any(e["EventType"] == "WaitSucceeded" for e in history(client, arn)))
    listed = client.list_durable_executions_by_function(FunctionName="sleeper", Statuses=["PAUSED"])
    assert arn in [e["DurableExecutionArn"] for e in listed["DurableExecutions"]]
    assert [e["EventType"] for e in history(client, arn)].count("InvocationCompleted") == 1
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"

    client.resume_durable_execution(DurableExecutionArn=arn, Reason="done")
    wait_for(lambda: client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED")
    events = history(client, arn)
    paused = next(e for e in events if e["EventType"] == "ExecutionPaused")
    assert paused["ExecutionPausedDetails"]["Reason"]["Payload"] == "deploying"
    resumed = next(e for e in events if e["EventType"] == "ExecutionResumed")
    assert resumed["ExecutionResumedDetails"]["Reason"]["Payload"] == "done"


def test_pausing_an_ended_execution_is_a_conflict(client: Any) -> None:
    arn, _ = run(client, "echo", 1)
    with pytest.raises(ClientError) as caught:
        client.pause_durable_execution(DurableExecutionArn=arn)
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.resume_durable_execution(DurableExecutionArn=arn)


def test_delete_refuses_a_running_execution_and_removes_an_ended_one(client: Any) -> None:
    arn = start_async(client, "sleeper", {"seconds": 3600})
    with pytest.raises(client.exceptions.ResourceConflictException, match="Stop it first"):
        client.delete_durable_execution(DurableExecutionArn=arn)
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    client.stop_durable_execution(DurableExecutionArn=arn)
    reply = client.delete_durable_execution(DurableExecutionArn=arn)
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert reply["DeletionRequestTimestamp"].year >= 2025
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_durable_execution(DurableExecutionArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_durable_execution(DurableExecutionArn=arn)


def test_the_cli_pauses_resumes_and_deletes(server: Server, client: Any) -> None:
    # A wait long enough for the CLI's process to start and pause it before the wait ends.
    arn = start_async(client, "sleeper", {"seconds": 5})
    wait_for(lambda: suspended(client, arn))
    paused = server.cli("executions", "pause", arn, "--reason", "by hand", "--keep-timeout-running")
    assert paused.returncode == 0, paused.stderr
    shown = json.loads(paused.stdout)
    assert shown["Status"] == "PAUSED"
    assert shown["PauseDetails"]["ExecutionTimeoutPaused"] is False
    refused = server.cli("executions", "delete", arn)
    assert refused.returncode == 1 and "Stop it first" in refused.stderr
    resumed = server.cli("executions", "resume", arn)
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED")
    deleted = server.cli("executions", "delete", arn)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["DurableExecutionArn"] == arn
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_durable_execution(DurableExecutionArn=arn)
