"""Bad input and failing handlers: each error says what went wrong, and nothing is lost or changed.

Every case is checked through boto3 (error code, HTTP status, message) and, where a command
exists for it, through the `perdure` CLI (non-zero exit, message on stderr). The tests share
one `perdure serve` process (module scope) to keep them fast.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers import HANDLERS, PERDURE, Server, free_port, handler_target, lambda_client, shared_server, wait_for

FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function"
UNKNOWN_ARN = f"{FUNCTION_ARN}:steps:$LATEST/durable-execution/no-such-run/0123456789abcdef0123456789abcdef"
UNKNOWN_CALLBACK = "no-such-callback-id"
SIX_MIB = 6 * 1024 * 1024
TARGETS = [
    handler_target("steps", "steps"),
    handler_target("flow", "step_wait_callback"),
    handler_target("fails", "fails"),
    f"raising={HANDLERS / 'raising.py'}:handler",
    f"rejecting={HANDLERS / 'raising.py'}:handler",  # the same file under another function name
    f"broken={HANDLERS / 'broken_import.py'}:handler",
]
REGISTERED = ["broken", "fails", "flow", "raising", "rejecting", "steps"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with shared_server(tmp_path_factory, "bad-input", [*TARGETS, "--workers", "4"]) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return lambda_client(server.endpoint)


# -- helpers ---------------------------------------------------------------------------------


def client_error(call: Callable[..., Any], code: str, status: int, **kwargs: Any) -> str:
    """Calls and expects the Lambda error ``code`` with HTTP ``status``; returns its message."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return str(response["Error"]["Message"])


def cli_error(server: Server, *args: str) -> str:
    """Runs a `perdure` command that must fail; returns its stderr."""
    result = server.cli(*args)
    assert result.returncode != 0, result.stdout
    assert result.stderr.strip(), "the CLI failed without saying why"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def all_executions(client: Any) -> dict[str, str]:
    """ARN -> status of every execution of every registered function."""
    found = {}
    for function in REGISTERED:
        reply = client.list_durable_executions_by_function(FunctionName=function, MaxItems=1000)
        found.update({e["DurableExecutionArn"]: e["Status"] for e in reply["DurableExecutions"]})
    return found


def invoke(client: Any, function: str, payload: Any, **kwargs: Any) -> dict[str, Any]:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), **kwargs)
    raw = reply["Payload"].read()
    reply["Payload"] = json.loads(raw) if raw else None
    return reply  # type: ignore[no-any-return]


def ended(client: Any, arn: str, timeout: float = 20) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        execution = client.get_durable_execution(DurableExecutionArn=arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(done, timeout=timeout)  # type: ignore[return-value]


def history(client: Any, arn: str) -> list[dict[str, Any]]:
    return client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]  # type: ignore[no-any-return]


def callback_id(client: Any, arn: str) -> str:
    def started() -> str | None:
        for event in history(client, arn):
            if event["EventType"] == "CallbackStarted":
                return str(event["CallbackStartedDetails"]["CallbackId"])
        return None

    return wait_for(started, timeout=20)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def completed_callback(client: Any) -> tuple[str, str, dict[str, Any]]:
    """A flow execution whose callback succeeded and which has ended: (ARN, callback ID, execution)."""
    arn = invoke(client, "flow", {"wait": 1}, InvocationType="Event")["DurableExecutionArn"]
    callback = callback_id(client, arn)
    client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"approved"')
    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED"
    return arn, callback, execution


# -- unknown function ---------------------------------------------------------------------------


def test_unknown_function_is_not_found_and_the_message_lists_registered_functions(client: Any) -> None:
    before = all_executions(client)

    for call, kwargs in (
        (client.invoke, {"Payload": b"{}"}),
        (client.invoke, {"Payload": b"{}", "InvocationType": "Event"}),
        (client.list_durable_executions_by_function, {}),
    ):
        message = client_error(call, "ResourceNotFoundException", 404, FunctionName="nope", **kwargs)
        assert message.startswith("Function not found: 'nope'.")
        assert f"Registered functions: {', '.join(REGISTERED)}." in message

    assert all_executions(client) == before


def test_cli_invoke_of_an_unknown_function_fails_with_the_message(server: Server, client: Any) -> None:
    before = all_executions(client)

    stderr = cli_error(server, "invoke", "nope", "--payload", "{}")

    assert "Function not found: 'nope'" in stderr
    assert f"Registered functions: {', '.join(REGISTERED)}" in stderr
    assert all_executions(client) == before


# -- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"{not json", b'{"count": 3', b"\xff\xfe"], ids=["bare", "truncated", "not-utf8"])
def test_malformed_payload_is_rejected_and_starts_nothing(client: Any, payload: bytes) -> None:
    before = all_executions(client)

    message = client_error(
        client.invoke, "InvalidRequestContentException", 400, FunctionName="steps", Payload=payload
    )

    assert "JSON" in message
    assert all_executions(client) == before


def test_cli_rejects_a_malformed_payload_before_sending_it(server: Server, client: Any) -> None:
    before = all_executions(client)

    stderr = cli_error(server, "invoke", "steps", "--payload", "{not json")

    assert "--payload" in stderr and "is not valid JSON" in stderr
    assert all_executions(client) == before


def test_invalid_execution_name_is_rejected_and_starts_nothing(client: Any) -> None:
    before = all_executions(client)

    message = client_error(
        client.invoke,
        "InvalidParameterValueException",
        400,
        FunctionName="steps",
        Payload=b"{}",
        DurableExecutionName="not a valid name!",
    )

    assert message.startswith("Invalid execution name 'not a valid name!'")
    assert all_executions(client) == before


def test_oversized_payload_is_refused_with_413_and_starts_nothing(client: Any) -> None:
    before = all_executions(client)
    payload = json.dumps({"blob": "x" * SIX_MIB}).encode()

    message = client_error(client.invoke, "RequestTooLargeException", 413, FunctionName="steps", Payload=payload)

    assert f"The invocation payload is {len(payload)} bytes" in message
    assert f"over the limit of {SIX_MIB} bytes" in message
    assert all_executions(client) == before


def test_payload_of_exactly_six_mib_is_accepted(client: Any) -> None:
    blob = "x" * (SIX_MIB - len(json.dumps({"blob": ""})))
    payload = json.dumps({"blob": blob}).encode()
    assert len(payload) == SIX_MIB

    reply = client.invoke(FunctionName="steps", Payload=payload, InvocationType="Event")

    assert reply["StatusCode"] == 202
    execution = ended(client, reply["DurableExecutionArn"])
    assert execution["Status"] == "SUCCEEDED"
    assert len(execution["InputPayload"]) == SIX_MIB


def test_oversized_callback_result_is_refused_and_the_callback_stays_open(client: Any) -> None:
    arn = invoke(client, "flow", {"wait": 1}, InvocationType="Event")["DurableExecutionArn"]
    callback = callback_id(client, arn)
    result = json.dumps("x" * SIX_MIB).encode()

    message = client_error(
        client.send_durable_execution_callback_success, "RequestTooLargeException", 413, CallbackId=callback, Result=result
    )

    assert f"The callback result is {len(result)} bytes" in message
    assert "CallbackSucceeded" not in [e["EventType"] for e in history(client, arn)]
    client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"small"')
    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"])["answer"] == '"small"'


@pytest.mark.parametrize(
    ("operation", "kwargs", "expected"),
    [
        ("get_durable_execution_history", {"DurableExecutionArn": "{arn}", "Marker": "abc"}, "Invalid Marker 'abc'"),
        ("get_durable_execution_history", {"DurableExecutionArn": "{arn}", "MaxItems": 5000}, "MaxItems must be between 0 and 1000"),
        ("list_durable_executions_by_function", {"FunctionName": "steps", "Marker": "abc"}, "Invalid pagination marker 'abc'"),
        ("list_durable_executions_by_function", {"FunctionName": "steps", "Statuses": ["DONE"]}, "Statuses must be among RUNNING"),
    ],
    ids=["history-marker", "history-max-items", "list-marker", "list-status"],
)
def test_invalid_query_parameters_are_rejected_with_the_reason(
    client: Any, operation: str, kwargs: dict[str, Any], expected: str
) -> None:
    arn = invoke(client, "steps", {"count": 1})["DurableExecutionArn"]
    kwargs = {key: (arn if value == "{arn}" else value) for key, value in kwargs.items()}

    message = client_error(getattr(client, operation), "InvalidParameterValueException", 400, **kwargs)

    assert expected in message


# -- unknown ARN and callback ID ------------------------------------------------------------------


def test_unknown_execution_arn_is_not_found(client: Any) -> None:
    for call in (client.get_durable_execution, client.get_durable_execution_history, client.stop_durable_execution):
        message = client_error(call, "ResourceNotFoundException", 404, DurableExecutionArn=UNKNOWN_ARN)
        assert message.startswith(f"Durable execution not found: '{UNKNOWN_ARN}'.")


@pytest.mark.parametrize("command", [["executions", "get"], ["executions", "history"], ["executions", "stop"]])
def test_cli_with_an_unknown_execution_arn_fails_with_the_message(server: Server, command: list[str]) -> None:
    stderr = cli_error(server, *command, UNKNOWN_ARN)

    assert f"Durable execution not found: '{UNKNOWN_ARN}'" in stderr


def test_unknown_callback_id_is_not_found(client: Any) -> None:
    for call, kwargs in (
        (client.send_durable_execution_callback_success, {"Result": b"{}"}),
        (client.send_durable_execution_callback_failure, {"Error": {"ErrorMessage": "no"}}),
        (client.send_durable_execution_callback_heartbeat, {}),
    ):
        message = client_error(call, "ResourceNotFoundException", 404, CallbackId=UNKNOWN_CALLBACK, **kwargs)
        assert message.startswith(f"Callback not found: '{UNKNOWN_CALLBACK}'.")


@pytest.mark.parametrize("command", [["succeed"], ["fail"], ["heartbeat"]])
def test_cli_with_an_unknown_callback_id_fails_with_the_message(server: Server, command: list[str]) -> None:
    stderr = cli_error(server, "callback", *command, UNKNOWN_CALLBACK)

    assert f"Callback not found: '{UNKNOWN_CALLBACK}'" in stderr


def test_completing_a_completed_callback_is_refused_and_changes_nothing(
    client: Any, completed_callback: tuple[str, str, dict[str, Any]]
) -> None:
    arn, callback, execution = completed_callback
    events = history(client, arn)

    for call, kwargs in (
        (client.send_durable_execution_callback_success, {"Result": b'"overwritten"'}),
        (client.send_durable_execution_callback_failure, {"Error": {"ErrorMessage": "too late"}}),
        (client.send_durable_execution_callback_heartbeat, {}),
    ):
        message = client_error(call, "CallbackTimeoutException", 400, CallbackId=callback, **kwargs)
        assert message == f"Callback '{callback}' is already SUCCEEDED; it cannot be completed again."

    after = client.get_durable_execution(DurableExecutionArn=arn)
    assert after["Status"] == "SUCCEEDED"
    assert after["Result"] == execution["Result"]
    assert json.loads(after["Result"])["answer"] == '"approved"'
    assert history(client, arn) == events


def test_cli_completing_a_completed_callback_fails_and_changes_nothing(
    server: Server, client: Any, completed_callback: tuple[str, str, dict[str, Any]]
) -> None:
    arn, callback, execution = completed_callback

    stderr = cli_error(server, "callback", "succeed", callback, "--result", '"overwritten"')

    assert f"Callback '{callback}' is already SUCCEEDED" in stderr
    assert client.get_durable_execution(DurableExecutionArn=arn)["Result"] == execution["Result"]


def test_open_callback_of_a_stopped_execution_cannot_be_completed(client: Any) -> None:
    arn = invoke(client, "flow", {"wait": 1}, InvocationType="Event")["DurableExecutionArn"]
    callback = callback_id(client, arn)
    client.stop_durable_execution(DurableExecutionArn=arn)

    message = client_error(
        client.send_durable_execution_callback_success, "CallbackTimeoutException", 400, CallbackId=callback, Result=b"1"
    )

    assert "its execution has ended with status STOPPED" in message
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "STOPPED" and "Result" not in execution


# -- failing handlers ------------------------------------------------------------------------------


def test_handler_that_raises_fails_the_execution_with_its_error_type_and_message(client: Any) -> None:
    reply = invoke(client, "fails", {"order_id": 7})

    assert reply["StatusCode"] == 200
    assert reply["FunctionError"] == "Unhandled"
    assert reply["Payload"]["errorType"] == "ValueError"
    assert reply["Payload"]["errorMessage"] == "bad order 7"
    execution = client.get_durable_execution(DurableExecutionArn=reply["DurableExecutionArn"])
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "ValueError"
    assert execution["Error"]["ErrorMessage"] == "bad order 7"
    last = history(client, reply["DurableExecutionArn"])[-1]
    assert last["EventType"] == "ExecutionFailed"
    assert last["ExecutionFailedDetails"]["Error"]["Payload"]["ErrorMessage"] == "bad order 7"


def test_handler_raising_its_own_error_class_keeps_the_class_name_message_and_steps(client: Any) -> None:
    reply = invoke(client, "raising", {"order_id": 5, "reason": "out of stock"})

    assert reply["FunctionError"] == "Unhandled"
    assert reply["Payload"]["errorMessage"] == "order 5 rejected: out of stock"
    assert reply["Payload"]["errorType"].rsplit(".", 1)[-1] == "OrderRejected"
    arn = reply["DurableExecutionArn"]
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorMessage"] == "order 5 rejected: out of stock"
    assert execution["Error"]["ErrorType"] == reply["Payload"]["errorType"]
    # The step that ran before the error is kept.
    assert [e["EventType"] for e in history(client, arn) if e.get("Name") == "check"] == ["StepStarted", "StepSucceeded"]


def test_user_error_type_is_qualified_by_the_handler_module_name_as_on_lambda(client: Any) -> None:
    # The SDK names a user error `<module>.<class>`. Lambda imports the handler file
    # raising.py as module `raising` (Handler: raising.handler), whatever the function is
    # called, so the ErrorType there is `raising.OrderRejected`; Perdure's internal module
    # name must not leak into the user's error type.
    reply = invoke(client, "rejecting", {"order_id": 6})

    assert reply["Payload"]["errorType"] == "raising.OrderRejected"


def test_cli_invoke_of_a_raising_handler_shows_the_failed_execution(server: Server) -> None:
    result = server.cli("invoke", "fails", "--payload", '{"order_id": 9}')

    shown = json.loads(result.stdout)
    assert shown["Status"] == "FAILED"
    assert shown["Error"]["ErrorType"] == "ValueError"
    assert shown["Error"]["ErrorMessage"] == "bad order 9"


def test_handler_module_that_fails_to_import_fails_the_execution_after_retries(client: Any) -> None:
    arn = invoke(client, "broken", {}, InvocationType="Event")["DurableExecutionArn"]

    execution = ended(client, arn, timeout=30)

    assert execution["Status"] == "FAILED"
    error = execution["Error"]
    assert error["ErrorType"] == "Runtime.ImportModuleError"
    assert error["ErrorMessage"].startswith("Function 'broken' could not be loaded: importing ")
    assert "broken_import.py raised ImportError: No module named 'missing_dependency'" in error["ErrorMessage"]
    events = history(client, arn)
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "InvocationCompleted",
        "InvocationCompleted",
        "InvocationCompleted",
        "ExecutionFailed",
    ]
    for attempt in events[1:4]:
        assert attempt["InvocationCompletedDetails"]["Error"]["Payload"] == error
    # Retries back off: 1 s after the first failure, 2 s after the second.
    ends = [e["InvocationCompletedDetails"]["EndTimestamp"] for e in events[1:4]]
    starts = [e["InvocationCompletedDetails"]["StartTimestamp"] for e in events[1:4]]
    assert (starts[1] - ends[0]).total_seconds() >= 0.9
    assert (starts[2] - ends[1]).total_seconds() >= 1.9


def test_cli_invoke_of_a_handler_that_cannot_be_imported_shows_the_import_error(server: Server) -> None:
    result = server.cli("invoke", "broken", "--payload", "{}")

    shown = json.loads(result.stdout)
    assert shown["Status"] == "FAILED"
    assert "raised ImportError: No module named 'missing_dependency'" in shown["Error"]["ErrorMessage"]


# -- CLI without a server -------------------------------------------------------------------------


def test_cli_without_a_server_says_where_it_looked(server: Server) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [*PERDURE, "executions", "get", UNKNOWN_ARN, "--endpoint", endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        env=server.env,
    )

    assert result.returncode != 0
    assert f"Could not reach a Perdure server at {endpoint}" in result.stderr
    assert "Traceback" not in result.stderr
