"""AWS-SDK handlers for benchmarks/latency.py: each notes when it is entered in the file LATENCY_MARKS."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


def mark(*parts: object) -> None:
    """Appends ``parts`` and the time to the marks file (one line each; the benchmark reads them)."""
    with open(os.environ["LATENCY_MARKS"], "a", encoding="utf-8") as handle:
        handle.write(" ".join(str(part) for part in parts) + f" {time.time():.6f}\n")


@durable_execution
def callback(event: dict[str, Any], context: DurableContext) -> Any:
    mark("enter", event["n"])
    waiting = context.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_hours(1)))
    mark("callback", event["n"], waiting.callback_id)
    return waiting.result()


@durable_execution
def timer(event: dict[str, Any], context: DurableContext) -> None:
    mark("enter", event["n"])
    context.wait(Duration.from_seconds(event["wait"]))


@durable_execution
def held(event: dict[str, Any], context: DurableContext) -> None:
    mark("enter", event["n"])

    def forever(step_context: StepContext) -> None:
        time.sleep(3600)

    context.step(forever, name="forever")
