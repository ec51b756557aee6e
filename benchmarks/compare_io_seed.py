"""The seed-style function section (h) of ``benchmarks/compare.py`` times: one step that waits on I/O."""

import time

import perdure as durable


@durable.function
def one_slow_step(ctx, event):
    """One step that sleeps ``event["seconds"]`` (standing in for an LLM or HTTP call), recorded once."""
    seconds = event["seconds"]
    return ctx.step(lambda: time.sleep(seconds) or seconds, name="call")
