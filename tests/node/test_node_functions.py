"""Node.js handlers written with @aws/durable-execution-sdk-js, run by a real `perdure serve`.

One server serves every function of a template here (Node ones from tests/handlers/node, Python
ones beside them); each test passes a key of its own, which prefixes the lines its handlers
record in the side-effects file (one line per step body run) and names its markers.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from node_env import node22, node_handlers
from servers import HANDLERS, Server, lambda_client, wait_for

TEMPLATE = """
Globals:
  Function:
    Runtime: nodejs22.x
    CodeUri: {node}
    Timeout: 60
    DurableConfig: {{ExecutionTimeout: 3600}}
Resources:
  Steps:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-steps, Handler: steps.handler}}
  Counter:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-counter, Handler: counter.handler}}
  Slow:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-slow, Handler: workflows.slowFirstTime, Timeout: 2}}
  Killable:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-killable, Handler: workflows.killable}}
  Chatty:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-chatty, Handler: workflows.chatty}}
  NodeCaller:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-caller, Handler: workflows.caller}}
  NodeEcho:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-echo, Handler: workflows.echo}}
  Hungry:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-hungry, Handler: workflows.hungry, MemorySize: 128}}
  Broken:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-broken, Handler: broken.handler}}
  Order:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-order, Handler: order.handler}}
    Metadata:
      BuildMethod: esbuild
      BuildProperties: {{EntryPoints: [order.ts], Target: es2022, Sourcemap: true}}
  PyCaller:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: py-caller, Runtime: python3.13, CodeUri: {python}, Handler: invoking.caller}}
  PyEcho:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: py-echo, Runtime: python3.13, CodeUri: {python}, Handler: invoking.echo}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("node")
    python = workdir / "python"
    python.mkdir()
    shutil.copy(HANDLERS / "invoking.py", python)
    template = workdir / "template.yaml"
    template.write_text(TEMPLATE.format(node=node_handlers(), python=python))
    env = {**os.environ, "PERDURE_TEST_LOG": str(workdir / "side-effects.log"), "PERDURE_NODE": node22()}
    # It builds the TypeScript function with esbuild and packs a folder with node_modules first.
    server = Server(["--template", str(template)], workdir, env, start_timeout=120)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(server: Server) -> Any:
    return lambda_client(server.endpoint)


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex[:12]


def recorded(server: Server, key: str) -> list[str]:
    """The lines this test's handlers recorded, without its key."""
    log = server.workdir / "side-effects.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.removeprefix(f"{key} ") for line in lines if line.startswith(f"{key} ")]


def start(client: Any, function: str, event: dict[str, Any]) -> str:
    reply = client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode())
    return str(reply["DurableExecutionArn"])


def ended(client: Any, arn: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        execution = client.get_durable_execution(DurableExecutionArn=arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(done, timeout=timeout, interval=0.1)  # type: ignore[return-value]


def history(client: Any, arn: str) -> list[dict[str, Any]]:
    return client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]  # type: ignore[no-any-return]


def result(execution: dict[str, Any]) -> Any:
    return json.loads(execution["Result"])


def logs(server: Server, arn: str) -> list[dict[str, Any]]:
    shown = server.cli("executions", "logs", arn)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def test_a_template_node_function_runs_steps_and_a_wait(server: Server, client: Any) -> None:
    arn = start(client, "node-steps", {"n": 4, "wait": 1})
    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert result(execution) == {"first": 5, "second": 50}
    lines = logs(server, arn)
    # The step ran in the first invocation; the second, after the wait, replayed it (and its line).
    assert [line["Message"] for line in lines if line["Invocation"] == 1] == ["running first"]
    assert any('"message":"done 50"' in line["Message"] for line in lines if line["Invocation"] == 2)


def test_a_commonjs_handler_runs(client: Any) -> None:
    execution = ended(client, start(client, "node-counter", {"n": 21}))
    assert execution["Status"] == "SUCCEEDED", execution
    assert result(execution) == {"doubled": 42, "format": "commonjs"}


def test_a_node_function_shows_its_runtime(server: Server, client: Any) -> None:
    listed = {f["FunctionName"]: f for f in json.loads(server.cli("functions", "list").stdout)}
    assert listed["node-steps"]["Runtime"] == "nodejs22.x"
    assert "Runtime" not in listed["py-echo"] or listed["py-echo"]["Runtime"].startswith("python")
    assert client.get_function(FunctionName="node-steps")["Configuration"]["Runtime"] == "nodejs22.x"


def test_the_typescript_order_workflow_built_with_esbuild_waits_for_approval_over_http(
    server: Server, client: Any, key: str
) -> None:
    arn = start(client, "node-order", {"key": key, "orderId": "A-7", "total": 30})
    started = wait_for(lambda: next((e for e in history(client, arn) if e["EventType"] == "CallbackStarted"), None))
    callback = started["CallbackStartedDetails"]["CallbackId"]  # type: ignore[index]
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    client.send_durable_execution_callback_success(CallbackId=callback, Result=b"approved by ana")
    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert result(execution) == {"orderId": "A-7", "charged": 30, "approval": "approved by ana", "shipment": "shipment of A-7"}
    assert recorded(server, key) == ["validate", "charge", f"approval {callback}", "ship"]
    assert any(e["EventType"] == "WaitSucceeded" for e in history(client, arn))


def test_a_node_worker_sigkilled_in_a_step_and_while_suspended_runs_no_completed_step_twice(
    server: Server, client: Any, key: str
) -> None:
    arn = start(client, "node-killable", {"key": key})
    first = wait_for(lambda: next((line for line in recorded(server, key) if line.startswith("b-start")), None))
    os.kill(int(str(first).split()[1]), signal.SIGKILL)
    # Retried: "a" is replayed, "b" (never completed) runs again and the execution suspends.
    waiting = wait_for(lambda: next((line for line in recorded(server, key) if line.startswith("callback")), None))
    _, pid, callback = str(waiting).split()
    wait_for(lambda: any(e["EventType"] == "InvocationCompleted" for e in history(client, arn)[2:]))
    os.kill(int(pid), signal.SIGKILL)
    client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"yes"')
    execution = ended(client, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    lines = recorded(server, key)
    assert [line for line in lines if not line.startswith(("b-start", "callback"))] == ["a", "b", "c"]
    assert len([line for line in lines if line.startswith("b-start")]) == 2
    completed = [e for e in history(client, arn) if e["EventType"] == "InvocationCompleted"]
    assert "was lost: the worker process was killed by signal SIGKILL" in json.dumps(completed[0], default=str)


def test_a_node_handler_past_its_timeout_is_stopped_and_resumes_from_its_last_step(
    server: Server, client: Any, key: str
) -> None:
    execution = ended(client, start(client, "node-slow", {"key": key}))
    assert execution["Status"] == "SUCCEEDED", execution
    lines = recorded(server, key)
    # "before" completed before the timeout and is not run again. (On a loaded machine a retry
    # may pass its 2 s too, after running "after" but before checkpointing it: a step not yet
    # checkpointed runs again, at least once, as on Lambda.)
    assert lines[:3] == ["before", "slept", "after"] and set(lines) == {"before", "slept", "after"}
    assert lines.count("before") == 1
    errors = [
        e["InvocationCompletedDetails"].get("Error", {}).get("Payload", {})
        for e in history(client, execution["DurableExecutionArn"])
        if e["EventType"] == "InvocationCompleted"
    ]
    assert errors[0]["ErrorType"] == "Sandbox.Timedout"
    assert "timed out after 2 seconds" in errors[0]["ErrorMessage"]


def test_a_node_handler_that_throws_at_import_fails_with_its_error(client: Any) -> None:
    execution = ended(client, start(client, "node-broken", {}))
    assert execution["Status"] == "FAILED"
    error = execution["Error"]
    assert error["ErrorType"] == "Runtime.ImportModuleError"
    assert error["ErrorMessage"].startswith("Function 'node-broken' could not be loaded: importing ")
    assert "broken.mjs raised Error: ORDERS_TABLE is not set" in error["ErrorMessage"]


def test_a_python_function_invokes_a_node_one_which_invokes_a_python_one(client: Any) -> None:
    event = {"target": "node-caller", "payload": {"target": "py-echo", "payload": {"x": 1}}}
    execution = ended(client, start(client, "py-caller", event))
    assert execution["Status"] == "SUCCEEDED", execution
    assert result(execution) == {"got": {"got": {"x": 1}, "runtime": "node 22"}}
    back = ended(client, start(client, "node-caller", {"target": "py-caller", "payload": {"target": "node-echo", "payload": 5}}))
    assert result(back) == {"got": {"got": {"echoed": 5, "by": "node"}}, "runtime": "node 22"}


def test_the_logs_of_concurrent_node_invocations_never_mix(server: Server, client: Any) -> None:
    tags = [f"tag{n}" for n in range(6)]
    arns: dict[str, str] = {}

    def begin(tag: str) -> None:
        arns[tag] = start(lambda_client(server.endpoint), "node-chatty", {"tag": tag, "lines": 20})

    threads = [threading.Thread(target=begin, args=(tag,)) for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tag, arn in arns.items():
        assert ended(client, arn)["Status"] == "SUCCEEDED"
        lines = [line for line in logs(server, arn) if line["Invocation"] == 1]
        assert len(lines) == 60, lines
        assert all(tag in line["Message"] and not any(other in line["Message"] for other in tags if other != tag) for line in lines)
        assert {line["Stream"] for line in lines} == {"stdout", "stderr"}


def test_a_node_function_deploys_as_a_zip_with_its_node_modules(server: Server, client: Any, key: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(node_handlers() / "steps.mjs", "src/app.mjs")
        for path in (node_handlers() / "node_modules").rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(node_handlers()).as_posix())
    name = f"deployed-{key}"
    created = client.create_function(
        FunctionName=name, Runtime="nodejs24.x", Role="arn:aws:iam::000000000000:role/durable", Handler="src/app.handler",
        Code={"ZipFile": buffer.getvalue()}, DurableConfig={"ExecutionTimeout": 3600},
    )  # fmt: skip
    assert (created["Runtime"], created["Handler"]) == ("nodejs24.x", "src/app.handler")
    execution = ended(client, start(client, name, {"n": 2, "wait": 1}))
    assert execution["Status"] == "SUCCEEDED", execution
    assert result(execution) == {"first": 3, "second": 30}


def test_a_node_execution_restarts_after_a_finished_step(server: Server, client: Any, key: str) -> None:
    first = ended(client, start(client, "node-steps", {"n": 7, "wait": 1}))
    operations = [e for e in history(client, first["DurableExecutionArn"]) if e["EventType"] == "StepSucceeded"]
    restarted = server.cli("executions", "restart", first["DurableExecutionArn"], "--from", operations[0]["Id"])
    assert restarted.returncode == 0, restarted.stderr
    again = ended(client, json.loads(restarted.stdout)["DurableExecutionArn"])
    assert again["Status"] == "SUCCEEDED", again
    assert result(again) == {"first": 8, "second": 80}
    lines = logs(server, again["DurableExecutionArn"])
    # The first step was copied, not run again: its line is not in the new execution's logs.
    assert not any(line["Message"] == "running first" for line in lines)


def test_memory_size_limits_a_node_functions_heap_and_says_so(client: Any) -> None:
    execution = ended(client, start(client, "node-hungry", {"megabytes": 400}), timeout=120)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "Runtime.OutOfMemory"
    assert "limited to 128 MB (MemorySize)" in execution["Error"]["ErrorMessage"]
    small = ended(client, start(client, "node-hungry", {"megabytes": 8}))
    assert small["Status"] == "SUCCEEDED" and result(small) == 8


def callback_of(client: Any, arn: str) -> str:
    started = wait_for(lambda: next((e for e in history(client, arn) if e["EventType"] == "CallbackStarted"), None))
    return str(started["CallbackStartedDetails"]["CallbackId"])  # type: ignore[index]


def test_a_node_execution_pauses_resumes_and_stops(server: Server, client: Any, key: str) -> None:
    paused = start(client, "node-order", {"key": key, "orderId": "P-1", "total": 3})
    callback = callback_of(client, paused)
    assert server.cli("executions", "pause", paused).returncode == 0
    client.send_durable_execution_callback_success(CallbackId=callback, Result=b"ok")
    # Paused, it is not invoked though its callback came: its last step never runs.
    time.sleep(3)
    assert client.get_durable_execution(DurableExecutionArn=paused)["Status"] == "PAUSED"
    assert "ship" not in recorded(server, key)
    assert server.cli("executions", "resume", paused).returncode == 0
    assert ended(client, paused)["Status"] == "SUCCEEDED"
    assert recorded(server, key)[-1] == "ship"

    stopped = start(client, "node-order", {"key": key, "orderId": "S-1", "total": 3})
    callback_of(client, stopped)
    assert server.cli("executions", "stop", stopped).returncode == 0
    assert ended(client, stopped)["Status"] == "STOPPED"


def test_the_dashboard_shows_a_node_execution_with_its_steps_and_logs(server: Server, client: Any) -> None:
    arn = start(client, "node-steps", {"n": 1, "wait": 1})
    assert ended(client, arn)["Status"] == "SUCCEEDED"
    page = httpx.get(f"{server.endpoint}/execution", params={"arn": arn}, timeout=30)
    assert page.status_code == 200
    assert "node-steps" in page.text and "first" in page.text and "second" in page.text
    assert "running first" in page.text
