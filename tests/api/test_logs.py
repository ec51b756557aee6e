"""Each invocation's log lines (stdout, stderr, logging) kept per execution: `perdure executions logs`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from servers import HANDLERS, Server, lambda_client, shared_server, wait_for

from perdure import Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = [
        f"chatty={HANDLERS / 'logging_handlers.py'}:chatty",
        f"crashing={HANDLERS / 'logging_handlers.py'}:crashing",
        f"{HANDLERS / 'logging_handlers.py'}",
        "--workers",
        "2",
    ]
    with shared_server(tmp_path_factory, "logs", args) as server:
        yield server


def cli_logs(server: Server, arn: str) -> list[dict[str, Any]]:
    done = server.cli("executions", "logs", arn)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_an_aws_handler_s_lines_are_kept_once_each_with_stream_and_invocation(server: Server) -> None:
    reply = lambda_client(server.endpoint).invoke(FunctionName="chatty", Payload=b'"o-1"')
    arn = reply["DurableExecutionArn"]
    assert json.loads(reply["Payload"].read()) == "done"
    lines = cli_logs(server, arn)
    assert [(x["Invocation"], x["Stream"], x["Message"]) for x in lines] == [
        (1, "stdout", "top o-1"),
        (1, "log", "[INFO]\tsdk logger before wait o-1"),
        (1, "stdout", "step stdout o-1"),
        (1, "stderr", "step stderr o-1"),
        (1, "log", "[WARNING]\tstep logging o-1"),
        (1, "log", "[INFO]\tstep logger o-1"),
        # The second invocation replays up to the wait: only the print outside any step repeats.
        (2, "stdout", "top o-1"),
        (2, "log", "[INFO]\tsdk logger after wait o-1"),
    ]
    seqs = [x["Seq"] for x in lines]
    assert seqs == sorted(seqs) and all(isinstance(x["Timestamp"], float) for x in lines)
    with Client(server.endpoint) as client:
        assert client.logs(arn) == lines
    text = server.cli("executions", "logs", arn, "--text")
    assert text.stdout.splitlines()[:2] == ["top o-1", "[INFO]\tsdk logger before wait o-1"]


def test_a_seed_function_s_ctx_logger_does_not_repeat_on_replay(server: Server) -> None:
    reply = lambda_client(server.endpoint).invoke(FunctionName="seed_chatty", Payload=b'"s-1"')
    arn = reply["DurableExecutionArn"]
    assert json.loads(reply["Payload"].read()) == "done"
    assert [(x["Invocation"], x["Stream"], x["Message"]) for x in cli_logs(server, arn)] == [
        (1, "log", "[INFO]\tseed before wait s-1"),
        (1, "stdout", "seed step stdout s-1"),
        (2, "log", "[WARNING]\tseed after wait s-1"),
    ]


def test_logs_page_through_marker_and_an_unknown_execution_is_not_found(server: Server) -> None:
    reply = lambda_client(server.endpoint).invoke(FunctionName="chatty", Payload=b'"o-2"')
    arn = reply["DurableExecutionArn"]
    with Client(server.endpoint) as client:
        path = f"/perdure/v1/durable-executions/{arn.replace('/', '%2F').replace(':', '%3A')}/logs"
        first = client._request("GET", path, params={"MaxItems": 3}).json()
        assert len(first["Logs"]) == 3 and first["NextMarker"] == str(first["Logs"][-1]["Seq"])
        rest = client._request("GET", path, params={"Marker": first["NextMarker"]}).json()
        assert first["Logs"] + rest["Logs"] == client.logs(arn) and "NextMarker" not in rest
    missing = server.cli("executions", "logs", arn.replace("durable-execution/", "durable-execution/x"))
    assert missing.returncode == 1 and "not" in missing.stderr.lower()


def test_the_lines_of_an_invocation_whose_process_dies_are_kept(server: Server) -> None:
    client = lambda_client(server.endpoint)
    name = f"c-{uuid.uuid4().hex[:8]}"
    arn = client.invoke(FunctionName="crashing", Payload=json.dumps(name).encode())["DurableExecutionArn"]
    wait_for(lambda: client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED")
    assert [(x["Invocation"], x["Stream"], x["Message"]) for x in cli_logs(server, arn)] == [
        (1, "stdout", f"running {name} crashed=False"),
        (2, "stdout", f"running {name} crashed=True"),
    ]
