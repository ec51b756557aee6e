"""With 100,000 executions in SQLite, the console's listing, counts and inbox read index ranges.

Not a timing test: it records the SQL the store runs (SQLite's trace callback on the store's
connection) and asks SQLite how it would run each statement (EXPLAIN QUERY PLAN), so a
query that would scan or sort the whole table fails here on any machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ExecutionStatus
from perdure.service import console
from perdure.service.executions import DurableService
from perdure.store.sqlite import SQLiteStore

COUNT = 100_000
START = 1_800_000_000.0

# Executions of 20 functions, three a second, each with a finished step; every 50th is running
# and waits for a callback.
_FILL = f"""
INSERT INTO executions (id, arn, function_name, qualifier, name, status, start_time)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {COUNT - 1})
SELECT printf('id%06d', i), printf('arn-%06d', i), printf('fn%02d', i % 20), '$LATEST', printf('order-%06d', i),
       CASE WHEN i % 50 = 0 THEN 'RUNNING' WHEN i % 7 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       {START} + i / 3
FROM n;
INSERT INTO operations (execution_id, id, position, type, status, name, start_time, version)
SELECT id, '1', 1, 'STEP', 'SUCCEEDED', 'validate', start_time, 1 FROM executions;
INSERT INTO operations (execution_id, id, position, type, status, name, start_time, callback_id, version)
SELECT id, '2', 2, 'CALLBACK', 'STARTED', 'approval', start_time, 'cb-' || id, 1 FROM executions WHERE status = 'RUNNING';
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DurableService, list[str], sqlite3.Connection]]:
    """A service on a store of 100,000 executions, the SQL statements it runs, and a connection to explain them."""
    path = tmp_path_factory.mktemp("scale") / "perdure.db"
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced)
        store = SQLiteStore(path)
    explain = sqlite3.connect(path)
    explain.executescript(_FILL)
    yield DurableService(store), statements, explain
    explain.close()
    store.close()


def plans(explain: sqlite3.Connection, statements: list[str]) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of every SELECT recorded, by statement."""
    return {
        sql: [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
    }


def reads_by_index(plan: list[str]) -> bool:
    """Every table it reads, it reads through an index (no full scan of a table)."""
    return all("INDEX" in step for step in plan if step.startswith(("SCAN", "SEARCH")))


LISTINGS = [
    ExecutionQuery(),
    ExecutionQuery(oldest_first=True),
    ExecutionQuery(function_name="fn03"),
    ExecutionQuery(statuses=(ExecutionStatus.RUNNING,)),
    ExecutionQuery(function_name="fn03", statuses=(ExecutionStatus.FAILED,)),
    ExecutionQuery(name="order-000123"),
    ExecutionQuery(name_prefix="order-0999"),
    ExecutionQuery(started_after=START + 1000, started_before=START + 2000),
]


@pytest.mark.parametrize("query", LISTINGS, ids=lambda q: ",".join(f"{k}={v}" for k, v in vars(q).items() if v not in (None, (), 50, False)) or "all")
def test_listing_pages_and_counts_read_index_ranges(big: Any, query: ExecutionQuery) -> None:
    service, statements, explain = big
    statements.clear()
    first = service.list_executions(query)
    second = service.list_executions(ExecutionQuery(**{**vars(query), "marker": first.next_marker})) if first.next_marker else None
    counts = console.count_by_status(service, query)

    listed = [*first.executions, *(second.executions if second else [])]
    seen = [e.id for e in listed]
    assert len(seen) == len(set(seen)) and len(first.executions) == min(50, sum(counts.values()))
    order = [(e.start_time, e.id) for e in listed]
    assert order == sorted(order, reverse=not query.oldest_first)
    explained = plans(explain, statements)
    assert len(explained) == (3 if second else 2)
    for sql, plan in explained.items():
        assert reads_by_index(plan), f"{sql}\nreads a whole table: {plan}"
        if "COUNT(*)" not in sql and query.name_prefix is None:
            # A page is read in index order: at most ties on start_time are sorted.
            assert "USE TEMP B-TREE FOR ORDER BY" not in plan, f"{sql}\nsorts every match: {plan}"


def test_counts_add_up_to_every_execution(big: Any) -> None:
    service, _, _ = big
    counts = console.count_by_status(service, ExecutionQuery())
    assert counts == {ExecutionStatus.RUNNING: 2000, ExecutionStatus.FAILED: 14000, ExecutionStatus.SUCCEEDED: 84000}
    stats = console.function_stats(service, START)
    assert len(stats) == 20 and sum(s.running + s.succeeded + s.failed for s in stats) == COUNT


def test_the_inbox_reads_the_open_callbacks_in_index_order(big: Any) -> None:
    service, statements, explain = big
    statements.clear()
    first = console.pending_callbacks(service, limit=50)
    second = console.pending_callbacks(service, limit=50, marker=first.next_marker)
    listed = [c.execution_name for c in [*first.callbacks, *second.callbacks]]
    assert listed == [f"order-{i:06d}" for i in range(0, 100 * 50, 50)]
    for sql, plan in plans(explain, statements).items():
        assert reads_by_index(plan), f"{sql}\nreads a whole table: {plan}"
        assert any("operations_open_callbacks" in step for step in plan), plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, f"{sql}\nsorts every open callback: {plan}"


_PG_FILL = f"""
INSERT INTO executions (id, arn, function_name, qualifier, name, status, start_time)
SELECT format('id%s', lpad(i::text, 6, '0')), format('arn-%s', i), format('fn%s', lpad((i % 20)::text, 2, '0')), '$LATEST',
       format('order-%s', lpad(i::text, 6, '0')),
       CASE WHEN i % 50 = 0 THEN 'RUNNING' WHEN i % 7 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       {START} + i / 3
FROM generate_series(0, {COUNT - 1}) AS i;
INSERT INTO operations (execution_id, id, position, type, status, name, start_time, version)
SELECT id, '1', 1, 'STEP', 'SUCCEEDED', 'validate', start_time, 1 FROM executions;
INSERT INTO operations (execution_id, id, position, type, status, name, start_time, callback_id, version)
SELECT id, '2', 2, 'CALLBACK', 'STARTED', 'approval', start_time, 'cb-' || id, 1 FROM executions WHERE status = 'RUNNING';
"""


def test_on_postgresql_pages_and_the_inbox_read_index_ranges(postgres_url: str, tmp_path: Path) -> None:
    # PostgreSQL plans by the statistics ANALYZE gathers (autovacuum does it as tables grow);
    # the statements are recorded as the store's cursor sends them, then explained with their parameters.
    import psycopg

    from perdure.store.blobs import FileBlobStore
    from perdure.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"))  # makes the schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(_PG_FILL)
        conn.execute("VACUUM ANALYZE executions")
        conn.execute("VACUUM ANALYZE operations")
    sent: list[tuple[str, Any]] = []
    execute = psycopg.Cursor.execute

    def recorded(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sent.append((query, params))
        return execute(self, query, params, **kwargs)

    try:
        service = DurableService(store)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(psycopg.Cursor, "execute", recorded)
            for query in LISTINGS:
                first = service.list_executions(query)
                if first.next_marker:
                    service.list_executions(ExecutionQuery(**{**vars(query), "marker": first.next_marker}))
            inbox = console.pending_callbacks(service, limit=50)
            console.pending_callbacks(service, limit=50, marker=inbox.next_marker)
        assert [c.execution_name for c in inbox.callbacks][:2] == ["order-000000", "order-000050"]
        selects = [(sql, params) for sql, params in sent if isinstance(sql, str) and sql.lstrip().startswith("SELECT")]
        assert len(selects) >= len(LISTINGS) + 2
        with psycopg.connect(postgres_url) as conn:
            for sql, params in selects:
                plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params))
                assert "Seq Scan" not in plan, f"{sql}\nreads a whole table:\n{plan}"
    finally:
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DELETE FROM executions")
