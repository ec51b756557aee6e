"""Restarting executions against a real `perdure serve --dev`: through the CLI, the client and HTTP.

The functions append a line to the side-effect log for every step body they run, so a test
sees what ran again in the new execution and what did not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from servers import HANDLERS, Server, handler_target, wait_for

from perdure.client import Client


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def finished(client: Client, arn: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        execution = client.get_execution(arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(ended)  # type: ignore[return-value]


def test_the_cli_restarts_a_seed_execution_from_its_second_checkpoint(serve: Any, side_effects: Path) -> None:
    server: Server = serve(str(HANDLERS / "restartable.py"), "--workers", "1")
    ran = server.cli("invoke", "three_stages", "--payload", '{"weight": 20}', "--name", "cli-1")
    assert ran.returncode == 0, ran.stderr
    first = json.loads(ran.stdout)
    assert first["Status"] == "SUCCEEDED" and lines(side_effects) == ["one", "two", "three", "four"]

    restarted = server.cli("executions", "restart", first["DurableExecutionArn"], "--from", "2")

    assert restarted.returncode == 0, restarted.stderr
    new = json.loads(restarted.stdout)
    assert new["DurableExecutionName"] == "cli-1-restart-1" and new["InputPayload"] == '{"weight": 20}'
    with Client(server.endpoint) as client:
        done = finished(client, new["DurableExecutionArn"])
        assert done["Status"] == "SUCCEEDED" and json.loads(done["Result"]) == first["Result"]
        assert lines(side_effects) == ["one", "two", "three", "four", "three", "four"]
        started = client.history(new["DurableExecutionArn"])[0]
        assert started["ExecutionStartedDetails"]["RestartedFrom"]["DurableExecutionArn"] == first["DurableExecutionArn"]
        assert started["ExecutionStartedDetails"]["RestartedFrom"]["Checkpoint"] == 2
        assert client.get_execution(first["DurableExecutionArn"])["Status"] == "SUCCEEDED"

    named = server.cli("executions", "restart", first["DurableExecutionArn"], "--from", "1", "--name", "cli-again")
    assert named.returncode == 0 and json.loads(named.stdout)["DurableExecutionName"] == "cli-again"


def test_the_cli_and_http_refuse_a_restart_that_cannot_be_done(serve: Any, side_effects: Path) -> None:
    server: Server = serve(str(HANDLERS / "restartable.py"), "--workers", "1")
    first = json.loads(server.cli("invoke", "three_stages", "--name", "bad-1").stdout)
    arn = first["DurableExecutionArn"]

    out_of_range = server.cli("executions", "restart", arn, "--from", "9")
    assert out_of_range.returncode != 0
    assert "has 3 checkpoints, so there is no checkpoint 9: pass a number from 1 to 3" in out_of_range.stderr
    unknown = server.cli("executions", "restart", arn.replace("bad-1", "nobody"), "--from", "1")
    assert unknown.returncode != 0 and "Durable execution not found" in unknown.stderr
    no_op = server.cli("executions", "restart", arn, "--from", "no-such-op")
    assert no_op.returncode != 0 and "has no operation 'no-such-op'" in no_op.stderr
    missing = server.cli("executions", "restart", arn)
    assert missing.returncode != 0 and "--from" in missing.stderr

    path = f"/perdure/v1/durable-executions/{quote(arn, safe='')}/restart"
    no_point = httpx.post(server.endpoint + path, json={})
    assert no_point.status_code == 400 and "FromCheckpoint is required" in no_point.text
    taken = httpx.post(server.endpoint + path, json={"FromCheckpoint": "1", "Name": "bad-1"})
    assert taken.status_code == 409 and "already exists" in taken.text
    wrong_name = httpx.post(server.endpoint + path, json={"FromCheckpoint": "1", "Name": 7})
    assert wrong_name.status_code == 400 and "Name must be a string" in wrong_name.text
    with Client(server.endpoint) as client:
        names = [e["DurableExecutionName"] for e in client.list_executions("three_stages")]
    assert names == ["bad-1"]  # the refused restarts created nothing
    # A number is taken as the checkpoint number it is.
    by_number = httpx.post(server.endpoint + path, json={"FromCheckpoint": 3})
    assert by_number.status_code == 200 and by_number.json()["DurableExecutionName"] == "bad-1-restart-1"


def test_an_aws_sdk_execution_restarts_after_a_finished_operation(serve: Any, side_effects: Path) -> None:
    server: Server = serve(handler_target("flow", "step_wait_callback"), "--workers", "1")

    def announced(count: int) -> str | None:
        found = [line.split(":", 1)[1] for line in lines(side_effects) if line.startswith("callback:")]
        return found[count - 1] if len(found) >= count else None

    with Client(server.endpoint) as client:
        arn = client.invoke("flow", {"wait": 1}, wait=False, name="aws-1")["DurableExecutionArn"]
        client.succeed_callback(str(wait_for(lambda: announced(1))), "first answer")
        assert finished(client, arn)["Status"] == "SUCCEEDED"
        (first_step,) = [e for e in client.history(arn) if e["EventType"] == "StepSucceeded" and e.get("Name") == "first"]

        new = client.restart(arn, first_step["Id"])

        assert new["DurableExecutionName"] == "aws-1-restart-1"
        second_callback = str(wait_for(lambda: announced(2)))
        assert second_callback != announced(1)
        client.succeed_callback(second_callback, "second answer")
        done = finished(client, new["DurableExecutionArn"])
        assert done["Status"] == "SUCCEEDED"
        # The AWS SDK hands a callback's result to the handler as the JSON text it was sent.
        assert json.loads(done["Result"]) == {"first": "done:first", "answer": '"second answer"', "last": "done:last"}
        started = client.history(new["DurableExecutionArn"])[0]["ExecutionStartedDetails"]["RestartedFrom"]
        assert started == {"DurableExecutionArn": arn, "OperationId": first_step["Id"]}
    # The step before the point ran once, in the first execution; what follows it ran in both.
    assert [line for line in lines(side_effects) if not line.startswith("callback:")] == ["first", "last", "last"]


def test_an_aws_sdk_execution_restarts_after_an_operation_inside_a_child_context(serve: Any, side_effects: Path) -> None:
    server: Server = serve(f"nested={HANDLERS / 'restartable_aws.py'}:nested", "--workers", "1")
    with Client(server.endpoint) as client:
        arn = client.invoke("nested", {}, name="nested-1")["DurableExecutionArn"]
        first = finished(client, arn)
        assert first["Status"] == "SUCCEEDED" and lines(side_effects) == ["before", "inner-a", "inner-b", "after"]
        (inner_a,) = [e for e in client.history(arn) if e["EventType"] == "StepSucceeded" and e.get("Name") == "inner-a"]
        assert inner_a.get("ParentId"), "inner-a runs inside the child context"

        new = client.restart(arn, inner_a["Id"])

        done = finished(client, new["DurableExecutionArn"])
        assert done["Status"] == "SUCCEEDED" and json.loads(done["Result"]) == json.loads(first["Result"])
    # The child context was reopened: its second step and what follows it ran again, the rest did not.
    assert lines(side_effects) == ["before", "inner-a", "inner-b", "after", "inner-b", "after"]
