"""Functions whose input, step results and result are over the 64 KiB inline limit: they go to blobs."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution

import perdure as durable


@durable.function
def echo_twice(ctx, event):
    doubled = ctx.step(lambda: event["text"] * 2, name="double")
    return {"length": len(doubled), "text": doubled}


@durable_execution
def aws_echo_twice(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    doubled = context.step(lambda _: event["text"] * 2, name="double")
    return {"length": len(doubled), "text": doubled}
