"""``@durable.function``: turns a ``(ctx, event)`` function into one the runtime can serve."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import parse_destination
from perdure.protocol.limits import FunctionLimits, Rate, check_count, parse_rate
from perdure.protocol.schedules import ScheduleDefinition
from perdure.sdk.resumable import ResumableFunction, make_resumable
from perdure.sdk.schedule_options import schedule_definitions

# The attribute under which a decorated function carries its DurableFunction.
MARKER = "__perdure_function__"


@dataclass(frozen=True)
class FunctionOptions:
    """How a seed-style function runs: the same settings a template gives an AWS function."""

    name: str
    timeout: int = 900
    memory_mb: int | None = None
    retries: int = 0
    max_suspension: int | None = None
    retention_days: int | None = None
    max_concurrency: int | None = None
    # ``schedule=`` and its options, as the one schedule it declares (or none).
    schedules: tuple[ScheduleDefinition, ...] = ()
    # The functions started with the record of each execution that succeeds, or ends otherwise
    # (a template's EventInvokeConfig OnSuccess and OnFailure): ``name`` or ``name:qualifier``.
    on_success: str | None = None
    on_failure: str | None = None
    limits: FunctionLimits = FunctionLimits()


@dataclass(frozen=True)
class DurableFunction:
    """A decorated function: the original, its resumable form, and its options."""

    original: Callable[..., Any]
    resumable: ResumableFunction = field(repr=False)
    options: FunctionOptions


def _seconds(value: int | float | datetime.timedelta | None) -> int | None:
    if value is None:
        return None
    return int(value.total_seconds() if isinstance(value, datetime.timedelta) else value)


def _destination(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_destination(value, option)
    except InvalidParameterError as error:
        raise ValueError(f"{error.message} For example @durable.function({option}=\"notify_failure\").") from None


def _limit(function_name: str, parameter: str, value: int | None, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        return check_count(value, minimum)
    except ValueError as error:
        raise ValueError(
            f"@durable.function {function_name}: {parameter} {error}; for example @durable.function({parameter}=10)."
        ) from None


def _rate(function_name: str, parameter: str, value: str | None) -> Rate | None:
    if value is None:
        return None
    try:
        return parse_rate(value)
    except ValueError as error:
        raise ValueError(f"@durable.function {function_name}: {parameter} {error}.") from None


@overload
def function(fn: Callable[..., Any]) -> Callable[..., Any]: ...


@overload
def function(
    *,
    name: str | None = None,
    timeout: int | datetime.timedelta = 900,
    memory_mb: int | None = None,
    retries: int = 0,
    max_suspension: int | datetime.timedelta | None = None,
    retention_days: int | None = None,
    max_concurrency: int | None = None,
    schedule: str | None = None,
    schedule_input: Any = None,
    schedule_timezone: str = "UTC",
    catch_up: str = "latest",
    on_success: str | None = None,
    on_failure: str | None = None,
    concurrency: int | None = None,
    tenant_concurrency: int | None = None,
    rate_limit: str | None = None,
    tenant_rate_limit: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...


def function(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout: int | datetime.timedelta = 900,
    memory_mb: int | None = None,
    retries: int = 0,
    max_suspension: int | datetime.timedelta | None = None,
    retention_days: int | None = None,
    max_concurrency: int | None = None,
    schedule: str | None = None,
    schedule_input: Any = None,
    schedule_timezone: str = "UTC",
    catch_up: str = "latest",
    on_success: str | None = None,
    on_failure: str | None = None,
    concurrency: int | None = None,
    tenant_concurrency: int | None = None,
    rate_limit: str | None = None,
    tenant_rate_limit: str | None = None,
) -> Any:
    """Makes ``fn(ctx, event)`` a durable function, bare (``@durable.function``) or with options.

    ``timeout`` bounds one invocation; ``max_suspension`` bounds the whole execution;
    ``retries`` re-runs the function from its last checkpoint after an uncaught exception.
    ``max_concurrency`` bounds how many of its invocations one worker process runs at once
    (by default many, for steps that wait on I/O; 1 per process for CPU-bound steps that
    should each have a core).
    ``schedule`` starts it on a clock, as AWS writes one (``"rate(5 minutes)"``,
    ``"cron(0 9 * * ? *)"``), in ``schedule_timezone``, each tick with ``schedule_input`` as its
    event (JSON-serializable; by default EventBridge's Scheduled Event); ``catch_up`` (latest,
    all or none) says which ticks missed while no server ran fire. ``on_success`` and
    ``on_failure`` name functions the server runs: each execution that succeeds, or ends
    otherwise, starts the one named with Lambda's destination record of it, once.
    ``concurrency`` bounds how many of its invocations run at once on every server and worker
    sharing the database (Lambda's reserved concurrency; 0 holds them all),
    ``tenant_concurrency`` how many of those one tenant (the invoke's ``TenantId``) may have,
    and ``rate_limit`` / ``tenant_rate_limit`` how often one starts, such as ``"50/minute"``;
    invocations held back wait, in order, and never fail for it.
    Checkpoints in places that cannot be resumed are refused here, with the file and line.
    """

    whole_days = isinstance(retention_days, int) and not isinstance(retention_days, bool)
    if retention_days is not None and not (whole_days and retention_days >= 1):
        # As AWS's RetentionPeriodInDays: whole days, at least one (purges count on that).
        raise ValueError(
            f"retention_days must be a whole number of days, at least 1, not {retention_days!r}; "
            "for example @durable.function(retention_days=7)."
        )

    if max_concurrency is not None and (isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1):
        raise ValueError(
            f"max_concurrency must be a whole number, at least 1, not {max_concurrency!r}; "
            "for example @durable.function(max_concurrency=1) for CPU-bound steps."
        )

    success, failure = _destination(on_success, "on_success"), _destination(on_failure, "on_failure")

    def decorate(target: Callable[..., Any]) -> Callable[..., Any]:
        function_name = name or target.__name__
        limits = FunctionLimits(
            concurrency=_limit(function_name, "concurrency", concurrency, 0),
            tenant_concurrency=_limit(function_name, "tenant_concurrency", tenant_concurrency, 1),
            rate=_rate(function_name, "rate_limit", rate_limit),
            tenant_rate=_rate(function_name, "tenant_rate_limit", tenant_rate_limit),
        )
        options = FunctionOptions(
            name=function_name,
            timeout=_seconds(timeout) or 900,
            memory_mb=memory_mb,
            retries=retries,
            max_suspension=_seconds(max_suspension),
            retention_days=retention_days,
            max_concurrency=max_concurrency,
            schedules=schedule_definitions(function_name, schedule, schedule_input, schedule_timezone, catch_up),
            on_success=success,
            on_failure=failure,
            limits=limits,
        )
        durable = DurableFunction(target, make_resumable(target), options)

        @functools.wraps(target)
        def call_directly(*args: Any, **kwargs: Any) -> Any:
            raise TypeError(
                f"{options.name} is a durable function: start it with `perdure run`, "
                "`perdure invoke`, or perdure.testing, not by calling it."
            )

        setattr(call_directly, MARKER, durable)
        return call_directly

    return decorate(fn) if fn is not None else decorate

