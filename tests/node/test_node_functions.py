"""Node.js handlers written with @aws/durable-execution-sdk-js run under `perdure serve`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers import Server, lambda_client, wait_for


def _execution(server: Server, arn: str) -> dict[str, Any]:
    result = server.cli("executions", "get", arn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _start(server: Server, function: str, event: dict[str, Any]) -> str:
    reply = lambda_client(server.endpoint).invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    return str(reply["DurableExecutionArn"])


def _ended(server: Server, arn: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        execution = _execution(server, arn)
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(ended, timeout=timeout)  # type: ignore[return-value]


def test_template_node_function_runs_steps_and_a_wait(serve_node: Callable[..., Server], node_handlers_dir: Path) -> None:
    server = serve_node("--template", str(node_handlers_dir / "template.yaml"))
    arn = _start(server, "node-steps", {"n": 4, "wait": 1})
    execution = _ended(server, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert execution["Result"] == {"first": 5, "second": 50}
    logs = server.cli("executions", "logs", arn)
    lines = [json.loads(line) for line in logs.stdout.splitlines()]
    assert [line["Message"] for line in lines if line["Invocation"] == 1] == ["running first"]
    assert any('"message":"done 50"' in line["Message"] for line in lines if line["Invocation"] == 2)
