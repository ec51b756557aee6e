"""AWS-SDK handlers timed by ``benchmarks/compare.py`` (on Perdure, and on AWS's testing runner).

Each handler stamps the wall-clock moment it runs again after a suspension (``time.time()``,
comparable across the processes of one machine), so the benchmark can tell when the handler
itself, not just the store, took up the execution again.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


def _now(_: StepContext) -> float:
    return time.time()


@durable_execution
def callback_then_stamp(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Waits for one callback, then records when it ran again."""
    context.create_callback(name="approval").result()
    return {"resumed_at": context.step(_now, name="resumed")}


def _mark_and_hang(marks: str, hang_seconds: float, _: StepContext) -> None:
    with Path(marks).open("a", encoding="utf-8") as out:
        out.write(f"{time.time()!r}\n")
    time.sleep(hang_seconds)


@durable_execution
def mark_then_hang(event: dict[str, Any], context: DurableContext) -> str:
    """A step that appends the moment it starts to ``event["marks"]``, then hangs (to be killed in)."""
    context.step(functools.partial(_mark_and_hang, event["marks"], event["hang"]), name="hang")
    return "done"


@durable_execution
def wait_then_stamp(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Waits until about ``event["due"]`` (whole seconds, as Lambda's waits are), then records when it ran again."""
    seconds = max(1, round(event["due"] - time.time()))
    context.wait(Duration.from_seconds(seconds), name="timer")
    return {"resumed_at": context.step(_now, name="resumed")}
