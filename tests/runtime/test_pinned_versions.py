"""A deploy never fails what is in flight: executions finish on the code version they started on.

Executions of both styles suspend on a wait and on a callback; the files change and the server
restarts on them, or `perdure deploy` sends them to it as it runs; the suspended executions
finish with the old code's results, new ones run the new code, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Server, wait_for

APP = """
import perdure as durable
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

VERSION = "v1"


def send(callback_id):
    pass


@durable.function
def seed_callback(ctx, event):
    answer = ctx.wait_for_callback(send)
    return {"answer": answer, "version": VERSION}


@durable.function
def seed_wait(ctx, event):
    ctx.wait(seconds=event["seconds"])
    return {"version": VERSION}


@durable_execution
def aws_callback(event, context: DurableContext):
    callback = context.create_callback(name="approval")
    return {"answer": callback.result(), "version": VERSION}


@durable_execution
def aws_wait(event, context: DurableContext):
    context.wait(Duration.from_seconds(event["seconds"]), name="pause")
    return {"version": VERSION}
"""
# The new code moves things: an old snapshot or history could not resume in it.
V2 = (
    APP.replace('VERSION = "v1"', 'VERSION = "v2"')
    .replace("    answer = ctx.wait_for_callback(send)\n", "    ctx.checkpoint()\n    note = 1\n    answer = ctx.wait_for_callback(send)\n")
    .replace('    callback = context.create_callback(name="approval")\n', '    context.step(lambda _: 1, name="first")\n    callback = context.create_callback(name="approval")\n')
)


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server").create_database(f"pinned_{uuid.uuid4().hex[:8]}")
    code = tmp_path / "app"
    code.mkdir()
    (code / "app.py").write_text(APP)
    app = code / "app.py"
    server = Server(targets(app), tmp_path, dict(os.environ), db_url=url)
    server.start()
    try:
        yield server, app
    finally:
        server.stop()


def start(server: Server, function: str, payload: dict[str, Any]) -> str:
    started = server.cli("invoke", function, "--payload", json.dumps(payload), "--async")
    assert started.returncode == 0, started.stderr
    return str(json.loads(started.stdout)["DurableExecutionArn"])


def get(server: Server, arn: str) -> dict[str, Any]:
    return json.loads(server.cli("executions", "get", arn).stdout)  # type: ignore[no-any-return]


def open_callback(server: Server, arn: str) -> str | None:
    events = json.loads(server.cli("executions", "history", arn).stdout)
    started = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
    return started[-1] if started else None


def finished(server: Server, arn: str) -> dict[str, Any]:
    wait_for(lambda: get(server, arn)["Status"] != "RUNNING", timeout=60)
    execution = get(server, arn)
    assert execution["Status"] == "SUCCEEDED", execution.get("Error")
    return execution


def targets(app: Path) -> list[str]:
    return [str(app), f"aws_callback={app}:aws_callback", f"aws_wait={app}:aws_wait"]


def restart_on_new_files(server: Server, app: Path) -> None:
    server.stop()
    app.write_text(V2)
    server.start()


def deploy_new_files(server: Server, app: Path) -> None:
    app.write_text(V2)
    deployed = server.cli("deploy", *targets(app))
    assert deployed.returncode == 0, deployed.stderr
    assert {d["FunctionName"]: d["Version"] for d in json.loads(deployed.stdout)} == {
        "seed_callback": "2", "seed_wait": "2", "aws_callback": "2", "aws_wait": "2"
    }


@pytest.mark.parametrize("new_code", [restart_on_new_files, deploy_new_files], ids=["restart", "deploy"])
def test_suspended_executions_finish_on_their_version_and_new_ones_run_the_new_code(
    served: tuple[Server, Path], new_code: Callable[[Server, Path], None]
) -> None:
    server, app = served
    callbacks = [start(server, "seed_callback", {}), start(server, "aws_callback", {})]
    waits = [start(server, "seed_wait", {"seconds": 3}), start(server, "aws_wait", {"seconds": 3})]
    for arn in callbacks:
        wait_for(lambda arn=arn: open_callback(server, arn))
    assert {get(server, arn)["Version"] for arn in callbacks + waits} == {"1"}

    new_code(server, app)
    for arn in callbacks:
        done = server.cli("callback", "succeed", str(open_callback(server, arn)), "--result", '"yes"')
        assert done.returncode == 0, done.stderr
    # The AWS SDK's callback.result() is the result's JSON text, the seed style's its value.
    answers = ["yes", '"yes"']
    for arn, answer in zip(callbacks, answers, strict=True):
        assert finished(server, arn)["Result"] == {"answer": answer, "version": "v1"}
    for arn in waits:
        assert finished(server, arn)["Result"] == {"version": "v1"}

    fresh = start(server, "seed_callback", {})
    wait_for(lambda: open_callback(server, fresh))
    assert get(server, fresh)["Version"] == "2"
    server.cli("callback", "succeed", str(open_callback(server, fresh)), "--result", '"yes"')
    assert finished(server, fresh)["Result"] == {"answer": "yes", "version": "v2"}
    assert finished(server, start(server, "aws_wait", {"seconds": 1}))["Result"] == {"version": "v2"}
