"""Seed-style functions that invoke one another, for tests/sdk/test_invoke.py."""

from __future__ import annotations

from typing import Any

import perdure as durable
from perdure.errors import OperationFailedError

# Counts the statements run before an invoke, to show that they run once (an implicit checkpoint).
RUNS: list[str] = []


@durable.function
def parent(ctx: Any, event: dict[str, Any]) -> dict[str, Any]:
    RUNS.append("before")
    answer = ctx.invoke(event["target"], event.get("payload"), name="call", tenant_id=event.get("tenant"))
    RUNS.append("after")
    return {"answer": answer}


@durable.function
def careful_parent(ctx: Any, event: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"answer": ctx.invoke(event["target"], event.get("payload"))}
    except OperationFailedError as error:
        return {"error_type": error.error_type, "message": str(error)}


@durable.function(max_suspension=3600)
def slow_square(ctx: Any, event: dict[str, Any]) -> int:
    ctx.wait(seconds=60)
    return int(event["n"]) ** 2


@durable.function
def refuses(ctx: Any, event: Any) -> None:
    raise PermissionError(f"not allowed: {event}")


@durable.function
def awaits_approval(ctx: Any, event: Any) -> Any:
    return ctx.create_callback("approval").result()
