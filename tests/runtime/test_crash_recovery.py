"""An execution survives its server being SIGKILLed while it is suspended."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from servers import Server, handler_target, wait_for


def _execution(server: Server, arn: str) -> dict[str, Any]:
    result = server.cli("executions", "get", arn)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _event(server: Server, arn: str, event_type: str) -> dict[str, Any] | None:
    result = server.cli("executions", "history", arn)
    assert result.returncode == 0, result.stderr
    return next((e for e in json.loads(result.stdout) if e["EventType"] == event_type), None)


def _callback_id(server: Server, arn: str) -> str | None:
    result = server.cli("executions", "history", arn)
    assert result.returncode == 0, result.stderr
    for event in json.loads(result.stdout):
        if event["EventType"] == "CallbackStarted":
            return str(event["CallbackStartedDetails"]["CallbackId"])
    return None


def test_execution_survives_server_sigkill_during_wait(serve: Any, side_effects: Path) -> None:
    server = serve(handler_target("flow", "step_wait_callback"))
    started = server.cli("invoke", "flow", "--payload", '{"wait": 2}', "--async", "--name", "order-1")
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    # Killed once the wait has started: "first" then has its SUCCEED recorded. Killed as soon as
    # its body had logged, it could run again (a step runs at least once), and flakily did.
    wait_for(lambda: _event(server, arn, "WaitStarted"))

    server.kill()
    server.start()
    ready = time.time()

    callback_id = wait_for(lambda: _callback_id(server, arn), timeout=30)
    history = json.loads(server.cli("executions", "history", arn).stdout)
    wait = next(e for e in history if e["EventType"] == "WaitStarted")
    fired = next(e for e in history if e["EventType"] == "WaitSucceeded")
    # The timer fired on time although the server was dead for part of the wait: when it fell
    # due, or at once when the server came back if it fell due while the server was down.
    scheduled = wait["WaitStartedDetails"]["ScheduledEndTimestamp"]
    assert scheduled <= fired["EventTimestamp"] <= max(scheduled, ready) + 1.0

    done = server.cli("callback", "succeed", str(callback_id), "--result", '{"approved": true}')
    assert done.returncode == 0, done.stderr
    finished = wait_for(
        lambda: (e := _execution(server, arn))["Status"] != "RUNNING" and e, timeout=30
    )
    assert finished["Status"] == "SUCCEEDED"  # type: ignore[index]
    assert finished["Result"] == {  # type: ignore[index]
        "first": "done:first",
        "answer": '{"approved": true}',
        "last": "done:last",
    }
    lines = side_effects.read_text().splitlines()
    assert lines.count("first") == 1
    assert lines.count("last") == 1
    assert sum(1 for line in lines if line.startswith("callback:")) == 1
