"""Seed-style functions with concurrency and rate limits, whose invocations record when they run.

Each appends ``<event> <time> <function> <n> <tenant>`` lines to the file named by
PERDURE_TEST_LOG (``start`` as its step begins, ``end`` as it ends), so a test can count how
many ran at once, per tenant too, and how often one started.
"""

from __future__ import annotations

import os
import time

import perdure as durable


def record(event: str, function: str, n: int, tenant: str) -> None:
    line = f"{event} {time.time():.6f} {function} {n} {tenant}\n"
    # One write to a file opened for appending lands whole, whichever process writes it.
    fd = os.open(os.environ["PERDURE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def work(function: str, n: int, tenant: str, seconds: float) -> int:
    record("start", function, n, tenant)
    time.sleep(seconds)
    record("end", function, n, tenant)
    return n


@durable.function(name="capped", concurrency=3)
def capped(ctx, event):
    return ctx.step(work, "capped", event["n"], "-", event.get("seconds", 0.2))


@durable.function(name="shared", concurrency=4, tenant_concurrency=2)
def shared(ctx, event):
    return ctx.step(work, "shared", event["n"], event["tenant"], event.get("seconds", 0.2))


@durable.function(name="paced", rate_limit="10/second")
def paced(ctx, event):
    return ctx.step(work, "paced", event["n"], "-", 0.0)
