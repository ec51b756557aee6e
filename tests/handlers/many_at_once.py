"""Seed-style functions for the tests of many invocations at once in one worker process."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import perdure as durable

logger = logging.getLogger("many_at_once")


def note(line: str) -> None:
    if "PERDURE_TEST_LOG" in os.environ:
        with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as log:
            log.write(line + "\n")


def call_service(n: int, seconds: float) -> dict[str, float]:
    # Stands in for an LLM or HTTP call: it waits, and computes nothing.
    note(f"began {n}")
    began = time.time()
    time.sleep(seconds)
    return {"n": n, "double": n * 2, "pid": os.getpid(), "began": began, "ended": time.time()}


@durable.function(name="io_step", timeout=60)
def io_step(ctx, event):
    return ctx.step(call_service, event["n"], event.get("seconds", 1.0))


def spin(seconds: float) -> dict[str, float]:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        pass
    return {"pid": os.getpid(), "cpu": time.process_time()}


@durable.function(name="cpu_step", timeout=60, max_concurrency=1)
def cpu_step(ctx, event):
    return ctx.step(spin, event["seconds"])


def loop_forever() -> None:
    while True:
        pass


@durable.function(name="stuck", timeout=3)
def stuck(ctx, event):
    ctx.step(loop_forever)


def pause(seconds: float) -> None:
    time.sleep(seconds)


@durable.function(name="chatty", timeout=60)
def chatty(ctx, event):
    tag = event["tag"]
    for index in range(5):
        print(f"{tag} print {index}")
        logger.warning("%s log %d", tag, index)
        time.sleep(0.01)
    ctx.step(pause, 0.2)
    print(f"{tag} done")
    return tag


async def call_service_async(n: int) -> dict[str, float]:
    began = time.time()
    await asyncio.sleep(1.0)
    return {"n": n, "double": n * 2, "pid": os.getpid(), "began": began, "ended": time.time()}


@durable.function(name="io_async", timeout=60)
async def io_async(ctx, event):
    return await ctx.step(call_service_async, event["n"])


@durable.function(name="fan_out", timeout=120)
def fan_out(ctx, event):
    results = ctx.map(list(range(event["items"])), lambda child, item, index: child.step(call_service, item, 1.0))
    return {"doubles": [r["double"] for r in results], "spans": [[r["began"], r["ended"]] for r in results]}


def end_the_process_once() -> str:
    marker = os.environ["PERDURE_TEST_LOG"] + ".ended"
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(0.5)
        os._exit(1)  # as a runtime crash does, with the others of its process running
    return "survived"


@durable.function(name="crash_once", timeout=60)
def crash_once(ctx, event):
    return ctx.step(end_the_process_once)
