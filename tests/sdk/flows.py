"""Seed-style functions the context tests run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import perdure as durable

ATTEMPTS: dict[str, int] = {}


def flaky(key: str, failures: int) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= failures:
        raise ConnectionError(f"attempt {ATTEMPTS[key]} of {key} failed")
    return f"{key} ok after {ATTEMPTS[key]}"


@durable.function
def retrying(ctx, event):
    policy = durable.RetryPolicy(max_attempts=event["attempts"], initial_delay=2, jitter=False)
    return ctx.step(flaky, event["key"], event["failures"], name="flaky", retry=policy)


@durable.function
def waiting(ctx, event):
    ctx.wait(timedelta(days=3), name="three days")
    ctx.wait(seconds=30)
    return "woke"


@durable.function
def approval(ctx, event):
    callback = ctx.create_callback("approval", timeout=timedelta(hours=1))
    try:
        return {"answer": callback.result()}
    except durable.CallbackTimedOutError as error:
        return {"timed_out": str(error)}
    except durable.OperationFailedError as error:
        return {"rejected": str(error), "type": error.error_type}


@durable.function
def structured(ctx, event):
    doubled = ctx.map([1, 2, 3], lambda child, item, index: child.step(lambda: item * 2, name=f"double {index}"), name="double")
    pair = ctx.parallel([lambda c: c.step(lambda: "left"), lambda c: c.step(lambda: "right")], name="pair")
    inner = ctx.run_in_child_context(lambda c: c.step(lambda: event["x"] + 1, name="inc"), name="child")
    return {"doubled": doubled, "pair": pair, "inner": inner}


@durable.function
def logging_flow(ctx, event):
    ctx.checkpoint()
    ctx.logger.warning("starting")
    first = ctx.step(lambda: 1, name="first")
    ctx.logger.warning("between")
    second = ctx.step(flaky, event["key"], 1, name="second", retry=durable.RetryPolicy(max_attempts=2, jitter=False))
    return [first, second]


@durable.function(retries=2)
def crashes_twice(ctx, event):
    marker = Path(event["marker"])
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count < 2:
        raise RuntimeError(f"crash {count}")
    return count


class OrderRejected(Exception):
    pass


@durable.function
def rejects(ctx, event):
    raise OrderRejected(f"order {event['order_id']} rejected")


@durable.function
def polling(ctx, event):
    return ctx.wait_for_condition(lambda n: n + 1, 0, until=lambda n: n >= event["target"], every=10, name="count")


@durable.function
def growing(ctx, event):
    messages = []
    for i in range(event["turns"]):
        messages.append({"role": "tool", "content": f"{i:04d}" + "x" * 1000})
        ctx.checkpoint()
    return len(messages)


@durable.function
def growing_then_approval(ctx, event):
    messages = []
    for i in range(event["turns"]):
        messages.append({"role": "tool", "content": f"{i:04d}" + "x" * 1000})
        ctx.checkpoint()
    approved = ctx.wait_for_callback(print, name="approval")
    return {"count": len(messages), "first": messages[0]["content"][:4], "last": messages[-1]["content"][:4], "approved": approved}
