"""The SQL of ``Store.purge_expired``, the same for every backend but for how parameters are written.

Each backend passes ``param(name)``, which writes a named parameter in its dialect (``:name``
in SQLite, ``%(name)s`` in PostgreSQL), and ``member``, a test of membership in a list
(``IN (:k0, :k1)`` or ``= ANY(%(keys)s)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from perdure.protocol.queries import ExpiredExecution
from perdure.protocol.records import ExecutionStatus
from perdure.store.rows import Row

DAY_SECONDS = 86400
# Every payload column pair keeps a blob key in these columns (see rows.py).
_BLOB_COLUMNS = ("input_payload_blob", "result_blob")
_TABLES = (("executions", "id"), ("operations", "execution_id"))
# The tables whose rows belong to an execution, each deleted with its execution by a range of
# an index led by ``execution_id`` (its primary key; logs_by_execution for logs). Their foreign
# keys cascade too, but a cascade deletes row by row behind the statement, out of EXPLAIN's sight.
CHILD_TABLES = ("operations", "events", "timers", "checkpoint_replies", "logs")
# When an execution with a retention of its own expires: written exactly as migration 015's
# index executions_expiring is, so that the index serves the query.
_EXPIRY = f"end_time + retention_days * {DAY_SECONDS}"
_COLUMNS = "id, arn, function_name, name, status, end_time"


def expired_sqls(param: Callable[[str], str]) -> tuple[str, str]:
    """Select expired executions, at most ``limit`` each: first of the default retention, then of their own.

    Take ``now``, ``days`` (the default), ``bound`` (``expiry_bound``) and ``limit``. Each is a
    range of one partial index (migration 015) that holds only finished executions, so a purge
    reads no execution that is not expired. Each comes in the order of its index: without the
    ORDER BY, PostgreSQL may rather read the table until it has found ``limit`` expired ones.
    """
    default = (
        f"SELECT {_COLUMNS}, {param('days')} AS retention FROM executions"
        f" WHERE retention_days IS NULL AND end_time IS NOT NULL AND end_time <= {param('bound')}"
        f" AND status <> 'RUNNING' ORDER BY end_time LIMIT {param('limit')}"
    )
    own = (
        f"SELECT {_COLUMNS}, retention_days AS retention FROM executions"
        f" WHERE retention_days IS NOT NULL AND end_time IS NOT NULL AND {_EXPIRY} <= {param('now')}"
        f" AND status <> 'RUNNING' ORDER BY {_EXPIRY} LIMIT {param('limit')}"
    )
    return default, own


def select_expired(
    run: Callable[[str, dict[str, object]], Iterable[Row]],
    param: Callable[[str], str],
    now: float,
    default_retention_days: int,
    limit: int | None,
    no_limit: object,
) -> list[ExpiredExecution]:
    """Runs ``expired_sqls``' queries with ``run``; returns at most ``limit`` expired executions (None: all).

    ``no_limit`` is what the backend's LIMIT reads as none.
    """
    params: dict[str, object] = {"now": now, "days": default_retention_days}
    params["bound"] = expiry_bound(now, default_retention_days)
    expired: list[ExpiredExecution] = []
    for query in expired_sqls(param):
        left = no_limit if limit is None else limit - len(expired)
        if left == 0:
            break
        expired.extend(expired_from_row(row) for row in run(query, {**params, "limit": left}))
    return expired


def expiry_bound(now: float, default_retention_days: int) -> float:
    """The latest end time of an expired execution kept for the default period."""
    return now - DAY_SECONDS * default_retention_days


def delete_sqls(member: str) -> list[str]:
    """Delete the executions whose IDs are ``member``, and every row of theirs, children first."""
    return [f"DELETE FROM {table} WHERE execution_id {member}" for table in CHILD_TABLES] + [
        f"DELETE FROM executions WHERE id {member}"
    ]


def expired_from_row(row: Row) -> ExpiredExecution:
    return ExpiredExecution(
        id=row["id"],
        arn=row["arn"],
        function_name=row["function_name"],
        name=row["name"],
        status=ExecutionStatus(row["status"]),
        end_time=float(row["end_time"]),
        retention_days=int(row["retention"]),
    )


def blobs_of_sql(member: str) -> str:
    """Selects (as ``blob``) the blob keys of the executions whose IDs are ``member`` and of their operations."""
    return " UNION ".join(
        f"SELECT {column} AS blob FROM {table} WHERE {id_column} {member} AND {column} IS NOT NULL"
        for table, id_column in _TABLES
        for column in _BLOB_COLUMNS
    )


def referenced_sql(member: str) -> str:
    """Selects (as ``blob``) the keys that are ``member`` and that some row references.

    The ``IS NOT NULL`` lets SQLite use the partial indexes on the blob columns.
    """
    return " UNION ".join(
        f"SELECT {column} AS blob FROM {table} WHERE {column} {member} AND {column} IS NOT NULL"
        for table, _ in _TABLES
        for column in _BLOB_COLUMNS
    )
