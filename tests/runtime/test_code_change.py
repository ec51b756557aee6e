"""An execution whose code changed while it was suspended waits, paused, instead of failing.

It runs on once the code it was suspended on is served again; a change that leaves its
checkpoints and saved locals alone (a log line, a constant) is no code change at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servers import Server, wait_for

V1 = """
import perdure as durable


def send(callback_id):
    pass


@durable.function
def approval(ctx, event):
    print("v1")
    answer = ctx.wait_for_callback(send)
    return {"answer": answer, "version": "v1"}
"""
# Another print and result: the same checkpoints and locals.
V1_REWORDED = V1.replace('print("v1")', 'print("version one")').replace('"version": "v1"', '"version": "v1 reworded"')
# A checkpoint and a local added before the callback: a snapshot of V1 cannot resume here.
RESHAPED = V1.replace('    print("v1")\n', '    ctx.checkpoint()\n    note = "new"\n    print(note)\n')


def get(server: Server, arn: str) -> dict[str, Any]:
    return json.loads(server.cli("executions", "get", arn).stdout)  # type: ignore[no-any-return]


def open_callback(server: Server, arn: str) -> str | None:
    events = json.loads(server.cli("executions", "history", arn).stdout)
    started = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
    return started[-1] if started else None


def suspended(server: Server) -> str:
    started = server.cli("invoke", "approval", "--payload", "{}", "--async")
    assert started.returncode == 0, started.stderr
    arn: str = json.loads(started.stdout)["DurableExecutionArn"]
    wait_for(lambda: open_callback(server, arn))
    return arn


def complete(server: Server, arn: str) -> None:
    callback_id = open_callback(server, arn)
    assert callback_id is not None
    done = server.cli("callback", "succeed", callback_id, "--result", '"yes"')
    assert done.returncode == 0, done.stderr


def test_a_reworded_function_resumes_and_a_reshaped_one_waits_paused_for_its_code(serve: Any, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(V1)
    server = serve(f"approval={app}:approval")
    reworded, reshaped = suspended(server), suspended(server)

    server.stop()
    app.write_text(V1_REWORDED)
    server.start()
    complete(server, reworded)
    wait_for(lambda: get(server, reworded)["Status"] == "SUCCEEDED")
    assert get(server, reworded)["Result"] == {"answer": "yes", "version": "v1 reworded"}

    server.stop()
    app.write_text(RESHAPED)
    server.start()
    complete(server, reshaped)
    wait_for(lambda: get(server, reshaped)["Status"] == "PAUSED")
    reason = get(server, reshaped)["PauseDetails"]["Reason"]
    assert reason.startswith("Code changed: approval changed while") and "code version" in reason
    # New executions run the new code meanwhile.
    fresh = suspended(server)
    complete(server, fresh)
    wait_for(lambda: get(server, fresh)["Status"] == "SUCCEEDED")

    server.stop()
    app.write_text(V1)
    server.start()
    wait_for(lambda: get(server, reshaped)["Status"] == "SUCCEEDED")
    assert get(server, reshaped)["Result"] == {"answer": "yes", "version": "v1"}
    assert "1 execution(s) of approval paused for a code change run again" in server.log.read_text()
