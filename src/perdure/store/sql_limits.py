"""Functions' limits and leasing within them (``LimitQueries``) in SQL, the same for every backend."""

from __future__ import annotations

import abc
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from perdure.protocol.limits import NO_TENANT, FunctionLimits, Rate, StoredLimits
from perdure.protocol.records import Execution
from perdure.store.base import LimitQueries
from perdure.store.dialect import Dialect

if TYPE_CHECKING:
    from perdure.store.sql import Execute

_DECLARED = ("concurrency", "tenant_concurrency", "rate_count", "rate_seconds", "tenant_rate_count", "tenant_rate_seconds")
# An executions' tenant as counts and rate state key it: no TenantId is NO_TENANT.
_TENANT = f"COALESCE(tenant_id, '{NO_TENANT}')"


class LimitStatements:
    """The limit statements in one dialect, built once; ``locking``: reads lock as a writer's do."""

    def __init__(self, dialect: Dialect, *, locking: bool) -> None:
        spell = dialect.spell
        self.dialect = dialect
        self.lock = dialect.row_lock if locking else ""
        self.skip_locked = dialect.skip_locked if locking else ""
        self.every = spell("SELECT * FROM function_limits ORDER BY function_name")
        self.declare = spell(
            f"INSERT INTO function_limits (function_name, {', '.join(_DECLARED)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (function_name) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _DECLARED)
        )
        self.undeclare = spell(f"UPDATE function_limits SET {', '.join(f'{c} = NULL' for c in _DECLARED)} WHERE function_name = ?")
        self.reserve = spell(
            "INSERT INTO function_limits (function_name, reserved_concurrency) VALUES (?, ?)"
            " ON CONFLICT (function_name) DO UPDATE SET reserved_concurrency = excluded.reserved_concurrency"
        )
        self.unreserve = spell("UPDATE function_limits SET reserved_concurrency = NULL WHERE function_name = ?")
        # A row with no limit left holds nothing: its rate state means nothing without a rate.
        self.delete_if_empty = spell(
            "DELETE FROM function_limits WHERE function_name = ? AND reserved_concurrency IS NULL"
            " AND concurrency IS NULL AND tenant_concurrency IS NULL AND rate_count IS NULL AND tenant_rate_count IS NULL"
        )
        self.next_start = spell("UPDATE function_limits SET next_start = ? WHERE function_name = ?")
        self.leased = spell(
            f"SELECT {_TENANT} AS tenant, COUNT(*) AS n FROM executions{dialect.indexed_by('executions_leased')}"
            f" WHERE lease_owner IS NOT NULL AND function_name = ? GROUP BY {_TENANT}"
        )
        self.tenant_starts = spell("SELECT tenant_id, next_start FROM tenant_starts WHERE function_name = ? AND next_start > ?")
        self.tenant_start_upsert = spell(
            "INSERT INTO tenant_starts (function_name, tenant_id, next_start) VALUES (?, ?, ?)"
            " ON CONFLICT (function_name, tenant_id) DO UPDATE SET next_start = excluded.next_start"
        )
        self.tenant_starts_passed = spell("DELETE FROM tenant_starts WHERE function_name = ? AND next_start <= ?")
        self.tenant_starts_delete = spell("DELETE FROM tenant_starts WHERE function_name = ?")


def _rate(count: int | None, seconds: float | None) -> Rate | None:
    return Rate(count, seconds) if count is not None and seconds is not None else None


def _stored(row: Any) -> StoredLimits:
    declared = FunctionLimits(
        concurrency=row["concurrency"],
        tenant_concurrency=row["tenant_concurrency"],
        rate=_rate(row["rate_count"], row["rate_seconds"]),
        tenant_rate=_rate(row["tenant_rate_count"], row["tenant_rate_seconds"]),
    )
    return StoredLimits(row["function_name"], declared, row["reserved_concurrency"], row["next_start"])


class SQLLimitQueries(LimitQueries):
    """``LimitQueries`` run through a transaction's ``_execute`` (see ``perdure.store.sql.SQLTransaction``)."""

    _limits: LimitStatements
    _execute: Execute

    @abc.abstractmethod
    def _execution(self, row: Any) -> Execution: ...

    def function_limits(self, functions: Collection[str] | None = None) -> list[StoredLimits]:
        sql = self._limits
        if functions is None:
            return [_stored(row) for row in self._execute(sql.every, ()).fetchall()]
        if not functions:
            return []
        # Locked in name order: two leasers of the same functions cannot deadlock.
        member, params = sql.dialect.member("function_name", sorted(functions))
        query = sql.dialect.spell(f"SELECT * FROM function_limits WHERE {member} ORDER BY function_name{sql.lock}")
        return [_stored(row) for row in self._execute(query, params).fetchall()]

    def declare_limits(self, function_name: str, limits: FunctionLimits) -> None:
        sql = self._limits
        if limits.limited:
            rate, tenant_rate = limits.rate, limits.tenant_rate
            self._execute(sql.declare, (
                function_name, limits.concurrency, limits.tenant_concurrency,
                rate.count if rate else None, rate.seconds if rate else None,
                tenant_rate.count if tenant_rate else None, tenant_rate.seconds if tenant_rate else None,
            ))  # fmt: skip
        else:
            self._execute(sql.undeclare, (function_name,))
            self._execute(sql.delete_if_empty, (function_name,))
        if limits.tenant_rate is None:
            self._execute(sql.tenant_starts_delete, (function_name,))

    def put_reserved_concurrency(self, function_name: str, reserved: int | None) -> None:
        if reserved is not None:
            self._execute(self._limits.reserve, (function_name, reserved))
        else:
            self._execute(self._limits.unreserve, (function_name,))
            self._execute(self._limits.delete_if_empty, (function_name,))

    def put_next_start(self, function_name: str, next_start: float) -> None:
        self._execute(self._limits.next_start, (next_start, function_name))

    def leased_counts(self, function_name: str) -> dict[str, int]:
        return {row["tenant"]: int(row["n"]) for row in self._execute(self._limits.leased, (function_name,)).fetchall()}

    def tenant_next_starts(self, function_name: str, now: float) -> dict[str, float]:
        rows = self._execute(self._limits.tenant_starts, (function_name, now)).fetchall()
        return {row["tenant_id"]: float(row["next_start"]) for row in rows}

    def put_tenant_next_starts(self, function_name: str, starts: dict[str, float], now: float) -> None:
        sql = self._limits
        self._execute(sql.tenant_starts_passed, (function_name, now))
        for tenant, next_start in sorted(starts.items()):
            self._execute(sql.tenant_start_upsert, (function_name, tenant, next_start))

    def ready_of_function(self, now: float, function_name: str, limit: int, skip_tenants: Collection[str]) -> list[Execution]:
        sql = self._limits
        skip, params = "", [function_name, now]
        if skip_tenants:
            member, values = sql.dialect.member(_TENANT, sorted(skip_tenants))
            skip = f" AND NOT ({member})"
            params.extend(values)
        # Through executions_ready_by_function: its ready executions in order, and no others.
        query = sql.dialect.spell(
            f"SELECT * FROM executions{sql.dialect.indexed_by('executions_ready_by_function')}"
            " WHERE function_name = ? AND ready_time IS NOT NULL AND ready_time <= ?"
            f" AND lease_owner IS NULL AND status = 'RUNNING'{skip} ORDER BY ready_time LIMIT ?{sql.skip_locked}"
        )
        return [self._execution(row) for row in self._execute(query, [*params, limit]).fetchall()]

    def count_ready(self, now: float, functions: Collection[str], at_most: int) -> int:
        if not functions:
            return 0
        sql = self._limits
        served, names = sql.dialect.member("function_name", sorted(functions))
        # In the order of executions_ready, stopping at ``at_most``: a backlog is not counted in full.
        query = sql.dialect.spell(
            f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM executions{sql.dialect.indexed_by('executions_ready')}"
            " WHERE ready_time IS NOT NULL AND ready_time <= ? AND lease_owner IS NULL AND status = 'RUNNING'"
            f" AND {served} ORDER BY ready_time LIMIT ?) AS ready"
        )
        return int(self._execute(query, [now, *names, at_most]).fetchone()["n"])

    def leased_by_function(self, functions: Collection[str]) -> dict[str, int]:
        if not functions:
            return {}
        sql = self._limits
        served, names = sql.dialect.member("function_name", sorted(functions))
        query = sql.dialect.spell(
            f"SELECT function_name, COUNT(*) AS n FROM executions{sql.dialect.indexed_by('executions_leased')}"
            f" WHERE lease_owner IS NOT NULL AND {served} GROUP BY function_name"
        )
        return {row["function_name"]: int(row["n"]) for row in self._execute(query, names).fetchall()}

    def lapsed_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        if not functions:
            return []
        query, params = self._lapsed_query(now, limit, functions)
        return [self._execution(row) for row in self._execute(query, params).fetchall()]

    def _lapsed_query(self, now: float, limit: int, functions: Collection[str]) -> tuple[str, list[Any]]:
        """The statement of ``lapsed_executions`` (``functions`` not empty), and its parameters."""
        sql = self._limits
        served, names = sql.dialect.member("function_name", sorted(functions))
        # In the order of the partial index executions_leased, stopping at ``limit``.
        query = sql.dialect.spell(
            f"SELECT * FROM executions{sql.dialect.indexed_by('executions_leased')}"
            " WHERE lease_owner IS NOT NULL AND lease_expiry <= ? AND status IN ('RUNNING', 'PAUSING')"
            f" AND {served} ORDER BY lease_expiry LIMIT ?{sql.skip_locked}"
        )
        return query, [now, *names, limit]
