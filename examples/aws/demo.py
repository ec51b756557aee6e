"""The order workflow end to end, through the `perdure` command line.

It serves `template.yaml` on a fresh SQLite database, starts an order, waits until the
order asks for approval, approves it as a human would, and prints the result and the
execution's history. Each command it runs is printed first, so you can run them yourself.
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def perdure(*args: str) -> Any:
    """Runs a `perdure` command, echoing it, and returns its JSON output."""
    print(f"$ perdure {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "perdure", *args], capture_output=True, text=True)
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


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="perdure-demo-"))
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    db = f"sqlite:///{workdir / 'perdure.db'}"
    serve = ["serve", "--template", str(HERE / "template.yaml"), "--db", db, "--port", str(port)]
    print(f"$ perdure {shlex.join(serve)} &", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "perdure", *serve], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
