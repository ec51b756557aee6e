"""Seed-style functions that invoke other functions (``ctx.invoke``), served with the AWS-SDK ones."""

from __future__ import annotations

from typing import Any

import perdure as durable
from perdure.errors import OperationFailedError


@durable.function
def seed_parent(ctx: Any, event: dict[str, Any]) -> dict[str, Any]:
    before = ctx.step(lambda: "before", name="before")
    try:
        got = ctx.invoke(event["target"], event.get("payload"), name="call", tenant_id=event.get("tenant"))
    except OperationFailedError as error:
        return {"before": before, "error_type": error.error_type, "message": str(error)}
    ctx.checkpoint()
    return {"before": before, "got": got}


@durable.function
def seed_double(ctx: Any, event: dict[str, Any]) -> int:
    return int(ctx.step(lambda: event["n"] * 2, name="double"))
