"""Handlers whose own code makes hostile values: a step named with NUL, a result nested deep."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def nul_step_name(event: dict[str, Any], context: DurableContext) -> Any:
    return context.step(lambda _: 1, name="a\x00b")


@durable_execution
def deep_result(event: dict[str, Any], context: DurableContext) -> Any:
    nested: list[Any] = []
    for _ in range(event["depth"]):
        nested = [nested]
    return nested
