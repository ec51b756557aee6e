"""An AWS-style handler whose template (limited.yaml) reserves its concurrency; it records when it runs, as limited.py does."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from limited import work


@durable_step
def timed(step_context: StepContext, n: int) -> int:
    return work("reserved", n, "-", 0.2)


@durable_execution
def reserved(event: dict[str, Any], context: DurableContext) -> int:
    return context.step(timed(event["n"]), name="work")
