"""Seed-style functions for the restart tests; every step body appends a line to PERDURE_TEST_LOG."""

from __future__ import annotations

import os
from datetime import timedelta

import perdure as durable


def record(label: str) -> str:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(label + "\n")
    return label


@durable.function
def three_stages(ctx, event):
    # `history` grows at each checkpoint, so the later snapshots are stored as deltas of the earlier.
    history = ["one"] * event.get("weight", 1)
    done = [ctx.step(record, "one", name="one")]
    ctx.checkpoint()
    history = history + [ctx.step(record, "two", name="two")] * event.get("weight", 1)
    done.append("two")
    ctx.checkpoint()
    done.append(ctx.step(record, "three", name="three"))
    ctx.checkpoint()
    done.append(ctx.step(record, "four", name="four"))
    return {"done": done, "history": len(history)}


@durable.function
def approval_then_steps(ctx, event):
    done = [ctx.step(record, "prepare", name="prepare")]
    answer = ctx.wait_for_callback(lambda callback_id: record(f"asked:{callback_id}"), name="approval", timeout=timedelta(hours=1))
    done.append(ctx.step(record, f"after:{answer}", name="after"))
    return done


@durable.function
def no_checkpoints(ctx, event):
    return ctx.step(record, "only", name="only")
