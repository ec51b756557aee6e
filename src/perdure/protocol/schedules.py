"""Schedules: what starts a function on a clock (a SAM ``Schedule``/``ScheduleV2`` event, or
``@durable.function(schedule=...)``), and the state the store keeps of each.

A schedule's ticks are the instants its expression names (``perdure.protocol.schedule_expressions``);
each tick starts one execution, named after the schedule and the tick, so that it starts once
however many servers fire it and however often.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

# A tick's execution is ``<schedule>-<tick as yyyymmddThhmmssZ>``: 17 characters after the name,
# within the 64 that an execution name may have.
MAX_NAME_LENGTH = 47
# Decorated functions have one schedule, under this name.
DEFAULT_NAME = "schedule"


class CatchUp(enum.StrEnum):
    """Which of the ticks missed while no server ran the schedule fire when one does again."""

    # The latest missed tick fires, once; the others are skipped.
    LATEST = "latest"
    # Every missed tick fires, oldest first.
    ALL = "all"
    # None fires: a tick fires only on time (see ``perdure.service.schedules.ON_TIME_SECONDS``).
    NONE = "none"


@dataclass(frozen=True)
class ScheduleDefinition:
    """A schedule as its template or decorator declares it.

    ``input_payload`` is the JSON text each tick's execution gets; None gives it EventBridge's
    Scheduled Event for the tick (``scheduled_event``). ``window_minutes`` is a
    ``FlexibleTimeWindow``'s ``MaximumWindowInMinutes`` (0: ``OFF``). ``start_time`` and
    ``end_time`` (epoch seconds) bound the ticks that fire.
    """

    name: str
    expression: str
    timezone: str = "UTC"
    input_payload: str | None = None
    enabled: bool = True
    start_time: float | None = None
    end_time: float | None = None
    window_minutes: int = 0
    catch_up: CatchUp = CatchUp.LATEST

    def same_ticks(self, other: ScheduleDefinition) -> bool:
        """Whether ``other`` ticks at the same instants (so what was fired of this one holds for it)."""
        return (self.expression, self.timezone, self.start_time) == (other.expression, other.timezone, other.start_time)

    def offset_seconds(self, function_name: str) -> int:
        """How long after each tick it fires: a fixed point in its flexible window, the same on every server."""
        if not self.window_minutes:
            return 0
        digest = hashlib.sha256(f"{function_name}\n{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (self.window_minutes * 60)


@dataclass(frozen=True)
class Schedule:
    """A registered schedule and how far it has fired.

    ``next_tick`` is the first tick not yet handled (fired or skipped); ``next_due`` is when it
    fires (the tick plus the flexible window's offset), None while nothing is to fire: paused,
    disabled, or past its end. ``anchor`` is when its ticks were first defined: a ``rate``
    counts from it (or from its start time).
    """

    function_name: str
    definition: ScheduleDefinition
    anchor: float
    paused_time: float | None
    last_tick: float | None
    next_tick: float | None
    next_due: float | None
    updated_time: float

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def state(self) -> str:
        """ENABLED, DISABLED (by its template or decorator) or PAUSED (by an operator)."""
        if not self.definition.enabled:
            return "DISABLED"
        return "PAUSED" if self.paused_time is not None else "ENABLED"


def tick_label(tick: float) -> str:
    """The tick as an execution name writes it: ``20260301T090000Z``."""
    return datetime.datetime.fromtimestamp(tick, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def execution_name(schedule_name: str, tick: float) -> str:
    """The name of the execution a tick starts: the same on every server, for every try."""
    return f"{schedule_name}-{tick_label(tick)}"


def scheduled_event(function_name: str, schedule_name: str, tick: float, region: str, account_id: str) -> str:
    """EventBridge's Scheduled Event for a tick, as JSON; its ``id`` is derived from the tick, so
    every server that fires it starts the execution with the same input."""
    rule = f"arn:aws:events:{region}:{account_id}:rule/{function_name}-{schedule_name}"
    event = {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule}/{tick}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.datetime.fromtimestamp(tick, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule],
        "detail": {},
    }
    return json.dumps(event, separators=(",", ":"))


def definition_to_wire(definition: ScheduleDefinition) -> dict[str, Any]:
    """A definition as the API carries it, in the words of EventBridge Scheduler where it has them."""
    wire: dict[str, Any] = {
        "Name": definition.name,
        "ScheduleExpression": definition.expression,
        "ScheduleExpressionTimezone": definition.timezone,
        "State": "ENABLED" if definition.enabled else "DISABLED",
        "FlexibleTimeWindow": (
            {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": definition.window_minutes}
            if definition.window_minutes
            else {"Mode": "OFF"}
        ),
        "CatchUp": definition.catch_up.value,
    }
    optional = {"Input": definition.input_payload, "StartDate": definition.start_time, "EndDate": definition.end_time}
    wire.update({key: value for key, value in optional.items() if value is not None})
    return wire


def schedule_to_wire(schedule: Schedule) -> dict[str, Any]:
    """A registered schedule as ``perdure schedules list`` prints it: its definition, state and fire times."""
    return {
        "FunctionName": schedule.function_name,
        **definition_to_wire(schedule.definition),
        "State": schedule.state,
        "NextFireTime": schedule.next_due,
        "NextTick": schedule.next_tick,
        "LastTick": schedule.last_tick,
        "PausedTimestamp": schedule.paused_time,
    }
