"""Test handlers that end their own worker process on every invocation, before any checkpoint."""

from __future__ import annotations

import os
import signal
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution


def _log(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


@durable_execution
def exits(event: dict[str, Any], context: DurableContext) -> str:
    _log("exits")
    os._exit(3)


@durable_execution
def kills_itself(event: dict[str, Any], context: DurableContext) -> str:
    _log("kills_itself")
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"
