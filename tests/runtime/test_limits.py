"""Per-invocation timeout, the memory limit, and crashed worker processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servers import HANDLERS, Server, wait_for

TEMPLATE = """
Resources:
  Slow:
    Type: AWS::Serverless::Function
    Properties: {{Handler: limits.slow_first_time, CodeUri: {code}, Timeout: 2, DurableConfig: {{ExecutionTimeout: 600}}}}
  Hungry:
    Type: AWS::Serverless::Function
    Properties: {{Handler: limits.hungry, CodeUri: {code}, MemorySize: 128, DurableConfig: {{ExecutionTimeout: 600}}}}
  Dies:
    Type: AWS::Serverless::Function
    Properties: {{Handler: limits.dies_first_time, CodeUri: {code}, DurableConfig: {{ExecutionTimeout: 600}}}}
"""


def _serve(serve: Any, tmp_path: Path) -> Server:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(code=HANDLERS))
    return serve("--template", str(template))  # type: ignore[no-any-return]


def _run_to_end(server: Server, function: str, payload: str) -> dict[str, Any]:
    started = server.cli("invoke", function, "--payload", payload, "--async")
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]

    def ended() -> dict[str, Any] | None:
        execution: dict[str, Any] = json.loads(server.cli("executions", "get", arn).stdout)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(ended, timeout=40, interval=0.2)  # type: ignore[return-value]


def _history(server: Server, arn: str) -> list[dict[str, Any]]:
    return json.loads(server.cli("executions", "history", arn).stdout)  # type: ignore[no-any-return]


def test_an_invocation_past_its_timeout_is_killed_and_resumes_from_its_last_checkpoint(
    serve: Any, tmp_path: Path, side_effects: Path
) -> None:
    server = _serve(serve, tmp_path)
    execution = _run_to_end(server, "Slow", "{}")
    assert execution["Status"] == "SUCCEEDED" and execution["Result"] == "after"
    assert side_effects.read_text().splitlines() == ["before", "slept", "after"]
    errors = [
        e["InvocationCompletedDetails"].get("Error", {}).get("Payload", {})
        for e in _history(server, execution["DurableExecutionArn"])
        if e["EventType"] == "InvocationCompleted"
    ]
    assert errors[0]["ErrorType"] == "Sandbox.Timedout"
    assert "timed out after 2 seconds" in errors[0]["ErrorMessage"]


def test_memory_size_limits_the_worker_and_says_so(serve: Any, tmp_path: Path) -> None:
    server = _serve(serve, tmp_path)
    execution = _run_to_end(server, "Hungry", '{"megabytes": 400}')
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "Runtime.OutOfMemory"
    assert "limited to 128 MB (MemorySize)" in execution["Error"]["ErrorMessage"]
    small = _run_to_end(server, "Hungry", '{"megabytes": 8}')
    assert small["Status"] == "SUCCEEDED" and small["Result"] == 8


def test_a_worker_that_dies_mid_invocation_is_retried_without_repeating_steps(
    serve: Any, tmp_path: Path, side_effects: Path
) -> None:
    server = _serve(serve, tmp_path)
    execution = _run_to_end(server, "Dies", "{}")
    assert execution["Status"] == "SUCCEEDED"
    assert side_effects.read_text().splitlines() == ["before", "died", "after"]
    first = next(e for e in _history(server, execution["DurableExecutionArn"]) if e["EventType"] == "InvocationCompleted")
    assert "exited with status 3" in first["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorMessage"]
