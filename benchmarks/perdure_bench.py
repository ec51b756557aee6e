"""Perdure's side of ``benchmarks/compare.py``: each workload, run on the embedded SQLite store.

Every function here runs in a child process of its own (``compare.py --child``) and returns
plain numbers (JSON). Handlers run under the real runtime (a ``Runtime`` with two worker
processes, as ``perdure serve`` has by default), except ``seq_seed_inprocess``, which runs seed-style
functions in this process with ``perdure.testing`` as ``benchmarks/seed_style.py`` does, and the
crash and memory workloads, which run ``perdure serve`` itself.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import compare_seed
import seed_flows

from perdure.client import Client
from perdure.protocol.records import Execution, Invocation, OperationStatus, OperationType
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.local import LocalRunner
from perdure.runtime.registry import FunctionSpec, Registry, seed_functions
from perdure.runtime.runner import Runtime
from perdure.runtime.workers import WorkerSettings
from perdure.service.executions import DurableService, StartRequest
from perdure.store import open_store
from perdure.store.sqlite import SQLiteStore
from perdure.testing import DurableTestRunner, _durable

HERE = Path(__file__).resolve().parent
HANDLERS = HERE / "handlers.py"
COMPARE_HANDLERS = HERE / "compare_handlers.py"
SEED_FLOWS = HERE / "seed_flows.py"
COMPARE_SEED = HERE / "compare_seed.py"
WAIT_SECONDS = 120.0
# At least 32 bytes, as the server asks of a secret.
SECRET = "compare-benchmark-secret-of-32-bytes-or-more"


def _specs(style: str) -> list[FunctionSpec]:
    """The functions a runtime serves: the AWS-SDK handlers, or the seed-style functions."""
    if style == "aws":
        return [
            FunctionSpec("steps", HANDLERS, "steps"),
            *(FunctionSpec(name, COMPARE_HANDLERS, name) for name in ("callback_then_stamp", "mark_then_hang", "wait_then_stamp")),
        ]
    return [*seed_functions(SEED_FLOWS), *seed_functions(COMPARE_SEED)]


def durability(db: Path, conn: sqlite3.Connection | None = None) -> str:
    """The journal mode and synchronous setting a Perdure store runs with (read from its connection)."""
    if conn is None:
        store = SQLiteStore(db)
        try:
            return durability(db, store._conn)  # private, read only to report the setting in use
        finally:
            store.close()
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
    return f"journal_mode={mode.upper()}, synchronous={sync}"


class Harness:
    """A ``Runtime`` with worker processes on its own SQLite database, told of every invocation's end."""

    def __init__(self, folder: Path, style: str, workers: int = 2, db_url: str | None = None) -> None:
        os.environ["PERDURE_SECRET"] = SECRET
        self.db = folder / f"perdure-{style}.db"
        self.db_url = db_url
        if db_url is None:
            db_url = f"sqlite:///{self.db}"
        else:
            os.chdir(folder)  # PostgreSQL's blob folder, .perdure/blobs, is made in the current one
        self.service = DurableService(open_store(db_url))
        settings = WorkerSettings(db_url, service_config=self.service.config, data_dir=folder)
        self.runtime = Runtime(self.service, Registry(_specs(style)), settings, workers=workers)
        self._lock = threading.Lock()
        self._ended: dict[str, threading.Event] = collections.defaultdict(threading.Event)
        self.runtime.add_listener(self._on_finished)
        self.runtime.start()

    def _event(self, arn: str) -> threading.Event:
        with self._lock:
            return self._ended[arn]

    def _on_finished(self, invocation: Invocation, execution: Execution | None) -> None:
        self._event(invocation.execution_arn).set()

    def start(self, function: str, payload: Any) -> str:
        # As the API's Invoke does: started and, with a free place, handed to a worker at once.
        return self.runtime.start_execution(StartRequest(function, json.dumps(payload))).execution.arn

    def wait(self, arn: str, terminal: bool = True) -> tuple[float, Execution]:
        """Waits until an invocation of ``arn`` ends leaving it SUCCEEDED (or, if not ``terminal``, at any
        invocation's end); any other end raises."""
        event = self._event(arn)
        while True:
            if not event.wait(WAIT_SECONDS):
                raise RuntimeError(f"execution {arn} did not get that far within {WAIT_SECONDS} s")
            ended = time.perf_counter()
            event.clear()
            execution = self.service.get_execution(arn)
            if execution.status.is_terminal:
                if execution.status.value != "SUCCEEDED":
                    raise RuntimeError(f"execution {arn} ended {execution.status.value}: {execution.error}")
                return ended, execution  # (when waiting for a suspension: it ran past it; callers check)
            if not terminal:
                return ended, execution

    def open_callback(self, arn: str) -> str:
        execution = self.service.get_execution(arn)
        with self.service.store.snapshot() as tx:
            ops = tx.list_operations(execution.id, 0, 1000)
        ids = [op.callback_id for op in ops if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED]
        if not ids or ids[0] is None:
            raise RuntimeError(f"execution {arn} waits for no callback")
        return ids[0]

    def durability(self) -> str:
        if self.db_url is not None:
            return pg_durability(self.db_url)
        store = self.service.store
        assert isinstance(store, SQLiteStore)
        return durability(self.db, store._conn)

    def stop(self) -> None:
        self.runtime.stop()
        self.service.store.close()


def pg_durability(url: str) -> str:
    """The settings that make a PostgreSQL commit durable, as the server reports them."""
    import psycopg

    with psycopg.connect(url) as conn:
        show = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")}  # type: ignore[index]
    return f"fsync={show['fsync']}, synchronous_commit={show['synchronous_commit']}"


def seq(folder: str, style: str, workflows: int, steps: int, warmup: int, db_url: str | None = None) -> dict[str, Any]:
    """(a) ``workflows`` workflows of ``steps`` steps, one at a time: each one's time, start to end.

    On SQLite by default; ``db_url`` names an empty PostgreSQL database to run on instead."""
    harness = Harness(Path(folder), style, db_url=db_url)
    try:
        times = []
        for number in range(warmup + workflows):
            began = time.perf_counter()
            ended, _ = harness.wait(harness.start("steps", {"count": steps, "run": number}))
            if number >= warmup:
                times.append(ended - began)
        return {"times": times, "durability": harness.durability()}
    finally:
        harness.stop()


def seq_seed_inprocess(folder: str, synchronous: str, workflows: int, steps: int, warmup: int) -> dict[str, Any]:
    """(a) seed style in this process (``LocalRunner``, as ``perdure.testing`` runs it, with the real
    clock): start each workflow and run it to its end, on SQLite with the given ``synchronous``."""
    db = Path(folder) / "perdure.db"
    store = SQLiteStore(db, synchronous=synchronous)
    local: LocalRunner | None = None
    service = DurableService(store, functions=lambda name: local.function_defaults(name) if local else None)
    local = LocalRunner(service, SnapshotCodec(SECRET.encode()), [])
    function = _durable(seed_flows.steps)
    try:
        times = []
        for number in range(warmup + workflows):
            began = time.perf_counter()
            arn = local.start(function, {"count": steps, "run": number}).arn
            ran = local.run_ready()
            elapsed = time.perf_counter() - began
            execution = service.get_execution(arn)
            if ran != 1 or execution.status.value != "SUCCEEDED":
                raise RuntimeError(f"seed workflow ran {ran} invocations and ended {execution.status.value}")
            if number >= warmup:
                times.append(elapsed)
        return {"times": times, "durability": durability(db, store._conn)}
    finally:
        store.close()


def concurrent(folder: str, style: str, workflows: int, steps: int, db_url: str | None = None) -> dict[str, Any]:
    """(b) ``workflows`` workflows of ``steps`` steps started at once: time from the first start to the last end."""
    harness = Harness(Path(folder), style, db_url=db_url)
    try:
        harness.wait(harness.start("steps", {"count": steps, "run": -1}))  # warm-up
        began = time.perf_counter()
        arns = [harness.start("steps", {"count": steps, "run": n}) for n in range(workflows)]
        last = max(harness.wait(arn)[0] for arn in arns)
        return {"seconds": last - began, "workflows": workflows, "steps": steps}
    finally:
        harness.stop()


def callback(folder: str, style: str, count: int, warmup: int) -> dict[str, Any]:
    """(c) A callback completed (the service call the API makes, then the runtime poked, as the API does)
    → the handler running again (its stamp), and → its invocation ending; one execution at a time."""
    harness = Harness(Path(folder), style)
    try:
        resumed, ended = [], []
        for number in range(warmup + count):
            arn = harness.start("callback_then_stamp", {"run": number})
            harness.wait(arn, terminal=False)
            callback_id = harness.open_callback(arn)
            began_wall, began = time.time(), time.perf_counter()
            harness.service.succeed_callback(callback_id, json.dumps("approved"))
            harness.runtime.poke()
            end, execution = harness.wait(arn)
            assert execution.result is not None
            if number >= warmup:
                resumed.append(json.loads(execution.result)["resumed_at"] - began_wall)
                ended.append(end - began)
        return {"resumed": resumed, "ended": ended}
    finally:
        harness.stop()


PROBES = 100


def timers(folder: str, style: str, count: int) -> dict[str, Any]:
    """(f) ``count`` executions each waiting for a timer due at one moment (whole seconds, so within
    one second of each other); lateness of each timer firing (its WaitSucceeded event after its
    scheduled end) and of its handler running again (its stamp after the scheduled end).

    The moment is set far enough ahead for all of them to be started and suspended first: 1.25 times
    what ``PROBES`` executions that suspend on a callback took to start here and now, plus 5 s.
    """
    harness = Harness(Path(folder), "aws")
    try:
        harness.wait(harness.start("callback_then_stamp", {"probe": -1}), terminal=False)  # a warm worker
        began = time.perf_counter()
        probes = [harness.start("callback_then_stamp", {"probe": n}) for n in range(PROBES)]
        for arn in probes:
            harness.wait(arn, terminal=False)
        per_start = (time.perf_counter() - began) / PROBES
        due = time.time() + 1.25 * per_start * count + 5.0
        began = time.perf_counter()
        arns = [harness.start("wait_then_stamp", {"due": due}) for _ in range(count)]
        suspended = sum(1 for arn in arns if not harness.wait(arn, terminal=False)[1].status.is_terminal)
        setup = time.perf_counter() - began
        ahead = due - time.time()
        for arn in arns:
            harness.wait(arn)
        fired, resumed, scheduled = [], [], []
        for arn in arns:
            history = harness.service.get_history(arn, max_items=1000).items
            started = next(e for e in history if e.event_type == "WaitStarted")
            succeeded = next(e for e in history if e.event_type == "WaitSucceeded")
            end = float(started.details["ScheduledEndTimestamp"])
            result = json.loads(harness.service.get_execution(arn).result or "{}")
            scheduled.append(end)
            fired.append(succeeded.timestamp - end)
            resumed.append(result["resumed_at"] - end)
        return {
            "fired": fired, "resumed": resumed, "setup_seconds": setup, "suspended_before_due": suspended,
            "seconds_left_after_setup": ahead, "scheduled_spread": max(scheduled) - min(scheduled),
        }
    finally:
        harness.stop()


def _free_port() -> int:
    """A port free on 127.0.0.1 now (the machine is shared: a fixed port may be someone else's server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(db: Path, port: int, target: str, log: Path) -> subprocess.Popen[bytes]:
    """``perdure serve --dev`` on 127.0.0.1 (in a session of its own, so that it can be killed alone)."""
    command = [
        sys.executable, "-m", "perdure", "serve", "--dev", "--host", "127.0.0.1", "--port", str(port),
        "--db", f"sqlite:///{db}", "--workers", "2", target,
    ]
    env = {**os.environ, "PERDURE_SECRET": SECRET}
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=out, env=env, cwd=db.parent, start_new_session=True)


def _until_healthy(process: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> float:
    """Polls ``GET /health`` every 2 ms; returns the wall-clock moment it first answers 200."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"perdure serve exited with {process.returncode}")
            try:
                if http.get("/health").status_code == 200:
                    return time.time()
            except httpx.TransportError:
                pass
            time.sleep(0.002)
    raise RuntimeError(f"perdure serve did not answer /health within {timeout} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _marks(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def crash(folder: str) -> dict[str, Any]:
    """(d) ``perdure serve`` SIGKILLed while a handler runs a step, then started again: seconds from
    the new server answering ``/health`` (and from its spawn) to the step running again."""
    base = Path(folder)
    db, marks, log = base / "crash.db", base / "marks.txt", base / "serve.log"
    target = f"mark_then_hang={COMPARE_HANDLERS}:mark_then_hang"
    port = _free_port()
    server = _serve(db, port, target, log)
    try:
        _until_healthy(server, port)
        with Client(f"http://127.0.0.1:{port}") as client:
            client.invoke("mark_then_hang", {"marks": str(marks), "hang": 3600}, wait=False)
        deadline = time.monotonic() + 60
        while not _marks(marks):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the handler never ran (see {log})")
            time.sleep(0.005)
        server.send_signal(signal.SIGKILL)  # the server alone: its workers die with it
        server.wait()
        time.sleep(0.2)
        spawned = time.time()
        server = _serve(db, port, target, log)
        ready = _until_healthy(server, port)
        deadline = time.monotonic() + 60
        while len(_marks(marks)) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the execution did not run again within 60 s (see {log})")
            time.sleep(0.002)
        again = _marks(marks)[1]
        return {"from_ready": again - ready, "from_spawn": again - spawned, "durability": durability(db)}
    finally:
        _stop(server)


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the server and its workers), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _suspend(folder: Path, count: int) -> tuple[float, list[float]]:
    """Makes ``count`` seed-style executions that wait for a callback, in-process; returns the seconds
    it took, and the seconds each one took on average in each tenth (to show whether it grows)."""
    began = time.perf_counter()
    tenth = max(1, count // 10)
    tenths: list[float] = []
    with DurableTestRunner(folder, secret=SECRET.encode()) as runner:
        function = _durable(compare_seed.suspended)
        ran = 0
        mark = time.perf_counter()
        for number in range(count):
            runner.local.start(function, None)
            if number % 16 == 15 or number == count - 1:
                ran += runner.local.run_ready()  # leases up to 16 at a time
            if number % tenth == tenth - 1:
                now = time.perf_counter()
                tenths.append((now - mark) / tenth)
                mark = now
        if ran != count:
            raise RuntimeError(f"ran {ran} first invocations of {count}")
    return time.perf_counter() - began, tenths


def suspended(folder: str, few: int, many: int, settle: float) -> dict[str, Any]:
    """(e) ``perdure serve`` on a database with ``few`` and then ``many`` suspended executions: its RSS
    (server + workers, after ``settle`` s and after listing) and the time to list them all (every page)."""
    results: dict[str, Any] = {}
    for label, count in (("few", few), ("many", many)):
        base = Path(folder) / label
        base.mkdir()
        results[f"{label}_setup_seconds"], results[f"{label}_tenths"] = _suspend(base, count)
        port = _free_port()
        server = _serve(base / "perdure.db", port, str(COMPARE_SEED), base / "serve.log")
        try:
            _until_healthy(server, port)
            time.sleep(settle)
            results[f"{label}_rss_kib"] = _rss_kib(server.pid)
            with Client(f"http://127.0.0.1:{port}") as client:
                began = time.perf_counter()
                listed = client.list_executions("suspended", status="RUNNING")
                results[f"{label}_list_seconds"] = time.perf_counter() - began
            if len(listed) != count:
                raise RuntimeError(f"listed {len(listed)} suspended executions of {count}")
            results[f"{label}_rss_after_list_kib"] = _rss_kib(server.pid)
            results[f"{label}_count"] = count
        finally:
            _stop(server)
    return results
