"""An AWS-SDK handler instrumented with AWS's OpenTelemetry plugin for its SDK, unchanged."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration
from aws_durable_execution_sdk_python_otel import InvocationOtelPluginFactory


@durable_execution(plugins=[InvocationOtelPluginFactory()])
def instrumented(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    reserved = context.step(lambda _: "reserved", name="reserve")
    context.wait(Duration.from_seconds(1), name="cool_down")
    shipped = context.step(lambda _: "shipped", name="ship")
    return {"reserve": reserved, "ship": shipped}
