"""Destinations and redrives against a real `perdure serve --dev`: the CLI, boto3 and a SIGKILL.

tests/handlers/destinations.py: ``charge`` fails (until the side-effect log's ``.fixed`` file
exists) and its failures start ``alert``, its successes ``receipt``; every step body appends a
line to the side-effect log, so a test sees what ran, and how often.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest
from servers import HANDLERS, Server, lambda_client, shared_server, wait_for

from perdure.client import Client

APP = str(HANDLERS / "destinations.py")


def lines(log: Path, prefix: str = "") -> list[str]:
    return [line for line in log.read_text().split() if line.startswith(prefix)] if log.exists() else []


def executions(client: Client, function: str, status: str | None = None) -> list[dict[str, Any]]:
    return client.list_executions(function, status)


def ended(client: Client, function: str, count: int = 1) -> list[dict[str, Any]]:
    """Waits until ``count`` executions of the function have ended, and returns them."""

    def done() -> list[dict[str, Any]] | None:
        found = executions(client, function)
        return found if len(found) >= count and all(e["Status"] != "RUNNING" for e in found) else None

    return wait_for(done)  # type: ignore[return-value]


def invoke(server: Server, order: int, **extra: Any) -> str:
    ran = server.cli("invoke", "charge", "--async", "--name", f"order-{order}", "--payload", json.dumps({"order": order, **extra}))
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)["DurableExecutionArn"]  # type: ignore[no-any-return]


def test_a_failed_execution_starts_its_on_failure_function_once(serve: Any, side_effects: Path) -> None:
    server: Server = serve(APP)
    arn = invoke(server, 1)
    with Client(server.endpoint) as client:
        (alert,) = ended(client, "alert")
        assert alert["Status"] == "SUCCEEDED"
        assert alert["DurableExecutionName"].startswith("on-failure-")
        assert client.get_execution(arn)["Status"] == "FAILED"
        record = json.loads(client.get_execution(alert["DurableExecutionArn"])["InputPayload"])
        assert record["requestContext"]["durableExecutionArn"] == arn
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"] == {"order": 1}
        assert record["responsePayload"]["errorType"] == "RuntimeError"
        assert record["responsePayload"]["errorMessage"] == "order 1 hit a bug"
        assert executions(client, "receipt") == []
    assert lines(side_effects, "alert:") == [f"alert:RetriesExhausted:{arn}"]


def test_the_on_failure_function_starts_once_when_the_server_is_killed_right_after_the_failure(
    serve: Any, side_effects: Path
) -> None:
    server: Server = serve(APP)
    # The alert naps for 3 s first: the kill lands while it is due or running, not after it.
    arn = invoke(server, 2, alert_seconds=3)
    with Client(server.endpoint) as client:
        wait_for(lambda: client.get_execution(arn)["Status"] == "FAILED", interval=0.005)
    server.kill()
    assert lines(side_effects, "alert:") == []

    server.start()
    with Client(server.endpoint) as client:
        (alert,) = ended(client, "alert")
        assert alert["Status"] == "SUCCEEDED"
        record = json.loads(client.get_execution(alert["DurableExecutionArn"])["InputPayload"])
        assert record["requestContext"]["durableExecutionArn"] == arn
    assert lines(side_effects, "alert:") == [f"alert:RetriesExhausted:{arn}"]


def test_boto3_sets_reads_and_deletes_a_functions_destinations(serve: Any, side_effects: Path) -> None:
    server: Server = serve(APP)
    lam = lambda_client(server.endpoint)
    alert_arn = lam.get_function(FunctionName="alert")["Configuration"]["FunctionArn"].rsplit(":", 1)[0]
    # What the decorator set, recorded as the server started.
    served = lam.get_function_event_invoke_config(FunctionName="charge")
    assert served["DestinationConfig"]["OnFailure"]["Destination"] == alert_arn
    assert served["FunctionArn"].endswith(":function:charge:$LATEST")

    put = lam.put_function_event_invoke_config(
        FunctionName="charge", MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": "receipt"}}
    )
    assert put["DestinationConfig"]["OnFailure"]["Destination"].endswith(":function:receipt")
    assert put["DestinationConfig"]["OnSuccess"] == {} and put["MaximumRetryAttempts"] == 1
    updated = lam.update_function_event_invoke_config(FunctionName="charge", DestinationConfig={"OnSuccess": {"Destination": alert_arn}})
    assert updated["DestinationConfig"]["OnSuccess"]["Destination"] == alert_arn
    assert updated["DestinationConfig"]["OnFailure"]["Destination"].endswith(":function:receipt")
    listed = lam.list_function_event_invoke_configs(FunctionName="charge")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["$LATEST"]

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        lam.put_function_event_invoke_config(FunctionName="charge", DestinationConfig={"OnFailure": {"Destination": "nope"}})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "DestinationConfig.OnFailure.Destination names the function nope" in refused.value.response["Error"]["Message"]

    lam.delete_function_event_invoke_config(FunctionName="charge")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName="charge")
    # With no destination, a failure starts nothing.
    arn = invoke(server, 3)
    with Client(server.endpoint) as client:
        wait_for(lambda: client.get_execution(arn)["Status"] == "FAILED")
        assert executions(client, "alert") == executions(client, "receipt") == []


def test_the_cli_lists_failures_since_a_moment_and_redrives_each_once(serve: Any, side_effects: Path) -> None:
    server: Server = serve(APP)
    failed = [invoke(server, 10), invoke(server, 11)]
    with Client(server.endpoint) as client:
        ended(client, "alert", 2)
    listed = server.cli("executions", "list", "--function", "charge", "--status", "FAILED", "--since", "10m")
    assert listed.returncode == 0, listed.stderr
    assert sorted(e["DurableExecutionArn"] for e in json.loads(listed.stdout)) == sorted(failed)
    none_yet = server.cli("executions", "list", "--function", "charge", "--since", "2099-01-01T00:00:00Z")
    assert json.loads(none_yet.stdout) == []

    dry = server.cli("executions", "redrive", "charge", "--since", "1h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [(r["Outcome"], r["FromCheckpoint"]) for r in json.loads(dry.stdout)] == [("WOULD_REDRIVE", "2")] * 2
    Path(f"{side_effects}.fixed").touch()
    before = lines(side_effects)
    redriven = server.cli("executions", "redrive", "charge", "--since", "1h")
    assert redriven.returncode == 0, redriven.stderr
    done = json.loads(redriven.stdout)
    assert sorted((r["DurableExecutionArn"], r["Outcome"]) for r in done) == sorted((arn, "REDRIVEN") for arn in failed)
    with Client(server.endpoint) as client:
        for item in done:
            wait_for(lambda item=item: client.get_execution(item["RestartedAs"])["Status"] == "SUCCEEDED")
        ended(client, "receipt", 2)
    # Only what followed the last checkpoint ran again; each success started its receipt.
    assert sorted(lines(side_effects)[len(before):]) == ["receipt:10", "receipt:11"]

    again = server.cli("executions", "redrive", "charge", "--since", "1h")
    assert [r["Outcome"] for r in json.loads(again.stdout)] == ["ALREADY_REDRIVEN", "ALREADY_REDRIVEN"]
    bad = server.cli("executions", "redrive", "charge", "--since", "yesterday")
    assert bad.returncode != 0 and "is not a time: write how long ago" in bad.stderr


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "message"),
    [
        ("PUT", "/2019-09-25/functions/charge/event-invoke-config", {"DestinationConfig": []}, 400,
         "InvalidParameterValueException", "DestinationConfig must be an object"),
        ("PUT", "/2019-09-25/functions/charge/event-invoke-config", {"DestinationConfig": {"OnFailure": {"Destination": 5}}}, 400,
         "InvalidParameterValueException", "DestinationConfig.OnFailure.Destination must name a function"),
        ("PUT", "/2019-09-25/functions/charge/event-invoke-config",
         {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}}, 400,
         "InvalidParameterValueException", "an sqs ARN"),
        ("PUT", "/2019-09-25/functions/charge/event-invoke-config", {"MaximumRetryAttempts": 5}, 400,
         "InvalidParameterValueException", "MaximumRetryAttempts must be from 0 to 2"),
        ("PUT", "/2019-09-25/functions/ghost/event-invoke-config", {}, 404, "ResourceNotFoundException", "Function not found: ghost"),
        ("PUT", "/2019-09-25/functions/charge/event-invoke-config?Qualifier=9", {}, 404, "ResourceNotFoundException", "charge:9"),
        ("GET", "/2019-09-25/functions/receipt/event-invoke-config", None, 404, "ResourceNotFoundException", "has no EventInvokeConfig"),
        ("POST", "/perdure/v1/functions/charge/redrive", {}, 400, "InvalidParameterValueException", "StartedAfter is required"),
        ("POST", "/perdure/v1/functions/charge/redrive", {"StartedAfter": "yesterday"}, 400,
         "InvalidParameterValueException", "StartedAfter must be a time in epoch seconds"),
        ("POST", "/perdure/v1/functions/charge/redrive", {"StartedAfter": 0, "Version": "nine"}, 404,
         "ResourceNotFoundException", "charge:nine"),
    ],
)  # fmt: skip
def test_bad_destination_and_redrive_requests_are_refused_naming_what_is_wrong(
    shared: Server, method: str, path: str, body: Any, status: int, code: str, message: str
) -> None:
    reply = httpx.request(method, shared.endpoint + path, json=body, timeout=30)
    assert (reply.status_code, reply.headers["x-amzn-ErrorType"]) == (status, code), reply.text
    assert message in reply.json()["message"]
    with Client(shared.endpoint) as client:
        assert client.put_destinations("charge", None, "alert")["DestinationConfig"]["OnFailure"]["Destination"].endswith(":alert")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with shared_server(tmp_path_factory, "destinations", [APP]) as server:
        yield server
