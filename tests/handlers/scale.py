"""A handler for the scale-out tests: steps, a wait and a callback, each step logged as it runs.

Every step body appends ``<time> <worker pid> <execution> <step> [callback ID]`` to the file
named by PERDURE_TEST_LOG, so a test can tell which steps ran, when, how often and where, and
complete the callbacks as they are announced.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


def _log(*fields: str) -> None:
    line = " ".join((f"{time.time():.6f}", str(os.getppid()), *fields)) + "\n"
    # One write to a file opened for appending lands whole, even with many processes writing.
    # No fsync: the test kills processes, not the machine, and the page cache survives them.
    fd = os.open(os.environ["PERDURE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@durable_step
def work(step_context: StepContext, execution: str, step: str, *extra: str) -> str:
    _log(execution, step, *extra)
    return step


@durable_execution
def order(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """``steps`` steps, a wait of ``wait`` seconds, a callback, and one last step."""
    execution = event["id"]
    done = [context.step(work(execution, f"s{i}"), name=f"s{i}") for i in range(event.get("steps", 2))]
    context.wait(Duration.from_seconds(event.get("wait", 1)), name="pause")
    callback = context.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_minutes(10)))
    context.step(work(execution, "announce", callback.callback_id), name="announce")
    answer = callback.result()
    context.step(work(execution, "last"), name="last")
    return {"steps": done, "answer": answer}


@durable_step
def nap(step_context: StepContext, execution: str, seconds: float) -> str:
    _log(execution, "nap-started")
    time.sleep(seconds)
    _log(execution, "nap-finished")
    return "rested"


@durable_execution
def slow(event: dict[str, Any], context: DurableContext) -> str:
    """One step that sleeps ``seconds``: an invocation to stop a worker in the middle of."""
    return context.step(nap(event["id"], event["seconds"]), name="nap")


@durable_execution
def quick(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Ends in its first invocation, with no step."""
    return event
