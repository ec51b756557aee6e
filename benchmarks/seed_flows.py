"""Seed-style durable functions timed by ``benchmarks/seed_style.py``.

Written as the seed writes them (``import perdure as durable``, ``@durable.function``,
``ctx.checkpoint()``, ``ctx.step(...)``); each takes its loop count from ``event["count"]``.
"""

import perdure as durable

# Ints from 65536 up each pickle to 5 bytes, so this many make a list of about 1 MiB pickled.
BIG_INTS = (1 << 20) // 5


@durable.function
def small_checkpoints(ctx, event):
    """``count`` checkpoints whose locals are a few ints and a string."""
    count = event["count"]
    label = "small"
    for i in range(count):
        ctx.checkpoint()
    return {"label": label, "checkpoints": count}


@durable.function
def big_checkpoints(ctx, event):
    """``count`` checkpoints whose locals hold a list of about 1 MiB (pickled) of ints."""
    count = event["count"]
    data = list(range(65536, 65536 + BIG_INTS))
    for i in range(count):
        ctx.checkpoint()
    return {"items": len(data), "checkpoints": count}


@durable.function
def steps(ctx, event):
    """``count`` trivial steps, each recorded once (at-least-once: one write per step)."""
    count = event["count"]
    for i in range(count):
        ctx.step(lambda: 1)
    return {"steps": count}


@durable.function
def checkpoints_then_wait(ctx, event):
    """``count`` checkpoints, then a 1-second durable wait (with its implicit checkpoint), then the end."""
    count = event["count"]
    for i in range(count):
        ctx.checkpoint()
    ctx.wait(seconds=1)
    return {"checkpoints": count}
