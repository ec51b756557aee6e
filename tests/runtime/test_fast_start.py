"""A restarted server answers at once, while the workers of the work it took back start behind it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from servers import HANDLERS, Server, wait_for

# Longer than a server ever made its API wait for workers (10 s): the import runs behind it.
IMPORT_SECONDS = 12.0
# How long a restart may take on a busy machine: a start with nothing waiting takes about 1 s.
RESTART_SECONDS = 8.0


def _status(server: Server, arn: str) -> str:
    result = server.cli("executions", "get", arn)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["Status"])


def test_a_server_with_work_waiting_serves_its_api_before_its_workers_are_ready(
    serve: Any, tmp_path: Path
) -> None:
    server = serve(f"slow={HANDLERS / 'slow_import.py'}:handler", PERDURE_TEST_IMPORT_SECONDS=str(IMPORT_SECONDS))
    started = server.cli("invoke", "slow", "--payload", "{}", "--async")
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]
    # Killed while its worker imports the handler: the restarted server takes the execution back.
    server.kill()

    began = time.monotonic()
    server.start()
    assert time.monotonic() - began < RESTART_SECONDS
    assert _status(server, arn) == "RUNNING"

    wait_for(lambda: _status(server, arn) == "SUCCEEDED", timeout=IMPORT_SECONDS * 3, interval=0.5)
