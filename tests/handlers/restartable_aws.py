"""An AWS-SDK handler for the restart tests; every step body appends a line to PERDURE_TEST_LOG."""

from __future__ import annotations

import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step


@durable_step
def record(step_context: StepContext, label: str) -> str:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(label + "\n")
    return label


def _inner(child: DurableContext) -> list[str]:
    return [child.step(record("inner-a"), name="inner-a"), child.step(record("inner-b"), name="inner-b")]


@durable_execution
def nested(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    before = context.step(record("before"), name="before")
    inner = context.run_in_child_context(_inner, name="inner")
    after = context.step(record("after"), name="after")
    return {"before": before, "inner": inner, "after": after}
