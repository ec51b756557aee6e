"""Handlers for the benchmarks.

With ``PERDURE_BENCH_UNTUNED=1`` in the worker's environment, importing this module puts back
the SDK's own fixed waits (``aws-durable-execution-sdk-python`` 3.0.0 defaults). The worker
applies ``perdure.runtime.sdk_tuning`` before it imports the handler, so this reset wins; it
lets one benchmark run measure Perdure with and without the tuning.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, state

UNTUNED_ENV = "PERDURE_BENCH_UNTUNED"

if os.environ.get(UNTUNED_ENV) == "1":
    state._STOP_SIGNAL_POLL_SECONDS = 0.1
    state._BLOCKED_CALLER_WAIT_SECONDS = 0.001


def _identity(value: int, _: StepContext) -> int:
    return value


@durable_execution
def steps(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Runs ``event["count"]`` trivial steps; reports the SDK waits it ran with."""
    total = 0
    for i in range(event.get("count", 10)):
        total += context.step(functools.partial(_identity, i), name=f"step-{i}")
    return {
        "total": total,
        "stop_poll_seconds": state._STOP_SIGNAL_POLL_SECONDS,
        "blocked_caller_wait_seconds": state._BLOCKED_CALLER_WAIT_SECONDS,
    }
