"""Durable functions for the resume tests (the transform needs them in a file of their own)."""

from pathlib import Path

import perdure as durable


@durable.function
def checkpoints_then_wait(ctx, event):
    """``count`` checkpoints that change little of a large state (stored as deltas), then a wait."""
    count = event["count"]
    notes = [f"note {n} " * 10 for n in range(100)]
    total = 0
    for i in range(count):
        total += i
        ctx.checkpoint()
    ctx.wait(seconds=1)
    return total + len(notes)


@durable.function(retries=2)
def checkpoints_further_each_attempt(ctx, event):
    """Fails every attempt; from its second on it first records one more checkpoint, after the
    retry record of the attempt before. Gives up failing past five invocations."""
    folder = Path(event["folder"])
    ctx.checkpoint()
    attempt = _bump(folder / "attempts")
    if attempt >= 2:
        ctx.checkpoint()
    invocation = _bump(folder / "invocations")
    if invocation > 5:
        return "retried too often"
    raise RuntimeError(f"invocation {invocation} failed")


def _bump(counter: Path) -> int:
    value = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(value))
    return value
