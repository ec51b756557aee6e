"""Benchmark: throughput with 1, 2 and 3 worker processes on PostgreSQL, and SQLite beside it.

Each run starts real processes on a fresh database and pushes one batch of ``--workflows``
workflows of ``--steps`` trivial steps (``benchmarks/handlers.py:steps``) through them:

- PostgreSQL: ``perdure serve --no-workers`` (the API) and N ``perdure worker --workers
  --slots`` processes, all on one database; once with the server's durable defaults, and once
  with ``synchronous_commit=off`` set on the run's database (commits do not wait for their WAL
  flush: a crash of the machine can lose the last ones, as with SQLite's synchronous=NORMAL).
- SQLite: one ``perdure serve --workers N`` (API and N worker processes in one server).

After a warm-up batch (so every worker process has started and imported the handler), the
timed batch is started through the HTTP API from four client threads, as Event (async)
invokes, and the run ends when every workflow has ended. Throughput is workflows (and steps)
per second from the first start to the last end, both stamped in the database.

    python benchmarks/scale_out.py [--workflows 300] [--steps 10] [--rounds 2] [--write docs/benchmarks.md]

Without ``--pg-url`` it starts a throwaway PostgreSQL server (``tests/pg_server.py``) with
PostgreSQL's durable defaults: fsync on, synchronous_commit on. With ``--write``, the results
replace the block between the ``scale-out`` markers of that file, leaving the rest alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway server the tests use

from pg_server import PostgresServer, find_pg_bindir, start_server  # noqa: E402
from sequential_steps import machine, write  # noqa: E402

TARGET = f"bench={Path(__file__).resolve().with_name('handlers.py')}:steps"
PERDURE = [sys.executable, "-m", "perdure"]
START_MARK, END_MARK = "<!-- scale-out:start -->", "<!-- scale-out:end -->"
CLIENT_THREADS = 4
ASYNC_PG = "PostgreSQL, synchronous_commit=off"
BACKENDS = ["PostgreSQL", ASYNC_PG, "SQLite"]
RUN_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Result:
    backend: str
    processes: int
    handler_processes: int
    workflows_per_s: float
    steps_per_s: float
    starts_per_s: float


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """The processes of one run; ``close`` ends them."""

    def __init__(self, folder: Path, source: Path | None = None) -> None:
        self.folder = folder
        # Another Perdure's src folder to run instead of this one (``--base``).
        self.env = {**os.environ, "PYTHONPATH": str(source)} if source else None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def spawn(self, *args: str) -> None:
        log = open(self.folder / f"process-{len(self.processes)}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen([*PERDURE, *args], cwd=self.folder, stdout=log, stderr=log, env=self.env))

    def serve(self, db_url: str, *options: str) -> None:
        self.spawn("serve", TARGET, "--db", db_url, "--port", str(self.port), "--dev", *options)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.endpoint}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"perdure serve did not start; see {self.folder}")

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(endpoint: str, names: list[str], steps: int) -> None:
    with httpx.Client(base_url=endpoint, timeout=60) as http:
        for name in names:
            response = http.post(
                "/2015-03-31/functions/bench/invocations",
                content=json.dumps({"count": steps}),
                headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": name},
            )
            response.raise_for_status()


def _batch(cluster: Cluster, count: int, steps: int, prefix: str, ended: Callable[[str], int]) -> float:
    """Starts ``count`` workflows from several threads; returns the start rate once all have ended."""
    names = [f"{prefix}-{i:05d}" for i in range(count)]
    began = time.monotonic()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(lambda part: _start(cluster.endpoint, part, steps), [names[i::CLIENT_THREADS] for i in range(CLIENT_THREADS)]))
    starts_per_s = count / (time.monotonic() - began)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while ended(prefix) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{prefix}: only {ended(prefix)} of {count} workflows ended in {RUN_TIMEOUT_SECONDS} s")
        time.sleep(0.05)
    return starts_per_s


class Database:
    """Reads a run's outcome straight from its database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _query(self, sql: str, prefix: str) -> tuple[float | int | None, ...]:
        pattern = f"{prefix}-%"
        if self.url.startswith("sqlite:///"):
            with sqlite3.connect(f"file:{self.url.removeprefix('sqlite:///')}?mode=ro", uri=True) as conn:
                return tuple(conn.execute(sql.replace("%s", "?"), (pattern,)).fetchone())
        with psycopg.connect(self.url) as conn:
            row = conn.execute(sql, (pattern,)).fetchone()
            assert row is not None
            return tuple(row)

    def ended(self, prefix: str) -> int:
        return int(self._query("SELECT count(*) FROM executions WHERE status <> 'RUNNING' AND name LIKE %s", prefix)[0] or 0)

    def span(self, prefix: str) -> tuple[float, int]:
        """Seconds from the first start to the last end, and how many succeeded."""
        first, last, succeeded = self._query(
            "SELECT min(start_time), max(end_time), sum(CASE WHEN status = 'SUCCEEDED' THEN 1 ELSE 0 END)"
            " FROM executions WHERE name LIKE %s",
            prefix,
        )
        return float(last or 0) - float(first or 0), int(succeeded or 0)


def run_once(
    backend: str, processes: int, slots: int, db_url: str, folder: Path, args: argparse.Namespace, source: Path | None = None
) -> Result:
    cluster = Cluster(folder, source)
    database = Database(db_url)
    try:
        if backend.startswith("PostgreSQL"):
            cluster.serve(db_url, "--no-workers")
            for _ in range(processes):
                cluster.spawn("worker", TARGET, "--db", db_url, "--workers", str(slots))
            handlers = processes * slots
        else:
            cluster.serve(db_url, "--workers", str(processes))
            handlers = processes
        _batch(cluster, args.warmup, args.steps, "warmup", database.ended)
        starts_per_s = _batch(cluster, args.workflows, args.steps, "timed", database.ended)
        seconds, succeeded = database.span("timed")
        if succeeded != args.workflows:
            raise RuntimeError(f"{backend} with {processes} processes: {succeeded} of {args.workflows} workflows succeeded")
    finally:
        cluster.close()
    per_s = args.workflows / seconds
    return Result(backend, processes, handlers, per_s, per_s * args.steps, starts_per_s)


def _pg_settings(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        def show(name: str) -> str:
            row = conn.execute(f"SHOW {name}").fetchone()
            return str(row[0]) if row else "?"

        row = conn.execute("SELECT version()").fetchone()
        version = str(row[0]).split(" on ")[0] if row else "?"
        return [
            ("PostgreSQL", f"{version}, on this machine over TCP to 127.0.0.1"),
            ("PostgreSQL durability", f"fsync={show('fsync')}, synchronous_commit={show('synchronous_commit')}, "
             f"full_page_writes={show('full_page_writes')}, wal_sync_method={show('wal_sync_method')} "
             "(the server's defaults; the synchronous_commit=off rows set it on their database only)"),
        ]


def commit_floor(admin_url: str, synchronous_commit: str, count: int = 500) -> float:
    """Median µs of one small INSERT committed on its own, over TCP, with this synchronous_commit."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"SET synchronous_commit = {synchronous_commit}")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id SERIAL PRIMARY KEY, v TEXT)")
        times = []
        for i in range(count):
            began = time.perf_counter()
            conn.execute("INSERT INTO bench_floor (v) VALUES (%s)", (f"value-{i}",))
            times.append(time.perf_counter() - began)
        conn.execute("DROP TABLE bench_floor")
    return statistics.median(times) * 1e6


def report(
    args: argparse.Namespace, rows: list[tuple[str, str]], results: list[Result], floors: dict[str, float]
) -> str:
    def best(backend: str, processes: int) -> Result:
        runs = [r for r in results if r.backend == backend and r.processes == processes]
        return max(runs, key=lambda r: r.workflows_per_s)

    def median(backend: str, processes: int) -> float:
        return statistics.median(r.workflows_per_s for r in results if r.backend == backend and r.processes == processes)

    lines = [
        START_MARK,
        f"Measured {datetime.date.today().isoformat()}: {args.workflows} workflows of {args.steps} steps per run, "
        f"after {args.warmup} warm-up workflows; {args.rounds} round(s) of every configuration, alternating "
        f"{' and '.join(dict.fromkeys(r.backend for r in results))} (in reverse order every other round); the table "
        "shows each configuration's best round (and the median of its rounds).",
        "",
        "| | |", "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "| Worker processes | Backend | Processes running handlers | Workflows/s (median) | Steps/s | API starts/s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for processes in args.processes:
        for backend in dict.fromkeys(r.backend for r in results):
            r = best(backend, processes)
            shape = (
                f"{processes} × `perdure worker --workers {args.slots}` + `perdure serve --no-workers`"
                if backend.startswith("PostgreSQL")
                else f"`perdure serve --workers {processes}`"
            )
            lines.append(
                f"| {processes} | {backend}: {shape} | {r.handler_processes} | {r.workflows_per_s:.1f} "
                f"({median(backend, processes):.1f}) | {r.steps_per_s:.0f} | {r.starts_per_s:.0f} |"
            )
    lines += [
        "",
        "| Floor: one small INSERT committed on its own over TCP (median of 500) | |",
        "|---|---:|",
        *(f"| PostgreSQL, synchronous_commit={mode} | {us:.0f} µs |" for mode, us in floors.items()),
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=300, help="timed workflows per run (default 300)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow (default 10)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up workflows per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every configuration (default 2)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3], help="worker process counts (default 1 2 3)")
    parser.add_argument("--slots", type=int, default=1, help="--workers of each `perdure worker` (default 1)")
    parser.add_argument("--pg-url", help="an existing PostgreSQL server's URL (its databases are made per run)")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary folder")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to put the results in")
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS, help="backends to run (default all)")
    parser.add_argument("--base", type=Path, default=None,
                        help="also runs the Perdure in this src folder (e.g. of a copy of main), alternating with this one")
    args = parser.parse_args()
    sources: list[Path | None] = [None] if args.base is None else [None, args.base]

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="perdure-scale-", dir=args.dir))
    server: PostgresServer | None = None
    try:
        if args.pg_url:
            admin_url = args.pg_url
        else:
            bindir = find_pg_bindir()
            if bindir is None:
                sys.exit("PostgreSQL's server binaries were not found: install them or pass --pg-url.")
            server = start_server(bindir, durable=True)
            admin_url = server.url("postgres")
        results: list[Result] = []
        for round_number in range(args.rounds):
            for processes in args.processes:
                runs = [(backend, source) for backend in args.backends for source in sources]
                for backend, source in runs if round_number % 2 == 0 else runs[::-1]:
                    run_folder = folder / f"{backend.split()[0]}-{processes}-{round_number}-{uuid.uuid4().hex[:6]}"
                    run_folder.mkdir()
                    if backend.startswith("PostgreSQL"):
                        db_url = _create_database(admin_url, f"bench_{uuid.uuid4().hex[:8]}", backend == ASYNC_PG)
                    else:
                        db_url = f"sqlite:///{run_folder / 'perdure.db'}"
                    result = run_once(backend, processes, args.slots, db_url, run_folder, args, source)
                    if source is not None:
                        result = dataclasses.replace(result, backend=f"{backend} [{source.parent.name}]")
                    print(f"{result.backend} {processes}: {result.workflows_per_s:.1f} workflows/s", file=sys.stderr)
                    results.append(result)
        rows = [*machine(folder, load_before), *_pg_settings(admin_url)]
        floors = {mode: commit_floor(admin_url, mode) for mode in ("on", "off")}
        block = report(args, rows, results, floors)
    finally:
        if server is not None:
            server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "fast", "-w")
            shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.write(block)
    if args.write:
        write(args.write, block, START_MARK, END_MARK)


def _create_database(admin_url: str, name: str, async_commit: bool) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        if async_commit:
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


if __name__ == "__main__":
    main()
