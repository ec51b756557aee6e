"""The rules of schedules: registering them, firing their due ticks once each, pausing and triggering.

A tick starts one execution named after the schedule and the tick (``<schedule>-20260301T090000Z``)
in the same transaction that records it as handled, with the schedule's row locked: a server
that fires finds the row locked or already moved on, and a second start of the same name
returns the execution the first made (``DurableService.start_in``), so a tick fires once across
restarts and any number of servers on one database.

Ticks that fell due while no server ran the schedule fire as its ``catch_up`` says
(``perdure.protocol.schedules.CatchUp``): by default the latest of them, once. Ticks while it
was paused, disabled, or before it was registered never fire.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from perdure.errors import ConflictError, ExecutionAlreadyExistsError, NotFoundError
from perdure.protocol.records import Execution
from perdure.protocol.schedule_expressions import ScheduleExpression, parse_expression
from perdure.protocol.schedules import CatchUp, Schedule, ScheduleDefinition, execution_name, scheduled_event
from perdure.service.executions import DurableService, StartRequest
from perdure.store.base import Transaction

logger = logging.getLogger(__name__)

# With ``catch_up: none``, a tick fires only if it is found due within this long of its time;
# later, it counts as missed. A scheduler that is awake finds a due tick within milliseconds,
# and starts a burst of 10,000 due at once within about 5 s (benchmarks/schedules.py).
ON_TIME_SECONDS = 15.0
# Schedules fired in one transaction: a tick costs about one execution start.
FIRE_BATCH = 200
# Missed ticks of one ``catch_up: all`` schedule fired in one pass; the rest fire in the next.
CATCH_UP_BATCH = 100


class ScheduleNotFoundError(NotFoundError):
    """No schedule of that name is registered for the function."""

    def __init__(self, function_name: str, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(
            f"Function {function_name} has no schedule named {name!r} (its schedules: {listed}). "
            "See them with `perdure schedules list`."
        )


@dataclass(frozen=True)
class FiringPass:
    """What one ``fire_due`` did: how many due schedules it handled, and the ticks it fired."""

    schedules: int
    fired: list[Fired]


@dataclass(frozen=True)
class Fired:
    """A tick that started an execution, or found the one it had started."""

    function_name: str
    schedule_name: str
    tick: float
    execution_arn: str
    created: bool


@functools.lru_cache(maxsize=4096)
def _expression(text: str, timezone: str) -> ScheduleExpression:
    # Definitions were checked when they were declared: parsing again cannot fail.
    return parse_expression(text, timezone)


def _following(definition: ScheduleDefinition, after: float, anchor: float) -> float | None:
    """The definition's first tick after ``after`` that lies within its start and end times."""
    expression = _expression(definition.expression, definition.timezone)
    start = definition.start_time
    tick = expression.next_after(after if start is None else max(after, start - 1e-3), anchor)
    if tick is None or (definition.end_time is not None and tick > definition.end_time):
        return None
    return tick


def _anchor(definition: ScheduleDefinition, now: float) -> float:
    """Where a rate counts its ticks from: its start time, else the whole second it was defined in."""
    return definition.start_time if definition.start_time is not None else float(math.floor(now))


def _with_next(schedule: Schedule, next_tick: float | None) -> Schedule:
    """The schedule with ``next_tick``, and when that fires (None while it cannot)."""
    definition = schedule.definition
    active = definition.enabled and schedule.paused_time is None and next_tick is not None
    due = next_tick + definition.offset_seconds(schedule.function_name) if active and next_tick is not None else None
    return dataclasses.replace(schedule, next_tick=next_tick, next_due=due)


def registered(function_name: str, definition: ScheduleDefinition, old: Schedule | None, now: float) -> Schedule:
    """The schedule a definition makes, given what was stored for it before (if anything).

    Ticking as before, it keeps its place, so that ticks missed across a restart are caught up;
    new, re-enabled or ticking differently, it starts from ``now``.
    """
    paused = old.paused_time if old else None
    last = old.last_tick if old else None
    continuing = old is not None and old.definition.enabled and definition.enabled and old.definition.same_ticks(definition)
    if old is not None and continuing:
        anchor = old.anchor
        next_tick = old.next_tick if old.next_tick is not None else _following(definition, old.last_tick or now, anchor)
        if next_tick is not None and definition.end_time is not None and next_tick > definition.end_time:
            next_tick = None
    else:
        anchor = _anchor(definition, now)
        next_tick = _following(definition, now, anchor) if definition.enabled else None
    updated = old.updated_time if old else now
    schedule = _with_next(Schedule(function_name, definition, anchor, paused, last, None, None, updated), next_tick)
    return schedule if schedule == old else dataclasses.replace(schedule, updated_time=now)


def due_ticks(schedule: Schedule, now: float) -> tuple[list[float], float | None]:
    """The ticks of a due schedule to fire at ``now``, and its next tick after them.

    Every tick from ``next_tick`` to the last one due is handled, fired or skipped as
    ``catch_up`` says; a ``catch_up: all`` schedule fires at most CATCH_UP_BATCH a pass.
    """
    definition = schedule.definition
    first = schedule.next_tick
    if first is None:
        return [], None
    expression = _expression(definition.expression, definition.timezone)
    # A tick is due once its offset in the flexible window has passed.
    offset = definition.offset_seconds(schedule.function_name)
    cutoff = now - offset
    if definition.end_time is not None:
        cutoff = min(cutoff, definition.end_time)
    ticks: list[float] = []
    if definition.catch_up is CatchUp.ALL:
        tick: float | None = first
        while tick is not None and tick <= cutoff and len(ticks) < CATCH_UP_BATCH:
            ticks.append(tick)
            tick = _following(definition, tick, schedule.anchor)
        return ticks, tick if ticks else first
    latest = expression.latest_at_or_before(cutoff, schedule.anchor)
    latest = first if latest is None or latest < first else latest
    if definition.catch_up is CatchUp.LATEST or now - (latest + offset) <= ON_TIME_SECONDS:
        ticks.append(latest)
    return ticks, _following(definition, latest, schedule.anchor)


class Schedules:
    """Schedules on one service: each call is one transaction of its own."""

    def __init__(self, service: DurableService) -> None:
        self.service = service

    def register(self, function_name: str, definitions: Sequence[ScheduleDefinition]) -> list[Schedule]:
        """Makes the function's schedules these: adds and updates them, and removes any others.

        A schedule that ticks as it did keeps its place and its pause, so that what a restart
        missed is caught up; one that is new or ticks differently starts from now.
        """
        now = self.service.clock()
        with self.service.store.transaction() as tx:
            existing = {schedule.name: schedule for schedule in tx.list_schedules(function_name)}
            for name in sorted(existing.keys() - {definition.name for definition in definitions}):
                tx.delete_schedule(function_name, name)
            result = []
            for definition in definitions:
                old = existing.get(definition.name)
                schedule = registered(function_name, definition, old, now)
                if schedule != old:
                    tx.put_schedule(schedule)
                result.append(schedule)
        return result

    def every(self, function_name: str | None = None) -> list[Schedule]:
        """Every schedule (or one function's), by function and name."""
        with self.service.store.snapshot() as tx:
            return tx.list_schedules(function_name)

    def _require(self, tx: Transaction, function_name: str, name: str) -> Schedule:
        schedule = tx.get_schedule(function_name, name)
        if schedule is None:
            raise ScheduleNotFoundError(function_name, name, [s.name for s in tx.list_schedules(function_name)])
        return schedule

    def pause(self, function_name: str, name: str) -> Schedule:
        """Stops the schedule's ticks until it is resumed; those meanwhile never fire."""
        now = self.service.clock()
        with self.service.store.transaction() as tx:
            schedule = self._require(tx, function_name, name)
            if schedule.paused_time is None:
                schedule = _with_next(dataclasses.replace(schedule, paused_time=now, updated_time=now), schedule.next_tick)
                tx.put_schedule(schedule)
        return schedule

    def resume(self, function_name: str, name: str) -> Schedule:
        """Lets a paused schedule tick again, from its first tick after now."""
        now = self.service.clock()
        with self.service.store.transaction() as tx:
            schedule = self._require(tx, function_name, name)
            if not schedule.definition.enabled:
                raise ConflictError(
                    f"Schedule {name} of {function_name} is disabled where it is declared (State: DISABLED, or "
                    "Enabled: false), which resuming does not override: enable it there and serve or deploy again."
                )
            if schedule.paused_time is not None:
                resumed = dataclasses.replace(schedule, paused_time=None, updated_time=now)
                schedule = _with_next(resumed, _following(schedule.definition, now, schedule.anchor))
                tx.put_schedule(schedule)
        return schedule

    def trigger(self, function_name: str, name: str) -> Execution:
        """Starts one execution of the schedule now, with its input, whatever its state; its ticks go on as they were."""
        with self.service.store.snapshot() as tx:
            schedule = self._require(tx, function_name, name)
        # Named apart from the ticks' executions: a trigger is not a tick.
        execution = f"{name}-run-{uuid.uuid4().hex[:12]}"
        payload = self._input(schedule, self.service.clock())
        return self.service.start_execution(StartRequest(function_name, payload, execution_name=execution)).execution

    def _input(self, schedule: Schedule, tick: float) -> str:
        config = self.service.config
        if schedule.definition.input_payload is not None:
            return schedule.definition.input_payload
        return scheduled_event(schedule.function_name, schedule.name, tick, config.region, config.account_id)

    def fire_due(self, functions: Collection[str], limit: int = FIRE_BATCH) -> FiringPass:
        """Fires the due ticks of up to ``limit`` schedules of ``functions``, in one transaction.

        Call it again while it handled ``limit`` schedules: more may be due.
        """
        now = self.service.clock()
        fired: list[Fired] = []
        with self.service.store.transaction() as tx:
            due = tx.due_schedules(now, functions, limit)
            for schedule in due:
                ticks, next_tick = due_ticks(schedule, now)
                for tick in ticks:
                    fired.extend(self._fire(tx, schedule, tick, now))
                last = ticks[-1] if ticks else schedule.last_tick
                tx.put_schedule(_with_next(dataclasses.replace(schedule, last_tick=last, updated_time=now), next_tick))
        return FiringPass(len(due), fired)

    def _fire(self, tx: Transaction, schedule: Schedule, tick: float, now: float) -> list[Fired]:
        name = execution_name(schedule.name, tick)
        request = StartRequest(schedule.function_name, self._input(schedule, tick), execution_name=name)
        try:
            started = self.service.start_in(tx, request, name, now)
        except ExecutionAlreadyExistsError as error:
            # Someone started an execution of this name with other input: the tick is taken.
            logger.warning("Tick %s of schedule %s was not fired: %s", name, schedule.name, error.message)
            return []
        return [Fired(schedule.function_name, schedule.name, tick, started.execution.arn, started.created)]

    def next_due(self, functions: Collection[str]) -> float | None:
        """When the first of these functions' schedules next fires, if any will."""
        with self.service.store.snapshot() as tx:
            return tx.next_schedule_due(functions)
