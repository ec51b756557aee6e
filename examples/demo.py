"""The order workflow end to end, through the `perdure` command line, on embedded SQLite.

First the seed's own `process_order` (examples/order_processing.py): `perdure run` runs it
on the default database `.perdure/perdure.db`, it charges the order and waits for a human's
approval; the demo approves it from another process with `perdure callback succeed --db`, and
the run finishes. Then the same workflow written with AWS's SDK (examples/aws/) is served from
its template with `perdure serve`, started, approved over HTTP, and its history printed.
Everything runs in a fresh temporary folder; each command is printed before it runs.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DB = "sqlite:///.perdure/perdure.db"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def perdure(*args: str, cwd: Path | None = None) -> Any:
    """Runs a `perdure` command, echoing it, and returns its JSON output."""
    print(f"$ perdure {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "perdure", *args], capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"perdure {args[0]} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def wait_until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"Gave up waiting for {what} after {timeout:.0f} s.")


def seed_style(workdir: Path) -> None:
    print("== The seed's process_order, run in place with `perdure run` ==\n", flush=True)
    run = ["run", f"{HERE / 'order_processing.py'}:process_order", "--payload", '{"order_id": "A-1"}', "--name", "order-A-1"]
    print(f"$ perdure {shlex.join(run)} &", flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "perdure", *run], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None and process.stdout is not None
    callback_id = None
    for line in process.stderr:
        print(f"  | {line.rstrip()}", flush=True)
        if line.startswith("Waiting for callback "):
            callback_id = line.split()[3].rstrip(".")
            break
    if callback_id is None:
        raise SystemExit(f"perdure run ended without asking for approval (exit {process.wait()}).")
    print("\nThe order is validated and charged, and waits for a human. Approving it from another process:\n")
    perdure("callback", "succeed", callback_id, "--result", '{"approved": true}', "--db", DEFAULT_DB, cwd=workdir)
    output, errors = process.communicate(timeout=60)
    for line in errors.splitlines():
        print(f"  | {line}")
    execution = json.loads(output)
    print(f"\nStatus: {execution['Status']}")
    print(f"Result: {json.dumps(execution.get('Result') or execution.get('Error'))}\n")
    if execution["Status"] != "SUCCEEDED":
        raise SystemExit(1)


def aws_style(workdir: Path) -> None:
    print("== The same order written with aws-durable-execution-sdk-python, under `perdure serve` ==\n")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    serve = ["serve", "--template", str(HERE / "aws" / "template.yaml"), "--port", str(port), "--dev"]
    print(f"$ perdure {shlex.join(serve)} &", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "perdure", *serve], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until("the server", lambda: _reachable(port), timeout=30)
        client = ("--endpoint", endpoint)
        order = {"order_id": "A-1001", "items": ["book", "lamp"]}
        started = perdure("invoke", "orders", "--payload", json.dumps(order), "--async", "--name", "order-A-1001", *client)
        arn = started["DurableExecutionArn"]
        print(f"Started {arn} ({started['Status']})\n")

        def pending_callback() -> str | None:
            events = perdure("executions", "history", arn, *client)
            ids = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
            return ids[0] if ids else None

        callback_id = wait_until("the approval request", pending_callback)
        print(f"\nThe order is charged and waits for a human: callback {callback_id}. Approving it.\n")
        perdure("callback", "succeed", callback_id, "--result", '{"approved": true, "by": "demo"}', *client)

        def finished() -> dict[str, Any] | None:
            execution: dict[str, Any] = perdure("executions", "get", arn, *client)
            return execution if execution["Status"] != "RUNNING" else None

        execution = wait_until("the order to finish", finished)
        print(f"\nStatus: {execution['Status']}")
        print(f"Result: {json.dumps(execution.get('Result') or execution.get('Error'), indent=2)}\n")
        print("History:")
        for event in perdure("executions", "history", arn, *client):
            label = event.get("Name") or ""
            print(f"  {event['EventId']:>3}  {event['EventType']:<22} {label}")
        if execution["Status"] != "SUCCEEDED":
            raise SystemExit(1)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="perdure-demo-"))
    seed_style(workdir)
    aws_style(workdir)


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
