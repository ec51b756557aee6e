"""Two seed-style functions whose steps record, in order, when they start: one for a backlog, one for a single urgent run.

Each step appends ``<function> <n>`` to the file named by PERDURE_TEST_LOG as it begins, so a
test reads the order in which the server started them.
"""

from __future__ import annotations

import os
import time

import perdure as durable


def work(function: str, n: int, seconds: float) -> int:
    # One write to a file opened for appending lands whole, whichever thread writes it.
    fd = os.open(os.environ["PERDURE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{function} {n}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return n


@durable.function(name="bulk")
def bulk(ctx, event):
    return ctx.step(work, "bulk", event["n"], 0.5)


@durable.function(name="urgent")
def urgent(ctx, event):
    return ctx.step(work, "urgent", event["n"], 0.0)
