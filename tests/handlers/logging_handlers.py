"""An AWS-SDK handler and a seed-style function that write to stdout, stderr and logging across a wait."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

import perdure as durable

orders = logging.getLogger("orders")


@durable_execution
def chatty(event: Any, context: DurableContext) -> str:
    # Plain print is not replay-aware: it runs on each invocation, as on Lambda.
    print(f"top {event}")
    context.logger.info(f"sdk logger before wait {event}")

    def work(step_context: StepContext) -> str:
        print(f"step stdout {event}")
        print(f"step stderr {event}", file=sys.stderr)
        orders.warning("step logging %s", event)
        step_context.logger.info(f"step logger {event}")
        return "done"

    result = context.step(work, name="work")
    context.wait(Duration.from_seconds(1))
    context.logger.info(f"sdk logger after wait {event}")
    return result


@durable.function
def seed_chatty(ctx: Any, event: Any) -> str:
    ctx.logger.info(f"seed before wait {event}")
    value = str(ctx.step(lambda: print(f"seed step stdout {event}") or "done", name="work"))
    ctx.wait(seconds=1)
    ctx.logger.warning(f"seed after wait {event}")
    return value


@durable_execution
def crashing(event: Any, context: DurableContext) -> str:
    """Prints, then its process dies the first time a step runs; the next invocation recovers."""

    def flaky(step_context: StepContext) -> str:
        marker = Path(tempfile.gettempdir()) / f"perdure-logs-crash-{event}"
        print(f"running {event} crashed={marker.exists()}", flush=True)
        if not marker.exists():
            marker.touch()
            os._exit(1)
        marker.unlink()
        return "recovered"

    return context.step(flaky, name="flaky")
