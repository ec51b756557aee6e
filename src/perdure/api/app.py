"""The ASGI application: the Lambda-compatible API, a health check, the dashboard, and lifespan hooks.

With a ``KeyRing`` every API route but ``/health`` is authenticated (``perdure.api.auth``);
without one the API is open, which ``perdure serve`` allows only with ``--dev`` on a loopback
address, and then only to requests that a web page could not have sent
(``perdure.api.dev_guard``). The dashboard (``/``, ``/execution``, ``/inbox``, ... see
``perdure.api.dashboard``) has sign-in sessions of its own, made with the same keys' bearer
tokens. Every body is capped before either reads it (``perdure.api.body_limit``).

Two kinds of path are opened by what they name rather than by a key: a function's URL
(``/url/NAME``, ``perdure.api.function_urls``), open or authenticated as its ``AuthType`` says,
and an approval link's page (``/approve/TOKEN``, served by the dashboard), which the link's
signature opens for its one callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from perdure.api.auth import Authenticator
from perdure.api.body_limit import REQUEST_SECONDS, BodyLimit, BodyLimits, api_bytes
from perdure.api.callback_links import CallbackLinkRoutes
from perdure.api.dashboard import Dashboard, is_dashboard_path
from perdure.api.dashboard.sessions import SECRET_LABEL
from perdure.api.destination_routes import DestinationRoutes
from perdure.api.concurrency_routes import ConcurrencyRoutes
from perdure.api.dev_guard import DevGuard
from perdure.api.function_routes import FunctionRoutes
from perdure.api.function_urls import FunctionUrls, is_function_url_path
from perdure.api.http import Route, Router, json_response
from perdure.api.keys import KeyRing
from perdure.api.lambda_routes import LambdaRoutes
from perdure.api.metrics import metrics_route
from perdure.api.schedule_routes import ScheduleRoutes
from perdure.api.waiting import CompletionWaiter
from perdure.protocol.approval_links import ApprovalLinks
from perdure.runtime.registry import Registry
from perdure.service.executions import DurableService, StartRequest, StartResult


async def _health(request: Request, params: dict[str, str]) -> Response:
    return json_response({"status": "ok"})


@dataclass(frozen=True)
class Lifespan:
    """What runs beside the API (``perdure.server`` gives its runtime's): started and stopped with it."""

    startup: Callable[[], None]
    shutdown: Callable[[], None]
    # Called when the API made an execution ready (started, or a callback completed), so that it
    # runs now rather than when the runtime next looks.
    wake: Callable[[], None]
    # Starts an execution, handing it to a free worker at once where the runtime can (see
    # ``perdure.runtime.runner.Runtime.start_execution``); None: the API starts it and wakes the runtime.
    start: Callable[[StartRequest], StartResult] | None = None


class PerdureApp:
    """Serves the API; runs ``lifespan`` (if any) as the server starts, and stops it after.

    With ``links``, it makes approval links for callers of the API and serves their pages.
    """

    def __init__(
        self,
        service: DurableService,
        registry: Registry,
        lifespan: Lifespan | None = None,
        keys: KeyRing | None = None,
        request_seconds: float = REQUEST_SECONDS,
        metrics: CollectorRegistry | None = None,
        links: ApprovalLinks | None = None,
    ) -> None:
        self.service = service
        self.lifespan = lifespan
        self.waiter = CompletionWaiter(service, lifespan.wake if lifespan else None, lifespan.start if lifespan else None)
        routes = [
            *LambdaRoutes(service, registry, self.waiter).routes(),
            *FunctionRoutes(service, registry).routes(),
            *ScheduleRoutes(service, registry, self.waiter).routes(),
            *DestinationRoutes(service, self.waiter).routes(),
            *ConcurrencyRoutes(service, registry).routes(),
        ]
        if metrics is not None:
            routes.append(metrics_route(metrics))
        if links is not None:
            routes += CallbackLinkRoutes(service, links).routes()
        self.router = Router([Route("GET", "/health", _health), *routes])
        self.http: ASGIApp = self.router if keys is None else Authenticator(self.router, keys)
        # The dashboard signs people in with the same keys, into sessions of its own.
        secret = keys.derived_secret(SECRET_LABEL) if keys is not None else None
        self.dashboard = Dashboard(service, registry, keys, secret, links, self.waiter.woke)
        self.function_urls = FunctionUrls(service, registry, self.waiter, keys)
        # Bodies are capped in front of both, before authentication or sign-in reads them.
        limits = BodyLimits(api_bytes(service.config.max_payload_bytes), seconds=request_seconds)
        served: ASGIApp = BodyLimit(self._route, limits)
        # Open to this machine: refuse what a web page in its browser could send (perdure.api.dev_guard).
        self.served = served if keys is not None else DevGuard(served)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.served(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_dashboard_path(scope["path"]):
            await self.dashboard(scope, receive, send)
        elif scope["type"] == "http" and is_function_url_path(scope["path"]):
            await self.function_urls(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.lifespan is not None:
                    self.lifespan.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.lifespan is not None:
                    self.lifespan.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
