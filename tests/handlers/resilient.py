"""Functions for the PostgreSQL resilience tests: a number of steps that each take a while, in both styles.

Every step body appends ``<time> <pid> <execution> <step>`` to the file named by
PERDURE_TEST_LOG as it begins, then sleeps ``pause`` seconds, so a test can tell which steps
ran, when and how often, and catch invocations in the middle of a step.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step

import perdure as durable


def _run(execution: str, step: str, pause: float) -> str:
    line = f"{time.time():.6f} {os.getpid()} {execution} {step}\n"
    # One write to a file opened for appending lands whole, even with many processes writing.
    fd = os.open(os.environ["PERDURE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    time.sleep(pause)
    return step


@durable.function
def seed_steps(ctx, event):
    done = []
    for i in range(event["steps"]):
        done.append(ctx.step(_run, event["id"], f"s{i}", event["pause"], name=f"s{i}"))
    return done


@durable_step
def _aws_step(step_context: StepContext, execution: str, step: str, pause: float) -> str:
    return _run(execution, step, pause)


@durable_execution
def aws_steps(event: dict[str, Any], context: DurableContext) -> list[str]:
    return [context.step(_aws_step(event["id"], f"s{i}", event["pause"]), name=f"s{i}") for i in range(event["steps"])]
