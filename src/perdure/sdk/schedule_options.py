"""``@durable.function(schedule=...)``: the decorator's schedule options, checked when it decorates."""

from __future__ import annotations

import json
from typing import Any

from perdure.protocol.schedule_expressions import ScheduleExpressionError, parse_expression
from perdure.protocol.schedules import DEFAULT_NAME, CatchUp, ScheduleDefinition


def schedule_definitions(
    function_name: str, schedule: str | None, schedule_input: Any, schedule_timezone: str, catch_up: str
) -> tuple[ScheduleDefinition, ...]:
    """The function's schedule (named ``schedule``), or none; raises ValueError naming the bad argument."""
    if schedule is None:
        if schedule_input is not None:
            raise ValueError(
                f"{function_name}: schedule_input is given without a schedule; add one, for example "
                '@durable.function(schedule="cron(0 9 * * ? *)", schedule_input={...}).'
            )
        return ()
    if not isinstance(schedule, str):
        raise ValueError(f"{function_name}: schedule must be a string such as \"rate(5 minutes)\", not {schedule!r}.")
    try:
        parse_expression(schedule, schedule_timezone)
    except ScheduleExpressionError as error:
        argument = "schedule_timezone" if "time zone" in error.message else "schedule"
        value = schedule_timezone if argument == "schedule_timezone" else schedule
        raise ValueError(
            f"{function_name}: {argument}={value!r} cannot be used: {error.message}."
        ) from None
    if catch_up not in {mode.value for mode in CatchUp}:
        raise ValueError(
            f"{function_name}: catch_up={catch_up!r} is not one of latest, all or none: latest fires the "
            "latest tick missed while no server ran, all fires each, none fires none."
        )
    try:
        payload = None if schedule_input is None else json.dumps(schedule_input)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{function_name}: schedule_input must be JSON-serializable (a dict, list, string, number, "
            f"bool or None): {error}."
        ) from None
    definition = ScheduleDefinition(
        name=DEFAULT_NAME,
        expression=schedule.strip(),
        timezone=schedule_timezone,
        input_payload=payload,
        catch_up=CatchUp(catch_up),
    )
    return (definition,)
