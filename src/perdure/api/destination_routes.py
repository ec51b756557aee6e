"""Where ended executions go, over HTTP: Lambda's event invoke configuration routes, and redrives.

``PutFunctionEventInvokeConfig``, ``UpdateFunctionEventInvokeConfig``,
``GetFunctionEventInvokeConfig``, ``ListFunctionEventInvokeConfigs`` and
``DeleteFunctionEventInvokeConfig`` (API version 2019-09-25, as boto3 calls them) set the
function each ended execution starts; ``POST /perdure/v1/functions/{function}/redrive`` restarts
a function's failed executions from their last checkpoints (``perdure executions redrive``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, json_body, json_response
from perdure.api.waiting import CompletionWaiter
from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig, StoredInvokeConfig, parse_destination
from perdure.protocol.records import to_datetime
from perdure.protocol.versions import LATEST
from perdure.service import invoke_configs, redrive
from perdure.service.executions import DurableService
from perdure.service.functions import parse_function_name

CONFIG = "/2019-09-25/functions/{function}/event-invoke-config"


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    """The ``EventInvokeConfig`` fields a Put or Update body sets (an absent one is not among them)."""
    changes: dict[str, Any] = {}
    for key, field in (("MaximumRetryAttempts", "maximum_retry_attempts"), ("MaximumEventAgeInSeconds", "maximum_event_age_seconds")):
        if key in body:
            value = body[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidParameterError(f"{key} must be a whole number, not {value!r}.")
            changes[field] = value
    targets = body.get("DestinationConfig")
    if targets is None:
        return changes
    if not isinstance(targets, dict):
        raise InvalidParameterError("DestinationConfig must be an object with OnSuccess and OnFailure.")
    for kind, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        if kind not in targets:
            continue
        entry = targets[kind] or {}
        if not isinstance(entry, dict):
            raise InvalidParameterError(f"DestinationConfig.{kind} must be an object with a Destination.")
        # {} or "" unsets it: the shape GetFunctionEventInvokeConfig answers for a destination not set.
        destination = entry.get("Destination")
        changes[field] = parse_destination(destination, f"DestinationConfig.{kind}.Destination") if destination else None
    return changes


def _time(value: Any) -> float:
    """StartedAfter: epoch seconds, as the CLI sends it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameterError(f"StartedAfter must be a time in epoch seconds, not {value!r}.")
    return float(value)


@dataclass
class DestinationRoutes:
    """The event invoke configuration endpoints and redrives, over one service."""

    service: DurableService
    waiter: CompletionWaiter

    def routes(self) -> list[Route]:
        return [
            Route("PUT", CONFIG, self.put),
            Route("POST", CONFIG, self.update),
            Route("GET", CONFIG, self.get),
            Route("DELETE", CONFIG, self.delete),
            Route("GET", f"{CONFIG}/list", self.list),
            Route("POST", "/perdure/v1/functions/{function}/redrive", self.redrive),
        ]

    def _target(self, request: Request, params: dict[str, str]) -> tuple[str, str]:
        """The function and qualifier a request names: in its path (``name:qualifier``, an ARN) or ``Qualifier``."""
        ref = parse_function_name(params["function"])
        return ref.name, request.query_params.get("Qualifier") or ref.qualifier

    def _wire(self, stored: StoredInvokeConfig) -> dict[str, Any]:
        config = stored.config

        def destination(value: str | None) -> dict[str, str]:
            if value is None:
                return {}
            name, _, qualifier = value.partition(":")
            return {"Destination": self.service.function_arn(name, qualifier or None)}

        wire: dict[str, Any] = {
            "LastModified": to_datetime(stored.last_modified),
            "FunctionArn": self.service.function_arn(stored.function_name, stored.qualifier),
            "DestinationConfig": {"OnSuccess": destination(config.on_success), "OnFailure": destination(config.on_failure)},
        }
        if config.maximum_retry_attempts is not None:
            wire["MaximumRetryAttempts"] = config.maximum_retry_attempts
        if config.maximum_event_age_seconds is not None:
            wire["MaximumEventAgeInSeconds"] = config.maximum_event_age_seconds
        return wire

    async def put(self, request: Request, params: dict[str, str]) -> Response:
        """PutFunctionEventInvokeConfig: replaces the configuration whole."""
        name, qualifier = self._target(request, params)
        config = EventInvokeConfig(**_settings(await json_body(request)))
        stored = await run_in_threadpool(invoke_configs.put, self.service, name, qualifier, config)
        return json_response(self._wire(stored))

    async def update(self, request: Request, params: dict[str, str]) -> Response:
        """UpdateFunctionEventInvokeConfig: changes the settings given, keeps the others."""
        name, qualifier = self._target(request, params)
        changes = _settings(await json_body(request))
        current = await run_in_threadpool(invoke_configs.get, self.service, name, qualifier)
        config = dataclasses.replace(current.config, **changes)
        stored = await run_in_threadpool(invoke_configs.put, self.service, name, qualifier, config)
        return json_response(self._wire(stored))

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        name, qualifier = self._target(request, params)
        stored = await run_in_threadpool(invoke_configs.get, self.service, name, qualifier)
        return json_response(self._wire(stored))

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        name, qualifier = self._target(request, params)
        await run_in_threadpool(invoke_configs.delete, self.service, name, qualifier)
        return Response(status_code=204)

    async def list(self, request: Request, params: dict[str, str]) -> Response:
        """ListFunctionEventInvokeConfigs: every qualifier's, in one page (a function has a few)."""
        name = parse_function_name(params["function"]).name
        found = await run_in_threadpool(invoke_configs.list_configs, self.service, name)
        return json_response({"FunctionEventInvokeConfigs": [self._wire(stored) for stored in found]})

    async def redrive(self, request: Request, params: dict[str, str]) -> Response:
        """Restarts the function's FAILED executions started after ``StartedAfter`` from their last checkpoints."""
        name = parse_function_name(params["function"]).name
        body = await json_body(request)
        if "StartedAfter" not in body:
            raise InvalidParameterError("StartedAfter is required: the redrive restarts executions that failed since then.")
        version = body.get("Version")
        if version is not None and not isinstance(version, str):
            raise InvalidParameterError(f"Version must be a version number, an alias or {LATEST}, as a string.")
        dry_run = body.get("DryRun", False)
        if not isinstance(dry_run, bool):
            raise InvalidParameterError("DryRun must be true or false.")
        done = await run_in_threadpool(redrive.redrive, self.service, name, _time(body["StartedAfter"]), version, dry_run)
        if any(item.outcome == redrive.RedriveOutcome.REDRIVEN for item in done):
            self.waiter.started()
        return json_response({"Redrives": [item.to_wire() for item in done]})
