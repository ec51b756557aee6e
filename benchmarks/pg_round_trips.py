"""Counts the statements and round trips a ten-step workflow costs on PostgreSQL, per step.

Runs seed-style ten-step workflows (``benchmarks/seed_flows.py:steps``) in this process
(``LocalRunner``: start, lease, run, checkpoint each step, complete) on a throwaway PostgreSQL
server, with libpq's protocol trace on for every connection of the store's pool. From the trace:

- statements: the client's ``Query`` (simple protocol) and ``Execute`` (extended) messages;
- commits: the server's answers to ``COMMIT``;
- round trips: the times the client, having sent, turned to read the server's reply (a run of
  client messages followed by server messages counts one; a pipeline sends many statements
  before it reads, and so counts one).

    python benchmarks/pg_round_trips.py [--workflows 20] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg.pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pg_server import find_pg_bindir, start_server  # noqa: E402

import seed_flows  # noqa: E402

from perdure.protocol.snapshots import SnapshotCodec  # noqa: E402
from perdure.runtime.local import LocalRunner  # noqa: E402
from perdure.service.executions import DurableService  # noqa: E402
from perdure.store.blobs import FileBlobStore  # noqa: E402
from perdure.store.postgres import PostgresStore  # noqa: E402
from perdure.testing import _durable  # noqa: E402

SECRET = b"round-trip-benchmark-secret-of-32-bytes"


def count(trace: str) -> tuple[int, int, int]:
    """``(statements, round trips, commits)`` in a libpq trace (timestamps suppressed)."""
    statements = round_trips = commits = 0
    last = ""
    for line in trace.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        direction, message = parts[0], parts[2]
        if direction == "F" and message in ("Query", "Execute"):
            statements += 1
        if direction == "B" and last == "F":
            round_trips += 1
        if direction == "B" and message == "CommandComplete" and parts[3].strip() == '"COMMIT"':
            commits += 1
        last = direction
    return statements, round_trips, commits


def measure(url: str, folder: Path, workflows: int, steps: int) -> dict[str, Any]:
    store = PostgresStore(url, blobs=FileBlobStore(folder / "blobs"), pool_size=2)
    traces: list[Any] = []
    getconn = store._pool.getconn
    traced: set[int] = set()

    def traced_getconn(*args: Any, **kwargs: Any) -> Any:
        conn = getconn(*args, **kwargs)
        if id(conn) not in traced:
            traced.add(id(conn))
            out = open(folder / f"trace-{len(traces)}.txt", "w")  # noqa: SIM115 - closed below
            traces.append(out)
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        return conn

    store._pool.getconn = traced_getconn  # type: ignore[method-assign]
    local: LocalRunner | None = None
    service = DurableService(store, functions=lambda name: local.function_defaults(name) if local else None)
    local = LocalRunner(service, SnapshotCodec(SECRET), [])
    function = _durable(seed_flows.steps)
    local.start(function, {"count": steps})
    local.run_ready()  # warm-up: prepared statements, caches
    for out in traces:
        out.flush()
    offsets = {out.name: os.path.getsize(out.name) for out in traces}
    for number in range(workflows):
        local.start(function, {"count": steps, "run": number})
        if local.run_ready() != 1:
            raise RuntimeError("a workflow did not run in one invocation")
    statements = round_trips = commits = 0
    for out in traces:
        out.flush()
        with open(out.name) as text:
            text.seek(offsets.get(out.name, 0))
            s, r, c = count(text.read())
        statements += s
        round_trips += r
        commits += c
        out.close()
    store.close()
    total = workflows * steps
    return {
        "workflows": workflows,
        "steps": steps,
        "statements_per_step": statements / total,
        "round_trips_per_step": round_trips / total,
        "commits_per_step": commits / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pg-url", help="an empty database to use instead of a throwaway server")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="perdure-round-trips-"))
    server = None
    try:
        url = args.pg_url
        if url is None:
            bindir = find_pg_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed here (no initdb/pg_ctl found); pass --pg-url.")
            server = start_server(bindir)
            url = server.create_database("round_trips")
        print(json.dumps(measure(url, folder, args.workflows, args.steps)))
    finally:
        if server is not None:
            server.check("pg_ctl", "stop", "-D", str(server.data), "-m", "immediate")
            shutil.rmtree(server.root, ignore_errors=True)
        if not os.environ.get("KEEP_TRACE"):
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(folder)


if __name__ == "__main__":
    main()
