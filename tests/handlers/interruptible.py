"""A handler whose step runs until the test lets it end (a file appears), to be interrupted mid-step."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution


def _log(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


@durable_execution
def held(event: dict[str, Any], context: DurableContext) -> str:
    _log("invoked")

    def until_released(step_context: StepContext) -> str:
        release = Path(event["release"])
        while not release.exists():
            time.sleep(0.02)
        return "released"

    return context.step(until_released, name="hold")
