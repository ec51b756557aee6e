"""AWS-SDK handlers that invoke one another (``context.invoke``: CHAINED_INVOKE), and their targets."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, InvokeConfig
from aws_durable_execution_sdk_python.exceptions import InvokeError


@durable_execution
def caller(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Invokes ``event["target"]`` with ``event["payload"]`` (and ``event["tenant"]``); returns its result."""
    config: InvokeConfig[Any, Any] = InvokeConfig(tenant_id=event.get("tenant"))
    result = context.invoke(event["target"], event.get("payload"), name="call", config=config)
    return {"got": result}


@durable_execution
def forgiving_caller(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Invokes ``event["target"]`` and returns the error it failed with, if it did."""
    try:
        return {"got": context.invoke(event["target"], event.get("payload"), name="call")}
    except InvokeError as error:
        return {"error_type": error.error_type, "message": error.message}


@durable_execution
def echo(event: Any, context: DurableContext) -> Any:
    return event


@durable_execution
def boom(event: Any, context: DurableContext) -> None:
    raise ValueError(f"boom: {event}")


@durable_execution
def sleeper(event: dict[str, Any], context: DurableContext) -> str:
    """Waits ``event["seconds"]`` (and counts its invocations in steps named after them)."""
    context.wait(Duration.from_seconds(event.get("seconds", 2)), name="nap")
    return "rested"
