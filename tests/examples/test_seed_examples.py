"""The seed's order workflow and AI agent, under `perdure run` and `perdure serve`, killed midway."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import PERDURE, ROOT, Server, wait_for

EXAMPLES = ROOT / "examples"


class Run:
    """A `perdure run` process whose stderr (callback announcements) is collected in a file."""

    def __init__(self, workdir: Path, target: str, payload: str, name: str) -> None:
        attempt = len(list(workdir.glob(f"run-{name}-*.err")))
        self.stderr = workdir / f"run-{name}-{attempt}.err"
        self.stdout = workdir / f"run-{name}-{attempt}.out"
        env = {**os.environ, "PERDURE_EXAMPLE_LEDGER": str(workdir / "ledger")}
        db = f"sqlite:///{workdir / 'perdure.db'}"
        command = [*PERDURE, "run", target, "--payload", payload, "--name", name, "--db", db]
        with open(self.stderr, "ab") as err, open(self.stdout, "wb") as out:
            self.process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=err)
        self.db = db
        self.env = env
        self.workdir = workdir

    def callback_ids(self) -> list[str]:
        return re.findall(r"Waiting for callback ([0-9a-f]+)", self.stderr.read_text())

    def approve(self, callback_id: str, answer: str = '{"approved": true}') -> None:
        done = subprocess.run(
            [*PERDURE, "callback", "succeed", callback_id, "--result", answer, "--db", self.db],
            env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def result(self) -> dict[str, Any]:
        assert self.process.wait(60) == 0, self.stderr.read_text()
        return json.loads(self.stdout.read_text())  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.kill()


def ledger(workdir: Path) -> list[str]:
    path = workdir / "ledger"
    return path.read_text().splitlines() if path.exists() else []


def test_order_run_killed_while_awaiting_approval_resumes_without_charging_twice(tmp_path: Path, runs: list[Run]) -> None:
    target = f"{EXAMPLES / 'order_processing.py'}:process_order"
    first = Run(tmp_path, target, '{"order_id": "A-1"}', "A-1")
    runs.append(first)
    wait_for(first.callback_ids)
    first.kill()
    assert ledger(tmp_path)[:2] == ["validated A-1", "charged A-1 52.50"]

    second = Run(tmp_path, target, '{"order_id": "A-1"}', "A-1")
    runs.append(second)
    (callback_id,) = wait_for(second.callback_ids)  # type: ignore[misc]
    second.approve(callback_id)
    result = second.result()
    assert result["Status"] == "SUCCEEDED"
    assert result["Result"] == {"status": "completed", "order_id": "A-1"}
    lines = ledger(tmp_path)
    assert [line for line in lines if line.startswith("charged")] == ["charged A-1 52.50"]
    assert lines.count("validated A-1") == 1 and lines.count("confirmed A-1 TRACK-A-1") == 1


@pytest.mark.parametrize("target", ["ai_agent.py:ai_agent", "ai_agent_async.py:ai_agent_async"])
def test_agent_run_killed_while_awaiting_approval_repeats_no_tool_call(tmp_path: Path, runs: list[Run], target: str) -> None:
    target = str(EXAMPLES / target)
    payload = '{"prompt": "Please refund order A-1"}'
    first = Run(tmp_path, target, payload, "chat-1")
    runs.append(first)
    wait_for(first.callback_ids)
    first.kill()

    second = Run(tmp_path, target, payload, "chat-1")
    runs.append(second)
    (callback_id,) = wait_for(second.callback_ids)  # type: ignore[misc]
    second.approve(callback_id)
    result = second.result()
    assert result["Result"] == {"result": "Done: Refunded order A-1"}
    lines = ledger(tmp_path)
    tools = [line for line in lines if line.startswith("tool ")]
    assert tools == ['tool lookup_order {"order_id": "A-1"}', 'tool issue_refund {"order_id": "A-1"}']
    assert [line for line in lines if line.startswith("llm call")] == ["llm call 1", "llm call 2", "llm call 3"]


def _callback(server: Server, arn: str) -> str | None:
    events = json.loads(server.cli("executions", "history", arn).stdout)
    open_ids = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
    done = {e.get("Id") for e in events if e["EventType"] in ("CallbackSucceeded", "CallbackFailed")}
    started = {e["CallbackStartedDetails"]["CallbackId"]: e.get("Id") for e in events if e["EventType"] == "CallbackStarted"}
    pending = [cid for cid in open_ids if started[cid] not in done]
    return pending[0] if pending else None


def test_both_examples_under_serve_survive_a_server_sigkill(serve: Any, tmp_path: Path) -> None:
    examples = [str(EXAMPLES / "order_processing.py"), str(EXAMPLES / "ai_agent.py")]
    server = serve(*examples, PERDURE_EXAMPLE_LEDGER=str(tmp_path / "ledger"))
    order = json.loads(server.cli("invoke", "process_order", "--payload", '{"order_id": "B-7"}', "--async").stdout)
    chat = json.loads(server.cli("invoke", "ai_agent", "--payload", '{"prompt": "refund A-1"}', "--async").stdout)
    wait_for(lambda: _callback(server, order["DurableExecutionArn"]) and _callback(server, chat["DurableExecutionArn"]))

    server.kill()
    server.start()
    for execution in (order, chat):
        callback_id = wait_for(lambda e=execution: _callback(server, e["DurableExecutionArn"]))
        assert server.cli("callback", "succeed", str(callback_id), "--result", '{"approved": true}').returncode == 0

    def finished(arn: str) -> dict[str, Any] | None:
        execution: dict[str, Any] = json.loads(server.cli("executions", "get", arn).stdout)
        return execution if execution["Status"] != "RUNNING" else None

    assert wait_for(lambda: finished(order["DurableExecutionArn"]))["Result"] == {"status": "completed", "order_id": "B-7"}  # type: ignore[index]
    assert wait_for(lambda: finished(chat["DurableExecutionArn"]))["Result"] == {"result": "Done: Refunded order A-1"}  # type: ignore[index]
    lines = ledger(tmp_path)
    assert lines.count("charged B-7 129.00") == 1
    assert lines.count('tool lookup_order {"order_id": "A-1"}') == 1 and lines.count('tool issue_refund {"order_id": "A-1"}') == 1
