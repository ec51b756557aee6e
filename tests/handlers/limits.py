"""Test handlers that run past their timeout, exhaust their memory, or kill their process."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step


def _log(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _attempts(label: str) -> int:
    path = os.environ["PERDURE_TEST_LOG"]
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() == label)


@durable_step
def once(step_context: StepContext, label: str) -> str:
    _log(label)
    return label


@durable_execution
def slow_first_time(event: dict[str, Any], context: DurableContext) -> str:
    context.step(once("before"), name="before")
    if _attempts("slept") == 0:
        _log("slept")
        time.sleep(60)
    return context.step(once("after"), name="after")


@durable_execution
def hungry(event: dict[str, Any], context: DurableContext) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(event["megabytes"])]
    return len(blocks)


@durable_execution
def dies_first_time(event: dict[str, Any], context: DurableContext) -> str:
    context.step(once("before"), name="before")
    if _attempts("died") == 0:
        _log("died")
        os._exit(3)
    return context.step(once("after"), name="after")
