"""Benchmark: how soon `perdure serve` acts, on the embedded SQLite store (workloads c-f of issue 6).

Runs real `perdure serve --dev` processes (2 worker processes, AWS-SDK handlers from
``benchmarks/latency_handlers.py``, which note when they are entered) and measures:

- callback: a callback completed over HTTP (SendDurableExecutionCallbackSuccess) until its
  handler is entered again, from the request being sent and from its reply;
- restart: the server SIGKILLed while a handler runs, started again: when the handler is
  entered again, against when the new server answers /health (and against the restart command);
- suspended: server memory (RSS) with a few and with ``--suspended`` executions suspended on a
  callback, and the time to list them all through ListDurableExecutionsByFunction pages of 1,000;
- timers: ``--timers`` executions suspended in a wait, all due at one moment: how late each
  wait is recorded SUCCEEDED (its end time) and seen committed by another process polling the
  database every 10 ms, and how late each handler is entered again (bounded by what two
  workers get through).

The suspended executions are made in this process through the service (the timers' ones by
running their handler once each), which takes a few minutes for 100,000; the waits are then
moved to one moment in the database directly.

    python benchmarks/latency.py [--callbacks 200] [--restarts 5] [--suspended 100000] [--timers 10000] [--write docs/benchmarks.md]

With ``--write``, the results replace the block between the ``latency`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httpx

from perdure.protocol.records import InvocationOutput, InvocationStatus, OperationUpdate
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import sdk_tuning
from perdure.runtime.invoker import run_invocation
from perdure.runtime.registry import FunctionSpec, load_handler
from perdure.service.executions import DurableService, StartRequest
from perdure.store import open_store

HANDLERS = Path(__file__).resolve().parent / "latency_handlers.py"
FUNCTIONS = ("callback", "timer", "held")
START, END = "<!-- latency:start -->", "<!-- latency:end -->"


class Server:
    """A `perdure serve --dev` process on a free loopback port, over one SQLite file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = f"sqlite:///{workdir / 'perdure.db'}"
        self.marks = workdir / "marks.log"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LATENCY_MARKS": str(self.marks)}
        self.process: subprocess.Popen[bytes] | None = None
        self.launched = 0.0

    def start(self) -> float:
        """Starts the server; returns when /health first answered."""
        targets = [f"{name}={HANDLERS}:{name}" for name in FUNCTIONS]
        command = [sys.executable, "-m", "perdure", "serve", *targets, "--dev", "--db", self.db, "--port", str(self.port)]
        self.launched = time.time()
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.time()
            except httpx.TransportError:
                time.sleep(0.005)
            if self.process.poll() is not None:
                raise RuntimeError(f"perdure serve exited: see {self.workdir / 'server.log'}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def invoke(self, function: str, payload: dict[str, object]) -> str:
        reply = httpx.post(
            f"{self.url}/2015-03-31/functions/{function}/invocations",
            headers={"X-Amz-Invocation-Type": "Event"},
            content=json.dumps(payload),
            timeout=30,
        )
        reply.raise_for_status()
        return reply.headers["X-Amz-Durable-Execution-Arn"]

    def entered(self, key: str) -> list[float]:
        """When the handler of the execution with payload ``n == key`` was entered, in order."""
        if not self.marks.exists():
            return []
        lines = (line.split() for line in self.marks.read_text().splitlines())
        return [float(parts[-1]) for parts in lines if parts[0] == "enter" and parts[1] == key]

    def callback_id(self, key: str) -> str | None:
        if not self.marks.exists():
            return None
        for parts in (line.split() for line in self.marks.read_text().splitlines()):
            if parts[0] == "callback" and parts[1] == key:
                return parts[2]
        return None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        time.sleep(interval)


def callbacks(count: int) -> list[str]:
    server = Server(Path(tempfile.mkdtemp(prefix="latency-callback-")))
    server.start()
    sent, replied = [], []
    try:
        with httpx.Client(timeout=30) as client:
            for n in range(count):
                key = str(n)
                arn = urllib.parse.quote(server.invoke("callback", {"n": n}), safe="")
                # Completed once the first invocation has ended, suspended: a callback completed
                # while it runs would wait for its end, which is not what is measured here.
                history = f"{server.url}/2025-12-01/durable-executions/{arn}/history"
                until(lambda: "InvocationCompleted" in client.get(history).text, interval=0.02)
                callback_id = server.callback_id(key)
                began = time.time()
                client.post(f"{server.url}/2025-12-01/durable-execution-callbacks/{callback_id}/succeed", content=b'"ok"').raise_for_status()
                answered = time.time()
                until(lambda: len(server.entered(key)) >= 2)
                again = server.entered(key)[1]
                sent.append(again - began)
                replied.append(again - answered)
    finally:
        server.stop()
    return [f"| (c) callback completed → handler entered again, from the request | {summary(sent)} |",
            f"| (c) the same, from the request's reply | {summary(replied)} |"]


def restarts(count: int) -> list[str]:
    server = Server(Path(tempfile.mkdtemp(prefix="latency-restart-")))
    server.start()
    after_ready, after_launch, startup = [], [], []
    try:
        for n in range(count):
            key = str(n)
            arn = server.invoke("held", {"n": n})
            until(lambda: len(server.entered(key)) == 1)
            time.sleep(0.2)
            server.kill()
            ready = server.start()
            until(lambda: len(server.entered(key)) >= 2, timeout=120)
            again = server.entered(key)[1]
            after_ready.append(again - ready)
            after_launch.append(again - server.launched)
            startup.append(ready - server.launched)
            quoted = urllib.parse.quote(arn, safe="")
            httpx.post(f"{server.url}/2025-12-01/durable-executions/{quoted}/stop", content=b"{}", timeout=30).raise_for_status()
    finally:
        server.stop()
    return [f"| (d) killed server restarted → handler entered again, from /health answering | {summary(after_ready)} |",
            f"| (d) the same, from the restart command | {summary(after_launch)} |",
            f"| (d) restart command → /health answering | {summary(startup)} |"]


def _suspend(db: str, function: str, count: int, env: dict[str, str]) -> None:
    """Makes ``count`` suspended executions of ``function`` in ``db``, in this process."""
    os.environ["LATENCY_MARKS"] = env["LATENCY_MARKS"]
    service = DurableService(open_store(db))
    for n in range(count):
        service.start_execution(StartRequest(function, json.dumps({"n": n, "wait": 3600}), f"{function}-{n}"))
    if function == "timer":
        sdk_tuning.apply()
        spec = FunctionSpec(function, HANDLERS, function)
        handler, codec = load_handler(spec), SnapshotCodec(b"unused by AWS-SDK handlers")
        while batch := service.lease("setup", [function], 500, 3600):
            for invocation in batch:
                report = run_invocation(service, spec, handler, invocation, codec)
                assert report.output is not None
                service.complete_invocation(invocation, report.output)
    else:
        start = OperationUpdate.from_wire({"Id": "approval", "Type": "CALLBACK", "Action": "START", "Name": "approval"})
        while batch := service.lease("setup", [function], 500, 3600):
            for invocation in batch:
                service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, [start])
                service.complete_invocation(invocation, InvocationOutput(InvocationStatus.PENDING))
    service.store.close()


def _rss_mib(pid: int) -> tuple[float, float]:
    """The RSS of process ``pid``, and of it with its children, in MiB."""
    table = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True).stdout
    rows = [tuple(int(field) for field in line.split()) for line in table.splitlines()]
    tree = {pid}
    for _ in range(3):
        tree |= {p for p, parent, _rss in rows if parent in tree}
    own = sum(rss for p, _, rss in rows if p == pid)
    return own / 1024, sum(rss for p, _, rss in rows if p in tree) / 1024


def suspended(count: int) -> list[str]:
    lines = []
    for size in (100, count):
        server = Server(Path(tempfile.mkdtemp(prefix="latency-suspended-")))
        began = time.monotonic()
        _suspend(server.db, "callback", size, server.env)
        made = time.monotonic() - began
        server.start()
        try:
            time.sleep(3)
            idle = _rss_mib(server.process.pid)  # type: ignore[union-attr]
            pages: list[float] = []
            listed, marker = 0, None
            with httpx.Client(timeout=60) as client:
                while True:
                    params = {"MaxItems": "1000", **({"Marker": marker} if marker else {})}
                    t = time.perf_counter()
                    reply = client.get(f"{server.url}/2025-12-01/functions/callback/durable-executions", params=params)
                    pages.append(time.perf_counter() - t)
                    reply.raise_for_status()
                    body = reply.json()
                    listed += len(body["DurableExecutions"])
                    marker = body.get("NextMarker")
                    if not marker:
                        break
            after = _rss_mib(server.process.pid)  # type: ignore[union-attr]
        finally:
            server.stop()
        lines.append(
            f"| (e) {size:,} suspended (made in {made:.0f} s): server RSS idle, after listing | "
            f"{idle[0]:.0f} MiB, {after[0]:.0f} MiB (with workers {after[1]:.0f} MiB) |"
        )
        lines.append(
            f"| (e) listing all {listed:,} in {len(pages)} pages of 1,000 | total {sum(pages):.2f} s; page "
            f"p50 {percentile(pages, 0.5) * 1000:.0f} ms, last {pages[-1] * 1000:.0f} ms |"
        )
    return lines


def timers(count: int) -> list[str]:
    server = Server(Path(tempfile.mkdtemp(prefix="latency-timers-")))
    _suspend(server.db, "timer", count, server.env)
    due = time.time() + 8.0
    path = server.workdir / "perdure.db"
    watcher = sqlite3.connect(path, timeout=60)
    watcher.execute("UPDATE timers SET due_time = ? WHERE kind = 'wait'", (due,))
    watcher.commit()
    first_event = watcher.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
    server.start()
    # Cheap to poll: the newest event's rowid, every 10 ms. Events are rows in the order they
    # were written, so each WaitSucceeded was committed by the first sample that reached it.
    samples: list[tuple[float, int]] = []
    try:
        last_check = 0.0
        while True:
            samples.append((time.time(), watcher.execute("SELECT MAX(rowid) FROM events").fetchone()[0]))
            if samples[-1][0] - last_check > 0.5:
                last_check = samples[-1][0]
                if watcher.execute("SELECT COUNT(*) FROM timers WHERE kind = 'wait'").fetchone()[0] == 0:
                    break
                if last_check > due + 300:
                    raise TimeoutError("the waits did not all fire")
            time.sleep(0.01)
        samples.append((time.time(), watcher.execute("SELECT MAX(rowid) FROM events").fetchone()[0]))
        recorded: list[float] = []
        seen: list[float] = []
        index = 0
        for rowid, body in watcher.execute("SELECT rowid, body FROM events WHERE rowid > ? ORDER BY rowid", (first_event,)):
            event = json.loads(body)
            if event["type"] != "WaitSucceeded":
                continue
            while samples[index][1] < rowid:
                index += 1
            recorded.append(event["time"] - due)
            seen.append(samples[index][0] - due)
        until(lambda: server.marks.read_text().count("enter ") >= 2 * count, timeout=900)
        entries: dict[str, list[float]] = {}
        for parts in (line.split() for line in server.marks.read_text().splitlines()):
            if parts[0] == "enter":
                entries.setdefault(parts[1], []).append(float(parts[-1]))
        again = [times[1] - due for times in entries.values()]
    finally:
        server.stop()
        watcher.close()
    return [
        f"| (f) {count:,} waits due at one moment: recorded SUCCEEDED (end time) − due | {summary(recorded)} |",
        f"| (f) the same, seen committed by a process polling every 10 ms − due | {summary(seen)} |",
        f"| (f) handler entered again − due (two workers) | {summary(again)} |",
    ]


def write(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + START + "\n" + block + END + rest.split(END, 1)[1]
    else:
        text += f"\n{START}\n{block}{END}\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--suspended", type=int, default=100_000)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows = ["| Measure | Result |", "|---|---|"]
    for run, count in ((callbacks, args.callbacks), (restarts, args.restarts), (suspended, args.suspended), (timers, args.timers)):
        if count:
            for row in run(count):
                print(row, flush=True)
                rows.append(row)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"Measured {when} on {platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}, "
        "SQLite in WAL mode with `synchronous=NORMAL` (the default), `perdure serve` with 2 worker processes.\n\n"
        + "\n".join(rows)
        + "\n"
    )
    if args.write:
        write(args.write, block)


if __name__ == "__main__":
    main()
