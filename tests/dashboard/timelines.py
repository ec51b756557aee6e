"""Seed-style functions whose timelines test_timeline.py lays out (a module of its own: the
decorator needs the source file).

A step "takes" time by moving ``CLOCKS[-1]``, the clock of the test's runner, forward: the
service reads that clock, so an invocation lasts exactly as long as a test says.
"""

from __future__ import annotations

from datetime import timedelta

import perdure as durable
from perdure.testing import SkippableClock

CLOCKS: list[SkippableClock] = []
FAILED_ONCE: set[str] = set()
RETRY = durable.RetryPolicy(max_attempts=3, initial_delay=1, jitter=False)


def spend(seconds: float) -> float:
    CLOCKS[-1].advance(seconds)
    return seconds


def fetch(key: str) -> str:
    if key not in FAILED_ONCE:
        FAILED_ONCE.add(key)
        raise ConnectionError(f"The service did not answer for {key}; trying again.")
    return f"{key} fetched"


def pack(ctx, size, index):
    return ctx.step(spend, 0.002, name=f"pack {size}")


def ask(callback_id: str) -> None:
    """Where a real function would send the callback's ID to a person."""


@durable.function
def shapes(ctx, event):
    fetched = ctx.step(fetch, event["key"], name="fetch", retry=RETRY)
    ctx.wait(seconds=event["sleep"], name="cool down")
    packed = ctx.map(["S", "M", "L"], pack, name="pack")
    decision = ctx.wait_for_callback(ask, name="sign-off", timeout=timedelta(days=7))
    return {"fetched": fetched, "packed": packed, "decision": decision}


@durable.function
def sleeper(ctx, event):
    """Works ``work`` seconds, sleeps ``sleep`` seconds, works again: two invocations around one wait."""
    ctx.step(spend, event["work"], name="before")
    ctx.wait(seconds=event["sleep"], name="sleep")
    ctx.step(spend, event["work"], name="after")
    return "done"


@durable.function
def wide(ctx, event):
    return len(ctx.map(list(range(event["items"])), pack, name="many"))
