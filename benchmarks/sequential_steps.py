"""Benchmark: sequential N-step workflows on the embedded SQLite store.

Runs workflows of ``--steps`` trivial steps one after another (each started, run by one warm
worker process, and awaited before the next starts), with Perdure's SDK tuning (the default)
and without it (the SDK's own fixed waits, restored by ``benchmarks/handlers.py``), alternating
the two in rounds so machine noise hits both. It also times the floor under every checkpoint:
one small SQLite write transaction in WAL mode.

    python benchmarks/sequential_steps.py [--workflows 200] [--steps 10] [--write docs/benchmarks.md]

With ``--write``, the results replace the block between the ``results`` markers of that file
(or make a new file if it has none), leaving the text around it alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from perdure.protocol.records import Execution, Invocation
from perdure.runtime import sdk_tuning
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.runner import Runtime
from perdure.runtime.workers import WorkerSettings
from perdure.service.executions import DurableService, StartRequest
from perdure.store import open_store

HANDLERS = Path(__file__).resolve().with_name("handlers.py")
UNTUNED_ENV = "PERDURE_BENCH_UNTUNED"  # read by benchmarks/handlers.py in the worker
START_MARK, END_MARK = "<!-- results:start -->", "<!-- results:end -->"
WAIT_SECONDS = 60.0


class Bench:
    """A Runtime with one worker on its own database, running one workflow at a time."""

    def __init__(self, folder: Path, label: str, untuned: bool) -> None:
        self.label, self.untuned = label, untuned
        db_url = f"sqlite:///{folder / ('untuned.db' if untuned else 'tuned.db')}"
        self.service = DurableService(open_store(db_url))
        registry = Registry([FunctionSpec("bench", HANDLERS, "steps")])
        settings = WorkerSettings(db_url, service_config=self.service.config)
        self.runtime = Runtime(self.service, registry, settings, workers=1)
        self._ended = threading.Event()
        self.runtime.add_listener(self._on_finished)
        self.runtime.start()
        self.times: list[float] = []

    def _on_finished(self, invocation: Invocation, execution: Execution | None) -> None:
        self._ended.set()  # workflows run one at a time, so any ended invocation is ours

    def run(self, steps: int) -> tuple[float, dict[str, float]]:
        """Runs one workflow to its end; returns its time (start to last invocation's end) and result."""
        self._ended.clear()
        began = time.perf_counter()
        arn = self.service.start_execution(StartRequest("bench", json.dumps({"count": steps}))).execution.arn
        self.runtime.poke()
        while True:
            if not self._ended.wait(WAIT_SECONDS):
                raise RuntimeError(f"{self.label}: workflow {arn} did not end within {WAIT_SECONDS} s")
            ended = time.perf_counter()
            self._ended.clear()
            execution = self.service.get_execution(arn)  # outside the timed span
            if execution.status.is_terminal:
                break
        if execution.status.value != "SUCCEEDED" or execution.result is None:
            raise RuntimeError(f"{self.label}: workflow {arn} ended {execution.status.value}: {execution.error}")
        return ended - began, json.loads(execution.result)

    def warm_up(self, steps: int, count: int) -> None:
        """Starts the worker (with or without the SDK tuning) and checks which waits it runs with."""
        if self.untuned:
            os.environ[UNTUNED_ENV] = "1"  # the spawned worker copies the environment at start
        try:
            for _ in range(count):
                _, result = self.run(steps)
        finally:
            os.environ.pop(UNTUNED_ENV, None)
        expected = 0.1 if self.untuned else sdk_tuning.TUNED["_STOP_SIGNAL_POLL_SECONDS"]
        if result["stop_poll_seconds"] != expected:
            raise RuntimeError(f"{self.label}: the worker runs with {result}, expected stop poll {expected}")

    def stop(self) -> None:
        self.runtime.stop()
        self.service.store.close()


@dataclass(frozen=True)
class Summary:
    label: str
    workflows: int
    median_ms: float
    p90_ms: float
    workflows_per_s: float
    steps_per_s: float
    us_per_step: float


def summarize(bench: Bench, steps: int) -> Summary:
    times = bench.times
    per_s = len(times) / sum(times)
    median = statistics.median(times)
    return Summary(
        bench.label, len(times), median * 1e3, statistics.quantiles(times, n=10)[8] * 1e3,
        per_s, per_s * steps, median / steps * 1e6,
    )


def commit_floor(folder: Path, synchronous: str, count: int = 2000) -> float:
    """Median µs of one BEGIN IMMEDIATE / small INSERT / COMMIT in WAL mode."""
    conn = sqlite3.connect(folder / f"floor-{synchronous}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    times = []
    for i in range(count):
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"value-{i}",))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - began)
    conn.close()
    return statistics.median(times) * 1e6


def _lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines()


def _mount_of(path: Path) -> tuple[str, str, str]:
    """Returns (device, filesystem type, mount point) of the mount holding ``path``."""
    best = ("?", "?", "")
    real = str(path.resolve())
    for line in _lines("/proc/mounts"):
        device, mount, fstype = line.split()[:3]
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[2]):
            best = (device, fstype, mount)
    return best


def machine(folder: Path, load_before: float) -> list[tuple[str, str]]:
    """The machine and versions, as table rows (with the 1-minute load average before and after)."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    mem_kb = int(next(line.split()[1] for line in _lines("/proc/meminfo") if line.startswith("MemTotal")))
    device, fstype, mount = _mount_of(folder)
    rotational = Path(f"/sys/block/{Path(device).name}/queue/rotational")
    disk = f"{device}, {fstype} (mounted on {mount}"
    disk += f"; kernel rotational flag {rotational.read_text().strip()})" if rotational.exists() else ")"
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores visible"),
        ("Memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Load average (1 min), before / after the run", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"),
        ("Database folder", f"{folder.parent} on {disk}"),
        ("Python", platform.python_version()),
        ("perdure", metadata.version("perdure")),
        ("aws-durable-execution-sdk-python", metadata.version("aws-durable-execution-sdk-python")),
        ("SQLite library", sqlite3.sqlite_version),
        ("SQLite durability", "WAL, synchronous=NORMAL (no committed transaction is lost when a process "
         "crashes; the last ones can be lost on power loss)"),
    ]


def report(
    args: argparse.Namespace, rows: list[tuple[str, str]], summaries: list[Summary], floors: dict[str, float]
) -> str:
    """The results block, in Markdown."""
    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()}: {args.workflows} workflows of {args.steps} steps per "
        f"variant, in {args.rounds} alternating rounds, after {args.warmup} warm-up workflows per variant.",
        "",
        "| | |", "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "| Variant | Workflows | Median workflow | p90 workflow | Workflows/s | Steps/s | µs per step |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {s.label} | {s.workflows} | {s.median_ms:.2f} ms | {s.p90_ms:.2f} ms | {s.workflows_per_s:.1f} "
            f"| {s.steps_per_s:.0f} | {s.us_per_step:.0f} |"
            for s in summaries
        ),
        "",
        "| Floor: one SQLite write transaction (BEGIN IMMEDIATE, small INSERT, COMMIT; median of 2000) | |",
        "|---|---:|",
        *(f"| WAL, synchronous={mode} | {us:.1f} µs |" for mode, us in floors.items()),
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, block: str, start: str = START_MARK, end: str = END_MARK) -> None:
    """Replaces the block between ``start`` and ``end`` in ``path``, or appends the block.

    Every benchmark writes its own marked block, so reruns leave the prose around it alone.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=200, help="workflows per variant (default 200)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow (default 10)")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the variants (default 10)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up workflows per variant (default 5)")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary database folder")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to put the results in")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="perdure-bench-", dir=args.dir))
    benches: list[Bench] = []
    try:
        benches.append(Bench(folder, "tuned (default)", untuned=False))
        benches.append(Bench(folder, "untuned (SDK waits)", untuned=True))
        for bench in benches:
            bench.warm_up(args.steps, args.warmup)
        share, extra = divmod(args.workflows, args.rounds)
        per_round = [share + (r < extra) for r in range(args.rounds)]
        for number, count in enumerate(per_round):
            order = benches if number % 2 == 0 else benches[::-1]
            for bench in order:
                bench.times.extend(bench.run(args.steps)[0] for _ in range(count))
        summaries = [summarize(bench, args.steps) for bench in benches]
        floors = {mode: commit_floor(folder, mode) for mode in ("NORMAL", "FULL")}
        block = report(args, machine(folder, load_before), summaries, floors)
    finally:
        for bench in benches:
            bench.stop()
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.write(block)
    if args.write:
        write(args.write, block)


if __name__ == "__main__":
    main()
