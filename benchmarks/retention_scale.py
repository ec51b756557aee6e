"""Benchmark: retention and checkpoints on a store of 1,000,000 finished executions (issue 17).

Fills a store (SQLite, and a throwaway PostgreSQL server started as tests/pg_server.py does,
with PostgreSQL's durable defaults) with ``--executions`` finished executions of three steps
and five history events each, inserted by SQL in bulk, ended over the last 59 days:

- 80 % kept for the default 30 days, ended 0–29 days before ``NOW``;
- 9 % kept for the default, ended 30.5–31 days before ``NOW``: expired at ``NOW``;
- 1 % kept 7 days of their own, ended 7.5–8 days before ``NOW``: expired at ``NOW``;
- 10 % kept 90 days of their own, ended 0–59 days before ``NOW``.

Then it times, with whichever ``perdure`` is imported (run it with ``PYTHONPATH`` of another
source tree to time that one):

1. checkpoint latency (``DurableService.checkpoint``, each call timed) of ``--workflows``
   ten-step workflows run in this process, on an empty store and on the full one, alternately
   in rounds;
2. a purge (``service.retention.purge_expired``) at ``NOW`` less a day, when nothing is expired;
3. a purge at ``NOW``: the 10 % expired (100,000 of 1,000,000), each of its transactions timed;
4. transactions of several sizes (``--batches``) of ``Store.purge_expired`` at ``NOW`` plus
   four days, when about 100,000 more of the 80 % have expired;

and prints the size of the store, and the plans (EXPLAIN) of the purge's statements on the full
table when the imported perdure has them (``store.purging.expired_sqls``).

With ``--storage N`` it does none of that, but runs N executions each of the order workflow
(examples/order_processing.py, approved), a one-step and a ten-step workflow on an empty store,
and prints the bytes each adds: as written, and once compacted (``VACUUM FULL``; SQLite's
``VACUUM``), which is what stays once the old versions of updated rows are reused.

    PYTHONPATH=src python benchmarks/retention_scale.py [--executions 1000000] [--backend both]
    PYTHONPATH=src python benchmarks/retention_scale.py --storage 500
    git archive main | tar -x -C /tmp/ret-base
    PYTHONPATH=/tmp/ret-base/src python benchmarks/retention_scale.py   # the code before
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway server the tests use

import perdure as durable  # noqa: E402
from perdure.runtime.local import LocalRunner  # noqa: E402
from perdure.protocol.snapshots import SnapshotCodec  # noqa: E402
from perdure.service import retention  # noqa: E402
from perdure.service.executions import DurableService  # noqa: E402
from perdure.store import purging  # noqa: E402
from perdure.store.base import Store  # noqa: E402
from perdure.store.blobs import FileBlobStore  # noqa: E402
from perdure.store.postgres import PostgresStore  # noqa: E402
from perdure.store.sqlite import SQLiteStore  # noqa: E402
from perdure.testing import _durable  # noqa: E402
from pg_server import find_pg_bindir, start_server  # noqa: E402

DAY = 86400
NOW = 1_900_000_000.0
STEPS = 10


def _noop(number: int) -> int:
    return number


@durable.function(name="one_step")
def one_step(ctx: Any, event: Any) -> int:
    return int(ctx.step(_noop, 1, name="step0"))


@durable.function(name="ten_steps")
def ten_steps(ctx: Any, event: Any) -> int:
    total = 0
    for number in range(STEPS):
        total += ctx.step(_noop, number, name=f"step{number}")
    return total


def fill_sql(count: int, series: str) -> list[str]:
    """The statements that insert ``count`` finished executions; ``series`` selects ``i`` from 0 to count - 1."""
    frac = f"(i * 1.0 / {count})"
    kind = "(i % 100)"  # 0-79 default kept, 80-88 default expired, 89 own expired, 90-99 own kept
    retention = f"CASE WHEN {kind} = 89 THEN 7 WHEN {kind} >= 90 THEN 90 ELSE NULL END"
    age = (
        f"CASE WHEN {kind} < 80 THEN {frac} * 29 WHEN {kind} < 89 THEN 30.5 + {frac} * 0.5"
        f" WHEN {kind} = 89 THEN 7.5 + {frac} * 0.5 ELSE {frac} * 59 END"
    )
    executions = (
        "INSERT INTO executions (id, arn, function_name, qualifier, name, status, start_time, end_time,"
        " input_payload, result, retention_days, version, event_count, operation_count)"
        f" SELECT 'x' || i, 'arn:aws:lambda:us-east-1:000000000000:function:order:$LATEST/durable-execution/o' || i,"
        f" 'order', '$LATEST', 'o' || i, 'SUCCEEDED', {NOW} - ({age}) * {DAY} - 5, {NOW} - ({age}) * {DAY},"
        f" '{{\"order_id\": \"A-' || i || '\"}}', '{{\"status\": \"completed\"}}', {retention}, 5, 5, 3"
        f" FROM {series}"
    )
    operations = (
        "INSERT INTO operations (execution_id, id, position, type, status, name, start_time, end_time, result, version)"
        " SELECT e.id, k.n || '', k.n, 'STEP', 'SUCCEEDED', 'step' || k.n, e.start_time, e.start_time + 1,"
        " '{\"total\": 52.5}', 1 FROM executions AS e CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) AS k"
        " WHERE e.function_name = 'order'"
    )
    events = (
        "INSERT INTO events (execution_id, event_id, body)"
        " SELECT e.id, k.n, '{\"EventType\": \"StepSucceeded\", \"EventTimestamp\": ' || e.start_time"
        " || ', \"Id\": \"' || k.n || '\", \"StepSucceededDetails\": {\"Result\": {\"Payload\": \"{}\"}}}'"
        " FROM executions AS e CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3"
        " UNION ALL SELECT 4 UNION ALL SELECT 5) AS k WHERE e.function_name = 'order'"
    )
    return [executions, operations, events]


class Backend:
    """A store of one backend, a connection beside it for SQL of the benchmark's own, and its size."""

    name: str
    store: Store

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def fill(self, count: int) -> None:
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def compact(self) -> None:
        raise NotImplementedError

    def explain(self, sql: str, params: dict[str, Any]) -> str:
        raise NotImplementedError

    def param(self, name: str) -> str:
        raise NotImplementedError

    def member(self, ids: list[str]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def wal_position(self) -> int:
        """Bytes written to the write-ahead log so far (0 where this is not measured)."""
        return 0


class SQLiteBackend(Backend):
    name = "SQLite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "perdure.db"
        self.store = SQLiteStore(self.path, blobs=FileBlobStore(folder / "blobs"))
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 60000")

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    def fill(self, count: int) -> None:
        series = f"(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {count - 1}) SELECT i FROM n)"
        self.conn.execute("BEGIN IMMEDIATE")
        for statement in fill_sql(count, series):
            self.conn.execute(statement)
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size(self) -> int:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in self.path.parent.glob("perdure.db*"))

    def compact(self) -> None:
        self.conn.execute("VACUUM")

    def explain(self, sql: str, params: dict[str, Any]) -> str:
        return "\n".join(row[-1] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    def param(self, name: str) -> str:
        return f":{name}"

    def member(self, ids: list[str]) -> tuple[str, dict[str, Any]]:
        names = {f"k{n}": value for n, value in enumerate(ids)}
        return "IN (" + ", ".join(f":{n}" for n in names) + ")", names

    def close(self) -> None:
        self.conn.close()
        self.store.close()


class PostgresBackend(Backend):
    name = "PostgreSQL"

    def __init__(self, url: str, folder: Path) -> None:
        self.store = PostgresStore(url, blobs=FileBlobStore(folder / "blobs"))
        self.conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql)
        return cur.fetchall() if cur.description else []

    def fill(self, count: int) -> None:
        with self.conn.transaction():
            for statement in fill_sql(count, f"generate_series(0, {count - 1}) AS i"):
                self.conn.execute(statement)
        # As autovacuum would have by the time a table is this big.
        self.conn.execute("VACUUM ANALYZE")

    def size(self) -> int:
        """The bytes of the schema's tables, with their indexes and TOAST."""
        row = self.conn.execute(
            "SELECT sum(pg_total_relation_size(oid)) FROM pg_class"
            " WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace"
        ).fetchone()
        return int(row[0]) if row else 0

    def compact(self) -> None:
        self.conn.execute("VACUUM FULL")

    def wal_position(self) -> int:
        row = self.conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0]) if row else 0

    def explain(self, sql: str, params: dict[str, Any]) -> str:
        rows = self.conn.execute("EXPLAIN " + sql, params).fetchall()
        return "\n".join(row[0] for row in rows)

    def param(self, name: str) -> str:
        return f"%({name})s"

    def member(self, ids: list[str]) -> tuple[str, dict[str, Any]]:
        return "= ANY(%(ids)s)", {"ids": ids}

    def close(self) -> None:
        self.conn.close()
        self.store.close()


def run_orders(runner: LocalRunner, count: int) -> None:
    """Runs ``count`` executions of examples/order_processing.py's order workflow, approved, to their end."""
    order = _durable(_order_workflow())
    with contextlib.redirect_stdout(io.StringIO()):  # its steps print what they do
        for number in range(count):
            arn = runner.start(order, {"order_id": "A-1"}, f"order-{number}").arn
            runner.run_until_blocked(arn)
            callback = runner.open_callbacks(arn)[0]
            runner.service.succeed_callback(callback.callback_id or "", '{"approved": true}')
            if runner.run_until_blocked(arn).status.value != "SUCCEEDED":
                raise RuntimeError(f"order {number} did not succeed")


def _order_workflow() -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    import order_processing

    return order_processing.process_order


def storage(backend: Backend, count: int) -> None:
    """Prints the bytes an execution of the order workflow and of a ten-step one adds to the store."""
    service = DurableService(backend.store)
    runner = LocalRunner(service, SnapshotCodec(b"retention-scale"), [_durable(one_step), _durable(ten_steps)])
    backend.compact()
    for label, work in (
        ("order workflow (examples/order_processing.py, approved)", lambda: run_orders(runner, count)),
        ("one-step workflow", lambda: _run(runner, one_step, count)),
        ("ten-step workflow", lambda: _run(runner, ten_steps, count)),
    ):
        before = backend.size()
        work()
        written = backend.size() - before
        backend.compact()  # what stays once the space of updated rows' old versions is reused
        kept = backend.size() - before
        print(f"{label}, {count} executions: {written / count:.0f} B each as written, {kept / count:.0f} B compacted")


def _run(runner: LocalRunner, function: Any, count: int) -> None:
    for number in range(count):
        arn = runner.start(_durable(function), {"n": number}, f"{number}").arn
        if runner.run_until_blocked(arn).status.value != "SUCCEEDED":
            raise RuntimeError(f"workflow {number} of {function} did not succeed")


def checkpoint_latency(store: Store, workflows: int) -> list[float]:
    """Runs ten-step workflows in this process; returns the seconds of each ``DurableService.checkpoint``."""
    service = DurableService(store, clock=lambda: NOW)
    runner = LocalRunner(service, SnapshotCodec(b"retention-scale"), [_durable(ten_steps)])
    times: list[float] = []
    checkpoint = service.checkpoint

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return checkpoint(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - began)

    service.checkpoint = timed  # type: ignore[method-assign]
    for number in range(workflows + 2):
        if number == 2:
            times.clear()  # the first ones warm up
        arn = runner.start(_durable(ten_steps), {"n": number}).arn
        runner.run_ready()
        if service.get_execution(arn).status.value != "SUCCEEDED":
            raise RuntimeError(f"workflow {number} did not succeed")
    return times


@contextmanager
def timed_purges(store: Store) -> Iterator[list[tuple[int, float]]]:
    """Times each ``store.purge_expired`` call while inside: (executions purged, seconds)."""
    calls: list[tuple[int, float]] = []
    purge = store.purge_expired

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        batch = purge(*args, **kwargs)
        calls.append((len(batch.executions), time.perf_counter() - began))
        return batch

    store.purge_expired = timed  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        del store.purge_expired


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(calls: list[tuple[int, float]]) -> str:
    durations = sorted(s for _, s in calls)
    purged = sum(n for n, _ in calls)
    total = sum(durations)
    return (
        f"{purged} executions in {total:.2f} s ({purged / total:.0f}/s), {len(calls)} transactions:"
        f" median {ms(statistics.median(durations))}, max {ms(durations[-1])}"
    )


def explain_purge(backend: Backend) -> None:
    """Prints the plan of every statement of a purge, as the store writes them, on the full table."""
    if not hasattr(purging, "expired_sqls"):
        print("  (this perdure has no purging.expired_sqls: plans not shown)")
        return
    params = {"now": NOW, "days": 30, "bound": purging.expiry_bound(NOW, 30), "limit": 1000}
    member, ids = backend.member(["x1", "x2"])
    for sql in [*purging.expired_sqls(backend.param), *purging.delete_sqls(member)]:
        plan = backend.explain(sql, {**params, **ids})
        print(f"  {sql[:110]}\n    " + plan.replace("\n", "\n    "))


ROUNDS = 5


def run(full: Backend, empty: Backend | None, count: int, workflows: int, batches: list[int]) -> None:
    """Fills ``full``, times checkpoints on it and on ``empty`` (if any), then times purges of ``full``."""
    print(f"\n== {full.name}: {count} finished executions (perdure from {Path(purging.__file__).parents[2]})")
    began = time.perf_counter()
    full.fill(count)
    print(f"fill: {time.perf_counter() - began:.0f} s; size {full.size() / 2**20:.0f} MiB")
    if empty is not None:
        # Alternated in rounds, so that what else runs on the machine weighs on both alike.
        times: dict[str, list[float]] = {"empty": [], "full": []}
        wal = {"empty": 0, "full": 0}  # PostgreSQL: the server's WAL, which only this writes meanwhile
        for number in range(ROUNDS):
            order = [("empty", empty), ("full", full)]
            for label, backend in order if number % 2 == 0 else reversed(order):
                before = backend.wal_position()
                times[label].extend(checkpoint_latency(backend.store, workflows // ROUNDS))
                wal[label] += backend.wal_position() - before
        for label, durations in times.items():
            ordered = sorted(durations)
            written = f", {wal[label] / len(ordered):.0f} B of WAL each" if wal[label] else ""
            print(
                f"checkpoint latency, {label} table: median {ms(statistics.median(ordered))},"
                f" p90 {ms(ordered[int(len(ordered) * 0.9)])} ({len(ordered)} checkpoints, {ROUNDS} rounds{written})"
            )
    explain_purge(full)
    with timed_purges(full.store) as calls:
        began = time.perf_counter()
        report = retention.purge_expired(full.store, NOW - DAY, 30)
        print(f"purge, nothing expired: {time.perf_counter() - began:.3f} s ({len(report.executions)} purged)")
    with timed_purges(full.store) as calls:
        began = time.perf_counter()
        report = retention.purge_expired(full.store, NOW, 30)
        elapsed = time.perf_counter() - began
        print(f"purge of the expired, batch {retention.PURGE_BATCH}: {elapsed:.1f} s; {summary(calls)}")
    for batch in batches:
        with timed_purges(full.store) as calls:
            for _ in range(max(1, 20_000 // batch)):
                full.store.purge_expired(NOW + 4 * DAY, 30, batch)
            print(f"transactions of {batch}: {summary(calls)}")
    print(f"size after: {full.size() / 2**20:.0f} MiB")


def measure(open_backend: Callable[[str], Backend], args: argparse.Namespace) -> None:
    """Runs what ``args`` ask for on backends that ``open_backend`` opens (given a name), then closes them."""
    opened = [open_backend("full")]
    try:
        if args.storage:
            print(f"\n== {opened[0].name}: storage")
            storage(opened[0], args.storage)
            return
        if args.workflows:
            opened.append(open_backend("empty"))
        batches = [int(b) for b in args.batches.split(",") if b]
        run(opened[0], opened[1] if args.workflows else None, args.executions, args.workflows, batches)
    finally:
        for backend in opened:
            backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--workflows", type=int, default=100, help="ten-step workflows timed on each table (0: none)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--batches", default="100,500,1000,5000", help="transaction sizes to time; empty for none")
    parser.add_argument("--storage", type=int, default=0, help="only measure the bytes of this many real executions")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="perdure-retention-"))
    try:
        if args.backend in ("sqlite", "both"):
            measure(lambda name: SQLiteBackend(folder / "sqlite" / name), args)
        if args.backend in ("postgres", "both"):
            bindir = find_pg_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed (set PERDURE_PG_BINDIR)")
            server = start_server(bindir, durable=True)
            try:
                measure(lambda name: PostgresBackend(server.create_database(name), folder / "pg" / name), args)
            finally:
                server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "fast", "-w")
                shutil.rmtree(server.root, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
