"""The function run.py invokes before the cases, so the server's worker processes are running."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def warm_up(event: Any, context: DurableContext) -> str:
    return "warm"
