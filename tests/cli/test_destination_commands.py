"""Destinations from the command line: `perdure run` runs one, and a wrong one stops `perdure serve` before it starts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ExecutionStatus
from perdure.store.blobs import FileBlobStore
from perdure.store.sqlite import SQLiteStore

Perdure = Callable[..., subprocess.CompletedProcess[str]]
HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


def test_perdure_run_runs_the_on_failure_function_its_failure_started(perdure: Perdure, tmp_path: Path) -> None:
    log = tmp_path / "side-effects.log"
    result = perdure(
        "run", f"{HANDLERS / 'destinations.py'}:charge", "--payload", '{"order": 4}', "--name", "o-4",
        env={"PERDURE_TEST_LOG": str(log)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    failed = json.loads(result.stdout)
    assert failed["Status"] == "FAILED"
    assert log.read_text().split() == ["validate:4", "charge:4", f"alert:RetriesExhausted:{failed['DurableExecutionArn']}"]
    database = tmp_path / ".perdure" / "perdure.db"
    store = SQLiteStore(database, blobs=FileBlobStore(database.parent / "blobs"))
    try:
        with store.snapshot() as tx:
            (alert,) = tx.list_executions(ExecutionQuery(function_name="alert")).executions
    finally:
        store.close()
    assert alert.status is ExecutionStatus.SUCCEEDED and alert.name.startswith("on-failure-")


def test_serve_refuses_a_template_whose_destination_names_no_served_function(perdure: Perdure, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Orders:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      Handler: app.handler\n"
        "      DurableConfig: {ExecutionTimeout: 60}\n"
        "      EventInvokeConfig:\n"
        "        DestinationConfig:\n"
        "          OnFailure: {Type: Lambda, Destination: notify-failure}\n"
    )
    result = perdure("serve", "--template", str(template), "--dev")
    assert result.returncode == 1
    assert (
        f"Error: {template}: Resource Orders: EventInvokeConfig.DestinationConfig.OnFailure.Destination names the "
        "function 'notify-failure', which is not served here (the functions are Orders)."
    ) in result.stderr
    assert not (tmp_path / ".perdure").exists(), "nothing is made before the template is checked"
