"""A seed-style order for the trace and metrics tests: a step that calls HTTP (with the handler's
own httpx instrumentation), a durable wait, a human approval, and a crash of its worker once."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

import perdure as durable

HTTPXClientInstrumentor().instrument()


@durable.function
def traced_order(ctx: durable.Context, event: dict[str, Any]) -> dict[str, Any]:
    status = ctx.step(lambda: httpx.get(event["url"]).status_code, name="check_stock")
    ctx.wait(seconds=1)
    approval = ctx.wait_for_callback(lambda callback_id: Path(event["callback_file"]).write_text(callback_id), name="approval")
    crashed = Path(event["crash_marker"])
    if not crashed.exists():
        crashed.write_text("crashed")
        os._exit(3)  # its worker process dies: the invocation crashed, and is retried
    return ctx.step(lambda: {"stock": status, "approved": approval["approved"]}, name="ship")


def compute() -> float:
    """25 ms of CPU."""
    began = time.thread_time()
    while time.thread_time() - began < 0.025:
        pass
    return time.thread_time() - began


@durable.function
def mostly_asleep(ctx: durable.Context, event: dict[str, Any]) -> str:
    """Computes about 50 ms in two steps, with a durable wait of 2 s (no process held) between them."""
    ctx.step(compute, name="before")
    ctx.wait(seconds=2)
    ctx.step(compute, name="after")
    return "done"


def _flaky(marker: str) -> str:
    """Fails the first time it runs (the marker file says it has run), succeeds after."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ConnectionError("the payment provider did not answer")
    return "charged"


@durable.function
def retried_then_failed(ctx: durable.Context, event: dict[str, Any]) -> str:
    """A step that fails once and succeeds on its retry (1 s later); then the order fails."""
    ctx.step(_flaky, event["marker"], name="charge", retry=durable.RetryPolicy(initial_delay=1, jitter=False))
    raise ValueError("out of stock")
