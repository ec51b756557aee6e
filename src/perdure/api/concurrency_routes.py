"""Lambda's reserved-concurrency routes, and what the function list says of limits and waiting work.

``PutFunctionConcurrency`` stores a ReservedConcurrentExecutions in the database, where every
server leasing the function reads it; it wins over the concurrency the served code declares
(``@durable.function(concurrency=...)``, a template's ReservedConcurrentExecutions) until
``DeleteFunctionConcurrency`` removes it. ``GetFunctionConcurrency`` answers with the one that
holds. The paths are botocore's (``GetFunctionConcurrency`` is under API version 2019-09-30).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, json_body, json_response
from perdure.errors import InvalidParameterError
from perdure.protocol.limits import FunctionLimits
from perdure.protocol.queries import LiveCount
from perdure.runtime.registry import Registry
from perdure.service import console, limits
from perdure.service.executions import DurableService
from perdure.service.functions import parse_function_name


def limits_wire(effective: FunctionLimits) -> dict[str, Any]:
    """A function's limits in ListFunctions' ``PerdureLimits``: only those it has."""
    wire: dict[str, Any] = {}
    if effective.concurrency is not None:
        wire["ReservedConcurrentExecutions"] = effective.concurrency
    if effective.tenant_concurrency is not None:
        wire["TenantConcurrency"] = effective.tenant_concurrency
    if effective.rate is not None:
        wire["RateLimit"] = str(effective.rate)
    if effective.tenant_rate is not None:
        wire["TenantRateLimit"] = str(effective.tenant_rate)
    return wire


def queue_wire(count: LiveCount | None, now: float) -> dict[str, Any]:
    """A function's executions not ended, in ListFunctions' ``PerdureQueue``: running, and ready but waiting (how long)."""
    if count is None:
        return {"Running": 0, "Ready": 0, "Suspended": 0, "Paused": 0}
    wire: dict[str, Any] = {"Running": count.running, "Ready": count.ready, "Suspended": count.suspended, "Paused": count.paused}
    if count.oldest_ready_time is not None:
        wire["OldestReadySeconds"] = round(max(0.0, now - count.oldest_ready_time), 3)
    return wire


def listing_extras(service: DurableService) -> Callable[[str], dict[str, Any]]:
    """What ListFunctions adds to a function's entry, by name: its ``PerdureLimits`` and ``PerdureQueue``."""
    stored = limits.every(service)
    live = {count.function_name: count for count in console.live_counts(service)}
    now = service.clock()

    def extras(function_name: str) -> dict[str, Any]:
        effective = stored[function_name].effective if function_name in stored else FunctionLimits()
        return {"PerdureLimits": limits_wire(effective), "PerdureQueue": queue_wire(live.get(function_name), now)}

    return extras


@dataclass
class ConcurrencyRoutes:
    """Put/Get/DeleteFunctionConcurrency over one service, for the functions its server serves."""

    service: DurableService
    registry: Registry

    def routes(self) -> list[Route]:
        concurrency = "/functions/{function}/concurrency"
        return [
            Route("PUT", f"/2017-10-31{concurrency}", self.put),
            Route("GET", f"/2019-09-30{concurrency}", self.get),
            Route("DELETE", f"/2017-10-31{concurrency}", self.delete),
        ]

    def _function(self, params: dict[str, str]) -> str:
        """The function a request names (a name or an ARN, without a version: the setting is the function's)."""
        ref = parse_function_name(params["function"])
        # Named with a qualifier (``orders:live``, or an ARN ending in one): the qualifier is its last part.
        if params["function"].rpartition(":")[2] == ref.qualifier:
            raise InvalidParameterError(
                f"Reserved concurrency belongs to the whole function: name {ref.name} without the qualifier {ref.qualifier}."
            )
        return self.registry.get(ref.name).name

    async def put(self, request: Request, params: dict[str, str]) -> Response:
        name = self._function(params)
        body = await json_body(request)
        if "ReservedConcurrentExecutions" not in body:
            raise InvalidParameterError("ReservedConcurrentExecutions is required: the most invocations that may run at once.")
        reserved = await run_in_threadpool(limits.reserve, self.service, name, body["ReservedConcurrentExecutions"])
        return json_response({"ReservedConcurrentExecutions": reserved})

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        effective = await run_in_threadpool(limits.of, self.service, self._function(params))
        reserved = effective.concurrency
        return json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        await run_in_threadpool(limits.unreserve, self.service, self._function(params))
        return Response(status_code=204)
