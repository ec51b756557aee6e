"""The schedule routes, ``/perdure/v1/schedules``: list schedules with their next fire times, pause,
resume and trigger one, and replace a function's schedules (what ``perdure deploy`` sends).

Not Lambda's API (on AWS, schedules are EventBridge's): Perdure's own, under ``/perdure/v1``.
A definition is written in EventBridge Scheduler's words (``ScheduleExpression``,
``ScheduleExpressionTimezone``, ``FlexibleTimeWindow``, ...), and checked as a template's is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, json_body, json_response
from perdure.api.waiting import CompletionWaiter
from perdure.errors import InvalidParameterError
from perdure.protocol.schedule_expressions import ScheduleExpressionError, parse_expression
from perdure.protocol.schedules import MAX_NAME_LENGTH, CatchUp, ScheduleDefinition, schedule_to_wire
from perdure.runtime.registry import Registry
from perdure.service.executions import DurableService
from perdure.service.schedules import Schedules
from perdure.service.validation import NAME

SCHEDULES = "/perdure/v1/schedules"


def _optional_time(body: dict[str, Any], key: str, where: str) -> float | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidParameterError(f"{where}: {key} must be epoch seconds, not {value!r}.")
    return float(value) if value is not None else None


def definition_from_wire(body: Any, where: str) -> ScheduleDefinition:
    """A definition from its API form (``definition_to_wire``); raises InvalidParameterError naming ``where``."""
    if not isinstance(body, dict):
        raise InvalidParameterError(f"{where} must be an object with Name and ScheduleExpression.")
    name, expression = body.get("Name"), body.get("ScheduleExpression")
    if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterError(f"{where}: Name must be 1 to {MAX_NAME_LENGTH} letters, digits, '-' or '_', not {name!r}.")
    timezone = body.get("ScheduleExpressionTimezone", "UTC")
    if not isinstance(expression, str) or not isinstance(timezone, str):
        raise InvalidParameterError(f"{where}: ScheduleExpression and ScheduleExpressionTimezone must be text.")
    try:
        parse_expression(expression, timezone)
    except ScheduleExpressionError as error:
        raise InvalidParameterError(f"{where} ({name}): {error.message}.") from None
    payload = body.get("Input")
    if payload is not None:
        if not isinstance(payload, str):
            raise InvalidParameterError(f"{where} ({name}): Input must be a JSON text.")
        try:
            json.loads(payload)
        except ValueError as error:
            raise InvalidParameterError(f"{where} ({name}): Input must be a JSON text: {error}.") from None
    window = body.get("FlexibleTimeWindow") or {"Mode": "OFF"}
    flexible = isinstance(window, dict) and window.get("Mode") == "FLEXIBLE"
    minutes = window.get("MaximumWindowInMinutes") if flexible else 0
    if flexible and (isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440):
        raise InvalidParameterError(
            f"{where} ({name}): FlexibleTimeWindow.MaximumWindowInMinutes must be 1 to 1440 when its Mode is FLEXIBLE."
        )
    state, catch_up = body.get("State", "ENABLED"), body.get("CatchUp", "latest")
    if state not in ("ENABLED", "DISABLED") or catch_up not in {mode.value for mode in CatchUp}:
        raise InvalidParameterError(f"{where} ({name}): State is ENABLED or DISABLED, and CatchUp latest, all or none.")
    return ScheduleDefinition(
        name=name,
        expression=expression.strip(),
        timezone=timezone,
        input_payload=payload,
        enabled=state == "ENABLED",
        start_time=_optional_time(body, "StartDate", where),
        end_time=_optional_time(body, "EndDate", where),
        window_minutes=minutes if isinstance(minutes, int) else 0,
        catch_up=CatchUp(catch_up),
    )


@dataclass
class ScheduleRoutes:
    """Schedule endpoints over one service; a change wakes the runtime (through ``waiter``)."""

    service: DurableService
    registry: Registry
    waiter: CompletionWaiter

    def routes(self) -> list[Route]:
        one = f"{SCHEDULES}/{{function}}/{{name}}"
        return [
            Route("GET", SCHEDULES, self.list_schedules),
            Route("POST", f"{one}/pause", self.pause),
            Route("POST", f"{one}/resume", self.resume),
            Route("POST", f"{one}/trigger", self.trigger),
            Route("PUT", "/perdure/v1/functions/{function}/schedules", self.put_schedules),
        ]

    @property
    def _schedules(self) -> Schedules:
        return Schedules(self.service)

    async def list_schedules(self, request: Request, params: dict[str, str]) -> Response:
        function = request.query_params.get("FunctionName")
        found = await run_in_threadpool(self._schedules.every, function)
        return json_response({"Schedules": [schedule_to_wire(schedule) for schedule in found]})

    async def pause(self, request: Request, params: dict[str, str]) -> Response:
        schedule = await run_in_threadpool(self._schedules.pause, params["function"], params["name"])
        return json_response(schedule_to_wire(schedule))

    async def resume(self, request: Request, params: dict[str, str]) -> Response:
        schedule = await run_in_threadpool(self._schedules.resume, params["function"], params["name"])
        self.waiter.started()
        return json_response(schedule_to_wire(schedule))

    async def trigger(self, request: Request, params: dict[str, str]) -> Response:
        # Only a function this server runs: as an invoke, it needs someone to run it.
        self.registry.get(params["function"])
        execution = await run_in_threadpool(self._schedules.trigger, params["function"], params["name"])
        self.waiter.started()
        return json_response({"DurableExecutionArn": execution.arn, "DurableExecutionName": execution.name}, status=202)

    async def put_schedules(self, request: Request, params: dict[str, str]) -> Response:
        function = params["function"]
        self.registry.get(function)
        body = await json_body(request)
        listed = body.get("Schedules")
        if not isinstance(listed, list):
            raise InvalidParameterError("Schedules must be a list of schedule definitions (an empty list removes them all).")
        definitions = [definition_from_wire(item, f"Schedules[{i}]") for i, item in enumerate(listed)]
        names = [definition.name for definition in definitions]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"Schedules has two definitions of one name ({', '.join(names)}); give each its own Name.")
        found = await run_in_threadpool(self._schedules.register, function, definitions)
        self.waiter.started()
        return json_response({"Schedules": [schedule_to_wire(schedule) for schedule in found]})
