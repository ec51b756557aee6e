"""Test handlers that append every step they run to a side-effect log (PERDURE_TEST_LOG)."""

from __future__ import annotations

import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


def _log(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@durable_step
def record(step_context: StepContext, label: str) -> str:
    _log(label)
    return f"done:{label}"


@durable_execution
def step_wait_callback(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    first = context.step(record("first"), name="first")
    context.wait(Duration.from_seconds(event.get("wait", 2)), name="pause")
    callback = context.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_hours(1)))
    context.step(record(f"callback:{callback.callback_id}"), name="announce")
    answer = callback.result()
    last = context.step(record("last"), name="last")
    return {"first": first, "answer": answer, "last": last}


@durable_execution
def steps(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    total = 0
    for i in range(event.get("count", 3)):
        total += context.step(lambda _, i=i: i, name=f"step-{i}")
    return {"total": total}


@durable_execution
def fails(event: dict[str, Any], context: DurableContext) -> None:
    raise ValueError(f"bad order {event.get('order_id')}")
