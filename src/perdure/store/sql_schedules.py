"""Schedules (``ScheduleQueries``) in SQL, the same for every backend: rows of the ``schedules`` table."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from perdure.protocol.schedules import CatchUp, Schedule, ScheduleDefinition
from perdure.store.base import ScheduleQueries
from perdure.store.dialect import Dialect

if TYPE_CHECKING:
    from perdure.store.sql import Execute

_COLUMNS = (
    "function_name", "name", "expression", "timezone", "input", "enabled", "start_time", "end_time",
    "window_minutes", "catch_up", "anchor", "paused_time", "last_tick", "next_tick", "next_due", "updated_time",
)  # fmt: skip


class ScheduleStatements:
    """The schedule statements in one dialect; ``lock`` is the row lock a writer's reads take (or empty)."""

    def __init__(self, dialect: Dialect, lock: str) -> None:
        spell = dialect.spell
        self.dialect = dialect
        columns = ", ".join(_COLUMNS)
        self.upsert = spell(
            f"INSERT INTO schedules ({columns}) VALUES ({', '.join(f':{c}' for c in _COLUMNS)})"
            " ON CONFLICT (function_name, name) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
        )
        self.of_function = spell(f"SELECT * FROM schedules WHERE function_name = ? ORDER BY name{lock}")
        self.every = spell("SELECT * FROM schedules ORDER BY function_name, name")
        self.one = spell(f"SELECT * FROM schedules WHERE function_name = ? AND name = ?{lock}")
        self.delete = spell("DELETE FROM schedules WHERE function_name = ? AND name = ?")
        # Another server firing the same rows holds their locks: it does the work, this one
        # takes the rows after them (on SQLite, one writer at a time needs no such thing).
        self.skip_locked = f"{lock} SKIP LOCKED" if lock else ""


def _row(schedule: Schedule) -> dict[str, Any]:
    definition = schedule.definition
    return {
        "function_name": schedule.function_name,
        "name": definition.name,
        "expression": definition.expression,
        "timezone": definition.timezone,
        "input": definition.input_payload,
        "enabled": definition.enabled,
        "start_time": definition.start_time,
        "end_time": definition.end_time,
        "window_minutes": definition.window_minutes,
        "catch_up": definition.catch_up.value,
        "anchor": schedule.anchor,
        "paused_time": schedule.paused_time,
        "last_tick": schedule.last_tick,
        "next_tick": schedule.next_tick,
        "next_due": schedule.next_due,
        "updated_time": schedule.updated_time,
    }


def _schedule(row: Any) -> Schedule:
    definition = ScheduleDefinition(
        name=row["name"],
        expression=row["expression"],
        timezone=row["timezone"],
        input_payload=row["input"],
        enabled=bool(row["enabled"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        window_minutes=row["window_minutes"],
        catch_up=CatchUp(row["catch_up"]),
    )
    return Schedule(
        function_name=row["function_name"],
        definition=definition,
        anchor=row["anchor"],
        paused_time=row["paused_time"],
        last_tick=row["last_tick"],
        next_tick=row["next_tick"],
        next_due=row["next_due"],
        updated_time=row["updated_time"],
    )


class SQLScheduleQueries(ScheduleQueries):
    """``ScheduleQueries`` run through a transaction's ``_execute`` (see ``perdure.store.sql.SQLTransaction``)."""

    _schedules: ScheduleStatements
    _execute: Execute
    made_ready: set[str]

    def put_schedule(self, schedule: Schedule) -> None:
        self._execute(self._schedules.upsert, _row(schedule))
        # The schedulers serving the function may now have a tick to fire sooner than they knew.
        self.made_ready.add(schedule.function_name)

    def delete_schedule(self, function_name: str, name: str) -> None:
        self._execute(self._schedules.delete, (function_name, name))

    def get_schedule(self, function_name: str, name: str) -> Schedule | None:
        row = self._execute(self._schedules.one, (function_name, name)).fetchone()
        return _schedule(row) if row else None

    def list_schedules(self, function_name: str | None = None) -> list[Schedule]:
        if function_name is None:
            rows = self._execute(self._schedules.every, ()).fetchall()
        else:
            rows = self._execute(self._schedules.of_function, (function_name,)).fetchall()
        return [_schedule(row) for row in rows]

    def due_schedules(self, now: float, functions: Collection[str], limit: int) -> list[Schedule]:
        if not functions:
            return []
        statements = self._schedules
        served, values = statements.dialect.member("function_name", sorted(functions))
        sql = statements.dialect.spell(
            f"SELECT * FROM schedules WHERE next_due IS NOT NULL AND next_due <= ? AND {served}"
            f" ORDER BY next_due LIMIT ?{statements.skip_locked}"
        )
        return [_schedule(row) for row in self._execute(sql, [now, *values, limit]).fetchall()]

    def next_schedule_due(self, functions: Collection[str]) -> float | None:
        if not functions:
            return None
        statements = self._schedules
        served, values = statements.dialect.member("function_name", sorted(functions))
        sql = statements.dialect.spell(f"SELECT MIN(next_due) AS t FROM schedules WHERE next_due IS NOT NULL AND {served}")
        row = self._execute(sql, values).fetchone()
        return float(row["t"]) if row and row["t"] is not None else None
