"""Every statement of a purge reads an index range, on SQLite and PostgreSQL (issue 17).

Not a timing test: it asks each database how it would run the purge's statements (EXPLAIN), so
a statement that would read a whole table, or expired executions found other than by the two
partial indexes of migration 015, fails here at any size. PostgreSQL is told to avoid
sequential scans, which it rightly prefers on tables this small: the test is whether an index
can serve each statement, not which plan a tiny table gets.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from perdure.store import purging
from perdure.store.base import Store
from perdure.store.postgres import PostgresStore
from perdure.store.sqlite import SQLiteStore

NOW = 1_800_000_000.0
PARAMS = {"now": NOW, "days": 30, "bound": purging.expiry_bound(NOW, 30), "limit": 100}


def plans(store: Store) -> dict[str, str]:
    """Each purge statement, as the store writes it, and the plan the store's database gives it."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            member = "IN (:k0, :k1)"
            params = {**PARAMS, "k0": "a", "k1": "b"}
            statements = [
                *purging.expired_sqls(lambda name: f":{name}"),
                *purging.delete_sqls(member),
                purging.blobs_of_sql(member),
                purging.referenced_sql(member),
            ]
            return {
                sql: "\n".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
                for sql in statements
            }
        finally:
            conn.close()
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url, autocommit=True) as pg:
        pg.execute("SET enable_seqscan = off")
        member = "= ANY(%(ids)s)"
        params = {**PARAMS, "ids": ["a", "b"]}
        statements = [
            *purging.expired_sqls(lambda name: f"%({name})s"),
            *purging.delete_sqls(member),
            purging.blobs_of_sql(member),
            purging.referenced_sql(member.replace("ids", "keys")),
        ]
        return {
            sql: "\n".join(row[0] for row in pg.execute("EXPLAIN " + sql, {**params, "keys": ["k"]}))
            for sql in statements
        }


def reads_whole_table(plan: str) -> bool:
    # SQLite says "SCAN t" for a whole table (and "SCAN t USING INDEX i" for a whole index).
    return "Seq Scan" in plan or any(line.strip().startswith("SCAN") for line in plan.splitlines())


def test_every_statement_of_a_purge_reads_index_ranges_only(store: Store) -> None:
    found = plans(store)

    whole = {sql: plan for sql, plan in found.items() if reads_whole_table(plan)}
    assert whole == {}
    assert len(found) == 10  # two selects, six deletes, two blob queries


def test_expired_executions_are_found_by_the_two_partial_indexes(store: Store) -> None:
    default, own = purging.expired_sqls(lambda name: f":{name}" if isinstance(store, SQLiteStore) else f"%({name})s")

    found = plans(store)

    assert "executions_ended_by_default" in found[default]
    assert "executions_expiring" in found[own]


@pytest.mark.parametrize(
    "plan, whole",
    [
        ("SCAN executions", True),
        ("SEARCH executions USING INDEX executions_expiring (<expr><?)", False),
        ("Seq Scan on operations", True),
        ("Index Scan using operations_pkey on operations", False),
    ],
)
def test_the_check_tells_a_whole_table_from_a_range(plan: str, whole: bool) -> None:
    assert reads_whole_table(plan) is whole
