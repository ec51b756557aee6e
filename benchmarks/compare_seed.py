"""Seed-style durable functions timed by ``benchmarks/compare.py`` (besides ``seed_flows.steps``)."""

import time

import perdure as durable


@durable.function
def callback_then_stamp(ctx, event):
    """Waits for one callback, then records when it ran again."""
    ctx.create_callback("approval").result()
    return {"resumed_at": ctx.step(time.time, name="resumed")}


@durable.function
def suspended(ctx, event):
    """Waits for a callback that never comes: an execution that only costs its rows."""
    ctx.create_callback("never").result()
    return "unreachable in the benchmark"
