"""A durable handler that records one step, then raises an error of the user's own type."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution


class OrderRejected(Exception):
    """The user's own error type: its name must reach the execution's Error unchanged."""


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> None:
    context.step(lambda _: "checked", name="check")
    raise OrderRejected(f"order {event.get('order_id')} rejected: {event.get('reason', 'no reason')}")
