"""The SQL of ``Store.purge_expired``, the same for every backend but for how parameters are written.

Each backend passes ``param(name)``, which writes a named parameter in its dialect (``:name``
in SQLite, ``%(name)s`` in PostgreSQL), and ``member``, a test of membership in a list
(``IN (:k0, :k1)`` or ``= ANY(%(keys)s)``).
"""

from __future__ import annotations

from collections.abc import Callable

from perdure.protocol.queries import ExpiredExecution
from perdure.protocol.records import ExecutionStatus
from perdure.store.rows import Row

DAY_SECONDS = 86400.0
# Every payload column pair keeps a blob key in these columns (see rows.py).
_BLOB_COLUMNS = ("input_payload_blob", "result_blob")
_TABLES = (("executions", "id"), ("operations", "execution_id"))


def expired_sql(param: Callable[[str], str]) -> str:
    """Selects expired executions, oldest end first; takes ``now``, ``days`` (the default) and ``bound``.

    ``bound`` (``now`` less the shortest retention possible) lets the index on ``end_time``
    skip the executions that ended too recently to be expired, which are most of them.
    """
    days = f"COALESCE(retention_days, {param('days')})"
    return (
        f"SELECT id, arn, function_name, name, status, end_time, {days} AS retention FROM executions"
        f" WHERE end_time IS NOT NULL AND end_time <= {param('bound')} AND status <> 'RUNNING'"
        f" AND end_time + {days} * {DAY_SECONDS} <= {param('now')} ORDER BY end_time, id"
    )


def expiry_bound(now: float, default_retention_days: int) -> float:
    """The latest end time an expired execution can have: retention is at least a day."""
    return now - DAY_SECONDS * min(1, default_retention_days)


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
