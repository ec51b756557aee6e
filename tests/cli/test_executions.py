"""`perdure invoke`, `perdure executions ...` and `perdure callback ...` against a real `perdure serve`.

One server for the module (tests/handlers/journaled.py's handlers); each test starts executions
of its own and reads them back through the commands, as a user at a terminal would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers import Server, free_port, handler_target, shared_server, wait_for

Perdure = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    targets = [handler_target("steps", "steps"), handler_target("fails", "fails"), handler_target("approval", "step_wait_callback")]
    with shared_server(tmp_path_factory, "cli-executions", targets) as server:
        yield server


@pytest.fixture
def cli(perdure: Perdure, server: Server) -> Callable[..., Any]:
    """Runs a client command against the server; returns the JSON it printed, failing on a non-zero exit."""

    def run(*args: str) -> Any:
        result = perdure(*args, "--endpoint", server.endpoint)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


def history(cli: Callable[..., Any], arn: str) -> list[dict[str, Any]]:
    return cli("executions", "history", arn)  # type: ignore[no-any-return]


def callback_id(cli: Callable[..., Any], arn: str) -> str:
    """The ID of the callback the execution waits for, from its CallbackStarted event."""

    def started() -> str | None:
        for event in history(cli, arn):
            if event["EventType"] == "CallbackStarted":
                return str(event["CallbackStartedDetails"]["CallbackId"])
        return None

    return str(wait_for(started))


def waiting_for_approval(cli: Callable[..., Any], name: str) -> str:
    """Starts an execution of ``approval`` (a step, a 1 s wait, a callback) without waiting for it."""
    started = cli("invoke", "approval", "--payload", '{"wait": 1}', "--async", "--name", name)
    assert started["Status"] == "RUNNING"
    return str(started["DurableExecutionArn"])


def ended(cli: Callable[..., Any], arn: str) -> dict[str, Any]:
    def status() -> dict[str, Any] | None:
        execution: dict[str, Any] = cli("executions", "get", arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(status)  # type: ignore[return-value]


def test_invoke_waits_for_the_end_and_prints_the_result_as_json(cli: Callable[..., Any]) -> None:
    execution = cli("invoke", "steps", "--payload", '{"count": 4}')
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == {"total": 6}  # decoded, not the JSON text the API carries
    assert json.loads(execution["InputPayload"]) == {"count": 4}
    events = [e["EventType"] for e in history(cli, execution["DurableExecutionArn"])]
    assert events[0] == "ExecutionStarted" and events[-1] == "ExecutionSucceeded"


def test_invoke_async_returns_at_once_and_the_same_name_returns_the_same_execution(cli: Callable[..., Any]) -> None:
    arn = waiting_for_approval(cli, "async-1")
    again = cli("invoke", "approval", "--payload", '{"wait": 1}', "--async", "--name", "async-1")
    assert again["DurableExecutionArn"] == arn
    assert cli("executions", "get", arn)["DurableExecutionName"] == "async-1"
    cli("executions", "stop", arn)


def test_list_filters_by_function_and_status(cli: Callable[..., Any]) -> None:
    succeeded = cli("invoke", "steps", "--name", "listed-ok")["DurableExecutionArn"]
    failed = cli("invoke", "fails", "--payload", '{"order_id": 3}', "--name", "listed-bad")
    assert failed["Status"] == "FAILED" and failed["Error"]["ErrorMessage"] == "bad order 3"

    def arns(*filters: str) -> set[str]:
        return {e["DurableExecutionArn"] for e in cli("executions", "list", *filters)}

    assert {succeeded, failed["DurableExecutionArn"]} <= arns()
    assert failed["DurableExecutionArn"] in arns("--status", "FAILED")
    assert succeeded not in arns("--status", "FAILED")
    assert arns("--function", "fails", "--status", "SUCCEEDED") == set()
    assert succeeded in arns("--function", "steps") and failed["DurableExecutionArn"] not in arns("--function", "steps")


def test_a_callback_completed_from_the_cli_resumes_its_execution(cli: Callable[..., Any]) -> None:
    arn = waiting_for_approval(cli, "approved-1")
    callback = callback_id(cli, arn)
    assert cli("callback", "heartbeat", callback) == {"CallbackId": callback, "Status": "HEARTBEAT"}
    assert cli("callback", "succeed", callback, "--result", '{"ok": true}') == {"CallbackId": callback, "Status": "SUCCEEDED"}
    execution = ended(cli, arn)
    assert execution["Status"] == "SUCCEEDED"
    # The handler's callback.result() is the result's JSON text, as the command sent it.
    assert json.loads(execution["Result"]["answer"]) == {"ok": True}


def test_a_callback_failed_from_the_cli_fails_its_execution_with_that_error(cli: Callable[..., Any]) -> None:
    arn = waiting_for_approval(cli, "refused-1")
    callback = callback_id(cli, arn)
    failed = cli("callback", "fail", callback, "--error-type", "Rejected", "--error-message", "not in stock")
    assert failed == {"CallbackId": callback, "Status": "FAILED"}
    execution = ended(cli, arn)
    assert execution["Status"] == "FAILED"
    assert "not in stock" in execution["Error"]["ErrorMessage"]


def test_pause_resume_stop_and_delete_an_execution(cli: Callable[..., Any], perdure: Perdure, server: Server) -> None:
    arn = waiting_for_approval(cli, "controlled-1")
    callback_id(cli, arn)  # it waits for its callback: no invocation runs
    paused = cli("executions", "pause", arn, "--reason", "inventory check")
    assert paused["Status"] == "PAUSED"
    assert cli("executions", "resume", arn, "--reason", "checked")["Status"] == "RUNNING"

    refused = perdure("executions", "delete", arn, "--endpoint", server.endpoint)
    assert refused.returncode == 1 and "Stop it first" in refused.stderr

    stopped = cli("executions", "stop", arn, "--error-type", "Cancelled", "--error-message", "no longer needed")
    assert stopped["Status"] == "STOPPED"
    assert stopped["Error"] == {"ErrorType": "Cancelled", "ErrorMessage": "no longer needed"}
    paused_and_resumed = [e for e in history(cli, arn) if e["EventType"] in ("ExecutionPaused", "ExecutionResumed")]
    assert [e["EventType"] for e in paused_and_resumed] == ["ExecutionPaused", "ExecutionResumed"]
    assert "inventory check" in json.dumps(paused_and_resumed[0]) and "checked" in json.dumps(paused_and_resumed[1])

    assert cli("executions", "delete", arn)["DurableExecutionArn"] == arn
    gone = perdure("executions", "get", arn, "--endpoint", server.endpoint)
    assert gone.returncode == 1 and "Durable execution not found" in gone.stderr


def test_an_unknown_execution_is_an_error_that_says_how_to_find_its_arn(perdure: Perdure, server: Server) -> None:
    result = perdure("executions", "get", "nope", "--endpoint", server.endpoint)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        "Error: Durable execution not found: 'nope'. List executions with `perdure executions list` to find its ARN."
    )


def test_the_endpoint_comes_from_perdure_endpoint_when_not_given(perdure: Perdure, server: Server) -> None:
    result = perdure("executions", "list", "--function", "steps", env={"PERDURE_ENDPOINT": server.endpoint})
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_no_server_at_the_endpoint_is_an_error_that_says_how_to_start_or_find_one(perdure: Perdure) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = perdure("executions", "list", "--endpoint", endpoint)
    assert result.returncode == 1 and result.stdout == ""
    assert f"Could not reach a Perdure server at {endpoint}" in result.stderr
    assert "Start one with `perdure serve`, or pass --endpoint / set PERDURE_ENDPOINT." in result.stderr


def test_the_callback_id_is_where_the_not_found_error_says_to_look(cli: Callable[..., Any], perdure: Perdure, server: Server) -> None:
    arn = waiting_for_approval(cli, "where-1")
    callback = callback_id(cli, arn)
    wrong = perdure("callback", "succeed", callback[:-1], "--endpoint", server.endpoint)
    assert wrong.returncode == 1 and "`perdure executions history ARN`" in wrong.stderr
    try:
        assert callback in json.dumps(cli("executions", "history", arn))
    finally:
        cli("executions", "stop", arn)
