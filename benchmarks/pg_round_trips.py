"""Counts the statements, round trips and commits a ten-step workflow costs on PostgreSQL, per step.

Runs ten-step workflows in this process, each started, leased, run (a checkpoint a step) and
completed as a worker does, on a throwaway PostgreSQL server, with libpq's protocol trace on for
every connection of the store's pool: seed style (``benchmarks/seed_flows.py:steps``, through
``LocalRunner``) or, with ``--style aws``, the AWS-SDK handler ``benchmarks/handlers.py:steps``
(through the worker's ``run_invocation``). From the trace:

- statements: the client's ``Query`` (simple protocol) and ``Execute`` (extended) messages;
- commits: the server's answers to ``COMMIT``;
- round trips: the times the client, having sent, turned to read the server's reply (a run of
  client messages followed by server messages counts one; a pipeline sends many statements
  before it reads, and so counts one).

    python benchmarks/pg_round_trips.py [--style seed|aws] [--workflows 20] [--steps 10] [--keep]

``--keep`` leaves the traces in the folder it prints, to read what was sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg.pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed_flows
from pg_server import find_pg_bindir, start_server

from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import sdk_tuning
from perdure.runtime.invoker import record_report, run_invocation
from perdure.runtime.local import LocalRunner
from perdure.runtime.registry import FunctionSpec
from perdure.service.executions import DurableService, StartRequest
from perdure.store.blobs import FileBlobStore
from perdure.store.pg_settings import PostgresSettings
from perdure.store.postgres import PostgresStore
from perdure.testing import _durable

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


def _seed(store: PostgresStore) -> Callable[[dict[str, Any]], None]:
    """Runs a seed-style workflow to its end, as ``perdure run`` does."""
    local: LocalRunner | None = None
    service = DurableService(store, functions=lambda name: local.function_defaults(name) if local else None)
    local = LocalRunner(service, SnapshotCodec(SECRET), [])
    function = _durable(seed_flows.steps)

    def run(event: dict[str, Any]) -> None:
        local.start(function, event)
        if local.run_ready() != 1:
            raise RuntimeError("a workflow did not run in one invocation")

    return run


def _aws(store: PostgresStore) -> Callable[[dict[str, Any]], None]:
    """Runs an AWS-SDK workflow to its end, as a worker process does (lease, run, record)."""
    sdk_tuning.apply()
    import handlers

    service = DurableService(store)
    spec = FunctionSpec("steps", ROOT / "benchmarks" / "handlers.py", "steps")
    codec = SnapshotCodec(SECRET)

    def run(event: dict[str, Any]) -> None:
        service.start_execution(StartRequest("steps", json.dumps(event)))
        leased = service.lease("round-trips", ["steps"], 16, 60.0)
        if len(leased) != 1:
            raise RuntimeError(f"{len(leased)} invocations leased instead of one")
        execution = record_report(service, leased[0], run_invocation(service, spec, handlers.steps, leased[0], codec))
        if execution is None or execution.status.value != "SUCCEEDED":
            raise RuntimeError(f"a workflow did not end in one invocation: {execution}")

    return run


def measure(url: str, folder: Path, workflows: int, steps: int, style: str) -> dict[str, Any]:
    store = PostgresStore(url, blobs=FileBlobStore(folder / "blobs"), settings=PostgresSettings(pool_size=2))
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
    run = _seed(store) if style == "seed" else _aws(store)
    for number in range(3):
        run({"count": steps, "warm-up": number})  # prepared statements, caches
    for out in traces:
        out.flush()
    offsets = {out.name: os.path.getsize(out.name) for out in traces}
    for number in range(workflows):
        run({"count": steps, "run": number})
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
        "style": style,
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
    parser.add_argument("--style", choices=("seed", "aws"), default="seed")
    parser.add_argument("--keep", action="store_true", help="keep the traces")
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
        print(json.dumps(measure(url, folder, args.workflows, args.steps, args.style)))
    finally:
        if server is not None:
            server.check("pg_ctl", "stop", "-D", str(server.data), "-m", "immediate")
            shutil.rmtree(server.root, ignore_errors=True)
        if args.keep:
            print(f"traces in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
