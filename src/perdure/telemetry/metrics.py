"""Perdure's Prometheus metrics: what happened (counters) and how long it took (histograms).

Everything is recorded through ``record`` into ``REGISTRY``, a registry of Perdure's own (a
user's metrics in the default registry are not mixed in). A worker process of ``perdure serve``
is scraped by nobody: it calls ``forward()`` at start-up, after which what it records is kept
aside and sent to the server with each invocation's end (``take_forwarded``), where the
server's pool ``replay``s it. Gauges (executions running, waiting, queued; worker processes
busy) are read when scraped: see ``perdure.api.metrics_route``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from perdure.telemetry.held import held_here

REGISTRY = CollectorRegistry(auto_describe=True)

# From half a millisecond (a checkpoint on SQLite) to a minute (a slow step, a late timer).
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Callbacks wait for people: from a second to a week.
_LONG_SECONDS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 7 * 86400.0)

EXECUTIONS_STARTED = Counter(
    "perdure_executions_started", "Executions started.", ["function"], registry=REGISTRY
)
EXECUTIONS_ENDED = Counter(
    "perdure_executions_ended", "Executions ended, by final status.", ["function", "status"], registry=REGISTRY
)
INVOCATIONS = Counter(
    "perdure_invocations",
    "Invocations ended, by outcome: completed (the handler returned), failed (it crashed, timed out"
    " or ran out of memory) or lost (its process or lease was lost).",
    ["function", "outcome"],
    registry=REGISTRY,
)
INVOCATION_SECONDS = Histogram(
    "perdure_invocation_duration_seconds", "Invocations' time from lease to end.", ["function"],
    buckets=_SECONDS, registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "perdure_step_duration_seconds", "Step attempts' time from start to end.", ["function"],
    buckets=_SECONDS, registry=REGISTRY,
)
CHECKPOINT_SECONDS = Histogram(
    "perdure_checkpoint_duration_seconds", "Checkpoint batches' time to be recorded.", ["function"],
    buckets=_SECONDS, registry=REGISTRY,
)
RETRIES = Counter(
    "perdure_retries",
    "Retries: of a step attempt that failed (kind=step), of an invocation that failed or was lost (kind=invocation).",
    ["function", "kind"],
    registry=REGISTRY,
)
TIMER_LATENESS = Histogram(
    "perdure_timer_lateness_seconds", "How late timers fired: from their due time to their firing.", ["kind"],
    buckets=_SECONDS, registry=REGISTRY,
)
CALLBACK_WAIT = Histogram(
    "perdure_callback_wait_seconds", "Callbacks' time from creation to completion, by outcome.", ["function", "outcome"],
    buckets=_LONG_SECONDS, registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "perdure_store_commit_duration_seconds", "Store write transactions' commit time.", ["store"],
    buckets=_SECONDS, registry=REGISTRY,
)
COMPUTE_SECONDS = Counter(
    "perdure_compute_seconds", "Invocations' time from lease to end, summed (the duration Lambda bills).",
    ["function"], registry=REGISTRY,
)
CPU_SECONDS = Counter("perdure_cpu_seconds", "CPU time invocations used.", ["function"], registry=REGISTRY)
GB_SECONDS = Counter(
    "perdure_gb_seconds", "Invocations' time times their function's memory in GB.", ["function"], registry=REGISTRY
)

_BY_NAME: dict[str, Counter | Histogram] = {
    metric._name: metric  # noqa: SLF001 - the name the metric was made with, which replay looks up
    for metric in (
        EXECUTIONS_STARTED, EXECUTIONS_ENDED, INVOCATIONS, INVOCATION_SECONDS, STEP_SECONDS, CHECKPOINT_SECONDS,
        RETRIES, TIMER_LATENESS, CALLBACK_WAIT, COMMIT_SECONDS, COMPUTE_SECONDS, CPU_SECONDS, GB_SECONDS,
    )
}  # fmt: skip

# An observation kept aside in a worker process: (metric name, label values, value).
Observation = tuple[str, tuple[str, ...], float]

_forwarded: list[Observation] | None = None
_forwarded_lock = threading.Lock()


def record(metric: Counter | Histogram, labels: tuple[str, ...], value: float = 1.0) -> None:
    """Adds ``value`` to a counter, or observes it in a histogram, for these label values (once the
    transaction running here commits, if it holds records back: ``perdure.telemetry.held``)."""
    held = held_here()
    if held is not None:
        held.append(functools.partial(_record, metric, labels, value))
    else:
        _record(metric, labels, value)


def _record(metric: Counter | Histogram, labels: tuple[str, ...], value: float) -> None:
    if _forwarded is not None:
        with _forwarded_lock:
            if _forwarded is not None:
                _forwarded.append((metric._name, labels, value))  # noqa: SLF001
                return
    _apply(metric, labels, value)


# Each metric's child for a set of label values, by its adding method: ``labels()`` checks and
# locks on every call, and a step records three observations.
_adders: dict[tuple[str, tuple[str, ...]], Callable[[float], None]] = {}


def _apply(metric: Counter | Histogram, labels: tuple[str, ...], value: float) -> None:
    key = (metric._name, labels)  # noqa: SLF001
    add = _adders.get(key)
    if add is None:
        child = metric.labels(*labels)
        add = _adders[key] = child.observe if isinstance(child, Histogram) else child.inc
    add(value)


def forward() -> None:
    """From now on, keeps what this process records for ``take_forwarded`` (a worker process)."""
    global _forwarded
    with _forwarded_lock:
        _forwarded = []


def take_forwarded() -> list[Observation]:
    """What was recorded since the last call, if ``forward`` was called; empty otherwise."""
    global _forwarded
    with _forwarded_lock:
        if not _forwarded:
            return []
        taken, _forwarded = _forwarded, []
        return taken


def replay(observations: Iterable[Observation]) -> None:
    """Records what a worker process kept aside, here."""
    for name, labels, value in observations:
        metric = _BY_NAME.get(name)
        if metric is not None:
            _apply(metric, labels, value)
