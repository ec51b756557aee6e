"""``GET /metrics``: Perdure's metrics in Prometheus's text format, and a listener of their own.

What was counted and timed comes from ``perdure.telemetry.metrics.REGISTRY`` (worker processes'
observations included, which their pool replays there); what stands now (executions not ended,
by function and state; the oldest ready one's age; worker processes busy and idle) is read when
scraped. On the API's port the route is authenticated like the rest of the API (a bearer
token, which Prometheus sends with ``authorization``), so open only under ``--dev``; the
listener of ``--metrics-port`` asks for nothing, and belongs on a private network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route
from perdure.runtime.workers import PoolLoad
from perdure.service import console
from perdure.service.executions import DurableService
from perdure.telemetry.metrics import REGISTRY


class _Live(Collector):
    """The gauges, read from the store and the pool at each scrape."""

    def __init__(self, service: DurableService, pool_load: Callable[[], PoolLoad] | None) -> None:
        self._service = service
        self._pool_load = pool_load

    def collect(self) -> Iterator[Metric]:
        now = self._service.clock()
        executions = GaugeMetricFamily(
            "perdure_executions", "Executions not ended, by state.", labels=["function", "state"]
        )
        oldest = GaugeMetricFamily(
            "perdure_ready_oldest_age_seconds",
            "How long the oldest execution ready to run has waited (for a worker, or for its function's limits).",
            labels=["function"],
        )
        for count in console.live_counts(self._service):
            for state, value in (
                ("running", count.running), ("ready", count.ready), ("paused", count.paused), ("suspended", count.suspended),
            ):  # fmt: skip
                executions.add_metric([count.function_name, state], value)
            age = now - count.oldest_ready_time if count.oldest_ready_time is not None else 0.0
            oldest.add_metric([count.function_name], max(0.0, age))
        yield executions
        yield oldest
        if self._pool_load is not None:
            load = self._pool_load()
            processes = GaugeMetricFamily("perdure_worker_processes", "Worker processes, by state.", labels=["state"])
            processes.add_metric(["busy"], load.busy_processes)
            processes.add_metric(["idle"], load.idle_processes)
            yield processes
            flight = GaugeMetricFamily(
                "perdure_invocations_in_flight", "Invocations running, or leased and waiting for a place.", labels=["state"]
            )
            flight.add_metric(["running"], load.running)
            flight.add_metric(["waiting"], load.waiting)
            yield flight


class _Everything(Collector):
    """``REGISTRY``'s metrics and the live gauges, as one registry serves them."""

    def __init__(self, live: _Live) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self._live.collect()


def metrics_registry(service: DurableService, pool_load: Callable[[], PoolLoad] | None) -> CollectorRegistry:
    """A registry of everything ``/metrics`` shows, for this service and pool."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything(_Live(service, pool_load)))
    return registry


def metrics_route(registry: CollectorRegistry) -> Route:
    async def scrape(request: Request, params: dict[str, str]) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("GET", "/metrics", scrape)


class MetricsListener:
    """``/metrics`` on a port of its own, unauthenticated, served by ``prometheus_client``'s server."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, host, registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
