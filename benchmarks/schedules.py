"""Benchmark: 10,000 schedules of 1 minute on one server: tick lateness and CPU per tick.

A real ``perdure serve --dev`` on SQLite in a temporary folder serves one trivial seed-style
function; ``PUT /perdure/v1/functions/tick/schedules`` gives it N schedules of ``rate(1 minute)``
in one request, so all N fall due in the same second every minute (the worst case: a burst
of N ticks at once, where schedules made at different times spread out). The server fires
them and its workers run the executions they start, for the given minutes.

Then, from the database: each tick's lateness (its execution's start time minus the tick, both
recorded by the server), and the CPU time the server process (API, scheduler, leasing) and
its worker processes (running the executions) used over the run, per tick fired.

    python benchmarks/schedules.py [--schedules 10000] [--minutes 3] [--write docs/benchmarks.md]

With ``--write``, the results replace the block between the ``schedules`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
START_MARK, END_MARK = "<!-- schedules:start -->", "<!-- schedules:end -->"
APP = """\
import perdure as durable


@durable.function
def tick(ctx, event):
    return None
"""
# Ticks are read back from the execution names: schedule s17's tick at 09:00 is s17-20260301T090000Z.
TICK_FORMAT = "%Y%m%dT%H%M%SZ"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@dataclass(frozen=True)
class Result:
    schedules: int
    minutes: int
    ticks: int
    lateness: list[float]
    server_cpu: float
    worker_cpu: float
    succeeded: int


def run(count: int, minutes: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="perdure-schedules-") as folder:
        work = Path(folder)
        (work / "app.py").write_text(APP)
        port = _free_port()
        database = work / "perdure.db"
        log = open(work / "server.log", "wb")  # noqa: SIM115 (closed with the server)
        server = subprocess.Popen(
            [sys.executable, "-m", "perdure", "serve", "app.py", "--dev", "--port", str(port), "--db", f"sqlite:///{database}"],
            cwd=work,
            stdout=log,
            stderr=log,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{endpoint}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((work / "server.log").read_text())
                time.sleep(0.1)
            definitions = [{"Name": f"s{i}", "ScheduleExpression": "rate(1 minute)"} for i in range(count)]
            reply = httpx.put(f"{endpoint}/perdure/v1/functions/tick/schedules", json={"Schedules": definitions}, timeout=600)
            reply.raise_for_status()
            # Worker processes start with the first work: those running already are counted from now.
            workers_before = {pid: _cpu_seconds(pid) for pid in _children(server.pid)}
            server_before = _cpu_seconds(server.pid)
            # The first ticks are a minute after registering; a few seconds more let the last burst settle.
            time.sleep(minutes * 60 + 15)
            server_cpu = _cpu_seconds(server.pid) - server_before
            worker_cpu = sum(_cpu_seconds(pid) - workers_before.get(pid, 0.0) for pid in _children(server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
            log.close()
        return _read_back(database, count, minutes, server_cpu, worker_cpu)


def _read_back(database: Path, count: int, minutes: int, server_cpu: float, worker_cpu: float) -> Result:
    import sqlite3

    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT name, start_time, status FROM executions WHERE function_name = 'tick'").fetchall()
    lateness = []
    for name, start_time, _ in rows:
        tick = datetime.datetime.strptime(name.rpartition("-")[2], TICK_FORMAT).replace(tzinfo=datetime.UTC).timestamp()
        lateness.append(start_time - tick)
    succeeded = sum(1 for _, _, status in rows if status == "SUCCEEDED")
    return Result(count, minutes, len(rows), sorted(lateness), server_cpu, worker_cpu, succeeded)


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def report(result: Result) -> str:
    load = os.getloadavg()[0]
    when = datetime.date.today().isoformat()
    late = result.lateness
    per_tick = 1e3 / max(result.ticks, 1)
    lines = [
        START_MARK,
        f"Measured {when} with `python benchmarks/schedules.py --schedules {result.schedules} --minutes {result.minutes}` "
        f"(load average before: {load:.2f}, {os.cpu_count()} cores): one `perdure serve --dev` on SQLite, "
        f"{result.schedules:,} schedules of `rate(1 minute)` that all fall due in the same second.",
        "",
        "| What | Value |",
        "| --- | --- |",
        f"| Ticks fired (executions started) | {result.ticks:,} of {result.schedules * result.minutes:,} due; {result.succeeded:,} ran to the end |",
        f"| Tick lateness (execution start − tick), p50 | {statistics.median(late) * 1e3:.0f} ms |",
        f"| Tick lateness, p99 | {_quantile(late, 0.99) * 1e3:.0f} ms |",
        f"| Tick lateness, max | {late[-1] * 1e3:.0f} ms |",
        f"| CPU per tick, server process (firing, leasing, API) | {result.server_cpu * per_tick:.2f} ms |",
        f"| CPU per tick, worker processes (running the execution) | {result.worker_cpu * per_tick:.2f} ms |",
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None, help="Markdown file whose schedules block to replace")
    args = parser.parse_args()
    block = report(run(args.schedules, args.minutes))
    sys.stdout.write(block)
    if args.write:
        text = args.write.read_text()
        if START_MARK in text:
            before, rest = text.split(START_MARK, 1)
            text = before + block + rest.split(END_MARK, 1)[1].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n## Schedules\n\n" + block
        args.write.write_text(text)


if __name__ == "__main__":
    main()
