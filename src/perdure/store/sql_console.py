"""The console's queries (``ConsoleQueries``) in SQL, the same for every backend but for a few dialect clauses.

Their text depends on the filters of each query, so it is built per call; none of them is on
the path of a checkpoint.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from perdure.protocol.queries import ExecutionPage, ExecutionQuery, LiveCount, OpenCallback, StatusCount
from perdure.protocol.records import Execution, ExecutionStatus, Operation
from perdure.store import rows as rowmap
from perdure.store.base import ConsoleQueries, prefix_bounds
from perdure.store.dialect import Dialect

if TYPE_CHECKING:
    from perdure.store.sql import Execute, Statements

# The checkpoints a seed-style execution recorded before an operation ``o`` (see
# perdure.service.restarts.checkpoint_operations): counted, and the last one's name.
_CHECKPOINTS_BEFORE = (
    "FROM operations c WHERE c.execution_id = o.execution_id AND c.position < o.position"
    " AND c.type = 'CONTEXT' AND c.sub_type = 'Checkpoint' AND c.parent_id IS NULL AND c.status = 'SUCCEEDED'"
)


def _filters(dialect: Dialect, query: ExecutionQuery) -> tuple[list[str], list[Any]]:
    """The WHERE clauses of a query's filters (its marker and limit aside), and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.function_name is not None:
        clauses.append("function_name = ?")
        params.append(query.function_name)
    if query.function_version is not None:
        clauses.append("function_version = ?")
        params.append(query.function_version)
    if query.statuses:
        clause, values = dialect.member("status", [s.value for s in query.statuses])
        clauses.append(clause)
        params.extend(values)
    name = dialect.bytewise("name")
    if query.name is not None:
        clauses.append(f"{name} = ?")
        params.append(query.name)
    if query.name_prefix:
        clauses.append(f"{name} >= ? AND {name} < ?")
        params.extend(prefix_bounds(query.name_prefix))
    if query.started_after is not None:
        clauses.append("start_time >= ?")
        params.append(query.started_after)
    if query.started_before is not None:
        clauses.append("start_time < ?")
        params.append(query.started_before)
    return clauses, params


class SQLConsoleQueries(ConsoleQueries):
    """``ConsoleQueries`` run through a transaction's ``_execute`` (see ``perdure.store.sql.SQLTransaction``)."""

    _sql: Statements
    _execute: Execute

    @abc.abstractmethod
    def _execution(self, row: Any) -> Execution: ...

    @abc.abstractmethod
    def _operation(self, row: Any) -> Operation: ...

    def list_executions(self, query: ExecutionQuery) -> ExecutionPage:
        dialect = self._sql.dialect
        clauses, params = _filters(dialect, query)
        before, order = (">", "ASC") if query.oldest_first else ("<", "DESC")
        if query.marker:
            clause, values = dialect.after(("start_time", "id"), before, rowmap.decode_marker(query.marker))
            clauses.append(clause)
            params.extend(values)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(
            dialect.spell(f"SELECT * FROM executions {where} ORDER BY start_time {order}, id {order} LIMIT ?"),
            [*params, query.limit + 1],
        ).fetchall()
        executions = [self._execution(r) for r in rows[: query.limit]]
        marker = None
        if len(rows) > query.limit:
            last = executions[-1]
            marker = rowmap.encode_marker(last.start_time, last.id)
        return ExecutionPage(executions, marker)

    def count_executions(self, query: ExecutionQuery) -> dict[ExecutionStatus, int]:
        dialect = self._sql.dialect
        clauses, params = _filters(dialect, query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = dialect.spell(f"SELECT status, COUNT(*) AS n FROM executions {where} GROUP BY status")
        return {ExecutionStatus(row["status"]): row["n"] for row in self._execute(sql, params).fetchall()}

    def count_by_function(self, started_after: float) -> list[StatusCount]:
        sql = self._sql.dialect.spell(
            "SELECT function_name, status, COUNT(*) AS n, SUM(compute_seconds) AS compute,"
            " SUM(cpu_seconds) AS cpu, SUM(gb_seconds) AS gb FROM executions WHERE start_time >= ?"
            " GROUP BY function_name, status ORDER BY function_name, status"
        )
        rows = self._execute(sql, (started_after,)).fetchall()
        return [
            StatusCount(
                row["function_name"], ExecutionStatus(row["status"]), row["n"],
                float(row["compute"] or 0), float(row["cpu"] or 0), float(row["gb"] or 0),
            )
            for row in rows
        ]  # fmt: skip

    def live_counts(self, now: float) -> list[LiveCount]:
        # Through the status index: ended executions, however many, are not read.
        sql = self._sql.dialect.spell(
            "SELECT function_name, COUNT(*) AS live,"
            " SUM(CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END) AS running,"
            " SUM(CASE WHEN status = 'PAUSED' THEN 1 ELSE 0 END) AS paused,"
            " SUM(CASE WHEN lease_owner IS NULL AND status <> 'PAUSED' AND ready_time <= ? THEN 1 ELSE 0 END) AS ready,"
            " MIN(CASE WHEN lease_owner IS NULL AND status <> 'PAUSED' AND ready_time <= ? THEN ready_time END) AS oldest"
            " FROM executions WHERE status IN ('RUNNING', 'PAUSING', 'PAUSED') GROUP BY function_name ORDER BY function_name"
        )
        counts = []
        for row in self._execute(sql, (now, now)).fetchall():
            running, paused, ready = int(row["running"]), int(row["paused"]), int(row["ready"])
            counts.append(
                LiveCount(row["function_name"], running, ready, row["oldest"], paused, int(row["live"]) - running - paused - ready)
            )
        return counts

    def open_callbacks(
        self, limit: int, after: tuple[float, str] | None, function_name: str | None
    ) -> list[OpenCallback]:
        dialect = self._sql.dialect
        # The terms on o.callback_id and o.status are those of the partial index
        # operations_open_callbacks, which holds the open callbacks in this order.
        clauses = ["o.callback_id IS NOT NULL", "o.status = 'STARTED'", "e.status IN ('RUNNING', 'PAUSING', 'PAUSED')"]
        params: list[Any] = []
        if function_name is not None:
            clauses.append("e.function_name = ?")
            params.append(function_name)
        if after is not None:
            clause, values = dialect.after(("o.start_time", "o.callback_id"), ">", after)
            clauses.append(clause)
            params.extend(values)
        sql = dialect.spell(
            "SELECT o.*, e.arn AS execution_arn, e.name AS execution_name, e.function_name AS execution_function,"
            " p.name AS parent_name, p.sub_type AS parent_sub_type,"
            f" (SELECT COUNT(*) {_CHECKPOINTS_BEFORE}) AS checkpoints_before,"
            f" (SELECT c.name {_CHECKPOINTS_BEFORE} ORDER BY c.position DESC LIMIT 1) AS checkpoint_name"
            # The ordered join keeps the open callbacks as the outer loop: read in index order,
            # the LIMIT stops the scan early (SQLite without ANALYZE statistics would rather start
            # from the running executions and sort every open callback they have).
            f" FROM operations o {dialect.ordered_join} executions e ON e.id = o.execution_id"
            " LEFT JOIN operations p ON p.execution_id = o.execution_id AND p.id = o.parent_id"
            f" WHERE {' AND '.join(clauses)} ORDER BY o.start_time, o.callback_id LIMIT ?"
        )
        rows = self._execute(sql, [*params, limit]).fetchall()
        return [
            OpenCallback(
                row["execution_arn"],
                row["execution_name"],
                row["execution_function"],
                self._operation(row),
                row["parent_name"],
                row["parent_sub_type"],
                row["checkpoints_before"],
                row["checkpoint_name"],
            )
            for row in rows
        ]
