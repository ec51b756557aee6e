"""`perdure serve --log-format json` and `perdure worker --log-format json`, run as real processes: every line
they write on stderr is a JSON object, and a line about an execution names it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from servers import free_port, wait_for

Perdure = Callable[..., subprocess.CompletedProcess[str]]
Started = Callable[..., subprocess.Popen[str]]

APP = '''
import pathlib
import time

import perdure as durable


@durable.function(timeout=1)
def slow_once(ctx, event):
    # Past its timeout the first time only: the retry ends the execution.
    marker = pathlib.Path("slept")
    if not marker.exists():
        marker.write_text("")
        time.sleep(3)
    return "done"
'''


def _healthy(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def serve_a_timeout(perdure_started: Started, tmp_path: Path, *options: str) -> tuple[str, list[str]]:
    """Serves APP, runs an execution whose first invocation times out to its end, stops the server;
    returns the execution's ARN and the lines the server wrote on stderr."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    stderr = tmp_path / "stderr.log"
    server = perdure_started("serve", "app.py", "--dev", "--port", str(port), *options, stderr=stderr)
    wait_for(lambda: _healthy(endpoint) or server.poll() is not None)
    started = httpx.post(
        f"{endpoint}/2015-03-31/functions/slow_once/invocations", json={}, headers={"X-Amz-Invocation-Type": "Event"}
    )
    arn = started.headers["X-Amz-Durable-Execution-Arn"]
    execution = f"{endpoint}/2025-12-01/durable-executions/{quote(arn, safe='')}"
    wait_for(lambda: httpx.get(execution).json()["Status"] == "SUCCEEDED")
    # uvicorn stops gracefully, then ends by the signal it caught: no exit status to check.
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    return arn, stderr.read_text().splitlines()


def test_serve_with_json_logs_writes_only_json_lines_and_names_the_execution_whose_invocation_timed_out(
    perdure_started: Started, tmp_path: Path
) -> None:
    arn, lines = serve_a_timeout(perdure_started, tmp_path, "--log-format", "json")
    parsed: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert any(line["message"].startswith("Perdure serving slow_once on http://127.0.0.1:") for line in parsed), lines
    (timed_out,) = [line for line in parsed if line.get("execution_arn") == arn]
    assert timed_out["function"] == "slow_once" and timed_out["invocation"] == 1
    assert timed_out["level"] == "WARNING" and timed_out["logger"] == "perdure.runtime.workers"
    assert timed_out["message"] == f"Invocation 1 of {arn}: Task timed out after 1 seconds; it resumes from its last checkpoint."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timed_out["time"])


def test_serve_logs_text_by_default(perdure_started: Started, tmp_path: Path) -> None:
    arn, lines = serve_a_timeout(perdure_started, tmp_path)
    assert f"Invocation 1 of {arn}: Task timed out after 1 seconds; it resumes from its last checkpoint." in lines
    assert any(line.startswith("Perdure serving slow_once on http://127.0.0.1:") for line in lines), lines
    assert not any(line.startswith("{") for line in lines), lines


def test_an_error_that_stops_the_server_is_a_json_line_too(perdure: Perdure, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    result = perdure("serve", "app.py", "--log-format", "json")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["level"] == "ERROR" and line["message"].startswith("No API keys exist in the database")


def test_uvicorns_own_lines_are_json_lines_too(perdure: Perdure, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = perdure("serve", "app.py", "--dev", "--port", str(port), "--log-format", "json")
    assert result.returncode != 0
    parsed = [json.loads(line) for line in result.stderr.splitlines()]
    refused = [line for line in parsed if line["logger"] == "uvicorn.error"]
    assert refused and "address already in use" in refused[0]["message"] and refused[0]["level"] == "ERROR", parsed


def test_worker_with_json_logs_writes_only_json_lines(perdure_started: Started, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    stderr = tmp_path / "stderr.log"
    worker = perdure_started("worker", "app.py", "--log-format", "json", stderr=stderr)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stderr.read_text().splitlines()]

    wait_for(lambda: any(line["message"].startswith("Perdure worker running slow_once") for line in lines()))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, stderr.read_text()
    assert lines()[-1]["message"].startswith("Received SIGTERM: stopping once running invocations finish")
