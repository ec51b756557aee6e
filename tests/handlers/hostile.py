"""A handler whose own code sends a value the store cannot hold: a step named with NUL."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def nul_step_name(event: dict[str, Any], context: DurableContext) -> Any:
    return context.step(lambda _: 1, name="a\x00b")
