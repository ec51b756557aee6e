"""Section (h) of ``benchmarks/compare.py``: N executions, each ONE step that sleeps 1 s (an LLM or
HTTP call's stand-in), all started at once; wall time from the first start to the last end, and
peak memory.

Perdure's side is here (``perdure_io``): seed-style ``one_slow_step`` (``compare_io_seed.py``) under
the real runtime with two worker processes and its default concurrency per process, on SQLite;
DBOS's is ``rivals/dbos_io.py``. Both run in a child process of their own and share the helpers
below: a sampler of the resident memory of this process and all its descendants (the runtime
and its worker processes; DBOS's one process), and a time cap, past which the run is reported as
not finished (and the child exits at once rather than wait for thousands of threads).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

WARMUP = 4  # executions of a 0.2 s step run first, at once (so that both Perdure workers are up)


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, from every one of its threads (a process started from another
    thread than the main one is listed under that thread)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def rss_kib(pid: int, skip: int | None = None) -> tuple[int, int]:
    """(Resident memory in KiB of ``pid`` and all its descendants but ``skip``; how many processes)."""
    total, count = 0, 0
    todo = [pid]
    while todo:
        p = todo.pop()
        if p == skip:
            continue
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    count += 1
                    break
        except OSError:
            continue  # it ended meanwhile
        todo += _children(p)
    return total, count


class PeakRSS:
    """Samples :func:`rss_kib` of this process every ``every`` seconds and keeps the highest.

    The sampler is a process of its own (left out of what it sums): reading ``/proc`` for each of
    a thousand threads took a tenth of the measured process's interpreter time when it ran on a
    thread there.
    """

    def __init__(self, every: float = 0.05) -> None:
        self._sampler = subprocess.Popen(
            [sys.executable, __file__, str(os.getpid()), str(every)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        first = self._sampler.stdout.readline()  # type: ignore[union-attr]
        self.idle_kib = json.loads(first)["peak_kib"]
        self.peak_kib, self.processes = self.idle_kib, 0

    def stop(self) -> None:
        out, _ = self._sampler.communicate("stop\n", timeout=60)
        got = json.loads(out.splitlines()[-1])
        self.peak_kib, self.processes = got["peak_kib"], got["processes"]


def _sample(pid: int, every: float) -> None:
    """The sampler process: prints the first sample, then the peak once a line (or EOF) comes on stdin."""
    me = os.getpid()
    peak, processes = rss_kib(pid, skip=me)
    print(json.dumps({"peak_kib": peak, "processes": processes}), flush=True)
    while not select.select([sys.stdin], [], [], every)[0]:
        kib, count = rss_kib(pid, skip=me)
        if kib > peak:
            peak, processes = kib, count
    kib, count = rss_kib(pid, skip=me)
    if kib > peak:
        peak, processes = kib, count
    print(json.dumps({"peak_kib": peak, "processes": processes}), flush=True)


def finish(folder: str, result: dict[str, Any]) -> dict[str, Any]:
    """Returns ``result``; if the run did not finish, writes it where ``compare.py --child`` would and
    exits at once (thousands of threads still sleeping or waiting would hold up a normal exit)."""
    if not result["finished"]:
        (Path(folder) / "result.json").write_text(json.dumps(result))
        os._exit(0)
    return result


def perdure_io(folder: str, executions: int, seconds: float, cap: float) -> dict[str, Any]:
    """``executions`` executions of ``one_slow_step`` started at once under the runtime (2 workers)."""
    from perdure.protocol.records import Execution, Invocation
    from perdure.runtime.registry import Registry, seed_functions
    from perdure.runtime.runner import Runtime
    from perdure.runtime.workers import DEFAULT_SLOTS, WorkerSettings
    from perdure.service.executions import DurableService, StartRequest
    from perdure.store import open_store

    from perdure_bench import SECRET, durability

    os.environ["PERDURE_SECRET"] = SECRET
    base = Path(folder)
    db = base / "perdure-io.db"
    service = DurableService(open_store(f"sqlite:///{db}"))
    settings = WorkerSettings(f"sqlite:///{db}", service_config=service.config, data_dir=base)
    runtime = Runtime(service, Registry(seed_functions(Path(__file__).with_name("compare_io_seed.py"))), settings, workers=2)
    lock = threading.Lock()
    ended: dict[str, float] = {}  # the latest invocation end of each execution
    changed = threading.Condition(lock)

    def on_finished(invocation: Invocation, execution: Execution | None) -> None:
        now = time.perf_counter()
        with changed:
            ended[invocation.execution_arn] = now

    runtime.add_listener(on_finished)
    runtime.start()

    def start(payload: dict[str, Any]) -> str:
        arn = service.start_execution(StartRequest("one_slow_step", json.dumps(payload))).execution.arn
        runtime.poke()
        return arn

    def wait_all(arns: list[str], deadline: float) -> bool:
        """Until every one of ``arns`` ended SUCCEEDED (False at the deadline); any other end raises.
        Looks every 50 ms (the end times come from the listener, so this costs no precision)."""
        pending = list(arns)
        while pending:
            with changed:
                while not all(arn in ended for arn in pending):
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        return False
                    changed.wait(min(left, 0.05))
                seen = {arn: ended[arn] for arn in pending}
            suspended = []
            for arn in pending:
                execution = service.get_execution(arn)
                if not execution.status.is_terminal:
                    suspended.append(arn)
                elif execution.status.value != "SUCCEEDED":
                    raise RuntimeError(f"execution {arn} ended {execution.status.value}: {execution.error}")
            with changed:
                for arn in suspended:
                    if ended.get(arn) == seen[arn]:
                        del ended[arn]  # it suspended: wait for its next end
            pending = suspended
        return True

    result: dict[str, Any] | None = None
    try:
        if not wait_all([start({"seconds": 0.2, "run": -n}) for n in range(1, WARMUP + 1)], time.perf_counter() + 60):
            raise RuntimeError("the warm-up executions did not end within 60 s")
        # Both worker processes up before the clock starts (the pool starts the second once the first
        # has work), as on a server that has been running; ``_workers`` is private, only read here.
        deadline = time.monotonic() + 60
        while sum(1 for w in runtime.pool._workers if w.ready) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the second worker process did not start within 60 s")
            wait_all([start({"seconds": 0.2, "run": -n}) for n in range(1, WARMUP + 1)], time.perf_counter() + 60)
        peak = PeakRSS()
        began = time.perf_counter()
        requests = [StartRequest("one_slow_step", json.dumps({"seconds": seconds, "run": n})) for n in range(executions)]
        if hasattr(runtime, "start_executions"):
            # In transactions of 100 (one before issue 14's burst work), handed to the workers' free places as each commits.
            arns = [result.execution.arn for result in runtime.start_executions(requests)]
        else:
            # A tree from before batched starts (run with --source for a before/after): one by one.
            arns = [start(json.loads(request.input_payload or "{}")) for request in requests]
        started = time.perf_counter() - began
        finished = wait_all(arns, began + cap)
        peak.stop()
        with changed:
            done = sum(1 for arn in arns if arn in ended)
            last = max((ended[arn] for arn in arns if arn in ended), default=began)
        result = {
            "finished": finished, "executions": executions, "ended": done, "cap": cap,
            "seconds": (last - began) if finished else cap, "start_seconds": started,
            "peak_rss_kib": peak.peak_kib, "idle_rss_kib": peak.idle_kib, "processes": peak.processes,
            "slots": DEFAULT_SLOTS, "durability": runtime_durability(service, db, durability),
        }
    finally:
        try:
            runtime.stop()
        except OSError as error:
            # Kept apart from the measurement, which was over when the runtime was stopped.
            if result is None:
                raise
            result["shutdown_error"] = f"{type(error).__name__}: {error}"
        service.store.close()
    assert result is not None
    return finish(folder, result)


def runtime_durability(service: Any, db: Path, durability: Any) -> str:
    return str(durability(db, service.store._conn))  # private, read only to report the setting in use


if __name__ == "__main__":
    _sample(int(sys.argv[1]), float(sys.argv[2]))
